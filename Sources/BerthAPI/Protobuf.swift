import BerthKube
import Foundation

/// Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) → the server's JSON tree.
///
/// client-go's typed clients send objects this way: kubectl's `create namespace|configmap|secret|
/// serviceaccount|service|deployment`, `auth can-i`, typed deletes' DeleteOptions. The body is the magic
/// `k8s\0`, then a `runtime.Unknown` {1: TypeMeta{1 apiVersion, 2 kind}, 2: raw, 3: contentEncoding,
/// 4: contentType} whose `raw` is the object's message from k8s.io/api's generated.proto. Decoding is
/// driven by `schemaText` (ProtobufSchema.swift, generated from upstream), a table per message, so a kind
/// is data rather than code. Responses walk the same table the other way (ProtobufEncoding.swift).
///
/// The JSON comes out the way Go's encoding/json writes the decoded struct: zero scalars are omitted
/// unless the schema marks them kept, a message present on the wire is an object even when empty
/// (`emptyDir: {}` means something), a zero Time is absent. Unknown field numbers are skipped.
enum Protobuf {
    static let mediaType = "application/vnd.kubernetes.protobuf"
    static let magic: [UInt8] = [0x6b, 0x38, 0x73, 0x00]

    /// What a field holds; parsed from the schema's type codes.
    indirect enum FieldType: Sendable, Equatable {
        case string, int, bool, bytes, double
        /// metav1.Time / MicroTime: {1 seconds, 2 nanos} → RFC 3339 (MicroTime with microseconds).
        case time, microTime
        /// resource.Quantity: {1 string} → its string.
        case quantity
        /// metav1.Duration: {1 durationNs} → Go's duration text (`10s`, `1m30s`).
        case duration
        /// intstr.IntOrString: {1 type (0 int, 1 string), 2 intVal, 3 strVal}.
        case intOrString
        /// metav1.FieldsV1: {1 raw JSON bytes} → that JSON.
        case rawJSON
        case message(String)
        /// apiextensions' JSONSchemaPropsOr{Array,Bool,StringArray} (marshal.go): a message {schema, the
        /// other form} whose JSON is either the schema (the named message) or that other form.
        case schemaOr(SchemaAlternative, String)
        case list(FieldType)
        /// map<string, T>: repeated entries {1 key, 2 value}.
        case map(FieldType)

        /// `s` string, `i` int32/int64, `b` bool, `y` bytes (base64 in JSON), `f` double, `t` Time,
        /// `u` MicroTime, `q` Quantity, `D` Duration, `x` IntOrString, `j` raw JSON (FieldsV1, RawExtension, JSON), `[T`
        /// repeated T, `{T` map<string,T>, `|[M` / `|bM` / `|sM` message M or a list of them / a bool / a list
        /// of strings, anything longer a message name.
        init?(code: Substring) {
            switch code {
            case "s": self = .string
            case "i": self = .int
            case "b": self = .bool
            case "y": self = .bytes
            case "f": self = .double
            case "t": self = .time
            case "u": self = .microTime
            case "q": self = .quantity
            case "D": self = .duration
            case "x": self = .intOrString
            case "j": self = .rawJSON
            default:
                if code.hasPrefix("["), let t = FieldType(code: code.dropFirst()) { self = .list(t); return }
                if code.hasPrefix("{"), let t = FieldType(code: code.dropFirst()) { self = .map(t); return }
                if code.hasPrefix("|"), code.count > 2,
                    let other = SchemaAlternative(rawValue: code.dropFirst().first!),
                    case .message(let m)? = FieldType(code: code.dropFirst(2))
                {
                    self = .schemaOr(other, m); return
                }
                guard code.count > 1, code.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." }) else { return nil }
                self = .message(String(code))
            }
        }
        var messageName: String? {
            switch self {
            case .message(let m), .schemaOr(_, let m): return m
            case .list(let t), .map(let t): return t.messageName
            default: return nil
            }
        }
    }
    /// What a `schemaOr` field holds when it holds no schema: field 2 of its message (field 1 for the bool,
    /// whose schema is field 2).
    enum SchemaAlternative: Character, Sendable {
        case schemas = "[", bool = "b", strings = "s"
    }
    struct Field: Sendable {
        /// nil: an embedded struct whose fields sit inline in the parent's JSON object.
        var name: String?
        var type: FieldType
        /// Whether a zero scalar is kept (Go pointer, or no omitempty).
        var keepZero: Bool
    }
    typealias Message = [Int: Field]

    static let schema: [String: Message] = parseSchema(schemaText).messages

    /// The schema table, and what is wrong with it (tested to be nothing).
    static func parseSchema(_ text: String) -> (messages: [String: Message], problems: [String]) {
        var messages: [String: Message] = [:], problems: [String] = []
        var current: String?
        for line in text.split(separator: "\n") {
            var words = line.split(separator: " ")
            if !line.hasPrefix(" "), !words.isEmpty {
                let name = String(words.removeFirst())
                if messages[name] != nil { problems.append("\(name) defined twice") }
                messages[name] = [:]; current = name
            }
            guard let m = current else { problems.append("fields before any message: \(line)"); continue }
            for w in words {
                let parts = w.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                var code = parts.count == 3 ? parts[2] : ""
                let keep = code.hasSuffix("?")
                if keep { code = code.dropLast() }
                guard parts.count == 3, let n = Int(parts[0]), n > 0, !parts[1].isEmpty, let t = FieldType(code: code)
                else {
                    problems.append("\(m): bad field \(w)"); continue
                }
                if messages[m]?[n] != nil { problems.append("\(m): field \(n) twice") }
                messages[m]?[n] = Field(name: parts[1] == "-" ? nil : String(parts[1]), type: t, keepZero: keep)
            }
        }
        for (name, m) in messages {
            for (n, f) in m {
                if let ref = f.type.messageName, messages[ref] == nil {
                    problems.append("\(name) field \(n): no message \(ref)")
                }
                if f.name == nil, f.type != .message(f.type.messageName ?? "") {
                    problems.append("\(name) field \(n): only a message can be inline")
                }
            }
        }
        for (kind, message) in kinds.merging(anyVersionKinds, uniquingKeysWith: { a, _ in a })
        where messages[message] == nil {
            problems.append("kind \(kind): no message \(message)")
        }
        return (messages, problems)
    }

    // MARK: decoding

    /// A malformed body; becomes 400 BadRequest. `path` (JSON field names, outermost first) is filled in
    /// as the error leaves each message.
    struct DecodeError: Error, CustomStringConvertible {
        var reason: String
        var path: [String] = []
        init(_ reason: String) { self.reason = reason }
        var description: String {
            path.isEmpty
                ? reason : path.joined(separator: ".").replacingOccurrences(of: ".[", with: "[") + ": " + reason
        }
    }

    /// The root message of `kind` at `apiVersion`, or of a kind of no one group version (DeleteOptions).
    /// An empty `apiVersion` takes the kind at any version (the first by name, for a kind served at two).
    static func rootMessage(apiVersion: String, kind: String) -> String? {
        if let m = anyVersionKinds[kind] { return m }
        if !apiVersion.isEmpty { return kinds["\(apiVersion)/\(kind)"] }
        return kinds.keys.sorted().first { $0.hasSuffix("/" + kind) }.flatMap { kinds[$0] }
    }

    /// The object a protobuf body carries, as JSON with apiVersion and kind from the envelope.
    /// `kind` and `apiVersion` stand in when the envelope names none. Malformed bytes → 400 BadRequest; a
    /// kind with no schema here → 415 naming it.
    static func decodeObject(_ body: [UInt8], kind defaultKind: String, apiVersion defaultAPIVersion: String = "")
        throws -> JSON
    {
        guard body.count >= magic.count, body.prefix(magic.count).elementsEqual(magic) else {
            throw APIError.badRequest(
                "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")
        }
        do {
            var apiVersion = "", kind = "", encoding = ""
            var raw: ArraySlice<UInt8> = []
            var r = Reader(body[magic.count...])
            while let (n, v) = try r.next() {
                switch n {
                case 1:
                    var t = Reader(try bytes(v))
                    while let (tn, tv) = try t.next() {
                        if tn == 1 { apiVersion = try string(tv) } else if tn == 2 { kind = try string(tv) }
                    }
                case 2: raw = try bytes(v)
                case 3: encoding = try string(v)
                default: continue
                }
            }
            if kind.isEmpty { kind = defaultKind }
            let named = apiVersion
            if apiVersion.isEmpty { apiVersion = defaultAPIVersion }
            guard encoding.isEmpty else {
                throw APIError(
                    code: 415, reason: "UnsupportedMediaType",
                    message: "protobuf bodies with contentEncoding \(encoding) are not supported")
            }
            guard let root = rootMessage(apiVersion: apiVersion, kind: kind) else {
                throw APIError.unsupportedProtobuf(kind: kind, apiVersion: named)
            }
            guard case .object(var o) = try decode(raw, root, depth: 0) else { return [:] }
            if !named.isEmpty { o["apiVersion"] = .string(named) }
            o["kind"] = .string(kind)
            return .object(o)
        } catch let e as DecodeError {
            throw APIError.badRequest("cannot decode the protobuf body: \(e.description)")
        }
    }

    /// One message's fields → a JSON object. Lists and maps are gathered apart so long ones cost linear time.
    static func decode(_ b: ArraySlice<UInt8>, _ message: String, depth: Int) throws -> JSON {
        guard depth < 64 else { throw DecodeError("nested too deeply") }
        let fields = schema[message] ?? [:]
        var out: [String: JSON] = [:], lists: [String: [JSON]] = [:], maps: [String: [String: JSON]] = [:]
        var r = Reader(b)
        while let (n, v) = try r.next() {
            guard let f = fields[n] else { continue }
            guard let name = f.name else {  // inline
                guard case .object(let inner) = try value(v, f.type, depth: depth) else { continue }
                out.merge(inner) { $1 }
                continue
            }
            do {
                switch f.type {
                case .list(let element):
                    if case .bytes(let packed) = v, [.int, .bool, .double].contains(element) {
                        var p = Reader(packed)
                        while !p.atEnd {
                            let w: Wire = element == .double ? .fixed64(try p.fixed(8)) : .varint(try p.varint())
                            lists[name, default: []].append(try value(w, element, depth: depth))
                        }
                    } else {
                        do { lists[name, default: []].append(try value(v, element, depth: depth)) } catch var e
                            as DecodeError
                        {
                            e.path.insert("[\(lists[name]?.count ?? 0)]", at: 0); throw e
                        }
                    }
                case .map(let valueType):
                    var entry = Reader(try bytes(v))
                    var key = "", val: JSON?
                    while let (en, ev) = try entry.next() {
                        if en == 1 {
                            key = try string(ev)
                        } else if en == 2 {
                            do { val = try mapValue(ev, valueType, depth: depth) } catch var e as DecodeError {
                                e.path.insert("[\(key)]", at: 0); throw e
                            }
                        }
                    }
                    maps[name, default: [:]][key] = val ?? zero(valueType)
                default:
                    let j = try value(v, f.type, depth: depth)
                    if omitted(j, f) { out.removeValue(forKey: name) } else { out[name] = j }
                }
            } catch var e as DecodeError {
                e.path.insert(name, at: 0); throw e
            }
        }
        for (k, v) in lists { out[k] = .array(v) }
        for (k, v) in maps { out[k] = .object(v) }
        return .object(out)
    }

    /// A map entry's value. A list there (`extra: map[string][]string`) travels wrapped in a message of
    /// its own whose field 1 repeats the items (ExtraValue).
    static func mapValue(_ v: Wire, _ type: FieldType, depth: Int) throws -> JSON {
        guard case .list(let element) = type else { return try value(v, type, depth: depth) }
        var items: [JSON] = []
        var r = Reader(try bytes(v))
        while let (n, x) = try r.next() {
            if n == 1 { items.append(try value(x, element, depth: depth)) }
        }
        return .array(items)
    }

    /// One wire value as `type`.
    static func value(_ v: Wire, _ type: FieldType, depth: Int) throws -> JSON {
        switch type {
        case .string: return .string(try string(v))
        case .int:
            guard case .varint(let x) = v else { throw wrongWire(v) }
            return .int(Int64(bitPattern: x))
        case .bool:
            guard case .varint(let x) = v else { throw wrongWire(v) }
            return .bool(x != 0)
        case .double:
            guard case .fixed64(let x) = v else { throw wrongWire(v) }
            return .double(Double(bitPattern: x))
        case .bytes: return .string(Data(try bytes(v)).base64EncodedString())
        case .message(let m): return try decode(try bytes(v), m, depth: depth + 1)
        case .time, .microTime:
            let b = try bytes(v)
            if b.isEmpty { return .null }  // Go's zero Time marshals to nothing
            var seconds: Int64 = 0, nanos: Int64 = 0
            var r = Reader(b)
            while let (n, x) = try r.next() {
                guard case .varint(let u) = x else { throw wrongWire(x) }
                if n == 1 {
                    seconds = Int64(bitPattern: u)
                } else if n == 2 {
                    nanos = Int64(Int32(truncatingIfNeeded: u))
                }
            }
            // Go's JSON encoding of a Time only allows years 0000…9999.
            guard (-62_167_219_200...253_402_300_799).contains(seconds) else {
                throw DecodeError("time \(seconds)s is out of range")
            }
            return .string(rfc3339(seconds: seconds, nanos: nanos, micro: type == .microTime))
        case .quantity:
            var r = Reader(try bytes(v)), s = ""
            while let (n, x) = try r.next() { if n == 1 { s = try string(x) } }
            return .string(s.isEmpty ? "0" : s)
        case .duration:
            var r = Reader(try bytes(v)), nanoseconds: Int64 = 0
            while let (n, x) = try r.next() {
                guard n == 1 else { continue }
                guard case .varint(let u) = x else { throw wrongWire(x) }
                nanoseconds = Int64(bitPattern: u)
            }
            return .string(MetaV1.Duration(nanoseconds: nanoseconds).description)
        case .intOrString:
            var r = Reader(try bytes(v))
            var isString = false, i: Int64 = 0, s = ""
            while let (n, x) = try r.next() {
                switch n {
                case 1: guard case .varint(let u) = x else { throw wrongWire(x) }; isString = u == 1
                case 2:
                    guard case .varint(let u) = x else { throw wrongWire(x) }; i = Int64(Int32(truncatingIfNeeded: u))
                case 3: s = try string(x)
                default: continue
                }
            }
            return isString ? .string(s) : .int(i)
        case .rawJSON:
            var r = Reader(try bytes(v)), raw: ArraySlice<UInt8> = []
            while let (n, x) = try r.next() { if n == 1 { raw = try bytes(x) } }
            if raw.isEmpty { return .null }
            do { return try JSON.parse(Array(raw)) } catch { throw DecodeError("\(error)") }
        case .schemaOr(let other, let m):
            var r = Reader(try bytes(v))
            var schema: JSON?, items: [JSON] = [], allows = false
            while let (n, x) = try r.next() {
                switch (other, n) {
                case (.bool, 1):
                    guard case .varint(let u) = x else { throw wrongWire(x) }
                    allows = u != 0
                case (.bool, 2), (.schemas, 1), (.strings, 1): schema = try decode(try bytes(x), m, depth: depth + 1)
                case (.schemas, 2): items.append(try decode(try bytes(x), m, depth: depth + 1))
                case (.strings, 2): items.append(.string(try string(x)))
                default: continue
                }
            }
            // As marshal.go writes them: a schema wins over a bool; a non-empty list over a schema.
            if other == .bool { return schema ?? .bool(allows) }
            return items.isEmpty ? schema ?? .null : .array(items)
        case .list, .map:
            throw DecodeError("nested repeated field")  // not in Kubernetes' schemas
        }
    }

    /// Whether a decoded singular field stays out of the JSON: a zero Time, or a zero scalar not marked kept.
    /// Messages present on the wire always stay (`emptyDir: {}`).
    static func omitted(_ j: JSON, _ f: Field) -> Bool {
        if j == .null { return true }
        if f.keepZero { return false }
        switch f.type {
        case .string, .bytes, .int, .bool, .double, .quantity: return j == zero(f.type)
        case .intOrString: return j == 0 || j == ""
        default: return false
        }
    }

    /// A field's zero value in JSON (what a map entry without a value holds).
    static func zero(_ t: FieldType) -> JSON {
        switch t {
        case .string, .bytes: return ""
        case .int, .intOrString: return 0
        case .bool: return false
        case .double: return .double(0)
        case .quantity: return "0"
        case .message: return [:]
        default: return .null
        }
    }

    static func bytes(_ v: Wire) throws -> ArraySlice<UInt8> {
        guard case .bytes(let b) = v else { throw wrongWire(v) }
        return b
    }
    static func string(_ v: Wire) throws -> String { String(decoding: try bytes(v), as: UTF8.self) }
    static func wrongWire(_ v: Wire) -> DecodeError { DecodeError("unexpected wire type \(v.wireType)") }

    /// `seconds` since the epoch (UTC, years 0…9999) → `2006-01-02T15:04:05Z`, or with `micro` `…05.000000Z`.
    static func rfc3339(seconds: Int64, nanos: Int64, micro: Bool) -> String {
        APITime.format(Int(seconds), micros: micro ? Int(min(max(0, nanos), 999_999_999) / 1000) : nil)
    }

    // MARK: wire format

    /// One field's value as it sits on the wire.
    enum Wire {
        case varint(UInt64), fixed64(UInt64), bytes(ArraySlice<UInt8>), fixed32(UInt64)
        var wireType: Int {
            switch self {
            case .varint: return 0
            case .fixed64: return 1
            case .bytes: return 2
            case .fixed32: return 5
            }
        }
    }

    /// Reads fields off a message's bytes; every read is bounds-checked and throws `DecodeError`.
    struct Reader {
        let b: ArraySlice<UInt8>
        var i: Int
        init(_ b: ArraySlice<UInt8>) { self.b = b; i = b.startIndex }
        var atEnd: Bool { i >= b.endIndex }

        mutating func varint() throws -> UInt64 {
            let start = i
            var v: UInt64 = 0, shift: UInt64 = 0
            while i < b.endIndex {
                let c = b[i]; i += 1
                if shift == 63 && c > 1 { throw DecodeError("varint overflows 64 bits at byte \(start)") }
                v |= UInt64(c & 0x7f) << shift
                if c & 0x80 == 0 { return v }
                shift += 7
                if shift > 63 { throw DecodeError("varint overflows 64 bits at byte \(start)") }
            }
            throw DecodeError("truncated varint at byte \(start)")
        }
        mutating func fixed(_ n: Int) throws -> UInt64 {
            guard b.endIndex - i >= n else { throw DecodeError("truncated \(n * 8)-bit value at byte \(i)") }
            var v: UInt64 = 0
            for k in 0..<n { v |= UInt64(b[i + k]) << (8 * UInt64(k)) }
            i += n
            return v
        }
        /// The next field, or nil at the end of the message.
        mutating func next() throws -> (Int, Wire)? {
            guard !atEnd else { return nil }
            let at = i
            let tag = try varint()
            let number = tag >> 3
            guard number > 0, number < 1 << 29 else {
                throw DecodeError("invalid field number \(number) at byte \(at)")
            }
            switch tag & 7 {
            case 0: return (Int(number), .varint(try varint()))
            case 1: return (Int(number), .fixed64(try fixed(8)))
            case 2:
                let n = try varint()
                guard n <= UInt64(b.endIndex - i) else {
                    throw DecodeError("field \(number) at byte \(at) is \(n) bytes long, past the end of its message")
                }
                defer { i += Int(n) }
                return (Int(number), .bytes(b[i..<i + Int(n)]))
            case 5: return (Int(number), .fixed32(try fixed(4)))
            default: throw DecodeError("unsupported wire type \(tag & 7) at byte \(at)")
            }
        }
    }
}

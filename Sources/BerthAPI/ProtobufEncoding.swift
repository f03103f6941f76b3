import BerthKube
import Foundation

/// Kubernetes protobuf responses: the server's JSON tree → `application/vnd.kubernetes.protobuf`, the form
/// client-go's typed clients ask for first (`Accept: application/vnd.kubernetes.protobuf,application/json`
/// from kubectl's describe, drain, auth can-i, create token …, and from every Kubernetes component).
///
/// An object is the magic `k8s\0` and a `runtime.Unknown` {1 TypeMeta, 2 raw} whose raw is the kind's
/// message, driven by the same schema table requests are decoded with (`Protobuf.schema`), so the two
/// directions cannot disagree. A list is its kind's generic form (every `…List` in k8s.io/api is
/// {1 ListMeta, 2 repeated item}). A watch stream is kube-apiserver's: each event a 4-byte big-endian
/// length, then a `metav1.WatchEvent` {1 type, 2 RawExtension{1 the object as above}} without envelope.
///
/// The JSON was written by this server, so its values have the schema's types; a value of another JSON
/// type, or a field the schema lacks, has no protobuf form and is left out (as Go leaves out what its
/// struct has no field for). `unencodable` lists them, for tests to prove the schema covers the kinds.
extension Protobuf {
    /// The media type of a protobuf watch response.
    static let watchMediaType = "application/vnd.kubernetes.protobuf;stream=watch"

    /// Whether objects of `kind` at `apiVersion` (and their lists) have a protobuf form here.
    static func encodes(apiVersion: String, kind: String) -> Bool {
        rootMessage(apiVersion: apiVersion, kind: kind) != nil
    }

    /// An object, a list of objects or a Status (`apiVersion` and `kind` from the JSON) → the body of a
    /// protobuf response; nil when that kind has no message here (the caller answers JSON instead).
    static func encodeObject(_ j: JSON) -> [UInt8]? {
        guard case .object(let o) = j, let kind = o["kind"]?.string, let apiVersion = o["apiVersion"]?.string,
            let raw = encodeRaw(o, apiVersion: apiVersion, kind: kind)
        else { return nil }
        var w = Writer()
        w.out = magic
        w.message(1) { t in
            t.string(1, apiVersion)
            t.string(2, kind)
        }
        w.bytes(2, raw)
        return w.out
    }

    /// One watch event, framed: its length (4 bytes, big-endian) and the WatchEvent message. nil when the
    /// object has no protobuf form.
    static func watchFrame(type: String, object: JSON) -> [UInt8]? {
        guard let embedded = encodeObject(object) else { return nil }
        var event = Writer()
        event.string(1, type)
        event.message(2) { $0.bytes(1, embedded) }
        let n = UInt32(event.out.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + event.out
    }

    /// The message of an object or list, without the envelope.
    static func encodeRaw(_ o: [String: JSON], apiVersion: String, kind: String) -> [UInt8]? {
        if let message = rootMessage(apiVersion: apiVersion, kind: kind) {
            var w = Writer()
            encode(o, message, into: &w)
            return w.out
        }
        guard kind.hasSuffix("List"), let item = rootMessage(apiVersion: apiVersion, kind: String(kind.dropLast(4))),
            let listMeta = anyVersionKinds["ListMeta"]
        else { return nil }
        var w = Writer()
        if case .object(let meta)? = o["metadata"] { w.message(1) { encode(meta, listMeta, into: &$0) } }
        for case .object(let element) in o["items"]?.array ?? [] {
            w.message(2) { encode(element, item, into: &$0) }
        }
        return w.out
    }

    /// Each message's fields in number order, as Go's generated code writes them.
    static let orderedSchema: [String: [(number: Int, field: Field)]] = schema.mapValues { m in
        m.sorted { $0.key < $1.key }.map { (number: $0.key, field: $0.value) }
    }

    /// A JSON object's fields as `message` (an inline field encodes the same object as its message).
    static func encode(_ o: [String: JSON], _ message: String, into w: inout Writer) {
        for (n, f) in orderedSchema[message] ?? [] {
            guard let name = f.name else {
                if case .message(let inner) = f.type { w.message(n) { encode(o, inner, into: &$0) } }
                continue
            }
            guard let v = o[name], v != .null else { continue }
            switch f.type {
            case .list(let element):
                for item in v.array ?? [] { single(n, item, element, into: &w) }
            case .map(let valueType):
                guard case .object(let entries) = v else { continue }
                for key in entries.keys.sorted() {
                    w.message(n) { e in
                        e.string(1, key)
                        guard let value = entries[key], value != .null else { return }
                        if case .list(let element) = valueType {  // ExtraValue: {1 repeated item}
                            e.message(2) { l in for item in value.array ?? [] { single(1, item, element, into: &l) } }
                        } else {
                            single(2, value, valueType, into: &e)
                        }
                    }
                }
            default:
                single(n, v, f.type, into: &w)
            }
        }
    }

    /// One value of `type` as field `n`; nothing when the JSON value has another type.
    static func single(_ n: Int, _ v: JSON, _ type: FieldType, into w: inout Writer) {
        switch (type, v) {
        case (.string, .string(let s)): w.string(n, s)
        case (.int, .number(let text)):
            guard let i = Int64(text) ?? Double(text).flatMap({ Int64(exactly: $0) }) else { return }
            w.varint(n, UInt64(bitPattern: i))
        case (.bool, .bool(let b)): w.varint(n, b ? 1 : 0)
        case (.double, .number(let text)):
            guard let d = Double(text) else { return }
            w.tag(n, 1)
            let bits = d.bitPattern
            for k in 0..<8 { w.out.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(k)))) }
        case (.bytes, .string(let s)):
            guard let data = Data(base64Encoded: s) else { return }
            w.bytes(n, Array(data))
        case (.time, .string(let s)), (.microTime, .string(let s)):
            guard let date = APITime.parse(s) else { return }
            let t = date.timeIntervalSince1970
            let seconds = t.rounded(.down)
            // Time has whole seconds; MicroTime microseconds (rounded, as its JSON form was written).
            let nanos = type == .microTime ? Int64(((t - seconds) * 1e6).rounded()) * 1000 : 0
            w.message(n) { ts in
                ts.varint(1, UInt64(bitPattern: Int64(seconds)))
                ts.varint(2, UInt64(bitPattern: nanos))
            }
        case (.quantity, .string(let s)), (.quantity, .number(let s)): w.message(n) { $0.string(1, s) }
        case (.duration, .string(let s)):
            guard let d = MetaV1.Duration(s) else { return }
            w.message(n) { $0.varint(1, UInt64(bitPattern: d.nanoseconds)) }
        case (.intOrString, .number(let text)):
            guard let i = Int64(text) else { return }
            w.message(n) { x in
                x.varint(1, 0)
                x.varint(2, UInt64(bitPattern: i))
            }
        case (.intOrString, .string(let s)):
            w.message(n) { x in
                x.varint(1, 1)
                x.string(3, s)
            }
        case (.rawJSON, _): w.message(n) { $0.bytes(1, v.serialized()) }
        case (.message(let m), .object(let o)): w.message(n) { encode(o, m, into: &$0) }
        case (.schemaOr(.bool, _), .bool(let b)): w.message(n) { $0.varint(1, b ? 1 : 0) }
        case (.schemaOr(.bool, let m), .object(let o)):
            w.message(n) { x in
                x.varint(1, 1)  // a schema allows, as UnmarshalJSON sets it
                x.message(2) { encode(o, m, into: &$0) }
            }
        case (.schemaOr(_, let m), .object(let o)): w.message(n) { $0.message(1) { encode(o, m, into: &$0) } }
        case (.schemaOr(.schemas, let m), .array(let items)):
            w.message(n) { x in for case .object(let o) in items { x.message(2) { encode(o, m, into: &$0) } } }
        case (.schemaOr(.strings, _), .array(let items)):
            w.message(n) { x in for case .string(let s) in items { x.string(2, s) } }
        default: return
        }
    }

    /// Where `j` (an object or list of a kind with a message) holds what its protobuf form cannot carry:
    /// fields the schema lacks and values of the wrong JSON type, as paths (`spec.containers[0].x`).
    static func unencodable(_ j: JSON) -> [String] {
        guard case .object(let o) = j, let kind = o["kind"]?.string, let apiVersion = o["apiVersion"]?.string else {
            return ["(no kind)"]
        }
        var problems: [String] = []
        var top = o
        top["kind"] = nil; top["apiVersion"] = nil
        if let message = rootMessage(apiVersion: apiVersion, kind: kind) {
            check(top, message, "", &problems)
        } else if kind.hasSuffix("List"), let item = rootMessage(apiVersion: apiVersion, kind: String(kind.dropLast(4)))
        {
            if case .object(let meta)? = o["metadata"] { check(meta, "ListMeta", "metadata", &problems) }
            for (i, element) in (o["items"]?.array ?? []).enumerated() {
                guard case .object(let e) = element else { problems.append("items[\(i)]"); continue }
                check(e, item, "items[\(i)]", &problems)
            }
        } else {
            return ["\(apiVersion) \(kind): no message"]
        }
        return problems
    }

    /// The JSON names a message's object holds, its inline messages' included.
    static func jsonNames(_ message: String) -> Set<String> {
        var names: Set<String> = []
        for f in schema[message]?.values.map({ $0 }) ?? [] {
            if let n = f.name {
                names.insert(n)
            } else if case .message(let inner) = f.type {
                names.formUnion(jsonNames(inner))
            }
        }
        return names
    }

    static func check(_ o: [String: JSON], _ message: String, _ path: String, _ problems: inout [String]) {
        let at = { (name: String) in path.isEmpty ? name : "\(path).\(name)" }
        // TypeMeta (apiVersion, kind) has no protobuf field: an envelope or list carries it, and an object
        // embedded in another (a StatefulSet's claim templates) goes without, as in Go.
        let known = jsonNames(message).union(["apiVersion", "kind"])
        for key in o.keys.sorted() where !known.contains(key) && o[key] != .null {
            problems.append(at(key))
        }
        for f in schema[message]?.values.map({ $0 }) ?? [] {
            guard let name = f.name else {
                if case .message(let inner) = f.type {
                    check(o.filter { jsonNames(inner).contains($0.key) }, inner, path, &problems)
                }
                continue
            }
            guard let v = o[name], v != .null else { continue }
            switch f.type {
            case .list(let element):
                guard let items = v.array else { problems.append(at(name)); continue }
                for (i, item) in items.enumerated() { checkSingle(item, element, "\(at(name))[\(i)]", &problems) }
            case .map(let valueType):
                guard case .object(let entries) = v else { problems.append(at(name)); continue }
                for (k, value) in entries where value != .null {
                    if case .list(let element) = valueType {
                        for (i, item) in (value.array ?? []).enumerated() {
                            checkSingle(item, element, "\(at(name))[\(k)][\(i)]", &problems)
                        }
                    } else {
                        checkSingle(value, valueType, "\(at(name))[\(k)]", &problems)
                    }
                }
            default: checkSingle(v, f.type, at(name), &problems)
            }
        }
    }

    static func checkSingle(_ v: JSON, _ type: FieldType, _ path: String, _ problems: inout [String]) {
        switch (type, v) {
        case (.string, .string), (.bool, .bool), (.double, .number), (.intOrString, .string), (.rawJSON, _),
            (.quantity, .string), (.quantity, .number):
            return
        case (.int, .number(let text)), (.intOrString, .number(let text)):
            if Int64(text) == nil { problems.append(path) }
        case (.bytes, .string(let s)):
            if Data(base64Encoded: s) == nil { problems.append(path) }
        case (.duration, .string(let s)):
            if MetaV1.Duration(s) == nil { problems.append(path) }
        case (.time, .string(let s)), (.microTime, .string(let s)):
            if APITime.parse(s) == nil { problems.append(path) }
        case (.message(let m), .object(let o)), (.schemaOr(_, let m), .object(let o)): check(o, m, path, &problems)
        case (.schemaOr(.bool, _), .bool): return
        case (.schemaOr(.schemas, let m), .array(let items)):
            for (i, item) in items.enumerated() { checkSingle(item, .message(m), "\(path)[\(i)]", &problems) }
        case (.schemaOr(.strings, _), .array(let items)):
            for (i, item) in items.enumerated() { checkSingle(item, .string, "\(path)[\(i)]", &problems) }
        default: problems.append(path)
        }
    }

    // MARK: wire format

    /// Appends fields to a message's bytes. A nested message is written to its own writer and then
    /// length-prefixed: Kubernetes' objects are small enough that the copy costs less than sizing first.
    struct Writer {
        var out: [UInt8] = []

        mutating func rawVarint(_ value: UInt64) {
            var v = value
            while v >= 0x80 {
                out.append(UInt8(v & 0x7f) | 0x80)
                v >>= 7
            }
            out.append(UInt8(v))
        }
        mutating func tag(_ n: Int, _ wire: UInt64) { rawVarint(UInt64(n) << 3 | wire) }
        mutating func varint(_ n: Int, _ v: UInt64) {
            tag(n, 0)
            rawVarint(v)
        }
        mutating func bytes(_ n: Int, _ b: [UInt8]) {
            tag(n, 2)
            rawVarint(UInt64(b.count))
            out.append(contentsOf: b)
        }
        mutating func string(_ n: Int, _ s: String) { bytes(n, Array(s.utf8)) }
        mutating func message(_ n: Int, _ body: (inout Writer) -> Void) {
            var inner = Writer()
            body(&inner)
            bytes(n, inner.out)
        }
    }
}

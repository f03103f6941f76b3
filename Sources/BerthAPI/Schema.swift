import BerthKube
import Foundation

/// The served types' JSON shapes, read from the generated table in SchemaDefinitions.swift (facts of
/// k8s.io/api's Go types): drives the type checks of request bodies (400 on a wrong type, an
/// out-of-range integer, a bad time or quantity, as Go's decoder gives), strict field validation for
/// kinds without a generated model, strategic merge patch's list keys, and the OpenAPI documents.
indirect enum Schema: Sendable {
    case string, bool, number, intOrString, quantity, time, bytes, any
    /// An integer of this many bits (32 or 64), range-checked as Go's decoder does.
    case int(bits: Int)
    /// An object with no declared fields: any fields allowed.
    case freeform
    case map(Schema)
    case array(Schema, mergeKey: String? = nil, strategy: String? = nil)
    case object(String, [String: Schema])
    /// A named struct, by its OpenAPI definition name (resolved lazily: the types are recursive).
    case ref(String)

    static func def(_ name: String) -> Schema { definitions[name] ?? .freeform }

    /// Every generated struct by OpenAPI definition name (`io.k8s.api.core.v1.Pod`).
    static let definitions: [String: Schema] = table.definitions

    /// The OpenAPI name of a short table name: `core.v1.Pod` → `io.k8s.api.core.v1.Pod`,
    /// `meta.v1.ObjectMeta` → `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`.
    static func openAPIName(_ short: Substring) -> String {
        short.hasPrefix("meta.") ? "io.k8s.apimachinery.pkg.apis." + short : "io.k8s.api." + short
    }

    /// A `+default=` marker of k8s.io/api (`=value` in the table; `*=value` on a pointer field).
    /// `emptyIsUnset`: a string field (Go's defaulter tests `== ""`); a pointer's only when absent.
    typealias DeclaredDefault = (field: String, value: JSON, emptyIsUnset: Bool)

    /// The `+default=` markers by OpenAPI struct name: what Go's generated defaulters set when a request
    /// leaves the field unset (an RBD volume's pool "rbd", an Azure disk's caching mode "ReadWrite", a
    /// gRPC probe's service ""). Read from the same table, in the same pass, as `definitions`.
    static let declaredDefaults: [String: [DeclaredDefault]] = table.defaults

    private static let table = parse(definitionsText + "\n" + customResourceDefinitionText + "\n" + eventsV1Text)

    /// Reads the table: a line per struct (continuation lines start with spaces), `json:type` per field,
    /// with its declared default if it has one.
    static func parse(_ text: String) -> (definitions: [String: Schema], defaults: [String: [DeclaredDefault]]) {
        var structs: [(name: String, fields: [Substring])] = []
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let first = words.first else { continue }
            if line.hasPrefix(" "), !structs.isEmpty {
                structs[structs.count - 1].fields += words
            } else {
                structs.append((openAPIName(first), Array(words.dropFirst())))
            }
        }
        var out: [String: Schema] = [:]
        var defaults: [String: [DeclaredDefault]] = [:]
        for (name, fields) in structs {
            var props: [String: Schema] = [:]
            for field in fields {
                guard let colon = field.firstIndex(of: ":") else { continue }
                let jsonName = String(field[..<colon])
                var code = field[field.index(after: colon)...]
                if let mark = code.firstIndex(where: { $0 == "=" || $0 == "*" }) {
                    if let equals = code[mark...].firstIndex(of: "="),
                        let value = try? JSONParser.parse(Array(code[code.index(after: equals)...].utf8))
                    {
                        defaults[name, default: []].append((jsonName, value, code[mark] != "*"))
                    }
                    code = code[..<mark]
                }
                props[jsonName] = type(code)
            }
            out[name] = .object(name, props)
        }
        return (out, defaults)
    }

    /// One field's type code (see SchemaDefinitions.swift), with a list's `!key` and `~strategy`.
    /// A struct's `~retainKeys` needs nothing here: the `$retainKeys` directive a client sends says it all.
    private static func type(_ code: Substring) -> Schema {
        var rest = code
        var strategy: String?
        var key: String?
        if let tilde = rest.firstIndex(of: "~") {
            strategy = String(rest[rest.index(after: tilde)...])
            rest = rest[..<tilde]
        }
        if let bang = rest.firstIndex(of: "!") {
            key = String(rest[rest.index(after: bang)...])
            rest = rest[..<bang]
        }
        switch rest.first {
        case "[": return .array(element(rest.dropFirst()), mergeKey: key, strategy: strategy)
        default: return element(rest)
        }
    }

    private static func element(_ code: Substring) -> Schema {
        switch code.first {
        case "[": return .array(element(code.dropFirst()))
        case "{": return .map(element(code.dropFirst()))
        case "@": return .ref(openAPIName(code.dropFirst()))
        case "s": return .string
        case "i": return .int(bits: 32)
        case "l": return .int(bits: 64)
        case "b": return .bool
        case "n": return .number
        case "y": return .bytes
        case "t": return .time
        case "d": return .string
        case "q": return .quantity
        case "o": return .intOrString
        case "a": return .any
        default: return .freeform
        }
    }

    /// The OpenAPI definition name of a served kind; custom kinds (no generated struct) get Berth's own.
    static func definitionName(_ r: ResourceType) -> String {
        let group = r.group.isEmpty ? "core" : String(r.group.split(separator: ".").first ?? "")
        let name = "io.k8s.api.\(group).\(r.version).\(r.kind)"
        return definitions[name] == nil ? "io.berth.\(r.kind)" : name
    }

    /// The schema of a served kind's objects (free-form beyond apiVersion/kind/metadata when no struct).
    static func top(_ r: ResourceType) -> Schema {
        if case .object(let name, let fields)? = definitions[definitionName(r)] { return .object(name, fields) }
        return .object(
            definitionName(r),
            ["apiVersion": .string, "kind": .string, "metadata": .ref(openAPIName("meta.v1.ObjectMeta"))])
    }

    /// A struct reference replaced by the struct.
    var resolved: Schema {
        if case .ref(let name) = self { return Self.def(name) }
        return self
    }

    /// The schema of an object's member (or of a map's values); nil when undeclared.
    func member(_ name: String) -> Schema? {
        switch resolved {
        case .object(_, let props): return props[name]?.resolved
        case .map(let inner): return inner.resolved
        default: return nil
        }
    }

    /// Type errors always fail (400, like Go's decoder); unknown fields only when strict.
    static func check(_ obj: JSON, _ r: ResourceType, strict: Bool) throws {
        var unknown: [String] = []
        try walk(obj, top(r), path: "", strict: strict, unknown: &unknown, goType: r.kind)
        if !unknown.isEmpty {
            throw APIError.badRequest(
                "strict decoding error: " + unknown.map { "unknown field \"\($0)\"" }.joined(separator: ", "))
        }
    }

    /// What kube-apiserver's decoding into the Go types does to a request's object beyond type checks:
    /// quantities written back canonical (`0.5` → `500m`, `1024Mi` → `1Gi`, a bare number → a string),
    /// and the declared `+default=` markers set where the object leaves them unset. What it stores, and
    /// `kubectl get -o yaml` then shows.
    static func normalize(_ obj: inout JSON, _ r: ResourceType) {
        if let changed = normalized(obj, top(r)) { obj = changed }
    }

    /// The value normalized, or nil when it has nothing to change (most objects: the walk then
    /// allocates nothing).
    private static func normalized(_ v: JSON, _ s: Schema) -> JSON? {
        switch s {
        case .quantity:
            let text: String
            switch v {
            case .string(let t), .number(let t): text = t
            default: return nil
            }
            guard let canonical = Quantity.canonical(text) else { return nil }
            if case .string = v, text == canonical { return nil }
            return .string(canonical)
        case .ref(let name):
            return normalized(v, def(name))
        case .map, .object:
            guard case .object(let members) = v else { return nil }
            var changed: [String: JSON]?
            if case .object(let name, _) = s, let defaults = declaredDefaults[name] {
                for (field, value, emptyIsUnset) in defaults {
                    switch members[field] {
                    case nil, .null?: break
                    case .string("")? where emptyIsUnset && value != .string(""): break
                    default: continue
                    }
                    if changed == nil { changed = members }
                    changed?[field] = value
                }
            }
            for (key, member) in members {
                let inner: Schema?
                if case .map(let m) = s {
                    inner = m
                } else if case .object(_, let props) = s {
                    inner = props[key]
                } else {
                    inner = nil
                }
                guard let inner, let c = normalized(member, inner) else { continue }
                if changed == nil { changed = members }
                changed?[key] = c
            }
            return changed.map(JSON.object)
        case .array(let inner, _, _):
            guard case .array(let elements) = v else { return nil }
            var changed: [JSON]?
            for (i, element) in elements.enumerated() {
                guard let c = normalized(element, inner) else { continue }
                if changed == nil { changed = elements }
                changed?[i] = c
            }
            return changed.map(JSON.array)
        default:
            return nil
        }
    }

    /// Go's JSON error names the innermost struct and the dotted path of JSON names from the root.
    private static func walk(
        _ v: JSON, _ s: Schema, path: String, strict: Bool, unknown: inout [String], goType: String
    ) throws {
        if v == .null { return }
        func typeError(_ want: String) -> APIError {
            APIError.badRequest(
                "json: cannot unmarshal \(v.typeName) into Go struct field \(goType).\(Self.goPath(path)) of type \(want)"
            )
        }
        switch s {
        case .any: return
        case .freeform: if v.object == nil { throw typeError("object") }
        case .string: if v.string == nil { throw typeError("string") }
        case .int(let bits):
            // A fraction, or an integer beyond 64 bits, is a number that is not an int: Go names its value.
            let value = v.int.map { String($0) } ?? v.double.map { String($0) }
            guard let value else { throw typeError("int\(bits)") }
            if let n = v.int, bits == 64 || Int32(exactly: n) != nil { return }
            throw APIError.badRequest(
                "json: cannot unmarshal number \(value) into Go struct field \(goType).\(Self.goPath(path)) of type int\(bits)"
            )
        case .number: if v.double == nil { throw typeError("float64") }
        case .bool: if v.bool == nil { throw typeError("bool") }
        case .intOrString: if v.int == nil && v.string == nil { throw typeError("intstr.IntOrString") }
        case .bytes:
            guard let text = v.string else { throw typeError("[]uint8") }
            if Data(base64Encoded: text) == nil {
                throw APIError.badRequest("illegal base64 data in field \(Self.goPath(path))")
            }
        case .time:
            guard let text = v.string else { throw typeError("string") }
            if !text.isEmpty, APITime.parse(text) == nil {
                throw APIError.badRequest(
                    "parsing time \"\(text)\" as \"2006-01-02T15:04:05Z07:00\" (field \(Self.goPath(path))): not RFC 3339"
                )
            }
        case .quantity:
            let text = v.string ?? v.int.map { String($0) } ?? v.double.map { String($0) }
            guard let text, Self.isQuantity(text) else {
                throw APIError.badRequest(
                    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (field \(Self.goPath(path)))"
                )
            }
        case .map(let inner):
            guard let o = v.object else { throw typeError("map[string]" + goName(inner)) }
            for (k, x) in o {
                try walk(x, inner, path: path + "." + k, strict: strict, unknown: &unknown, goType: goType)
            }
        case .array(let inner, _, _):
            guard let a = v.array else { throw typeError("[]" + goName(inner)) }
            for (i, x) in a.enumerated() {
                try walk(x, inner, path: path + "[\(i)]", strict: strict, unknown: &unknown, goType: goType)
            }
        case .object(let name, let props):
            guard let o = v.object else { throw typeError(goName(s)) }
            let structName = String(name.split(separator: ".").last ?? Substring(name))
            for (k, x) in o {
                let p = path.isEmpty ? k : path + "." + k
                guard let ps = props[k] else {
                    if strict { unknown.append(p) }
                    continue
                }
                try walk(x, ps, path: p, strict: strict, unknown: &unknown, goType: structName)
            }
        case .ref(let n): try walk(v, def(n), path: path, strict: strict, unknown: &unknown, goType: goType)
        }
    }

    /// Go's form of a field path: JSON names joined by dots, list indices left out.
    private static func goPath(_ path: String) -> String {
        var out = ""
        var inIndex = false
        for c in path {
            if c == "[" { inIndex = true } else if c == "]" { inIndex = false } else if !inIndex { out.append(c) }
        }
        return out
    }

    private static func goName(_ s: Schema) -> String {
        switch s {
        case .string, .time: return "string"
        case .int(let bits): return "int\(bits)"
        case .bool: return "bool"
        case .number: return "float64"
        case .bytes: return "[]uint8"
        case .intOrString: return "intstr.IntOrString"
        case .quantity: return "resource.Quantity"
        case .any, .freeform: return "interface {}"
        case .map(let inner): return "map[string]" + goName(inner)
        case .array(let inner, _, _): return "[]" + goName(inner)
        case .object(let name, _): return "v1." + (name.split(separator: ".").last.map(String.init) ?? name)
        case .ref(let n): return "v1." + (n.split(separator: ".").last.map(String.init) ?? n)
        }
    }

    /// resource.Quantity's grammar: a signed decimal, then an SI or binary suffix or an exponent.
    static func isQuantity(_ text: String) -> Bool {
        var s = Substring(text.trimmingCharacters(in: .whitespaces))
        if s.first == "+" || s.first == "-" { s = s.dropFirst() }
        let digits = s.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard !digits.isEmpty, digits.filter({ $0 == "." }).count <= 1, digits != "." else { return false }
        let suffix = String(s.dropFirst(digits.count))
        let allowed = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"]
        if allowed.contains(suffix) { return true }
        guard let e = suffix.first, e == "e" || e == "E" else { return false }
        var exponent = suffix.dropFirst()
        if exponent.first == "+" || exponent.first == "-" { exponent = exponent.dropFirst() }
        return !exponent.isEmpty && exponent.allSatisfy { $0.isASCII && $0.isNumber }
    }
}

import Foundation
import Yams

/// A JSON value: API objects are kept as trees so every kind (and unknown fields) round-trips unchanged.
public enum JSON: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public subscript(key: String) -> JSON {
        get { if case .object(let o) = self { return o[key] ?? .null }; return .null }
        set {
            if case .object(var o) = self {
                if newValue == .null { o.removeValue(forKey: key) } else { o[key] = newValue }
                self = .object(o)
            } else if newValue != .null {
                self = .object([key: newValue])
            }
        }
    }
    public subscript(index: Int) -> JSON {
        if case .array(let a) = self, index >= 0, index < a.count { return a[index] }
        return .null
    }
    /// Value at a path of keys (missing → .null).
    public subscript(path: [String]) -> JSON {
        get { path.reduce(self) { $0[$1] } }
        set {
            guard let first = path.first else { self = newValue; return }
            var child = self[first]
            child[Array(path.dropFirst())] = newValue
            self[first] = child
        }
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var int: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e18: return Int64(d)
        default: return nil
        }
    }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var object: [String: JSON]? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { self == .null }
    /// Map of strings (labels, annotations, data).
    public var stringMap: [String: String] {
        var out: [String: String] = [:]
        for (k, v) in object ?? [:] { if let s = v.string { out[k] = s } }
        return out
    }
    public static func strings(_ m: [String: String]) -> JSON { .object(m.mapValues { .string($0) }) }
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int, .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// Why a body could not be read.
public struct JSONParseError: Error, CustomStringConvertible {
    public var description: String
}

// MARK: parsing

extension JSON {
    /// Parses JSON text (RFC 8259). Duplicate keys: last wins.
    public static func parse(_ bytes: [UInt8]) throws -> JSON {
        var p = Parser(bytes: bytes)
        p.skipWS()
        let v = try p.value(depth: 0)
        p.skipWS()
        if p.i != bytes.count { throw p.error("unexpected trailing data") }
        return v
    }
    public static func parse(_ s: String) throws -> JSON { try parse(Array(s.utf8)) }

    /// Parses YAML (or JSON, a YAML subset) into a JSON tree.
    public static func parseYAML(_ text: String) throws -> JSON {
        do {
            guard let node = try Yams.compose(yaml: text) else { return .null }
            // Aliases share their anchor's node, so a few hundred bytes can stand for billions of values
            // ("billion laughs"); the tree is capped as go-yaml caps it for kube-apiserver.
            var budget = max(400_000, 4 * text.utf8.count)
            return try fromYAML(node, budget: &budget, depth: 0)
        } catch let e as JSONParseError { throw e } catch {
            throw JSONParseError(description: "yaml: \(error)")
        }
    }
    private static func fromYAML(_ node: Node, budget: inout Int, depth: Int) throws -> JSON {
        budget -= 1
        guard budget >= 0 else { throw JSONParseError(description: "yaml: document contains excessive aliasing") }
        guard depth < 200 else { throw JSONParseError(description: "yaml: exceeded max depth of 200") }
        switch node {
        case .scalar(let s):
            if s.style == .plain {
                switch s.string {
                case "null", "Null", "NULL", "~", "": return .null
                case "true", "True", "TRUE": return .bool(true)
                case "false", "False", "FALSE": return .bool(false)
                default:
                    if let i = Int64(s.string) { return .int(i) }
                    if let d = Double(s.string), s.string.first.map({ $0.isNumber || $0 == "-" || $0 == "." }) == true {
                        return .double(d)
                    }
                }
            }
            return .string(s.string)
        case .mapping(let m):
            var o: [String: JSON] = [:]
            // `<<: *defaults` (YAML's merge key, as go-yaml reads it): the merged mappings' keys apply
            // unless the mapping sets them itself, wherever the `<<` stands.
            var merged: [String: JSON] = [:]
            for (k, v) in m {
                guard case .scalar(let ks) = k else { throw JSONParseError(description: "yaml: non-scalar key") }
                let value = try fromYAML(v, budget: &budget, depth: depth + 1)
                if ks.string == "<<" && ks.style == .plain {
                    let sources = value.array ?? [value]
                    for source in sources.reversed() {
                        guard let fields = source.object else {
                            throw JSONParseError(description: "yaml: map merge requires map or sequence of maps as the value")
                        }
                        merged.merge(fields) { _, new in new }
                    }
                    continue
                }
                o[ks.string] = value
            }
            if !merged.isEmpty { o.merge(merged) { own, _ in own } }
            return .object(o)
        case .sequence(let seq):
            var items: [JSON] = []
            items.reserveCapacity(seq.count)
            for item in seq { items.append(try fromYAML(item, budget: &budget, depth: depth + 1)) }
            return .array(items)
        case .alias:
            throw JSONParseError(description: "yaml: aliases are not supported")
        }
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0
        func error(_ m: String) -> JSONParseError { JSONParseError(description: "\(m) at offset \(i)") }
        mutating func skipWS() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d || bytes[i] == 0x09 { i += 1 }
        }
        mutating func value(depth: Int) throws -> JSON {
            guard depth < 200 else { throw error("nesting too deep") }
            guard i < bytes.count else { throw error("unexpected end of JSON input") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1; skipWS()
                var o: [String: JSON] = [:]
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                while true {
                    skipWS()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected object key") }
                    let k = try string()
                    skipWS()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                    i += 1; skipWS()
                    o[k] = try value(depth: depth + 1)
                    skipWS()
                    guard i < bytes.count else { throw error("unexpected end of JSON input") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                    throw error("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1; skipWS()
                var a: [JSON] = []
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                while true {
                    skipWS()
                    a.append(try value(depth: depth + 1))
                    skipWS()
                    guard i < bytes.count else { throw error("unexpected end of JSON input") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                    throw error("expected ',' or ']'")
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return try number()
            }
        }
        mutating func literal(_ s: String) throws {
            let u = Array(s.utf8)
            guard i + u.count <= bytes.count, Array(bytes[i..<i + u.count]) == u else { throw error("invalid character") }
            i += u.count
        }
        mutating func number() throws -> JSON {
            let start = i
            var isDouble = false
            while i < bytes.count {
                let c = bytes[i]
                if (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") { i += 1 }
                else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { isDouble = true; i += 1 }
                else { break }
            }
            let s = String(decoding: bytes[start..<i], as: UTF8.self)
            if s.isEmpty { throw error("invalid character '\(Character(UnicodeScalar(bytes[start])))' looking for beginning of value") }
            if !isDouble, let v = Int64(s) { return .int(v) }
            if let d = Double(s) { return .double(d) }
            throw error("invalid number \(s)")
        }
        mutating func string() throws -> String {
            i += 1
            // Most strings have no escapes: find the closing quote and make the String from the bytes.
            let start = i
            var j = i
            while j < bytes.count {
                let c = bytes[j]
                if c == UInt8(ascii: "\"") {
                    i = j + 1
                    return bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[start..<j]), as: UTF8.self) }
                }
                if c == UInt8(ascii: "\\") { break }
                j += 1
            }
            var out: [UInt8] = Array(bytes[start..<j])
            i = j
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { i += 1; return String(decoding: out, as: UTF8.self) }
                if c == UInt8(ascii: "\\") {
                    i += 1
                    guard i < bytes.count else { break }
                    switch bytes[i] {
                    case UInt8(ascii: "n"): out.append(0x0a)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0d)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0c)
                    case UInt8(ascii: "u"):
                        guard i + 4 < bytes.count, var code = UInt32(String(decoding: bytes[i + 1...i + 4], as: UTF8.self), radix: 16)
                        else { throw error("invalid \\u escape") }
                        i += 4
                        // A high surrogate joins only a following low one (\uDC00–\uDFFF); anything else leaves
                        // it unpaired, which becomes U+FFFD as in Go's decoder.
                        if code >= 0xD800 && code < 0xDC00, i + 6 < bytes.count, bytes[i + 1] == UInt8(ascii: "\\"),
                           bytes[i + 2] == UInt8(ascii: "u"),
                           let low = UInt32(String(decoding: bytes[i + 3...i + 6], as: UTF8.self), radix: 16),
                           low >= 0xDC00 && low < 0xE000 {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            i += 6
                        }
                        out.append(contentsOf: Array(String(UnicodeScalar(code).map(Character.init) ?? "\u{FFFD}").utf8))
                    default: out.append(bytes[i])
                    }
                    i += 1
                    continue
                }
                out.append(c)
                i += 1
            }
            throw error("unexpected end of JSON input")
        }
    }
}

// MARK: serialization

extension JSON {
    /// Compact JSON with sorted keys.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(&out)
        return out
    }
    public var text: String { String(decoding: serialized(), as: UTF8.self) }

    private func write(_ out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): Self.writeInt(i, &out)
        case .double(let d):
            if d == d.rounded() && abs(d) < 1e15 { Self.writeInt(Int64(d), &out) }
            else { out.append(contentsOf: "\(d)".utf8) }
        case .string(let s): Self.writeString(s, &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            var first = true
            for v in a {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                v.write(&out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            // Sorted by key (stable output); the pairs are sorted together so no value is looked up again.
            var first = true
            for (k, v) in o.sorted(by: { $0.key < $1.key }) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                Self.writeString(k, &out)
                out.append(UInt8(ascii: ":"))
                v.write(&out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }
    private static func writeInt(_ i: Int64, _ out: inout [UInt8]) {
        if i >= 0 && i < 10 { out.append(UInt8(ascii: "0") + UInt8(i)); return }
        if i == .min { out.append(contentsOf: String(i).utf8); return }
        var v = i.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for Int64's 19 digits, written backwards
        var n = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            while v > 0 { n += 1; buf[24 - n] = UInt8(ascii: "0") + UInt8(v % 10); v /= 10 }
            if i < 0 { out.append(UInt8(ascii: "-")) }
            out.append(contentsOf: buf[(24 - n)..<24])
        }
    }
    private static let hex = Array("0123456789abcdef".utf8)
    /// Runs of bytes that need no escaping (nearly all of an API object) are copied whole.
    private static func writeString(_ s: String, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var str = s
        str.withUTF8 { u in
            var runStart = 0
            for (i, c) in u.enumerated() where c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 {
                if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: u[runStart..<i])) }
                runStart = i + 1
                switch c {
                case UInt8(ascii: "\""): out.append(contentsOf: [0x5c, 0x22])
                case UInt8(ascii: "\\"): out.append(contentsOf: [0x5c, 0x5c])
                case 0x0a: out.append(contentsOf: [0x5c, UInt8(ascii: "n")])
                case 0x0d: out.append(contentsOf: [0x5c, UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [0x5c, UInt8(ascii: "t")])
                default: out.append(contentsOf: [0x5c, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)]])
                }
            }
            if runStart < u.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: u[runStart...])) }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// YAML text (for `Accept: application/yaml`).
    public func yaml() -> String {
        (try? Yams.serialize(node: yamlNode(), sortKeys: true)) ?? text
    }
    private func yamlNode() -> Node {
        switch self {
        case .null: return Node("null", Tag(.null))
        case .bool(let b): return Node(b ? "true" : "false", Tag(.bool))
        case .int(let i): return Node(String(i), Tag(.int))
        case .double(let d): return Node("\(d)", Tag(.float))
        case .string(let s): return Node(s, Tag(.str), .doubleQuoted)
        case .array(let a): return .sequence(Node.Sequence(a.map { $0.yamlNode() }))
        case .object(let o):
            return .mapping(Node.Mapping(o.keys.sorted().map { (Node($0), o[$0]!.yamlNode()) }))
        }
    }
}

/// Just enough JSON to read the few fields of a container record the resolver needs, without
/// Foundation (its JSONDecoder would more than double the monitor's resident size). A small
/// recursive-descent parser into a tree; nesting deeper than 64 and any malformed input give nil.
/// (The step towards DESIGN.md's one Foundation-free BerthJSON; replace this file with it then.)
enum RecordJSON: Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([RecordJSON])
    case object([String: RecordJSON])

    subscript(key: String) -> RecordJSON? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    var string: String? { if case .string(let s) = self { return s }; return nil }
    var array: [RecordJSON]? { if case .array(let a) = self { return a }; return nil }
    var strings: [String]? { array?.compactMap(\.string) }

    static func parse(_ bytes: [UInt8]) -> RecordJSON? {
        var parser = Parser(bytes: bytes)
        guard let value = parser.value(depth: 0) else { return nil }
        parser.skipSpace()
        return parser.offset == bytes.count ? value : nil
    }

    private struct Parser {
        let bytes: [UInt8]
        var offset = 0

        mutating func skipSpace() {
            while offset < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[offset]) { offset += 1 }
        }

        mutating func value(depth: Int) -> RecordJSON? {
            guard depth < 64 else { return nil }
            skipSpace()
            guard offset < bytes.count else { return nil }
            switch bytes[offset] {
            case UInt8(ascii: "{"):
                offset += 1
                var members: [String: RecordJSON] = [:]
                skipSpace()
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") { offset += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard let key = string() else { return nil }
                    skipSpace()
                    guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { return nil }
                    offset += 1
                    guard let member = value(depth: depth + 1) else { return nil }
                    members[key] = member
                    skipSpace()
                    guard offset < bytes.count else { return nil }
                    if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
                    guard bytes[offset] == UInt8(ascii: "}") else { return nil }
                    offset += 1
                    return .object(members)
                }
            case UInt8(ascii: "["):
                offset += 1
                var elements: [RecordJSON] = []
                skipSpace()
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") { offset += 1; return .array(elements) }
                while true {
                    guard let element = value(depth: depth + 1) else { return nil }
                    elements.append(element)
                    skipSpace()
                    guard offset < bytes.count else { return nil }
                    if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
                    guard bytes[offset] == UInt8(ascii: "]") else { return nil }
                    offset += 1
                    return .array(elements)
                }
            case UInt8(ascii: "\""):
                return string().map { .string($0) }
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default:
                let start = offset
                while offset < bytes.count, "+-.eE0123456789".utf8.contains(bytes[offset]) { offset += 1 }
                guard offset > start, let number = Double(String(decoding: bytes[start..<offset], as: UTF8.self)) else { return nil }
                return .number(number)
            }
        }

        mutating func literal(_ word: String, _ result: RecordJSON) -> RecordJSON? {
            let utf8 = Array(word.utf8)
            guard offset + utf8.count <= bytes.count, Array(bytes[offset..<(offset + utf8.count)]) == utf8 else { return nil }
            offset += utf8.count
            return result
        }

        mutating func string() -> String? {
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { return nil }
            offset += 1
            var out: [UInt8] = []
            while offset < bytes.count {
                let byte = bytes[offset]
                offset += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard offset < bytes.count else { return nil }
                    let escape = bytes[offset]
                    offset += 1
                    switch escape {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard offset + 4 <= bytes.count,
                              let unit = UInt32(String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self), radix: 16) else { return nil }
                        offset += 4
                        // Names the resolver compares are ASCII; anything else (surrogates included) is
                        // kept as U+FFFD rather than decoded exactly.
                        let scalar = Unicode.Scalar(unit) ?? "\u{FFFD}"
                        out += Array(String(Character(scalar)).utf8)
                    default: out.append(escape)
                    }
                default:
                    out.append(byte)
                }
            }
            return nil
        }
    }
}

/// JSON text of a ``JSON`` tree, the one writer of every layer: object keys sorted (by Unicode scalars,
/// which for NFC keys is their UTF-8 bytes' order, as Go and JSONEncoder's `.sortedKeys` sort them),
/// numbers as their text, `/` and non-ASCII not escaped; `"`, `\`, `\n`, `\r`, `\t` escaped by letter and
/// other control characters as `\u00XX` (the bytes the API server has always written).
public enum JSONWriter {
    public static func write(_ value: JSON, pretty: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        if pretty { writePretty(value, into: &out, indent: 0) } else { write(value, into: &out) }
        return out
    }

    /// Compact text of `value` appended to `out`.
    public static func write(_ value: JSON, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): if b { out.append(contentsOf: "true".utf8) } else { out.append(contentsOf: "false".utf8) }
        case .number(var text): text.withUTF8 { out.append(contentsOf: $0) }
        case .string(let s): string(s, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                write(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // The pairs are sorted together, so no value is looked up again.
            var first = true
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                string(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(member, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Two-space indentation and `"key": value`.
    static func writePretty(_ value: JSON, into out: inout [UInt8], indent: Int) {
        switch value {
        case .array(let elements) where !elements.isEmpty:
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, indent + 1)
                writePretty(element, into: &out, indent: indent + 1)
            }
            newline(&out, indent)
            out.append(UInt8(ascii: "]"))
        case .object(let members) where !members.isEmpty:
            out.append(UInt8(ascii: "{"))
            for (i, (key, member)) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, indent + 1)
                string(key, into: &out)
                out.append(contentsOf: ": ".utf8)
                writePretty(member, into: &out, indent: indent + 1)
            }
            newline(&out, indent)
            out.append(UInt8(ascii: "}"))
        default:
            write(value, into: &out)
        }
    }

    private static func newline(_ out: inout [UInt8], _ indent: Int) {
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// A JSON string. Runs of bytes that need no escaping (nearly all of an API object) are copied whole.
    public static func string(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            var runStart = 0
            for i in utf8.indices {
                let c = utf8[i]
                guard c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 else { continue }
                if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
                runStart = i + 1
                switch c {
                case UInt8(ascii: "\""): out.append(0x5C); out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C); out.append(0x5C)
                case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
                case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
                default:
                    out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)]])
                }
            }
            if runStart < utf8.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSON {
    /// Compact JSON text with sorted keys.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        JSONWriter.write(self, into: &out)
        return out
    }

    /// ``serialized()`` as a String.
    public var text: String { String(decoding: serialized(), as: UTF8.self) }
}

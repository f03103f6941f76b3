/// A parsed JSON document, for ``JSONTreeDecoder``.
///
/// The runtime decodes config.json in two fresh processes per container (itself and the init), where
/// Foundation's JSONDecoder costs ~0.6 ms of one-time set-up and about twice the type-metadata work per
/// Codable type of a plain tree decoder — more than the parsing itself. Numbers keep their text so each
/// is converted exactly to the integer or floating type asked for.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// What a decoding error calls this value.
    public var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension JSONValue {
    /// 3 and 3.0 read as an integer, 3.5 and out-of-range numbers do not: Codable's rule, used by
    /// ``JSONTreeDecoder`` and by the fields read by hand.
    public static func exactInteger<T: FixedWidthInteger>(_ text: String, as type: T.Type) -> T? {
        if let exact = T(text) { return exact }
        if let double = Double(text), double.rounded() == double { return T(exactly: double) }
        return nil
    }
}

/// Fields read by hand (LaunchEssentials, InitRequest), without Codable's per-type set-up. The
/// `optional…` forms give `.some(nil)` for a field that is absent or null and nil for one of another
/// type, so a reader can tell "not given" from "wrong".
extension Optional where Wrapped == JSONValue {
    public var string: String? {
        if case .string(let text)? = self { return text }
        return nil
    }

    public func integer<T: FixedWidthInteger>(_ type: T.Type) -> T? {
        guard case .number(let text)? = self else { return nil }
        return JSONValue.exactInteger(text, as: type)
    }

    public var optionalString: String?? {
        switch self {
        case nil, .null?: return .some(nil)
        case .string(let text)?: return .some(text)
        default: return nil
        }
    }

    public var optionalBool: Bool?? {
        switch self {
        case nil, .null?: return .some(nil)
        case .bool(let value)?: return .some(value)
        default: return nil
        }
    }

    public var optionalObject: [String: JSONValue]?? {
        switch self {
        case nil, .null?: return .some(nil)
        case .object(let members)?: return .some(members)
        default: return nil
        }
    }

    public var optionalArray: [JSONValue]?? {
        switch self {
        case nil, .null?: return .some(nil)
        case .array(let elements)?: return .some(elements)
        default: return nil
        }
    }

    public func optionalInteger<T: FixedWidthInteger>(_ type: T.Type) -> T?? {
        switch self {
        case nil, .null?: return .some(nil)
        case .number?: return integer(type).map { .some($0) } ?? nil
        default: return nil
        }
    }
}

/// RFC 8259 JSON, strictly: one value, no trailing commas or comments, no control characters in
/// strings; nesting is limited so hostile input cannot exhaust the stack.
public struct JSONParser {
    public struct Failure: Error, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "\(reason) at byte \(offset)" }
    }

    public static let maximumDepth = 512

    private let bytes: [UInt8]
    private var index = 0

    public static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw Failure(offset: parser.index, reason: "unexpected data after the JSON value") }
        return value
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
            index += 1
        }
    }

    private func fail(_ reason: String) -> Failure { Failure(offset: index, reason: reason) }

    private mutating func value(depth: Int) throws(Failure) -> JSONValue {
        guard depth < Self.maximumDepth else { throw fail("nesting deeper than \(Self.maximumDepth) levels") }
        guard index < bytes.count else { throw fail("unexpected end of data") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'")
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("unexpected end of data") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw fail("invalid literal")
        }
        index += count
    }

    private mutating func object(depth: Int) throws(Failure) -> JSONValue {
        index += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try string()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':' after an object key") }
            index += 1
            skipWhitespace()
            members[key] = try value(depth: depth + 1)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of data in an object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw fail("expected ',' or '}' in an object")
        }
    }

    private mutating func array(depth: Int) throws(Failure) -> JSONValue {
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of data in an array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw fail("expected ',' or ']' in an array")
        }
    }

    private mutating func number() throws(Failure) -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits(_ parser: inout JSONParser) -> Int {
            let from = parser.index
            while parser.index < parser.bytes.count, parser.bytes[parser.index] >= UInt8(ascii: "0"), parser.bytes[parser.index] <= UInt8(ascii: "9") {
                parser.index += 1
            }
            return parser.index - from
        }
        guard index < bytes.count else { throw fail("unexpected end of data in a number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits(&self) == 0 {
            throw fail("invalid number")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func string() throws(Failure) -> String {
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: bytes[start..<index], as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw fail("control character in a string") }
            index += 1
        }
        var scalars = Array(bytes[start..<index])
        try Self.unescape(bytes[...], from: &index, into: &scalars)
        return String(decoding: scalars, as: UTF8.self)
    }

    /// The rest of a JSON string from `index` (inside it, past its opening quote), unescaped into
    /// UTF-8 bytes appended to `out`; `index` ends past the closing quote. For readers that scan a
    /// known shape and want a string's bytes without building a tree (a json-file log line).
    public static func unescape(_ bytes: ArraySlice<UInt8>, from index: inout Int, into out: inout [UInt8]) throws(Failure) {
        func fail(_ reason: String) -> Failure { Failure(offset: index, reason: reason) }
        while index < bytes.endIndex {
            // The run up to the next quote, backslash or control character, copied at once.
            var end = index
            while end < bytes.endIndex, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 { end += 1 }
            out.append(contentsOf: bytes[index..<end])
            index = end
            guard index < bytes.endIndex else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return
            }
            if byte < 0x20 { throw fail("control character in a string") }
            index += 1
            guard index < bytes.endIndex else { break }
            let escaped = bytes[index]
            index += 1
            switch escaped {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4(bytes, &index)
                if (0xD800...0xDBFF).contains(code) {
                    // A high surrogate must be followed by an escaped low one.
                    guard index + 1 < bytes.endIndex, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate in a string")
                    }
                    index += 2
                    let low = try hex4(bytes, &index)
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate in a string") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw fail("unpaired surrogate in a string")
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw fail("invalid escape in a string")
            }
        }
        throw fail("unterminated string")
    }

    private static func hex4(_ bytes: ArraySlice<UInt8>, _ index: inout Int) throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.endIndex else { throw Failure(offset: index, reason: "unexpected end of data in a \\u escape") }
        var code: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Failure(offset: index, reason: "invalid hex digit in a \\u escape")
            }
            code = code << 4 | UInt32(digit)
            index += 1
        }
        return code
    }
}

/// Why JSON text could not be read: the reason and the byte offset where it was found.
public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public let offset: Int
    public let reason: String
    public var description: String { "\(reason) at offset \(offset)" }

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }
}

extension JSON {
    /// Parses JSON text (RFC 8259, strictly; duplicate keys: the last wins).
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSON { try JSONParser.parse(bytes) }
    public static func parse(_ bytes: ArraySlice<UInt8>) throws(JSONParseError) -> JSON { try JSONParser.parse(bytes) }
    public static func parse(_ text: String) throws(JSONParseError) -> JSON {
        var text = text
        let result = text.withUTF8 { buffer in Result { () throws(JSONParseError) in try JSONParser.parse(buffer) } }
        return try result.get()
    }
}

/// RFC 8259 JSON, strictly: one value, no trailing commas or comments, no control characters in strings,
/// no invalid escapes (an unpaired surrogate escape reads as U+FFFD, as Go reads it); nesting is limited so
/// hostile input cannot exhaust the stack.
/// Numbers are checked against the grammar and kept as text (see ``JSON``'s note on their form).
///
/// Measured against the API server's former parser and the runtime's (scripts/bench-json, README): it reads
/// the input through one unsafe buffer, so the inner loops carry no bounds checks and no array retains.
public struct JSONParser {
    public typealias Failure = JSONParseError

    /// Deeper nesting is refused. Parsing, writing and freeing a tree recurse once per level; 512 levels
    /// stay far inside the smallest stack a parse runs on (a Swift concurrency thread's).
    public static let maximumDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    public static func parse(_ bytes: [UInt8]) throws(Failure) -> JSON {
        try bytes.withUnsafeBufferPointer { (buffer) throws(Failure) -> JSON in try parse(buffer) }
    }

    public static func parse(_ bytes: ArraySlice<UInt8>) throws(Failure) -> JSON {
        try bytes.withUnsafeBufferPointer { (buffer) throws(Failure) -> JSON in try parse(buffer) }
    }

    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(Failure) -> JSON {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.fail("unexpected data after the JSON value") }
        return value
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            index += 1
        }
    }

    private func fail(_ reason: String) -> Failure { Failure(offset: index, reason: reason) }

    private mutating func value(depth: Int) throws(Failure) -> JSON {
        guard index < bytes.count else { throw fail("unexpected end of JSON input") }
        switch bytes[index] {
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default:
            throw fail("invalid character '\(Character(Unicode.Scalar(bytes[index])))' looking for beginning of value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("unexpected end of JSON input") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw fail("invalid literal")
        }
        index += count
    }

    private mutating func object(depth: Int) throws(Failure) -> JSON {
        guard depth <= Self.maximumDepth else { throw fail("nesting deeper than \(Self.maximumDepth) levels") }
        index += 1
        var members: [String: JSON] = [:]
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
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw fail("expected ':' after an object key")
            }
            index += 1
            skipWhitespace()
            members[key] = try value(depth: depth)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of JSON input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw fail("expected ',' or '}' in an object")
        }
    }

    private mutating func array(depth: Int) throws(Failure) -> JSON {
        guard depth <= Self.maximumDepth else { throw fail("nesting deeper than \(Self.maximumDepth) levels") }
        index += 1
        var elements: [JSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of JSON input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw fail("expected ',' or ']' in an array")
        }
    }

    @inline(__always)
    private mutating func digits() -> Int {
        let from = index
        while index < bytes.count, bytes[index] &- UInt8(ascii: "0") < 10 { index += 1 }
        return index - from
    }

    /// A number's text, checked against the grammar; one with a fraction or an exponent (or an integer
    /// beyond both Int64 and UInt64) in the canonical form.
    private mutating func number() throws(Failure) -> String {
        let start = index
        let negative = bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < bytes.count else { throw fail("unexpected end of JSON input") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            throw fail("invalid number")
        }
        let integerDigits = index - start - (negative ? 1 : 0)
        var integral = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            integral = false
            guard digits() > 0 else { throw fail("invalid number") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            integral = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard digits() > 0 else { throw fail("invalid number") }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if integral {
            if integerDigits < 19 {
                return negative && integerDigits == 1 && bytes[start + 1] == UInt8(ascii: "0") ? "0" : text
            }
            if Int64(text) != nil || UInt64(text) != nil { return text }
        }
        guard let double = Double(text), double.isFinite else { return text }
        return JSON.canonicalText(double)
    }

    private mutating func string() throws(Failure) -> String {
        index += 1
        let start = index
        // Most strings have no escapes: find the closing quote and make the String from the bytes at once.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw fail("control character in a string") }
            index += 1
        }
        var out = Array(bytes[start..<index])
        try Self.unescape(bytes, from: &index, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The rest of a JSON string from `index` (inside it, past its opening quote), unescaped into
    /// UTF-8 bytes appended to `out`; `index` ends past the closing quote. For readers that scan a
    /// known shape and want a string's bytes without building a tree (a json-file log line).
    public static func unescape(_ bytes: ArraySlice<UInt8>, from index: inout Int, into out: inout [UInt8])
        throws(Failure)
    {
        let base = bytes.startIndex
        var local = index - base
        defer { index = local + base }
        try bytes.withUnsafeBufferPointer { (buffer) throws(Failure) in
            do throws(Failure) { try unescape(buffer, from: &local, into: &out) } catch {
                throw Failure(offset: error.offset + base, reason: error.reason)
            }
        }
    }

    static func unescape(_ bytes: UnsafeBufferPointer<UInt8>, from index: inout Int, into out: inout [UInt8])
        throws(Failure)
    {
        func fail(_ reason: String) -> Failure { Failure(offset: index, reason: reason) }
        while index < bytes.count {
            // The run up to the next quote, backslash or control character, copied at once.
            var end = index
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"),
                bytes[end] >= 0x20
            { end += 1 }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<end]))
            index = end
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return
            }
            if byte < 0x20 { throw fail("control character in a string") }
            index += 1
            guard index < bytes.count else { break }
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
                let high = code
                if (0xD800...0xDBFF).contains(code) {
                    // A high surrogate pairs with an escaped low one that follows; unpaired, it reads as
                    // U+FFFD and what follows is read on its own, as Go's encoding/json reads it (so as
                    // kube-apiserver and runc do; the API server's former parser accepted them too).
                    code = 0xFFFD
                    if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    {
                        var next = index + 2
                        let low = try hex4(bytes, &next)
                        if (0xDC00...0xDFFF).contains(low) {
                            code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                            index = next
                        }
                    }
                } else if (0xDC00...0xDFFF).contains(code) {
                    code = 0xFFFD
                }
                UTF8.encode(Unicode.Scalar(code) ?? "\u{FFFD}") { out.append($0) }
            default:
                throw fail("invalid escape in a string")
            }
        }
        throw fail("unexpected end of JSON input")
    }

    private static func hex4(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else {
            throw Failure(offset: index, reason: "unexpected end of JSON input in a \\u escape")
        }
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

/// A JSON document as a tree: the one JSON value of every layer. The runtime decodes config.json through
/// it (``JSONTreeDecoder``), the API server keeps Kubernetes objects as it (so every kind, and unknown
/// fields, round-trip unchanged), the network code passes CNI configurations through it.
///
/// Numbers keep their text, so each is converted exactly to the integer or floating type asked for
/// (a seccomp argument of 2^64-1 stays exact). The parser writes a number with a fraction or an exponent in
/// one canonical form, the form the API server has always written (Kubernetes' own, for a float64): an
/// integral value below 1e15 as its digits (`1.0` → `1`), any other as Swift's shortest round-trip text
/// (`0.25`, `1e+20`). Integers are kept as written (`-0` as `0`). So two trees are equal when their numbers
/// are, and a tree writes the same bytes however it was made.
///
/// Not `indirect`: arrays and dictionaries are already references, and boxing every scalar cost a heap
/// allocation per string and number parsed.
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    /// The number's JSON text (see the type's note on its form).
    case number(String)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    /// What a decoding error calls this value ("a string").
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

    /// Go's name of this value's JSON type, as encoding/json's errors name it ("string", "number").
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

// MARK: making numbers

extension JSON {
    /// An integer.
    public static func int(_ value: Int64) -> JSON { .number(String(value)) }

    /// A floating-point number, in the canonical form (integral values below 1e15 as digits). Non-finite
    /// values have no JSON form; they are written as Swift prints them, as the API server always has.
    public static func double(_ value: Double) -> JSON { .number(canonicalText(value)) }

    /// The canonical text of a floating-point value.
    public static func canonicalText(_ value: Double) -> String {
        if value.isFinite, value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// 3 and 3.0 read as an integer, 3.5 and out-of-range numbers do not: Codable's rule, used by
    /// ``JSONTreeDecoder`` and by the fields read by hand.
    public static func exactInteger<T: FixedWidthInteger>(_ text: String, as type: T.Type) -> T? {
        if let exact = T(text) { return exact }
        if let double = Double(text), double.rounded() == double { return T(exactly: double) }
        return nil
    }
}

// MARK: reading a tree

extension JSON {
    /// The member `key` of an object; `.null` when missing or when this is not an object. Setting `.null`
    /// removes the member; setting a value on a non-object makes it an object.
    public subscript(key: String) -> JSON {
        get {
            if case .object(let members) = self { return members[key] ?? .null }
            return .null
        }
        set {
            if case .object(var members) = self {
                self = .null  // leave `members` uniquely referenced, so it is changed in place
                if newValue == .null { members.removeValue(forKey: key) } else { members[key] = newValue }
                self = .object(members)
            } else if newValue != .null {
                self = .object([key: newValue])
            }
        }
    }

    /// The element at `index` of an array; `.null` when out of range or when this is not an array.
    public subscript(index: Int) -> JSON {
        if case .array(let elements) = self, elements.indices.contains(index) { return elements[index] }
        return .null
    }

    /// The value at a path of keys (missing → `.null`); setting makes the objects on the way.
    public subscript(path: [String]) -> JSON {
        get {
            var value = self
            for key in path { value = value[key] }
            return value
        }
        set {
            guard let first = path.first else { self = newValue; return }
            var child = self[first]
            child[Array(path.dropFirst())] = newValue
            self[first] = child
        }
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var object: [String: JSON]? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// The number as an Int64: integers in range, and integral values of other numbers below 9e18.
    public var int: Int64? {
        guard case .number(let text) = self else { return nil }
        if let exact = Int64(text) { return exact }
        if let d = Double(text), d.rounded() == d, abs(d) < 9e18 { return Int64(d) }
        return nil
    }

    /// The number as a Double.
    public var double: Double? {
        guard case .number(let text) = self else { return nil }
        return Double(text)
    }

    /// Whether the number has a fraction or an exponent (a float64 rather than an int64 to Go).
    public var isFloatingPoint: Bool {
        guard case .number(let text) = self else { return false }
        return text.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
    }

    /// A map of strings (labels, annotations, data); members that are not strings are left out.
    public var stringMap: [String: String] {
        guard case .object(let members) = self else { return [:] }
        var out: [String: String] = [:]
        out.reserveCapacity(members.count)
        for (key, value) in members { if case .string(let s) = value { out[key] = s } }
        return out
    }

    /// An object of strings.
    public static func strings(_ map: [String: String]) -> JSON { .object(map.mapValues { .string($0) }) }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// Fields read by hand from a dictionary's members (LaunchEssentials, InitRequest), without Codable's
/// per-type set-up. The `optional…` forms give `.some(nil)` for a field that is absent or null and nil for
/// one of another type, so a reader can tell "not given" from "wrong".
extension Optional where Wrapped == JSON {
    public var string: String? {
        if case .string(let text)? = self { return text }
        return nil
    }

    public func integer<T: FixedWidthInteger>(_ type: T.Type) -> T? {
        guard case .number(let text)? = self else { return nil }
        return JSON.exactInteger(text, as: type)
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

    public var optionalObject: [String: JSON]?? {
        switch self {
        case nil, .null?: return .some(nil)
        case .object(let members)?: return .some(members)
        default: return nil
        }
    }

    public var optionalArray: [JSON]?? {
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

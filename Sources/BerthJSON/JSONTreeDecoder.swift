/// Codable decoding of JSON through a parsed tree (``JSON``), for what the runtime decodes on the
/// way to starting a container: config.json, the init's request, state.json.
///
/// Measured per fresh process, Foundation's JSONDecoder spent ~0.6 ms setting itself up and ~1 ms on a
/// config.json — mostly Swift type metadata and protocol-conformance scans, which this decoder needs far
/// fewer of. Errors are Foundation's `DecodingError` cases with the coding path, so messages that name
/// the field (SpecLoader) read the same.
public enum JSONTreeDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decode(type, from: parse(bytes))
    }

    /// The tree of `bytes`; malformed JSON is a DecodingError, as Foundation's decoder reports it.
    public static func parse(_ bytes: [UInt8]) throws(DecodingError) -> JSON {
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: [], debugDescription: "The given data was not valid JSON: \(error)",
                    underlyingError: error))
        }
    }

    public static func decode<T: Decodable>(_ type: T.Type, from tree: JSON) throws -> T {
        try T(from: TreeDecoder(value: tree, codingPath: []))
    }
}

/// An array position in a coding path (`[3]` in SpecLoader's field names).
private struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { return nil }
    init?(intValue: Int) { self.intValue = intValue }
}

/// Conversions of one JSON value to the primitive types Codable asks for.
private enum Primitive {
    static func mismatch(_ type: Any.Type, _ value: JSON, _ path: [any CodingKey]) -> DecodingError {
        if value == .null {
            return .valueNotFound(
                type, .init(codingPath: path, debugDescription: "Expected \(type) value but found null instead."))
        }
        return .typeMismatch(
            type,
            .init(codingPath: path, debugDescription: "Expected to decode \(type) but found \(value.kind) instead."))
    }

    static func bool(_ value: JSON, _ path: [any CodingKey]) throws -> Bool {
        guard case .bool(let bool) = value else { throw mismatch(Bool.self, value, path) }
        return bool
    }

    static func string(_ value: JSON, _ path: [any CodingKey]) throws -> String {
        guard case .string(let string) = value else { throw mismatch(String.self, value, path) }
        return string
    }

    /// Exact: 3 and 3.0 decode as an Int, 3.5 and out-of-range numbers do not.
    static func integer<T: FixedWidthInteger>(_ type: T.Type, _ value: JSON, _ path: [any CodingKey]) throws -> T {
        guard case .number(let text) = value else { throw mismatch(type, value, path) }
        if let exact = JSON.exactInteger(text, as: type) { return exact }
        throw DecodingError.dataCorrupted(
            .init(codingPath: path, debugDescription: "Parsed JSON number <\(text)> does not fit in \(type)."))
    }

    static func floating<T: BinaryFloatingPoint & LosslessStringConvertible>(
        _ type: T.Type, _ value: JSON, _ path: [any CodingKey]
    ) throws -> T {
        guard case .number(let text) = value, let number = T(text) else { throw mismatch(type, value, path) }
        return number
    }
}

private final class TreeDecoder: Decoder, TreeBacked {
    let value: JSON
    var tree: JSON { value }
    func set(_ tree: JSON) {}
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(value: JSON, codingPath: [any CodingKey]) {
        self.value = value
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw Primitive.mismatch([String: Any].self, value, codingPath) }
        return KeyedDecodingContainer(KeyedTree<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = value else { throw Primitive.mismatch([Any].self, value, codingPath) }
        return UnkeyedTree(elements: elements, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleTree(value: value, codingPath: codingPath)
    }
}

private struct KeyedTree<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSON]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }
    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func value(_ key: Key) throws -> JSON {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(
                key, .init(codingPath: codingPath, debugDescription: "No value associated with key \(key.stringValue).")
            )
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try value(key) == .null }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try Primitive.bool(value(key), codingPath + [key])
    }
    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        try Primitive.string(value(key), codingPath + [key])
    }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
        try Primitive.floating(type, value(key), codingPath + [key])
    }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        try Primitive.floating(type, value(key), codingPath + [key])
    }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
        try Primitive.integer(type, value(key), codingPath + [key])
    }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 {
        try Primitive.integer(type, value(key), codingPath + [key])
    }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 {
        try Primitive.integer(type, value(key), codingPath + [key])
    }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 {
        try Primitive.integer(type, value(key), codingPath + [key])
    }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 {
        try Primitive.integer(type, value(key), codingPath + [key])
    }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt {
        try Primitive.integer(type, value(key), codingPath + [key])
    }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 {
        try Primitive.integer(type, value(key), codingPath + [key])
    }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 {
        try Primitive.integer(type, value(key), codingPath + [key])
    }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 {
        try Primitive.integer(type, value(key), codingPath + [key])
    }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 {
        try Primitive.integer(type, value(key), codingPath + [key])
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try T(from: TreeDecoder(value: value(key), codingPath: codingPath + [key]))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        try TreeDecoder(value: value(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try TreeDecoder(value: value(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        TreeDecoder(value: members["super"] ?? .null, codingPath: codingPath)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        TreeDecoder(value: members[key.stringValue] ?? .null, codingPath: codingPath + [key])
    }
}

private struct UnkeyedTree: UnkeyedDecodingContainer {
    let elements: [JSON]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(elements: [JSON], codingPath: [any CodingKey]) {
        self.elements = elements
        self.codingPath = codingPath
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    /// The next element and its path; advances.
    private mutating func next(_ type: Any.Type) throws -> (JSON, [any CodingKey]) {
        let path = codingPath + [IndexKey(currentIndex)]
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                type, .init(codingPath: path, debugDescription: "Unkeyed container is at end."))
        }
        defer { currentIndex += 1 }
        return (elements[currentIndex], path)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, elements[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool {
        let (v, p) = try next(type); return try Primitive.bool(v, p)
    }
    mutating func decode(_ type: String.Type) throws -> String {
        let (v, p) = try next(type); return try Primitive.string(v, p)
    }
    mutating func decode(_ type: Double.Type) throws -> Double {
        let (v, p) = try next(type); return try Primitive.floating(type, v, p)
    }
    mutating func decode(_ type: Float.Type) throws -> Float {
        let (v, p) = try next(type); return try Primitive.floating(type, v, p)
    }
    mutating func decode(_ type: Int.Type) throws -> Int {
        let (v, p) = try next(type); return try Primitive.integer(type, v, p)
    }
    mutating func decode(_ type: Int8.Type) throws -> Int8 {
        let (v, p) = try next(type); return try Primitive.integer(type, v, p)
    }
    mutating func decode(_ type: Int16.Type) throws -> Int16 {
        let (v, p) = try next(type); return try Primitive.integer(type, v, p)
    }
    mutating func decode(_ type: Int32.Type) throws -> Int32 {
        let (v, p) = try next(type); return try Primitive.integer(type, v, p)
    }
    mutating func decode(_ type: Int64.Type) throws -> Int64 {
        let (v, p) = try next(type); return try Primitive.integer(type, v, p)
    }
    mutating func decode(_ type: UInt.Type) throws -> UInt {
        let (v, p) = try next(type); return try Primitive.integer(type, v, p)
    }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 {
        let (v, p) = try next(type); return try Primitive.integer(type, v, p)
    }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 {
        let (v, p) = try next(type); return try Primitive.integer(type, v, p)
    }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 {
        let (v, p) = try next(type); return try Primitive.integer(type, v, p)
    }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 {
        let (v, p) = try next(type); return try Primitive.integer(type, v, p)
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, path) = try next(type)
        return try T(from: TreeDecoder(value: value, codingPath: path))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<
        NestedKey
    > {
        let (value, path) = try next([String: Any].self)
        return try TreeDecoder(value: value, codingPath: path).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (value, path) = try next([Any].self)
        return try TreeDecoder(value: value, codingPath: path).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let (value, path) = try next(Any.self)
        return TreeDecoder(value: value, codingPath: path)
    }
}

private struct SingleTree: SingleValueDecodingContainer {
    let value: JSON
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try Primitive.bool(value, codingPath) }
    func decode(_ type: String.Type) throws -> String { try Primitive.string(value, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try Primitive.floating(type, value, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { try Primitive.floating(type, value, codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try Primitive.integer(type, value, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try Primitive.integer(type, value, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try Primitive.integer(type, value, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try Primitive.integer(type, value, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try Primitive.integer(type, value, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try Primitive.integer(type, value, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try Primitive.integer(type, value, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try Primitive.integer(type, value, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try Primitive.integer(type, value, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try Primitive.integer(type, value, codingPath) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try T(from: TreeDecoder(value: value, codingPath: codingPath))
    }
}

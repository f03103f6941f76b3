/// Codable encoding into a ``JSON`` tree, written out by ``JSONWriter``: the encoding half of
/// ``JSONTreeDecoder``, for records written by short-lived processes (the CLI, the runtime).
///
/// Foundation's JSONEncoder asks every value it meets whether it is one of Foundation's special types
/// (a dynamic cast per new type); in a static binary of this size each first cast scans every
/// protocol-conformance record of the binary. This encoder asks nothing: a value encodes itself through
/// the containers, and the tree is written with sorted keys. Output is what JSONEncoder writes with
/// `.sortedKeys` and `.withoutEscapingSlashes` for the types records use (no Date, Data or URL).
public enum JSONTreeEncoder {
    /// The JSON text of `value`, keys sorted.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> [UInt8] {
        JSONWriter.write(try tree(value), pretty: pretty)
    }

    /// The tree of `value`.
    public static func tree<T: Encodable>(_ value: T) throws -> JSON {
        let root = EncodingNode()
        try value.encode(to: TreeEncoder(node: root, codingPath: []))
        guard let tree = root.value else {
            throw EncodingError.invalidValue(
                value, .init(codingPath: [], debugDescription: "Top-level \(T.self) did not encode any values."))
        }
        return tree
    }
}

/// Where one value goes while it is being encoded: a value set once, or an object or array whose
/// members are added (containers share the node, so a nested container writes into its parent).
final class EncodingNode {
    private var scalar: JSON?
    private var members: [String: EncodingNode]?
    private var elements: [EncodingNode]?

    var isEmpty: Bool { scalar == nil && members == nil && elements == nil }

    var value: JSON? {
        if let scalar { return scalar }
        if let members {
            var object: [String: JSON] = [:]
            object.reserveCapacity(members.count)
            for (key, node) in members { object[key] = node.value ?? .object([:]) }
            return .object(object)
        }
        if let elements { return .array(elements.map { $0.value ?? .object([:]) }) }
        return nil
    }

    func set(_ value: JSON) {
        scalar = value
        members = nil
        elements = nil
    }

    func makeObject() {
        guard members == nil else { return }
        scalar = nil
        elements = nil
        members = [:]
    }

    func makeArray() {
        guard elements == nil else { return }
        scalar = nil
        members = nil
        elements = []
    }

    /// A new node under `key` (replacing what was there, as JSONEncoder does).
    func member(_ key: String) -> EncodingNode {
        makeObject()
        let node = EncodingNode()
        members![key] = node
        return node
    }

    func append() -> EncodingNode {
        makeArray()
        let node = EncodingNode()
        elements!.append(node)
        return node
    }

    var count: Int { elements?.count ?? 0 }
}

/// A position in an array, in a coding path.
private struct EncodingIndex: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { return nil }
    init?(intValue: Int) { self.intValue = intValue }
}

/// The key `super` encodes under (Codable's convention).
private struct SuperKey: CodingKey {
    var stringValue: String { "super" }
    var intValue: Int? { nil }
    init() {}
    init?(stringValue: String) {}
    init?(intValue: Int) { return nil }
}

private enum Scalar {
    static func number<T: BinaryInteger>(_ value: T) -> JSON { .number(String(value)) }

    static func number(_ value: Double, _ path: [any CodingKey]) throws -> JSON {
        guard value.isFinite else {
            throw EncodingError.invalidValue(
                value, .init(codingPath: path, debugDescription: "Unable to encode Double.\(value) directly in JSON."))
        }
        // JSONEncoder's form: integral values without a fraction (3, not 3.0).
        return .double(value)
    }
}

private struct TreeEncoder: Encoder, TreeBacked {
    let node: EncodingNode
    var tree: JSON { node.value ?? .null }
    func set(_ tree: JSON) { node.set(tree) }
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.makeObject()
        return KeyedEncodingContainer(KeyedTreeEncoder<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.makeArray()
        return UnkeyedTreeEncoder(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleTreeEncoder(node: node, codingPath: codingPath)
    }
}

private struct KeyedTreeEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodingNode
    let codingPath: [any CodingKey]

    private func set(_ value: JSON, _ key: Key) { node.member(key.stringValue).set(value) }

    mutating func encodeNil(forKey key: Key) throws { set(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        set(try Scalar.number(value, codingPath + [key]), key)
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        set(try Scalar.number(Double(value), codingPath + [key]), key)
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(Scalar.number(value), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(Scalar.number(value), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(Scalar.number(value), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(Scalar.number(value), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(Scalar.number(value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { set(Scalar.number(value), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(Scalar.number(value), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(Scalar.number(value), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(Scalar.number(value), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { set(Scalar.number(value), key) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        let child = node.member(key.stringValue)
        try value.encode(to: TreeEncoder(node: child, codingPath: codingPath + [key]))
        // A value that encoded nothing is an empty object, as JSONEncoder writes it.
        if child.isEmpty { child.makeObject() }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        let child = node.member(key.stringValue)
        child.makeObject()
        return KeyedEncodingContainer(KeyedTreeEncoder<NestedKey>(node: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = node.member(key.stringValue)
        child.makeArray()
        return UnkeyedTreeEncoder(node: child, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        TreeEncoder(node: node.member("super"), codingPath: codingPath + [SuperKey()])
    }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        TreeEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key])
    }
}

private struct UnkeyedTreeEncoder: UnkeyedEncodingContainer {
    let node: EncodingNode
    let codingPath: [any CodingKey]
    var count: Int { node.count }

    private func add(_ value: JSON) { node.append().set(value) }
    private var nextPath: [any CodingKey] { codingPath + [EncodingIndex(count)] }

    mutating func encodeNil() throws { add(.null) }
    mutating func encode(_ value: Bool) throws { add(.bool(value)) }
    mutating func encode(_ value: String) throws { add(.string(value)) }
    mutating func encode(_ value: Double) throws { add(try Scalar.number(value, nextPath)) }
    mutating func encode(_ value: Float) throws { add(try Scalar.number(Double(value), nextPath)) }
    mutating func encode(_ value: Int) throws { add(Scalar.number(value)) }
    mutating func encode(_ value: Int8) throws { add(Scalar.number(value)) }
    mutating func encode(_ value: Int16) throws { add(Scalar.number(value)) }
    mutating func encode(_ value: Int32) throws { add(Scalar.number(value)) }
    mutating func encode(_ value: Int64) throws { add(Scalar.number(value)) }
    mutating func encode(_ value: UInt) throws { add(Scalar.number(value)) }
    mutating func encode(_ value: UInt8) throws { add(Scalar.number(value)) }
    mutating func encode(_ value: UInt16) throws { add(Scalar.number(value)) }
    mutating func encode(_ value: UInt32) throws { add(Scalar.number(value)) }
    mutating func encode(_ value: UInt64) throws { add(Scalar.number(value)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = nextPath
        let child = node.append()
        try value.encode(to: TreeEncoder(node: child, codingPath: path))
        if child.isEmpty { child.makeObject() }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<
        NestedKey
    > {
        let path = nextPath
        let child = node.append()
        child.makeObject()
        return KeyedEncodingContainer(KeyedTreeEncoder<NestedKey>(node: child, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = nextPath
        let child = node.append()
        child.makeArray()
        return UnkeyedTreeEncoder(node: child, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let path = nextPath
        return TreeEncoder(node: node.append(), codingPath: path)
    }
}

private struct SingleTreeEncoder: SingleValueEncodingContainer {
    let node: EncodingNode
    let codingPath: [any CodingKey]

    private func set(_ value: JSON) { node.set(value) }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(.bool(value)) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(try Scalar.number(value, codingPath)) }
    mutating func encode(_ value: Float) throws { set(try Scalar.number(Double(value), codingPath)) }
    mutating func encode(_ value: Int) throws { set(Scalar.number(value)) }
    mutating func encode(_ value: Int8) throws { set(Scalar.number(value)) }
    mutating func encode(_ value: Int16) throws { set(Scalar.number(value)) }
    mutating func encode(_ value: Int32) throws { set(Scalar.number(value)) }
    mutating func encode(_ value: Int64) throws { set(Scalar.number(value)) }
    mutating func encode(_ value: UInt) throws { set(Scalar.number(value)) }
    mutating func encode(_ value: UInt8) throws { set(Scalar.number(value)) }
    mutating func encode(_ value: UInt16) throws { set(Scalar.number(value)) }
    mutating func encode(_ value: UInt32) throws { set(Scalar.number(value)) }
    mutating func encode(_ value: UInt64) throws { set(Scalar.number(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        try value.encode(to: TreeEncoder(node: node, codingPath: codingPath))
    }
}

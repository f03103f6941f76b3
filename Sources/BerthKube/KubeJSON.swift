import BerthJSON

/// A value with Kubernetes' JSON form, converted straight to and from a ``JSON`` tree.
///
/// Generated types implement both directions by hand (no reflection, no Codable containers): with
/// 300,000 pods in one server, decoding is a walk over the parsed tree with one `switch` per object.
/// `null` decodes to the type's zero value, as Go's encoding/json leaves a field untouched on `null`.
public protocol KubeJSONCodable: Sendable {
    init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError)
    func kubeJSON() -> JSON
}

/// A generated API type: a value type with Kubernetes' JSON form, usable as a Codable value too.
public protocol KubeModel: KubeJSONCodable, Hashable, Codable {
    init()
}

/// A value with object metadata: every stored kind, and `PartialObjectMetadata` (what an informer that
/// needs only names, owners and finalizers holds, as kube-controller-manager's garbage collector does).
/// Informers key, index and compare objects through it.
public protocol HasObjectMeta: KubeModel {
    var metadata: MetaV1.ObjectMeta { get set }
}

/// A top-level API object (it carries `apiVersion` and `kind`).
public protocol KubeObject: KubeModel {
    /// The apiVersion and kind this type is served as, e.g. ("apps/v1", "Deployment").
    static var servedAPIVersion: String { get }
    static var servedKind: String { get }
}

extension KubeJSONCodable {
    /// Decodes JSON text. Unknown fields are dropped, as kube-apiserver drops them for built-in kinds;
    /// pass `unknownFields` to learn their paths (`spec.containers[0].imagePullPolcy`), for a `Warning`
    /// header or `fieldValidation=Strict`.
    public init(json bytes: [UInt8]) throws(KubeJSONError) {
        var ignored: [String] = []
        try self.init(json: bytes, unknownFields: &ignored, collect: false)
    }

    public init(json bytes: [UInt8], unknownFields: inout [String]) throws(KubeJSONError) {
        try self.init(json: bytes, unknownFields: &unknownFields, collect: true)
    }

    /// Decodes JSON text for a long-lived cache: its strings shared through `strings` (see ``StringPool``).
    public init(json bytes: [UInt8], strings: StringPool) throws(KubeJSONError) {
        let tree: JSON
        do {
            tree = try JSONParser.parse(bytes)
        } catch {
            throw KubeJSONError(path: [], message: "invalid JSON: \(error)")
        }
        var decoder = KubeJSONDecoder(collectsUnknownFields: false, strings: strings)
        try self.init(kubeJSON: tree, &decoder)
    }

    private init(json bytes: [UInt8], unknownFields: inout [String], collect: Bool) throws(KubeJSONError) {
        let tree: JSON
        do {
            tree = try JSONParser.parse(bytes)
        } catch {
            throw KubeJSONError(path: [], message: "invalid JSON: \(error)")
        }
        var decoder = KubeJSONDecoder(collectsUnknownFields: collect)
        try self.init(kubeJSON: tree, &decoder)
        unknownFields += decoder.unknownFields
    }

    /// Decodes a parsed tree.
    public init(kubeJSON value: JSON) throws(KubeJSONError) {
        var decoder = KubeJSONDecoder(collectsUnknownFields: false)
        try self.init(kubeJSON: value, &decoder)
    }

    /// Decodes a parsed tree for a long-lived cache, its strings shared through `strings`.
    public init(kubeJSON value: JSON, strings: StringPool) throws(KubeJSONError) {
        var decoder = KubeJSONDecoder(collectsUnknownFields: false, strings: strings)
        try self.init(kubeJSON: value, &decoder)
    }

    /// JSON text with sorted keys (``JSONWriter``).
    public func jsonBytes(pretty: Bool = false) -> [UInt8] {
        JSONWriter.write(kubeJSON(), pretty: pretty)
    }
}

/// A decoding failure naming the field path, as kube-apiserver's messages do:
/// `spec.containers[0].ports[0].containerPort: expected integer, got string`.
public struct KubeJSONError: Error, CustomStringConvertible, Equatable {
    /// Path components innermost last: keys and `[index]`.
    public var path: [String]
    public var message: String

    public init(path: [String], message: String) {
        self.path = path
        self.message = message
    }

    /// A value of the wrong JSON type.
    public static func mismatch(expected: String, got value: JSON) -> KubeJSONError {
        KubeJSONError(path: [], message: "expected \(expected), got \(KubeJSONError.typeName(value))")
    }

    /// The path as kube-apiserver writes it: `spec.containers[0].name`.
    public var field: String { KubeJSONDecoder.join(path) }

    public var description: String { path.isEmpty ? message : "\(field): \(message)" }

    static func typeName(_ value: JSON) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

/// The state of one decode: whether unknown fields are collected, and those found so far.
public struct KubeJSONDecoder {
    public let collectsUnknownFields: Bool
    /// Paths of fields no type knows, as components innermost last (`spec`, `containers`, `[0]`,
    /// `imagePullPolcy`): what a server needs to prune them from the tree it was given.
    public private(set) var unknownFieldPaths: [[String]] = []

    /// The same paths as kube-apiserver writes them, e.g. `spec.containers[0].imagePullPolcy`.
    public var unknownFields: [String] { unknownFieldPaths.map(Self.join) }

    /// Where decoded strings are shared (see ``StringPool``); nil: each decode keeps its own.
    public let strings: StringPool?

    public init(collectsUnknownFields: Bool, strings: StringPool? = nil) {
        self.collectsUnknownFields = collectsUnknownFields
        self.strings = strings
    }

    /// `s`, shared through the decoder's pool if it has one.
    @inlinable
    public func intern(_ s: String) -> String {
        strings?.intern(s) ?? s
    }

    /// A member no field of the object matches.
    @inline(__always)
    public mutating func unknown(_ key: String) {
        if collectsUnknownFields { unknownFieldPaths.append([key]) }
    }

    /// Decodes one member into a field, leaving it as it is on `null`.
    @inline(__always)
    public mutating func read<T: KubeJSONCodable>(_ value: JSON, _ key: String, into field: inout T)
        throws(KubeJSONError)
    {
        if case .null = value { return }
        field = try decode(value, key)
    }

    /// Decodes one member into an optional field; `null` makes it nil.
    @inline(__always)
    public mutating func read<T: KubeJSONCodable>(_ value: JSON, _ key: String, into field: inout T?)
        throws(KubeJSONError)
    {
        if case .null = value { field = nil; return }
        field = try decode(value, key) as T
    }

    /// Decodes one member into a boxed optional field (see ``Box``); `null` makes it nil.
    @inline(__always)
    public mutating func read<T: KubeJSONCodable & Hashable>(_ value: JSON, _ key: String, into field: inout Box<T>?)
        throws(KubeJSONError)
    {
        if case .null = value { field = nil; return }
        field = Box(try decode(value, key) as T)
    }

    /// Decodes one member into a required out-of-line field (see ``Indirect``), leaving it as it is on `null`.
    @inline(__always)
    public mutating func read<T: KubeModel>(_ value: JSON, _ key: String, into field: inout Indirect<T>)
        throws(KubeJSONError)
    {
        if case .null = value { return }
        field = Indirect(try decode(value, key) as T)
    }

    /// A value one level down (`key` or `[index]`), with the level added to errors and unknown paths.
    public mutating func decode<T: KubeJSONCodable>(_ value: JSON, _ component: String) throws(KubeJSONError) -> T {
        let mark = unknownFieldPaths.count
        let result: T
        do {
            result = try T(kubeJSON: value, &self)
        } catch {
            var error = error
            error.path.insert(component, at: 0)
            throw error
        }
        if unknownFieldPaths.count > mark {
            for i in mark..<unknownFieldPaths.count { unknownFieldPaths[i].insert(component, at: 0) }
        }
        return result
    }

    /// `a` `[0]` `b` → `a[0].b`.
    public static func join(_ components: [String]) -> String {
        var out = ""
        for c in components {
            if !out.isEmpty, !c.hasPrefix("[") { out += "." }
            out += c
        }
        return out
    }

    /// base64 `[]byte`.
    public mutating func readBytes(_ value: JSON, _ key: String, into field: inout [UInt8]) throws(KubeJSONError) {
        if case .null = value { return }
        field = try decode(value, key, as: Base64Bytes.self).bytes
    }

    public mutating func readBytes(_ value: JSON, _ key: String, into field: inout [UInt8]?) throws(KubeJSONError) {
        if case .null = value { field = nil; return }
        field = try decode(value, key, as: Base64Bytes.self).bytes
    }

    public mutating func readBytes(_ value: JSON, _ key: String, into field: inout [String: [UInt8]])
        throws(KubeJSONError)
    {
        if case .null = value { return }
        field = try decode(value, key, as: [String: Base64Bytes].self).mapValues(\.bytes)
    }

    private mutating func decode<T: KubeJSONCodable>(_ value: JSON, _ component: String, as: T.Type)
        throws(KubeJSONError) -> T
    {
        try decode(value, component)
    }
}

extension String: KubeJSONCodable {
    @inlinable
    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        switch value {
        case .string(let s): self = decoder.intern(s)
        case .null: self = ""
        default: throw .mismatch(expected: "string", got: value)
        }
    }
    @inlinable
    public func kubeJSON() -> JSON { .string(self) }
}

extension Bool: KubeJSONCodable {
    @inlinable
    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        switch value {
        case .bool(let b): self = b
        case .null: self = false
        default: throw .mismatch(expected: "boolean", got: value)
        }
    }
    @inlinable
    public func kubeJSON() -> JSON { .bool(self) }
}

/// Integers as Go decodes them: an integer literal in range; `1.0` and `1e3` are refused, as encoding/json refuses them.
extension KubeJSONCodable where Self: FixedWidthInteger {
    @inlinable
    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        switch value {
        case .number(let text):
            guard let v = Self(text) else {
                throw KubeJSONError(
                    path: [],
                    message:
                        "expected integer, got \(text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? "number \(text)" : "\(text), out of range for \(Self.self)")"
                )
            }
            self = v
        case .null: self = 0
        default: throw .mismatch(expected: "integer", got: value)
        }
    }
    @inlinable
    public func kubeJSON() -> JSON { .number(String(self)) }
}

extension Int32: KubeJSONCodable {}
extension Int64: KubeJSONCodable {}

extension Double: KubeJSONCodable {
    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        switch value {
        case .number(let text):
            guard let v = Double(text) else { throw KubeJSONError(path: [], message: "expected number, got \(text)") }
            self = v
        case .null: self = 0
        default: throw .mismatch(expected: "number", got: value)
        }
    }
    /// Go writes whole floats without a fraction (`2`, not `2.0`).
    public func kubeJSON() -> JSON {
        if self == rounded(), abs(self) < 1e15 { return .number(String(Int64(self))) }
        return .number(String(self))
    }
}

extension Array: KubeJSONCodable where Element: KubeJSONCodable {
    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        switch value {
        case .array(let elements):
            self = []
            reserveCapacity(elements.count)
            for (i, element) in elements.enumerated() {
                append(try decoder.decode(element, "[\(i)]"))
            }
        case .null: self = []
        default: throw .mismatch(expected: "array", got: value)
        }
    }
    public func kubeJSON() -> JSON { .array(map { $0.kubeJSON() }) }
}

extension Dictionary: KubeJSONCodable where Key == String, Value: KubeJSONCodable {
    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        switch value {
        case .object(let members):
            self = [:]
            reserveCapacity(members.count)
            for (key, member) in members {
                self[decoder.intern(key)] = try decoder.decode(member, key)
            }
        case .null: self = [:]
        default: throw .mismatch(expected: "object", got: value)
        }
    }
    public func kubeJSON() -> JSON { .object(mapValues { $0.kubeJSON() }) }
}

/// Codable for every generated type through its JSON tree, so `JSONTreeDecoder`, Foundation's coders
/// or YAML coders see the same JSON form as the API does.
extension KubeModel {
    public static func decode(from decoder: any Decoder) throws -> Self {
        let tree = try AnyJSON(from: decoder).value
        return try Self(kubeJSON: tree)
    }

    public func encode(into encoder: any Encoder) throws {
        try AnyJSON(kubeJSON()).encode(to: encoder)
    }
}

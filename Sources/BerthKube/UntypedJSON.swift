import BerthJSON

/// An untyped JSON value inside a typed object (Go's `interface{}`, e.g. a Table row's cells), kept as
/// the parsed tree. Hashable by its content, with object members in any order equal.
public struct AnyJSON: KubeJSONCodable, Hashable, Codable {
    public var value: JSON

    public init(_ value: JSON = .null) { self.value = value }

    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        self.value = value
    }

    public func kubeJSON() -> JSON { value }

    public func hash(into hasher: inout Hasher) { Self.hash(value, into: &hasher) }

    static func hash(_ value: JSON, into hasher: inout Hasher) {
        switch value {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(b)
        case .number(let n): hasher.combine(Double(n) ?? 0)
        case .string(let s): hasher.combine(s)
        case .array(let a):
            hasher.combine(a.count)
            for e in a { hash(e, into: &hasher) }
        case .object(let o):
            hasher.combine(o.count)
            // Order-independent: the sum of the members' own hashes.
            var sum = 0
            for (k, v) in o {
                var h = Hasher()
                h.combine(k)
                hash(v, into: &h)
                sum &+= h.finalize()
            }
            hasher.combine(sum)
        }
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { return nil }
    }

    /// Any Codable decoder's view of a JSON value, as a tree.
    public init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: Key.self) {
            var members: [String: JSON] = [:]
            for key in object.allKeys { members[key.stringValue] = try object.decode(AnyJSON.self, forKey: key).value }
            value = .object(members)
        } else if var array = try? decoder.unkeyedContainer() {
            var elements: [JSON] = []
            while !array.isAtEnd { elements.append(try array.decode(AnyJSON.self).value) }
            value = .array(elements)
        } else {
            let single = try decoder.singleValueContainer()
            if single.decodeNil() {
                value = .null
            } else if let b = try? single.decode(Bool.self) {
                value = .bool(b)
            } else if let i = try? single.decode(Int64.self) {
                value = .number(String(i))
            } else if let d = try? single.decode(Double.self) {
                value =
                    Double.init(exactly: d.rounded()) == d && abs(d) < 1e15
                    ? .number(String(Int64(d))) : .number(String(d))
            } else {
                value = .string(try single.decode(String.self))
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch value {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .number(let n):
            var c = encoder.singleValueContainer()
            if let i = Int64(n) { try c.encode(i) } else { try c.encode(Double(n) ?? 0) }
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let a):
            var c = encoder.unkeyedContainer()
            for e in a { try c.encode(AnyJSON(e)) }
        case .object(let o):
            var c = encoder.container(keyedBy: Key.self)
            for (k, v) in o { try c.encode(AnyJSON(v), forKey: Key(stringValue: k)) }
        }
    }
}

/// runtime.RawExtension: an embedded object of any kind (a WatchEvent's object, a ControllerRevision's
/// data), kept as its JSON tree. Empty, it is written `null`, as Go writes a nil Raw.
public struct RawExtension: KubeJSONCodable, Hashable, Codable {
    public var value: JSON

    public init(_ value: JSON = .null) { self.value = value }

    /// A typed object, embedded.
    public init(_ object: some KubeJSONCodable) { value = object.kubeJSON() }

    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        self.value = value
    }

    public func kubeJSON() -> JSON { value }

    /// The embedded object as a typed value.
    public func decode<T: KubeJSONCodable>(as type: T.Type) throws(KubeJSONError) -> T { try T(kubeJSON: value) }

    public func hash(into hasher: inout Hasher) { AnyJSON.hash(value, into: &hasher) }
    public init(from decoder: any Decoder) throws { value = try AnyJSON(from: decoder).value }
    public func encode(to encoder: any Encoder) throws { try AnyJSON(value).encode(to: encoder) }
}

extension MetaV1 {
    /// metav1.FieldsV1: a managed-fields set in server-side apply's JSON form, kept as its tree.
    public struct FieldsV1: KubeJSONCodable, Hashable, Codable {
        public var value: JSON

        public init(_ value: JSON = .object([:])) { self.value = value }

        public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
            self.value = value
        }

        public func kubeJSON() -> JSON { value }

        public func hash(into hasher: inout Hasher) { AnyJSON.hash(value, into: &hasher) }
        public init(from decoder: any Decoder) throws { value = try AnyJSON(from: decoder).value }
        public func encode(to encoder: any Encoder) throws { try AnyJSON(value).encode(to: encoder) }
    }
}

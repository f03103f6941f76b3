import BerthJSON

/// A Go string type with named constants (`type PodPhase string`): a struct, not a closed Swift enum,
/// because the API grows new values and an unknown one must survive a round trip untouched.
public protocol KubeEnum: KubeJSONCodable, RawRepresentable, Hashable, Codable, ExpressibleByStringLiteral,
    CustomStringConvertible
where RawValue == String {
    init(rawValue: String)
    /// The constants upstream declares, in its order.
    static var knownValues: [Self] { get }
}

extension KubeEnum {
    public init(stringLiteral value: String) { self.init(rawValue: value) }

    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        self.init(rawValue: try String(kubeJSON: value, &decoder))
    }

    public func kubeJSON() -> JSON { .string(rawValue) }

    /// Whether upstream declares this value.
    public var isKnown: Bool { Self.knownValues.contains(self) }

    public var description: String { rawValue }
}

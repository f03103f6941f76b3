import BerthJSON

/// intstr.IntOrString: a port or a percentage, `8080` or `"http"` / `"25%"` in JSON. Go's zero value
/// is the integer 0, which is what a non-optional field starts as.
public enum IntOrString: KubeJSONCodable, Hashable, Codable, CustomStringConvertible, ExpressibleByIntegerLiteral,
    ExpressibleByStringLiteral
{
    case int(Int32)
    case string(String)

    public init() { self = .int(0) }
    public init(integerLiteral value: Int32) { self = .int(value) }
    public init(stringLiteral value: String) { self = .string(value) }

    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        switch value {
        case .null: self = .int(0)
        case .string(let s): self = .string(s)
        case .number: self = .int(try Int32(kubeJSON: value, &decoder))
        default: throw .mismatch(expected: "integer or string", got: value)
        }
    }

    public func kubeJSON() -> JSON {
        switch self {
        case .int(let i): return .number(String(i))
        case .string(let s): return .string(s)
        }
    }

    public var description: String {
        switch self {
        case .int(let i): return String(i)
        case .string(let s): return s
        }
    }

    /// The value against a total, as intstr.GetScaledValueFromIntOrPercent does: `"25%"` of 10 is 3
    /// rounding up (2 down); an integer is itself; nil for a string that is not a percentage.
    public func scaled(total: Int, roundUp: Bool) -> Int? {
        switch self {
        case .int(let i): return Int(i)
        case .string(let s):
            guard s.hasSuffix("%"), let p = Int(s.dropLast()) else { return nil }
            let product = p * total
            return roundUp ? (product + 99) / 100 : product / 100
        }
    }

    public init(from decoder: any Decoder) throws { self = try IntOrString(kubeJSON: AnyJSON(from: decoder).value) }
    public func encode(to encoder: any Encoder) throws { try AnyJSON(kubeJSON()).encode(to: encoder) }
}

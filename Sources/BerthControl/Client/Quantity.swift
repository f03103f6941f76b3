import BerthAPI
import BerthKube

/// resource.Quantity, parsed by BerthKube (exactly, in integers); this module's untyped-JSON readers
/// (the scheduler's model, hollow nodes) call it through the overloads below until they read typed pods.
public typealias Quantity = BerthKube.Quantity

extension BerthKube.Quantity {
    /// The value × 1000 rounded up (CPU millicores) of a quantity string, or of a bare JSON number.
    public static func milli(_ j: JSON) -> Int64? {
        if let s = j.string { return milli(s) }
        // A bare number's text is a quantity too ("1.5", "2e3"), parsed exactly.
        if case .number(let text) = j { return milli(text) }
        return nil
    }

    /// The value rounded up (bytes, counts) of a quantity string, or of a bare JSON number.
    public static func units(_ j: JSON) -> Int64? {
        if let s = j.string { return units(s) }
        if case .number(let text) = j { return units(text) }
        return nil
    }
}

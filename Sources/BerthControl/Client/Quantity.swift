import BerthAPI
import Foundation

/// resource.Quantity text ("100m", "1.5", "512Mi", "1G", "2e3") as integers: CPU in millicores, the
/// rest in units (bytes, pods).
public enum Quantity {
    /// The value × 1000, rounded up (CPU millicores).
    public static func milli(_ s: String) -> Int64? { scaled(s, by: 1000) }
    /// The value, rounded up (bytes, counts).
    public static func units(_ s: String) -> Int64? { scaled(s, by: 1) }

    public static func milli(_ j: JSON) -> Int64? {
        if let s = j.string { return milli(s) }
        if let i = j.int { return i * 1000 }
        if let d = j.double { return Int64(exactly: (d * 1000).rounded(.up)) }
        return nil
    }
    public static func units(_ j: JSON) -> Int64? {
        if let s = j.string { return units(s) }
        if let i = j.int { return i }
        if let d = j.double { return Int64(exactly: d.rounded(.up)) }
        return nil
    }

    static func scaled(_ text: String, by factor: Double) -> Int64? {
        let s = text.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { return nil }
        let suffixes: [(String, Double)] = [
            ("Ki", 1024), ("Mi", 1048576), ("Gi", 1073741824), ("Ti", 1099511627776), ("Pi", 1125899906842624), ("Ei", 1152921504606846976),
            ("n", 1e-9), ("u", 1e-6), ("m", 1e-3), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18),
        ]
        var number = Substring(s)
        var multiplier = 1.0
        for (suffix, m) in suffixes where s.hasSuffix(suffix) {
            number = s.dropLast(suffix.count); multiplier = m; break
        }
        if multiplier == 1.0, let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }), let exp = Int(s[s.index(after: e)...]) {
            number = s[..<e]; multiplier = pow10(exp)
        }
        guard let v = Double(number) else { return nil }
        let value = v * multiplier * factor
        guard value.isFinite, abs(value) < 9e18 else { return nil }
        return Int64(value.rounded(.up))
    }
    private static func pow10(_ e: Int) -> Double {
        var r = 1.0
        for _ in 0..<abs(e) { r *= 10 }
        return e < 0 ? 1 / r : r
    }
}

import BerthJSON

extension MetaV1 {
    /// metav1.Duration: Go's time.Duration text (`"1h2m3s"`, `"1.5s"`, `"300ms"`), in nanoseconds.
    public struct Duration: KubeJSONCodable, Hashable, Comparable, Codable, CustomStringConvertible {
        public var nanoseconds: Int64

        public init(nanoseconds: Int64 = 0) { self.nanoseconds = nanoseconds }

        public static func < (a: Duration, b: Duration) -> Bool { a.nanoseconds < b.nanoseconds }

        /// Go's time.ParseDuration: a sequence of decimal numbers with units ns us µs ms s m h.
        public init?(_ text: String) {
            var s = Substring(text)
            var negative = false
            if s.first == "-" || s.first == "+" { negative = s.first == "-"; s = s.dropFirst() }
            if s == "0" { nanoseconds = 0; return }
            guard !s.isEmpty else { return nil }
            var total: Double = 0
            while !s.isEmpty {
                let number = s.prefix { $0.isNumber || $0 == "." }
                guard !number.isEmpty, let v = Double(number) else { return nil }
                s = s.dropFirst(number.count)
                let unit = s.prefix { !($0.isNumber || $0 == ".") }
                s = s.dropFirst(unit.count)
                let scale: Double
                switch unit {
                case "ns": scale = 1
                case "us", "µs", "μs": scale = 1e3
                case "ms": scale = 1e6
                case "s": scale = 1e9
                case "m": scale = 60e9
                case "h": scale = 3600e9
                default: return nil
                }
                total += v * scale
            }
            guard total < 9.2e18 else { return nil }
            nanoseconds = Int64(total.rounded()) * (negative ? -1 : 1)
        }

        /// As Go's Duration.String: `72h3m0.5s`, `1.5ms`, `0s`.
        public var description: String {
            if nanoseconds == 0 { return "0s" }
            let negative = nanoseconds < 0
            let u = nanoseconds.magnitude
            var out: String
            func fraction(_ v: UInt64, _ unit: UInt64) -> String {
                let whole = v / unit, rest = v % unit
                guard rest != 0 else { return String(whole) }
                var digits = String(rest)
                digits = String(repeating: "0", count: String(unit).count - 1 - digits.count) + digits
                while digits.hasSuffix("0") { digits.removeLast() }
                return "\(whole).\(digits)"
            }
            if u < 1_000 {
                out = "\(u)ns"
            } else if u < 1_000_000 {
                out = fraction(u, 1_000) + "µs"
            } else if u < 1_000_000_000 {
                out = fraction(u, 1_000_000) + "ms"
            } else {
                let h = u / 3_600_000_000_000, m = u / 60_000_000_000 % 60
                let s = fraction(u % 60_000_000_000, 1_000_000_000) + "s"
                out = h > 0 ? "\(h)h\(m)m\(s)" : m > 0 ? "\(m)m\(s)" : s
            }
            return negative ? "-" + out : out
        }

        public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
            switch value {
            case .null: nanoseconds = 0
            case .string(let s):
                guard let d = Duration(s) else { throw KubeJSONError(path: [], message: "invalid duration \"\(s)\"") }
                self = d
            default: throw .mismatch(expected: "duration string", got: value)
            }
        }

        public func kubeJSON() -> JSON { .string(description) }

        public init(from decoder: any Decoder) throws { self = try Duration(kubeJSON: AnyJSON(from: decoder).value) }
        public func encode(to encoder: any Encoder) throws { try AnyJSON(kubeJSON()).encode(to: encoder) }
    }
}

import BerthJSON

/// resource.Quantity: `"100m"`, `"1.5"`, `"512Mi"`, `"1G"`, `"2e3"` — a decimal number with a binary
/// (Ki…Ei), decimal (n u m k M G T P E) or exponent suffix.
///
/// The text is kept as written and written back unchanged, and read exactly, in integer arithmetic, by
/// ``milliValue`` and ``value``. Equality is of the text. ``canonical(_:)`` gives the form Go writes
/// (`1000m` as `1`, `1024Mi` as `1Gi`), which the API server stores.
public struct Quantity: KubeJSONCodable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var string: String

    public init(_ string: String = "0") { self.string = string }
    public init(stringLiteral value: String) { string = value }

    public var description: String { string }

    /// The value × 1000 rounded up, as MilliValue(): CPU in millicores. Nil if malformed or beyond Int64.
    public var milliValue: Int64? { Self.scaled(string, milli: true) }
    /// The value rounded up, as Value(): bytes, counts.
    public var value: Int64? { Self.scaled(string, milli: false) }

    /// `milli("100m")` is 100, `milli("1.5")` 1500.
    public static func milli(_ text: String) -> Int64? { scaled(text, milli: true) }
    /// `units("1Ki")` is 1024, `units("1.5")` 2 (rounded up).
    public static func units(_ text: String) -> Int64? { scaled(text, milli: false) }

    public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        switch value {
        case .null: string = "0"
        // Go's Quantity also accepts a bare JSON number.
        case .string(let s), .number(let s):
            guard Self.parse(s) != nil else {
                throw KubeJSONError(
                    path: [],
                    message:
                        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got \"\(s)\""
                )
            }
            string = s
        default: throw .mismatch(expected: "quantity string", got: value)
        }
    }

    public func kubeJSON() -> JSON { .string(string) }

    public init(from decoder: any Decoder) throws { self = try Quantity(kubeJSON: AnyJSON(from: decoder).value) }
    public func encode(to encoder: any Encoder) throws { try AnyJSON(kubeJSON()).encode(to: encoder) }

    /// A parsed quantity: ±digits × 10^exponent10 × 2^exponent2 (digits without the decimal point).
    struct Parsed {
        var negative: Bool
        var digits: [UInt8]
        var exponent10: Int
        var exponent2: Int
        /// Which family its suffix is from, which decides the canonical form's.
        var format: Format
    }

    /// resource.Format: a binary suffix (Ki…Ei), a decimal one (or none), or an exponent (`e3`).
    enum Format { case binarySI, decimalSI, decimalExponent }

    /// The text Go's Quantity writes for `text` (CanonicalizeBytes): the value rounded up to a nano, then
    /// a binary quantity of at least 1024 that is whole as the largest power of 1024 that divides it
    /// (`1536Mi`, `1Gi`); any other as an integer times the largest power of 1000 that keeps it whole,
    /// with its SI suffix (`500m`, `1500`, `2k`) or, written with an exponent, as `e3`, `e6`.
    /// Nil for text that is not a quantity, and for values past 64-bit arithmetic (kept as written).
    public static func canonical(_ text: String) -> String? {
        guard let p = parse(text), var mantissa = integer(p.digits) else { return nil }
        guard p.exponent2 < 63 else { return nil }
        let (binary, o) = mantissa.multipliedReportingOverflow(by: Int64(1) << p.exponent2)
        guard !o else { return nil }
        mantissa = binary
        var exponent = p.exponent10
        func normalize() {
            while mantissa != 0, mantissa % 10 == 0 {
                mantissa /= 10
                exponent += 1
            }
        }
        func power(_ n: Int) -> Int64? {
            var r: Int64 = 1
            for _ in 0..<n {
                let (m, o) = r.multipliedReportingOverflow(by: 10)
                if o { return nil }
                r = m
            }
            return r
        }
        normalize()
        if mantissa == 0 { return "0" }
        // Below a nano, rounded up (away from zero, as ParseQuantity rounds).
        if exponent < -9 {
            guard let divisor = power(-9 - exponent) else { return p.negative ? "-1n" : "1n" }
            mantissa = mantissa / divisor + (mantissa % divisor == 0 ? 0 : 1)
            exponent = -9
            normalize()
        }
        let sign = p.negative ? "-" : ""
        if p.format == .binarySI, exponent >= 0, let scale = power(exponent) {
            let (whole, o) = mantissa.multipliedReportingOverflow(by: scale)
            guard !o else { return nil }
            if whole >= 1024 {
                var value = whole
                var k = 0
                while k < 6, value >= 1024, value % 1024 == 0 {
                    value /= 1024
                    k += 1
                }
                return sign + String(value) + ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k]
            }
        }
        // Decimal: the largest multiple of 3 not above the exponent (SI suffixes stop at E, 10^18).
        var e3 = exponent >= 0 ? exponent / 3 * 3 : -((-exponent + 2) / 3 * 3)
        if p.format != .decimalExponent { e3 = min(e3, 18) }
        guard let scale = power(exponent - e3) else { return nil }
        let (scaled, o2) = mantissa.multipliedReportingOverflow(by: scale)
        guard !o2 else { return nil }
        let suffix: String
        if p.format == .decimalExponent {
            suffix = e3 == 0 ? "" : "e\(e3)"
        } else {
            suffix = [-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"][e3] ?? ""
        }
        return sign + String(scaled) + suffix
    }

    static func parse(_ text: String) -> Parsed? {
        var b = Array(text.utf8)[...]
        guard !b.isEmpty else { return nil }
        var negative = false
        if b.first == UInt8(ascii: "+") || b.first == UInt8(ascii: "-") {
            negative = b.first == UInt8(ascii: "-")
            b = b.dropFirst()
        }
        var digits: [UInt8] = []
        var exponent10 = 0
        var seenPoint = false
        var any = false
        while let c = b.first {
            if c >= 0x30, c <= 0x39 {
                digits.append(c - 0x30)
                if seenPoint { exponent10 -= 1 }
                any = true
            } else if c == UInt8(ascii: "."), !seenPoint {
                seenPoint = true
            } else {
                break
            }
            b = b.dropFirst()
        }
        guard any else { return nil }
        let suffix = String(decoding: b, as: UTF8.self)
        var exponent2 = 0
        var format = Format.decimalSI
        switch suffix {
        case "": break
        case "Ki": exponent2 = 10
        case "Mi": exponent2 = 20
        case "Gi": exponent2 = 30
        case "Ti": exponent2 = 40
        case "Pi": exponent2 = 50
        case "Ei": exponent2 = 60
        case "n": exponent10 -= 9
        case "u": exponent10 -= 6
        case "m": exponent10 -= 3
        case "k": exponent10 += 3
        case "M": exponent10 += 6
        case "G": exponent10 += 9
        case "T": exponent10 += 12
        case "P": exponent10 += 15
        case "E": exponent10 += 18
        default:
            guard let e = suffix.first, e == "e" || e == "E", let exp = Int(suffix.dropFirst()),
                suffix.count > 1, abs(exp) < 1000
            else { return nil }
            exponent10 += exp
            format = .decimalExponent
        }
        if exponent2 > 0 { format = .binarySI }
        // Leading zeros carry nothing; trailing ones move into the exponent.
        while digits.count > 1, digits.first == 0 { digits.removeFirst() }
        while digits.count > 1, digits.last == 0 { digits.removeLast(); exponent10 += 1 }
        return Parsed(
            negative: negative, digits: digits, exponent10: exponent10, exponent2: exponent2, format: format)
    }

    /// The decimal digits as one integer; nil past Int64.
    static func integer(_ digits: [UInt8]) -> Int64? {
        var value: Int64 = 0
        for d in digits {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(d))
            guard !o1, !o2 else { return nil }
            value = a
        }
        return value
    }

    /// ceil(value × 1000) or ceil(value), exactly; nil past Int64.
    static func scaled(_ text: String, milli: Bool) -> Int64? {
        guard let p = parse(text) else { return nil }
        if p.digits == [0] { return 0 }
        let e10 = p.exponent10 + (milli ? 3 : 0)
        // The integer part of digits × 10^e10, and whether a fraction was cut off.
        var whole: Int64 = 0
        var cut = false
        let kept = p.digits.count + min(e10, 0)
        for (i, d) in p.digits.enumerated() {
            if i < kept {
                let (m, o1) = whole.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(d))
                guard !o1, !o2 else { return nil }
                whole = a
            } else if d != 0 {
                cut = true
            }
        }
        for _ in 0..<max(e10, 0) {
            let (m, o) = whole.multipliedReportingOverflow(by: 10)
            guard !o else { return nil }
            whole = m
        }
        // A binary suffix multiplies after the decimal cut: 1.5Ki is 1536 exactly, so redo it exactly.
        if p.exponent2 > 0 {
            if e10 < 0 {
                // digits × 2^e2 / 10^-e10, rounded up.
                guard let numerator = integer(p.digits) else { return nil }
                let (n, o) = numerator.multipliedReportingOverflow(by: Int64(1) << p.exponent2)
                guard !o, p.exponent2 < 63 else { return nil }
                var denominator: Int64 = 1
                for _ in 0..<(-e10) {
                    let (m, o) = denominator.multipliedReportingOverflow(by: 10)
                    guard !o else { return nil }
                    denominator = m
                }
                whole = n / denominator
                cut = n % denominator != 0
            } else {
                guard p.exponent2 < 63 else { return nil }
                let (m, o) = whole.multipliedReportingOverflow(by: Int64(1) << p.exponent2)
                guard !o else { return nil }
                whole = m
            }
        }
        // Rounded up (towards +∞), as Quantity.ScaledValue rounds.
        if p.negative { return -whole }
        if cut {
            let (a, o) = whole.addingReportingOverflow(1)
            guard !o else { return nil }
            return a
        }
        return whole
    }
}

import BerthJSON

/// RFC 3339 in UTC without Foundation: civil-date arithmetic (days from 1970-01-01, proleptic
/// Gregorian), so decoding a pod's timestamps costs no formatter and no time-zone database.
public enum RFC3339 {
    /// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    public static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Seconds since the epoch and the fraction in microseconds (truncated), or nil if malformed.
    static func parse(_ text: String) -> (seconds: Int64, micros: Int64)? {
        let b = Array(text.utf8)
        guard b.count >= 20 else { return nil }
        func num(_ from: Int, _ n: Int) -> Int64? {
            var v: Int64 = 0
            for i in from..<from + n {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(b[i] - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), b[4] == 0x2D, let mo = num(5, 2), b[7] == 0x2D, let d = num(8, 2),
            b[10] == 0x54 || b[10] == 0x74, let h = num(11, 2), b[13] == 0x3A, let mi = num(14, 2),
            b[16] == 0x3A, let s = num(17, 2),
            (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61
        else { return nil }
        var i = 19
        var micros: Int64 = 0
        if b[i] == 0x2E {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if digits < 6 { micros = micros * 10 + Int64(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 6) { micros *= 10 }
        }
        guard i < b.count else { return nil }
        var offset: Int64 = 0
        if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D, i + 6 == b.count, let oh = num(i + 1, 2), b[i + 3] == 0x3A,
            let om = num(i + 4, 2)
        {
            offset = (oh * 3600 + om * 60) * (b[i] == 0x2D ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        return (days(year: y, month: mo, day: d) * 86400 + h * 3600 + mi * 60 + s - offset, micros)
    }

    /// `2026-12-04T01:56:08Z`, or with `micros`, `2026-12-04T01:56:08.123456Z`.
    static func format(seconds: Int64, micros: Int64?) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let rest = seconds - days * 86400
        let (y, mo, d) = civil(days: days)
        var out = [UInt8]()
        out.reserveCapacity(27)
        func put(_ v: Int64, _ n: Int) {
            var digits = [UInt8](repeating: 0x30, count: n)
            var x = v
            for i in stride(from: n - 1, through: 0, by: -1) { digits[i] = UInt8(0x30 + x % 10); x /= 10 }
            out += digits
        }
        put(y, 4); out.append(0x2D); put(mo, 2); out.append(0x2D); put(d, 2); out.append(0x54)
        put(rest / 3600, 2); out.append(0x3A); put(rest / 60 % 60, 2); out.append(0x3A); put(rest % 60, 2)
        if let micros { out.append(0x2E); put(micros, 6) }
        out.append(0x5A)
        return String(decoding: out, as: UTF8.self)
    }
}

extension MetaV1 {
    /// metav1.Time: RFC 3339 with whole seconds, in UTC (`2026-12-04T01:56:08Z`). A fraction in the
    /// input is dropped, as Go's marshalling drops it. Go's zero time is written `null` (the famous
    /// `creationTimestamp: null`), so generated fields of type Time are optional and nil is `null`.
    public struct Time: KubeJSONCodable, Hashable, Comparable, Codable, CustomStringConvertible {
        public var secondsSince1970: Int64

        public init(secondsSince1970: Int64) { self.secondsSince1970 = secondsSince1970 }

        /// Go's zero `time.Time`, 0001-01-01T00:00:00Z, which metav1.Time writes as `null`.
        public static let zero = Time(secondsSince1970: -62135596800)

        public init?(rfc3339 text: String) {
            guard let parsed = RFC3339.parse(text) else { return nil }
            secondsSince1970 = parsed.seconds
        }

        public var rfc3339: String { RFC3339.format(seconds: secondsSince1970, micros: nil) }
        public var description: String { rfc3339 }

        public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
            switch value {
            case .null: self = .zero
            case .string(let s):
                guard let t = Time(rfc3339: s) else {
                    throw KubeJSONError(path: [], message: "invalid RFC 3339 time \"\(s)\"")
                }
                self = t
            default: throw .mismatch(expected: "RFC 3339 time string", got: value)
            }
        }

        public func kubeJSON() -> JSON { self == .zero ? .null : .string(rfc3339) }

        public static func < (a: Time, b: Time) -> Bool { a.secondsSince1970 < b.secondsSince1970 }

        public init(from decoder: any Decoder) throws { self = try Time(kubeJSON: AnyJSON(from: decoder).value) }
        public func encode(to encoder: any Encoder) throws { try AnyJSON(kubeJSON()).encode(to: encoder) }
    }

    /// metav1.MicroTime: RFC 3339 with exactly six fractional digits, in UTC (client-go refuses fewer).
    public struct MicroTime: KubeJSONCodable, Hashable, Comparable, Codable, CustomStringConvertible {
        public var microsecondsSince1970: Int64

        public init(microsecondsSince1970: Int64) { self.microsecondsSince1970 = microsecondsSince1970 }

        public static let zero = MicroTime(microsecondsSince1970: -62135596800 * 1_000_000)

        public init?(rfc3339 text: String) {
            guard let parsed = RFC3339.parse(text) else { return nil }
            microsecondsSince1970 = parsed.seconds * 1_000_000 + parsed.micros
        }

        public var rfc3339: String {
            let s =
                microsecondsSince1970 >= 0
                ? microsecondsSince1970 / 1_000_000 : (microsecondsSince1970 - 999_999) / 1_000_000
            return RFC3339.format(seconds: s, micros: microsecondsSince1970 - s * 1_000_000)
        }
        public var description: String { rfc3339 }

        public init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
            switch value {
            case .null: self = .zero
            case .string(let s):
                guard let t = MicroTime(rfc3339: s) else {
                    throw KubeJSONError(path: [], message: "invalid RFC 3339 time \"\(s)\"")
                }
                self = t
            default: throw .mismatch(expected: "RFC 3339 time string", got: value)
            }
        }

        public func kubeJSON() -> JSON { self == .zero ? .null : .string(rfc3339) }

        public static func < (a: MicroTime, b: MicroTime) -> Bool { a.microsecondsSince1970 < b.microsecondsSince1970 }

        public init(from decoder: any Decoder) throws { self = try MicroTime(kubeJSON: AnyJSON(from: decoder).value) }
        public func encode(to encoder: any Encoder) throws { try AnyJSON(kubeJSON()).encode(to: encoder) }
    }
}

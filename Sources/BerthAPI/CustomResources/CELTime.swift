import Foundation

/// A CEL timestamp or duration. Berth's CEL values are JSON, so both travel through the evaluator as
/// a tagged object (`{"@cel":"google.protobuf.Duration","nanos":…}`): as plain nanoseconds they could
/// not be told apart, and `getHours()` means hours of the day on a timestamp but whole hours on a
/// duration. The tag is the protobuf type name CEL gives them; no Kubernetes object has such a member.
enum CELTime: Equatable {
    /// Nanoseconds since the Unix epoch.
    case timestamp(Int64)
    case duration(Int64)

    static let tag = "@cel"
    static let timestampType = "google.protobuf.Timestamp"
    static let durationType = "google.protobuf.Duration"

    init?(_ value: JSON) {
        guard case .object(let members) = value, members.count == 2, let type = members[Self.tag]?.string,
            let nanos = members["nanos"]?.int
        else { return nil }
        switch type {
        case Self.timestampType: self = .timestamp(nanos)
        case Self.durationType: self = .duration(nanos)
        default: return nil
        }
    }

    var json: JSON {
        switch self {
        case .timestamp(let n): return .object([Self.tag: .string(Self.timestampType), "nanos": .int(n)])
        case .duration(let n): return .object([Self.tag: .string(Self.durationType), "nanos": .int(n)])
        }
    }

    var typeName: String {
        switch self {
        case .timestamp: return Self.timestampType
        case .duration: return Self.durationType
        }
    }

    /// `string(t)` as cel-go writes it: RFC 3339 in UTC with as many fractional digits as needed; a
    /// duration as seconds (`3600s`, `1.5s`).
    var text: String {
        switch self {
        case .duration(let n):
            let seconds = Double(n) / 1e9
            return (seconds == seconds.rounded() ? String(Int64(seconds)) : String(seconds)) + "s"
        case .timestamp(let n):
            let (seconds, fraction) = Self.split(n)
            let c = Self.calendar(TimeZone(identifier: "UTC")!).dateComponents(
                [.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: Double(seconds)))
            var out = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0,
                c.minute ?? 0, c.second ?? 0)
            if fraction != 0 {
                var digits = String(format: "%09d", fraction)
                while digits.hasSuffix("0") { digits.removeLast() }
                out += "." + digits
            }
            return out + "Z"
        }
    }

    /// Whole seconds (rounded down) and the nanoseconds within the second (never negative).
    static func split(_ nanos: Int64) -> (seconds: Int64, nanos: Int64) {
        var seconds = nanos / 1_000_000_000, rest = nanos % 1_000_000_000
        if rest < 0 {
            seconds -= 1
            rest += 1_000_000_000
        }
        return (seconds, rest)
    }

    static func calendar(_ zone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar
    }

    /// cel-go's time zone argument: an IANA name (`America/New_York`, `UTC`) or an offset from UTC
    /// (`+05:30`, `-08:00`).
    static func zone(_ text: String) throws -> TimeZone {
        if let colon = text.firstIndex(of: ":") {
            let sign = text.hasPrefix("-") ? -1 : 1
            let hours = text[..<colon].drop { $0 == "+" || $0 == "-" }, minutes = text[text.index(after: colon)...]
            guard let h = Int(hours), let m = Int(minutes), (0..<60).contains(m), (0...23).contains(h),
                let zone = TimeZone(secondsFromGMT: sign * (h * 3600 + m * 60))
            else { throw CELError("unknown time zone \(text)") }
            return zone
        }
        guard let zone = TimeZone(identifier: text) else { throw CELError("unknown time zone \(text)") }
        return zone
    }

    /// RFC 3339 text as nanoseconds since the epoch. APITime's Date holds the fraction only to a
    /// double's precision (a quarter microsecond today), so the fraction's digits are read here.
    static func timestampNanos(_ text: String) -> Int64? {
        guard let date = APITime.parse(text) else { return nil }
        var fraction: Int64 = 0
        let bytes = Array(text.utf8)
        if bytes.count > 20, bytes[19] == UInt8(ascii: ".") {
            let digits = bytes[20...].prefix { (0x30...0x39).contains($0) }.prefix(9)
            for digit in digits { fraction = fraction * 10 + Int64(digit - 0x30) }
            for _ in digits.count..<9 { fraction *= 10 }
        }
        let seconds = (date.timeIntervalSince1970 - Double(fraction) / 1e9).rounded()
        guard abs(seconds) < 9.2e9 else { return nil }
        return Int64(seconds) * 1_000_000_000 + fraction
    }

    /// Go's time.ParseDuration: a sequence of decimal numbers with units (h, m, s, ms, us/µs, ns).
    static func durationNanos(_ text: String) -> Int64? {
        var rest = Substring(text)
        var sign: Double = 1
        if rest.hasPrefix("-") {
            sign = -1; rest = rest.dropFirst()
        } else if rest.hasPrefix("+") {
            rest = rest.dropFirst()
        }
        if rest == "0" { return 0 }
        guard !rest.isEmpty else { return nil }
        let units: [(String, Double)] = [
            ("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
        ]
        var total: Double = 0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) && !(($0.0 == "m") && rest.hasPrefix("ms")) })
            else { return nil }
            rest = rest.dropFirst(unit.0.count)
            total += value * unit.1
        }
        guard abs(total) < 9.2e18 else { return nil }
        return Int64(sign * total)
    }
}

extension CELEvaluator {
    /// The time functions and accessors of CEL's standard library, nil when `name` is not one of them:
    /// `duration('1h')`, `timestamp('2026-12-06T10:00:00Z')`, and on a duration getHours, getMinutes,
    /// getSeconds and getMilliseconds (whole units of the duration); on a timestamp getFullYear,
    /// getMonth (0-11), getDate (1-31), getDayOfMonth (0-30), getDayOfYear (0-365), getDayOfWeek
    /// (0 is Sunday), getHours, getMinutes, getSeconds and getMilliseconds, in UTC or the time zone given.
    static func timeLibrary(_ name: String, target: JSON?, args: [JSON]) throws -> JSON? {
        switch (name, target, args.count) {
        case ("duration", nil, 1):
            if case .duration? = CELTime(args[0]) { return args[0] }
            guard let text = args[0].string, let nanos = CELTime.durationNanos(text) else {
                throw CELError("invalid duration: \(args[0].text)")
            }
            return CELTime.duration(nanos).json
        case ("timestamp", nil, 1):
            if case .timestamp? = CELTime(args[0]) { return args[0] }
            if let seconds = args[0].int, !args[0].isFloatingPoint {
                let (nanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
                guard !overflow else { throw CELError("timestamp out of range: \(seconds)") }
                return CELTime.timestamp(nanos).json
            }
            guard let text = args[0].string, let nanos = CELTime.timestampNanos(text) else {
                throw CELError("invalid timestamp: \(args[0].text)")
            }
            return CELTime.timestamp(nanos).json
        default: break
        }
        guard let target, let time = CELTime(target) else { return nil }
        switch time {
        case .duration(let n):
            guard args.isEmpty else { return nil }
            switch name {
            case "getHours": return .int(n / 3_600_000_000_000)
            case "getMinutes": return .int(n / 60_000_000_000)
            case "getSeconds": return .int(n / 1_000_000_000)
            case "getMilliseconds": return .int(n / 1_000_000)
            default: return nil
            }
        case .timestamp(let n):
            guard args.count <= 1 else { return nil }
            let accessors: [String: Calendar.Component] = [
                "getFullYear": .year, "getMonth": .month, "getDate": .day, "getDayOfMonth": .day,
                "getDayOfWeek": .weekday, "getHours": .hour, "getMinutes": .minute, "getSeconds": .second,
            ]
            guard accessors[name] != nil || name == "getDayOfYear" || name == "getMilliseconds" else { return nil }
            let (seconds, fraction) = CELTime.split(n)
            if name == "getMilliseconds" { return .int(fraction / 1_000_000) }
            var zone = TimeZone(identifier: "UTC")!
            if let zoneArg = args.first {
                guard let text = zoneArg.string else { throw CELError("no such overload: \(name)") }
                zone = try CELTime.zone(text)
            }
            let calendar = CELTime.calendar(zone)
            let date = Date(timeIntervalSince1970: Double(seconds))
            if name == "getDayOfYear" {
                return .int(Int64((calendar.ordinality(of: .day, in: .year, for: date) ?? 1) - 1))
            }
            guard let component = accessors[name] else { return nil }
            let value = calendar.component(component, from: date)
            switch name {
            // CEL counts months and days of the month from 0, days of the week from Sunday = 0.
            case "getMonth", "getDayOfMonth", "getDayOfWeek": return .int(Int64(value - 1))
            default: return .int(Int64(value))
            }
        }
    }

    /// `+` and `-` of timestamps and durations; nil when neither side is one.
    static func timeArithmetic(_ op: String, _ x: JSON, _ y: JSON) throws -> JSON? {
        let a = CELTime(x), b = CELTime(y)
        guard a != nil || b != nil else { return nil }
        func add(_ p: Int64, _ q: Int64, negate: Bool = false) throws -> Int64 {
            let (r, o) = negate ? p.subtractingReportingOverflow(q) : p.addingReportingOverflow(q)
            if o { throw CELError("integer overflow") }
            return r
        }
        switch (op, a, b) {
        case ("+", .timestamp(let t)?, .duration(let d)?), ("+", .duration(let d)?, .timestamp(let t)?):
            return CELTime.timestamp(try add(t, d)).json
        case ("+", .duration(let p)?, .duration(let q)?): return CELTime.duration(try add(p, q)).json
        case ("-", .timestamp(let t)?, .duration(let d)?): return CELTime.timestamp(try add(t, d, negate: true)).json
        case ("-", .timestamp(let p)?, .timestamp(let q)?): return CELTime.duration(try add(p, q, negate: true)).json
        case ("-", .duration(let p)?, .duration(let q)?): return CELTime.duration(try add(p, q, negate: true)).json
        default: throw CELError("no such overload: \(typeName(x)) \(op) \(typeName(y))")
        }
    }
}

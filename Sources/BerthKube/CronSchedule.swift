import Foundation

/// A cron schedule as CronJobs spell it (robfig/cron's standard parser, which Kubernetes uses): five
/// fields — minute, hour, day of month, month, day of week — each `*`, `?`, numbers, ranges, lists and
/// `/step`s, months and weekdays also by name (JAN, MON); or a descriptor (@yearly, @annually,
/// @monthly, @weekly, @daily, @midnight, @hourly, @every 5m). Times are read in a time zone.
public struct CronSchedule: Sendable, Equatable {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Each field's allowed values as bits; `star` when it was `*` or `?` (which changes how day of
    /// month and day of week combine).
    struct Field: Sendable, Equatable {
        var bits: UInt64
        var star: Bool
        func contains(_ value: Int) -> Bool { bits & (1 << UInt64(value)) != 0 }
    }

    var minute = Field(bits: 0, star: false)
    var hour = Field(bits: 0, star: false)
    var dayOfMonth = Field(bits: 0, star: false)
    var month = Field(bits: 0, star: false)
    var dayOfWeek = Field(bits: 0, star: false)
    /// `@every D`: a fixed interval instead of fields.
    var every: TimeInterval?

    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    public init(_ text: String) throws(ParseError) {
        let spec = text.trimmingCharacters(in: .whitespaces)
        if spec.isEmpty { throw ParseError(description: "empty spec string") }
        if spec.hasPrefix("@") {
            self = try Self.descriptor(spec)
            return
        }
        let fields = spec.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ParseError(description: "expected exactly 5 fields, found \(fields.count): \(spec)")
        }
        minute = try Self.field(fields[0], 0, 59, names: [])
        hour = try Self.field(fields[1], 0, 23, names: [])
        dayOfMonth = try Self.field(fields[2], 1, 31, names: [])
        month = try Self.field(fields[3], 1, 12, names: Self.monthNames, namesFrom: 1)
        dayOfWeek = try Self.field(fields[4], 0, 6, names: Self.dayNames)
    }

    private init() {}

    private static func descriptor(_ descriptor: String) throws(ParseError) -> CronSchedule {
        let all = { (low: Int, high: Int) in Field(bits: Self.range(low, high, 1), star: true) }
        func at(_ value: Int) -> Field { Field(bits: 1 << UInt64(value), star: false) }
        var schedule = CronSchedule()
        schedule.minute = at(0)
        schedule.hour = at(0)
        schedule.dayOfMonth = all(1, 31)
        schedule.month = all(1, 12)
        schedule.dayOfWeek = all(0, 6)
        switch descriptor {
        case "@yearly", "@annually":
            schedule.dayOfMonth = at(1)
            schedule.month = at(1)
        case "@monthly": schedule.dayOfMonth = at(1)
        case "@weekly": schedule.dayOfWeek = at(0)
        case "@daily", "@midnight": break
        case "@hourly": schedule.hour = all(0, 23)
        default:
            guard descriptor.hasPrefix("@every "), let interval = Self.duration(String(descriptor.dropFirst(7))),
                interval > 0
            else {
                throw ParseError(description: "unrecognized descriptor: \(descriptor)")
            }
            schedule.every = max(1, interval.rounded(.down))
        }
        return schedule
    }

    /// Go's time.ParseDuration for the units a schedule uses (`1h30m`, `90s`).
    static func duration(_ text: String) -> TimeInterval? {
        var total: TimeInterval = 0
        var number = ""
        var any = false
        for character in text {
            if character.isNumber || character == "." {
                number.append(character)
                continue
            }
            let unit: TimeInterval
            switch character {
            case "h": unit = 3600
            case "m": unit = 60
            case "s": unit = 1
            default: return nil
            }
            guard let value = Double(number) else { return nil }
            total += value * unit
            number = ""
            any = true
        }
        return any && number.isEmpty ? total : nil
    }

    static func range(_ low: Int, _ high: Int, _ step: Int) -> UInt64 {
        stride(from: low, through: high, by: step).reduce(UInt64(0)) { $0 | (1 << UInt64($1)) }
    }

    static func field(_ text: String, _ low: Int, _ high: Int, names: [String], namesFrom: Int = 0) throws(ParseError)
        -> Field
    {
        var bits: UInt64 = 0
        var star = false
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            let stepParts = part.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard stepParts.count <= 2 else { throw ParseError(description: "too many slashes: \(part)") }
            var start: Int, end: Int
            let rangeText = stepParts[0]
            if rangeText == "*" || rangeText == "?" {
                (start, end) = (low, high)
                if stepParts.count == 1 { star = true }
            } else {
                let bounds = rangeText.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
                guard bounds.count <= 2 else { throw ParseError(description: "too many hyphens: \(rangeText)") }
                start = try value(bounds[0], names: names, namesFrom: namesFrom)
                end = bounds.count == 2 ? try value(bounds[1], names: names, namesFrom: namesFrom) : start
            }
            var step = 1
            if stepParts.count == 2 {
                guard let parsed = Int(stepParts[1]), parsed > 0 else {
                    throw ParseError(description: "failed to parse int from \(stepParts[1])")
                }
                step = parsed
                // `N/step` runs from N to the end of the field.
                if !rangeText.contains("-") && rangeText != "*" && rangeText != "?" { end = high }
            }
            if start < low {
                throw ParseError(description: "beginning of range (\(start)) below minimum (\(low)): \(part)")
            }
            if end > high { throw ParseError(description: "end of range (\(end)) above maximum (\(high)): \(part)") }
            if start > end {
                throw ParseError(description: "beginning of range (\(start)) beyond end of range (\(end)): \(part)")
            }
            bits |= range(start, end, step)
        }
        return Field(bits: bits, star: star)
    }

    static func value(_ text: String, names: [String], namesFrom: Int) throws(ParseError) -> Int {
        if let index = names.firstIndex(of: text.lowercased()) { return index + namesFrom }
        guard let number = Int(text), number >= 0 else {
            throw ParseError(description: "failed to parse int from \(text)")
        }
        return number
    }

    /// robfig's dayMatches: when either day field is `*` both must match, else either may.
    func dayMatches(day: Int, weekday: Int) -> Bool {
        let dom = dayOfMonth.contains(day), dow = dayOfWeek.contains(weekday)
        return dayOfMonth.star || dayOfWeek.star ? dom && dow : dom || dow
    }

    /// The first scheduled time strictly after `date` in `zone` (nil if none within five years, as for
    /// 30 February).
    public func next(after date: Date, in zone: TimeZone) -> Date? {
        if let every { return Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down) + every) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        // From the start of the next minute (zones differ from UTC by whole minutes).
        var t = Date(timeIntervalSince1970: ((date.timeIntervalSince1970 / 60).rounded(.down) + 1) * 60)
        let limit = date.addingTimeInterval(5 * 366 * 86400)
        while t < limit {
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: t)
            guard let year = c.year, let m = c.month, let d = c.day, let h = c.hour, let minute = c.minute,
                let weekday = c.weekday
            else { return nil }
            if !month.contains(m) {
                let first = calendar.date(from: DateComponents(year: year, month: m, day: 1)) ?? t
                t = calendar.date(byAdding: .month, value: 1, to: first) ?? limit
                continue
            }
            if !dayMatches(day: d, weekday: weekday - 1) {
                let start = calendar.startOfDay(for: t)
                t = calendar.date(byAdding: .day, value: 1, to: start) ?? limit
                continue
            }
            if !hour.contains(h) {
                let top = calendar.date(bySettingHour: h, minute: 0, second: 0, of: t) ?? t
                t = calendar.date(byAdding: .hour, value: 1, to: top) ?? limit
                continue
            }
            if !self.minute.contains(minute) {
                t = calendar.date(byAdding: .minute, value: 1, to: t) ?? limit
                continue
            }
            return t
        }
        return nil
    }
}

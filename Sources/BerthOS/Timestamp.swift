#if canImport(Glibc)
import Glibc
#endif

/// Times as docker and runc write them (RFC 3339 with nanoseconds, UTC, no Foundation) and the clocks the
/// engine and the monitor wait on.
public enum Timestamp {
    /// Now, as Go's RFC3339Nano (`2026-12-03T11:44:25.1234567Z`: trailing zeros of the fraction dropped),
    /// or with all nine digits (`fixedNanoseconds`, the runtime's state files and log lines).
    public static func now(fixedNanoseconds: Bool = false) -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return format(seconds: Int(time.tv_sec), nanoseconds: Int(time.tv_nsec), fixedNanoseconds: fixedNanoseconds)
    }

    public static func format(seconds: Int, nanoseconds: Int = 0, fixedNanoseconds: Bool = false) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var fraction = ""
        if nanoseconds > 0 || fixedNanoseconds {
            fraction = String(nanoseconds)
            fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
            while !fixedNanoseconds && fraction.hasSuffix("0") { fraction.removeLast() }
            fraction = "." + fraction
        }
        let year = String(parts.tm_year + 1900)
        return
            "\(String(repeating: "0", count: max(0, 4 - year.count)) + year)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))\(fraction)Z"
    }

    /// Seconds and nanoseconds since 1970 of an RFC 3339 time (`Z` or a numeric offset), nil if malformed.
    public static func parse(_ text: String) -> (seconds: Int, nanoseconds: Int)? {
        let b = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var v = 0
            for i in range { guard (48...57).contains(b[i]) else { return nil }; v = v * 10 + Int(b[i] - 48) }
            return v
        }
        guard b.count >= 20, let year = number(0..<4), b[4] == 45, let month = number(5..<7), b[7] == 45,
            let day = number(8..<10), b[10] == 84 || b[10] == 116 || b[10] == 32, let hour = number(11..<13),
            b[13] == 58,
            let minute = number(14..<16), b[16] == 58, let second = number(17..<19)
        else { return nil }
        var i = 19
        var nanos = 0
        if i < b.count, b[i] == 46 {
            i += 1
            var digits = 0
            while i < b.count, (48...57).contains(b[i]) {
                if digits < 9 { nanos = nanos * 10 + Int(b[i] - 48); digits += 1 }
                i += 1
            }
            for _ in digits..<9 { nanos *= 10 }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, let h = number((i + 1)..<(i + 3)), i + 3 < b.count, b[i + 3] == 58,
            let m = number((i + 4)..<(i + 6))
        {
            offset = (h * 3600 + m * 60) * (b[i] == 43 ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        return (daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset, nanos)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// Seconds from one RFC 3339 time to another.
    public static func seconds(between start: String, and end: String) -> Double? {
        guard let a = parse(start), let b = parse(end) else { return nil }
        return Double(b.seconds - a.seconds) + Double(b.nanoseconds - a.nanoseconds) / 1e9
    }

    /// Seconds since an unspecified start, for timeouts.
    public static func monotonic() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Blocks this thread (the restart back-off in a monitor's exit command, where nothing else runs).
    public static func sleep(seconds: Double) {
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

import BerthKube
import Foundation
import Testing

/// Cron schedules as CronJobs spell them (robfig/cron's standard parser): fields, names, steps,
/// descriptors, day-of-month/day-of-week combination, time zones, and the parser's errors.
struct CronScheduleTests {
    let utc = TimeZone(identifier: "UTC")!

    func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    func next(_ spec: String, after text: String, in zone: TimeZone? = nil) throws -> String? {
        let schedule = try CronSchedule(spec)
        guard let next = schedule.next(after: date(text), in: zone ?? utc) else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = zone ?? utc
        return formatter.string(from: next)
    }

    @Test func fieldsStepsAndNames() throws {
        #expect(try next("* * * * *", after: "2026-12-05T22:30:15Z") == "2026-12-05T22:31:00Z")
        #expect(try next("*/15 * * * *", after: "2026-12-05T22:30:00Z") == "2026-12-05T22:45:00Z")
        #expect(try next("5 4 * * SUN", after: "2026-12-05T22:30:00Z") == "2026-12-06T04:05:00Z")
        #expect(try next("0 0 1 JAN-MAR *", after: "2026-12-05T00:00:00Z") == "2027-01-01T00:00:00Z")
        #expect(try next("30 9 * * mon-fri", after: "2026-12-05T10:00:00Z") == "2026-12-07T09:30:00Z")
        #expect(try next("0 12 10/10 * ?", after: "2026-12-05T00:00:00Z") == "2026-12-10T12:00:00Z")
        #expect(try next("0,30 8-9 * * *", after: "2026-12-05T08:30:00Z") == "2026-12-05T09:00:00Z")
        // Both day fields restricted: either matches (the 13th, or a Friday).
        #expect(try next("0 0 13 * 5", after: "2026-12-05T00:00:00Z") == "2026-12-11T00:00:00Z")
        // One of them `*`: both must (a Friday that is the 13th).
        #expect(try next("0 0 13 * *", after: "2026-12-05T00:00:00Z") == "2026-12-13T00:00:00Z")
        #expect(try next("0 0 30 2 *", after: "2026-12-05T00:00:00Z") == nil)
    }

    @Test func descriptorsAndZones() throws {
        #expect(try next("@hourly", after: "2026-12-05T22:30:00Z") == "2026-12-05T23:00:00Z")
        #expect(try next("@daily", after: "2026-12-05T22:30:00Z") == "2026-12-06T00:00:00Z")
        #expect(try next("@weekly", after: "2026-12-05T22:30:00Z") == "2026-12-06T00:00:00Z")
        #expect(try next("@monthly", after: "2026-12-05T22:30:00Z") == "2027-01-01T00:00:00Z")
        #expect(try next("@yearly", after: "2026-12-05T22:30:00Z") == "2027-01-01T00:00:00Z")
        #expect(try next("@every 90s", after: "2026-12-05T22:30:00Z") == "2026-12-05T22:31:30Z")
        // 09:00 in Tokyo is 00:00 UTC.
        let tokyo = TimeZone(identifier: "Asia/Tokyo")!
        #expect(try next("0 9 * * *", after: "2026-12-05T22:30:00Z", in: tokyo) == "2026-12-06T09:00:00+09:00")
    }

    @Test func badSchedulesSayWhy() {
        let cases = [
            ("", "empty spec string"), ("* * * *", "expected exactly 5 fields, found 4: * * * *"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"), ("* * * * 7", "above maximum (6)"),
            ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
            ("*/0 * * * *", "failed to parse int from 0"), ("@fortnightly", "unrecognized descriptor: @fortnightly"),
            ("a * * * *", "failed to parse int from a"),
        ]
        for (spec, message) in cases {
            let error = #expect(throws: CronSchedule.ParseError.self, "\(spec)") { try CronSchedule(spec) }
            #expect(error?.description.contains(message) == true, "\(spec): \(String(describing: error))")
        }
    }
}

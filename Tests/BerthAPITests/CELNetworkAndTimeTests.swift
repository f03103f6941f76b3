@testable import BerthAPI
import Testing

/// CEL's duration and timestamp accessors, without a server.
@Suite("CEL time library")
struct CELNetworkAndTimeTests {
    func eval(_ rule: String) throws -> JSON {
        try CELEvaluator(variables: [:]).eval(try CELParser.parse(rule))
    }

    /// The message of the CEL error `rule` fails with ("" when it does not fail).
    func failure(_ rule: String) -> String {
        do {
            _ = try eval(rule)
            return ""
        } catch { return "\(error)" }
    }

    @Test func durationsTellTheirWholeUnits() throws {
        #expect(try eval("duration('1h30m').getHours()") == 1)
        #expect(try eval("duration('1h30m').getMinutes()") == 90)
        #expect(try eval("duration('1h30m').getSeconds()") == 5400)
        #expect(try eval("duration('1.5s').getMilliseconds()") == 1500)
        #expect(try eval("duration('-90m').getHours()") == -1)
        #expect(try eval("string(duration('1h'))") == "3600s")
        #expect(try eval("string(duration('1500ms'))") == "1.5s")
        #expect(try eval("duration('1h') + duration('30m') == duration('90m')") == true)
        #expect(try eval("duration('1h') - duration('90m') < duration('0s')") == true)
        #expect(failure("duration('forever')") == #"invalid duration: "forever""#)
        #expect(failure("duration('1h').getFullYear()").contains("found no matching overload"))
    }

    @Test func timestampsTellTheirCalendarFieldsInUTCOrAZone() throws {
        let t = "timestamp('2026-03-01T23:45:30.250Z')"
        #expect(try eval("\(t).getFullYear()") == 2026)
        #expect(try eval("\(t).getMonth()") == 2)
        #expect(try eval("\(t).getDayOfMonth()") == 0)
        #expect(try eval("\(t).getDate()") == 1)
        #expect(try eval("\(t).getDayOfYear()") == 59)
        #expect(try eval("\(t).getDayOfWeek()") == 0)
        #expect(try eval("\(t).getHours()") == 23)
        #expect(try eval("\(t).getMinutes()") == 45)
        #expect(try eval("\(t).getSeconds()") == 30)
        #expect(try eval("\(t).getMilliseconds()") == 250)
        // In another zone the day (and with it month and year fields) may be another.
        #expect(try eval("\(t).getHours('+02:00')") == 1)
        #expect(try eval("\(t).getDayOfWeek('+02:00')") == 1)
        #expect(try eval("\(t).getDayOfMonth('-05:30')") == 0)
        #expect(try eval("\(t).getHours('-05:30')") == 18)
        #expect(try eval("\(t).getMinutes('-05:30')") == 15)
        #expect(try eval("\(t).getHours('Asia/Tokyo')") == 8)
        #expect(try eval("\(t).getMonth('Asia/Tokyo')") == 2)
        #expect(try eval("timestamp('2026-12-31T23:00:00Z').getFullYear('Europe/Berlin')") == 2027)
        #expect(try eval("timestamp('2026-12-31T23:00:00Z').getDayOfYear()") == 364)
        #expect(try eval("string(\(t))") == "2026-03-01T23:45:30.25Z")
        #expect(try eval("\(t) + duration('15m') == timestamp('2026-03-02T00:00:30.25Z')") == true)
        #expect(try eval("\(t) - timestamp('2026-03-01T23:45:00Z') == duration('30.25s')") == true)
        #expect(try eval("timestamp(0).getFullYear()") == 1970)
        #expect(failure("\(t).getHours('Mars/Olympus')") == "unknown time zone Mars/Olympus")
        #expect(failure("timestamp('yesterday')") == #"invalid timestamp: "yesterday""#)
        #expect(failure("\(t) + \(t)").contains("no such overload"))
    }
}

import BerthAPI
import Foundation
import Testing

@Suite("API time stamps")
struct APITimeTests {
    @Test func formatsLikeMetav1() {
        let d = Date(timeIntervalSince1970: 1_795_916_123.456789)
        #expect(APITime.string(d) == "2026-11-29T01:35:23Z")
        #expect(APITime.micro(d).hasPrefix("2026-11-29T01:35:23.45678"))
        #expect(APITime.micro(d).count == "2026-11-29T01:35:23.456789Z".count)
        #expect(APITime.string(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
    }
    @Test func parsesRFC3339() throws {
        #expect(APITime.parse("2026-11-29T01:35:23Z")?.timeIntervalSince1970 == 1_795_916_123)
        let micro = try #require(APITime.parse("2026-11-29T01:35:23.250000Z"))
        #expect(abs(micro.timeIntervalSince1970 - 1_795_916_123.25) < 1e-6)
        #expect(APITime.parse("2026-11-29T03:35:23+02:00")?.timeIntervalSince1970 == 1_795_916_123)
        #expect(APITime.parse("2026-11-29 01:35:23") == nil)
        #expect(APITime.parse("yesterday") == nil)
        #expect(APITime.parse(nil) == nil)
        let now = Date()
        #expect(abs((APITime.parse(APITime.micro(now))?.timeIntervalSince1970 ?? 0) - now.timeIntervalSince1970) < 1e-5)
    }
}

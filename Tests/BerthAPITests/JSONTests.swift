import BerthAPI
import Foundation
import Testing

/// The API server's JSON text: what it writes is read back the same, and Foundation agrees with it.
@Suite("JSON text")
struct JSONTests {
    static let tricky: [String] = [
        "", "plain", "quote \" and backslash \\", "line\nfeed\rreturn\ttab", "\u{01}\u{1f} controls",
        "ünïcødé ✓ 漢字", "emoji 🚢", "slash / stays", "\\u0041 is not an escape here",
    ]

    @Test func stringsRoundTripAndFoundationReadsThem() throws {
        for s in Self.tricky {
            let text = JSON.string(s).serialized()
            #expect(try JSON.parse(text) == .string(s), "\(s)")
            let foundation = try JSONSerialization.jsonObject(with: Data(text), options: [.fragmentsAllowed]) as? String
            #expect(foundation == s, "\(s)")
        }
    }

    @Test func escapesAreReadBack() throws {
        #expect(try JSON.parse(#""a\"b\\c\/d\n\u0041\u00e9\ud83d\udea2""#) == .string("a\"b\\c/d\nAé🚢"))
        #expect(throws: JSONParseError.self) { try JSON.parse(#""unterminated"#) }
        #expect(throws: JSONParseError.self) { try JSON.parse(#""bad \u12 escape""#) }
    }

    @Test func integersAtTheEdges() throws {
        for i: Int64 in [0, 7, 9, 10, 42, -1, -10, 1_000_000_007, .max, .min, .max - 1, .min + 1] {
            let text = String(decoding: JSON.int(i).serialized(), as: UTF8.self)
            #expect(text == String(i))
            #expect(try JSON.parse(text) == .int(i))
        }
        #expect(String(decoding: JSON.double(3).serialized(), as: UTF8.self) == "3")
        #expect(try JSON.parse(Array(JSON.double(0.25).serialized())) == .double(0.25))
    }

    @Test func objectsAreWrittenWithSortedKeys() throws {
        let o: JSON = ["b": 1, "a": ["z": .null, "y": [true, false, "x"]], "c": ""]
        #expect(
            String(decoding: o.serialized(), as: UTF8.self) == #"{"a":{"y":[true,false,"x"],"z":null},"b":1,"c":""}"#)
        #expect(try JSON.parse(o.serialized()) == o)
    }
}

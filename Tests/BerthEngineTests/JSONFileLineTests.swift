@testable import BerthEngine
import BerthJSON
import FoundationEssentials
import Testing

/// json-file lines read back by the direct scan, held to the general JSON parser's reading.
@Suite struct JSONFileLineTests {
    /// A line as the monitor writes it: the text JSON-escaped (by JSONEncoder here), then stream and time.
    func line(_ text: String, stream: String = "stdout") throws -> [UInt8] {
        let escaped = try JSONEncoder().encode(text)
        return Array(#"{"log":"#.utf8) + Array(escaped)
            + Array(#","stream":"\#(stream)","time":"2026-12-03T22:00:00.123456789Z"}"#.utf8)
    }

    @Test(arguments: [
        "hello\n", "", "tab\there \"quoted\" back\\slash /slash\r\n", "é 日本 🚢 \u{7}\u{1b}[0m",
        "<html>&amp;</html>", String(repeating: "0123456789", count: 1000),
    ])
    func theScanReadsWhatTheEncoderWrote(text: String) throws {
        let bytes = try line(text, stream: "stderr")
        let entry = try #require(JSONFileLine.scan(bytes[...]))
        #expect(entry.bytes == Array(text.utf8))
        #expect(entry.stream == "stderr")
        #expect(entry.time == "2026-12-03T22:00:00.123456789Z")
    }

    @Test func goStyleEscapesAndSurrogatePairsDecode() throws {
        let bytes = Array(#"{"log":"\u003cb\u003e \ud83d\udea2 x\u00e9\ufffd\n","stream":"stdout","time":"t"}"#.utf8)
        let entry = try #require(JSONFileLine.scan(bytes[...]))
        #expect(String(decoding: entry.bytes, as: UTF8.self) == "<b> 🚢 xé\u{FFFD}\n")
    }

    @Test func anotherKeyOrderGoesThroughTheParser() throws {
        let bytes = Array(#"{"time":"t1","stream":"stdout","log":"reordered\n","attrs":{"a":"b"}}"#.utf8)
        #expect(JSONFileLine.scan(bytes[...]) == nil)
        let entry = try #require(JSONFileLine.parse(bytes[...]))
        #expect(entry.bytes == Array("reordered\n".utf8))
        #expect(entry.time == "t1")
    }

    @Test(arguments: [
        #"{"log":"unterminated"#, #"{"log":"bad \x escape","stream":"stdout","time":"t"}"#, "not json at all",
        #"{"log":"x","stream":"stdout","time":"t"} trailing"#, #"{"log":"\u12"}"#, "", #"{"stream":"stdout"}"#,
    ])
    func malformedLinesAreSkipped(text: String) {
        #expect(JSONFileLine.parse(Array(text.utf8)[...]) == nil)
    }

    @Test func tailKeepsTheLastEntriesInOrder() {
        var tail = LogReader.TailBuffer(capacity: 3)
        for n in 0..<10 { tail.append(LogReader.Entry(stream: "stdout", bytes: [UInt8(n)], time: "")) }
        #expect(tail.entries.map { $0.bytes[0] } == [7, 8, 9])
        var short = LogReader.TailBuffer(capacity: 5)
        for n in 0..<2 { short.append(LogReader.Entry(stream: "stdout", bytes: [UInt8(n)], time: "")) }
        #expect(short.entries.map { $0.bytes[0] } == [0, 1])
        var none = LogReader.TailBuffer(capacity: 0)
        none.append(LogReader.Entry(stream: "stdout", bytes: [1], time: ""))
        #expect(none.entries.isEmpty)
    }
}

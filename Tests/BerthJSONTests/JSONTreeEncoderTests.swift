import BerthJSON
import FoundationEssentials
import Testing

/// BerthJSON's encoder writes what Foundation's JSONEncoder writes with `.sortedKeys` and
/// `.withoutEscapingSlashes`, for the kinds of values the engine's and the runtime's records hold, and
/// its decoder reads it back.
@Suite struct JSONTreeEncoderTests {
    struct Inner: Codable, Equatable {
        var name: String
        var values: [Int64]
        var flag: Bool?
    }

    enum Mode: String, Codable { case bridge, none }

    struct Record: Codable, Equatable {
        var id: String
        var count: Int
        var small: Int32
        var big: UInt64
        var negative: Int
        var ratio: Double
        var whole: Double
        var text: String
        var missing: String?
        var present: String?
        var labels: [String: String]
        var nested: [String: Inner]
        var list: [Inner]
        var empty: [String]
        var emptyMap: [String: Int]
        var mode: Mode
        var matrix: [[Int]]
        var optionalList: [String]?
    }

    static let sample = Record(
        id: "f2883de4a2ef", count: 3, small: -7, big: UInt64.max, negative: Int.min, ratio: 0.25, whole: 2,
        text:
            "quote \" backslash \\ slash / newline \n tab \t cr \r bell \u{7} nul \u{0} é ✓ 🚢 \u{1f}",
        missing: nil, present: "",
        labels: ["b": "2", "a": "1", "a10": "x", "a9": "y", "B": "upper", "_": "u", "é": "e"],
        nested: ["z": Inner(name: "zed", values: [1, -2], flag: true), "y": Inner(name: "", values: [], flag: nil)],
        list: [Inner(name: "one", values: [Int64.max, Int64.min], flag: false)], empty: [], emptyMap: [:],
        mode: .bridge,
        matrix: [[1, 2], [], [3]], optionalList: nil)

    func foundation<T: Encodable>(_ value: T, pretty: Bool = false) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    @Test func writesFoundationsBytes() throws {
        let ours = try JSONTreeEncoder.encode(Self.sample)
        let theirs = try foundation(Self.sample)
        #expect(String(decoding: ours, as: UTF8.self) == String(decoding: theirs, as: UTF8.self))
    }

    @Test func readsBackWhatItWrote() throws {
        let bytes = try JSONTreeEncoder.encode(Self.sample)
        #expect(try JSONTreeDecoder.decode(Record.self, from: bytes) == Self.sample)
        // And Foundation reads it too.
        #expect(try JSONDecoder().decode(Record.self, from: Data(bytes)) == Self.sample)
    }

    @Test func topLevelScalarsAndArrays() throws {
        #expect(String(decoding: try JSONTreeEncoder.encode("a/b"), as: UTF8.self) == "\"a/b\"")
        #expect(String(decoding: try JSONTreeEncoder.encode([1, 2, 3]), as: UTF8.self) == "[1,2,3]")
        #expect(String(decoding: try JSONTreeEncoder.encode([String: Int]()), as: UTF8.self) == "{}")
        #expect(String(decoding: try JSONTreeEncoder.encode(Optional<Int>.none), as: UTF8.self) == "null")
    }

    @Test func nonFiniteNumbersAreRefusedNamingTheField() {
        struct Bad: Encodable { var value = Double.nan }
        #expect(throws: EncodingError.self) { try JSONTreeEncoder.encode(Bad()) }
    }

    /// Containers made by hand: nested keyed and unkeyed containers and super encoders write into
    /// their parents, as with JSONEncoder.
    @Test func handWrittenContainersNestAsFoundationsDo() throws {
        struct Manual: Encodable {
            enum Keys: String, CodingKey { case a, b, c }
            func encode(to encoder: any Encoder) throws {
                var top = encoder.container(keyedBy: Keys.self)
                var nested = top.nestedContainer(keyedBy: Keys.self, forKey: .a)
                try nested.encode(1, forKey: .b)
                var list = top.nestedUnkeyedContainer(forKey: .b)
                try list.encode("x")
                var inner = list.nestedContainer(keyedBy: Keys.self)
                try inner.encode(true, forKey: .c)
                try list.encodeNil()
                try top.encodeNil(forKey: .c)
            }
        }
        #expect(try JSONTreeEncoder.encode(Manual()) == (try foundation(Manual())))
    }
}

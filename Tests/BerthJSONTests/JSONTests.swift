import BerthJSON
import FoundationEssentials
import Testing

/// The one JSON value, parser and writer: what every layer reads and writes with.
@Suite struct JSONValueTests {
    @Test func missingMembersAndElementsReadAsNull() {
        let pod: JSON = ["metadata": ["name": "web", "labels": ["app": "web", "n": 1]], "items": [1, "two"]]
        #expect(pod["metadata"]["name"].string == "web")
        #expect(pod["metadata"]["nope"]["deeper"] == .null)
        #expect(pod["metadata"]["name"]["x"].isNull)
        #expect(pod[["metadata", "labels", "app"]].string == "web")
        #expect(pod["items"][1].string == "two")
        #expect(pod["items"][2] == .null && pod["items"][-1] == .null && pod["metadata"][0] == .null)
        #expect(pod["metadata"]["labels"].stringMap == ["app": "web"])
        #expect(pod["items"].array?.count == 2 && pod["metadata"].object?.count == 2)
        #expect(JSON.strings(["a": "b"]) == ["a": "b"])
        #expect(pod.typeName == "object" && JSON.int(1).typeName == "number" && JSON.null.typeName == "null")
        #expect(JSON.bool(true).kind == "a boolean")
    }

    @Test func settingNullRemovesAMemberAndPathsMakeObjects() {
        var obj: JSON = ["a": 1, "b": 2]
        obj["a"] = .null
        #expect(obj == ["b": 2])
        obj[["spec", "template", "metadata"]] = ["x": true]
        #expect(obj["spec"]["template"]["metadata"]["x"].bool == true)
        var scalar: JSON = "text"
        scalar["k"] = .null
        #expect(scalar == "text")
        scalar["k"] = 1
        #expect(scalar == ["k": 1])
    }

    @Test func integersAreExactAtTheEdges() throws {
        for i: Int64 in [0, 7, 9, 10, 42, -1, -10, 1_000_000_007, .max, .min, .max - 1, .min + 1] {
            let text = JSON.int(i).text
            #expect(text == String(i))
            #expect(try JSON.parse(text) == .int(i))
            #expect(try JSON.parse(text).int == i)
        }
        // Beyond Int64, an unsigned 64-bit value stays exact for the Codable decoder.
        let big = try JSON.parse("18446744073709551615")
        #expect(big == .number("18446744073709551615"))
        #expect(big.int == nil)
        #expect(try JSONTreeDecoder.decode(UInt64.self, from: Array("18446744073709551615".utf8)) == .max)
        #expect(
            try JSONTreeDecoder.decode([Int64].self, from: Array("[9223372036854775807,-9223372036854775808]".utf8))
                == [.max, .min])
        #expect(throws: DecodingError.self) { try JSONTreeDecoder.decode(Int8.self, from: Array("128".utf8)) }
        // Past UInt64 too, as Go reads it: a float64 (written as Swift prints a Double, as the API server always has).
        #expect(try JSON.parse("123456789012345678901234") == .number("1.2345678901234569e+23"))
        #expect(try JSON.parse("-0") == 0)
    }

    @Test func fractionsAndExponentsHaveOneForm() throws {
        let cases: [(String, String)] = [
            ("1.0", "1"), ("1e3", "1000"), ("-2.5E3", "-2500"), ("0.25", "0.25"), ("1.50", "1.5"), ("-0.0", "0"),
            ("1e15", "1000000000000000.0"), ("1e16", "1e+16"), ("123456789012345.0", "123456789012345"),
            ("1e-5", "1e-05"), ("2.5e+20", "2.5e+20"),
            ("1e400", "1e400"),  // not finite as a Double: kept as written rather than "inf"
        ]
        for (input, canonical) in cases {
            #expect(try JSON.parse(input) == .number(canonical), "\(input)")
            #expect(try JSON.parse(input).text == canonical, "\(input)")
        }
        #expect(JSON.double(3).text == "3")
        #expect(JSON.double(0.1).text == "0.1")
        #expect(try JSON.parse(JSON.double(0.25).serialized()) == .double(0.25))
        #expect(JSON.double(1e20).text == "1e+20")
        #expect(try JSON.parse("3.0").int == 3 && JSON.parse("3.5").int == nil && JSON.parse("3.5").double == 3.5)
        #expect(try JSON.parse("1e+16").int == 10_000_000_000_000_000)
        #expect(try JSON.parse("0.5").isFloatingPoint && !JSON.parse("5").isFloatingPoint)
        #expect(try JSONTreeDecoder.decode(Int.self, from: Array("3.0".utf8)) == 3)
        #expect(try JSONTreeDecoder.decode(Double.self, from: Array("-2.5e-3".utf8)) == -0.0025)
        #expect(1.5 as JSON == .number("1.5"))
    }

    @Test func invalidNumbersAreRefused() {
        for text in ["01", "-", "+1", "1.", ".5", "1e", "1e+", "--1", "0x10", "1.2.3", "NaN", "Infinity", "-01"] {
            #expect(throws: JSONParseError.self, "\(text)") { try JSON.parse(text) }
        }
    }

    static let tricky: [String] = [
        "", "plain", "quote \" and backslash \\", "line\nfeed\rreturn\ttab", "\u{01}\u{1f} controls \u{08}\u{0c}",
        "ünïcødé ✓ 漢字", "emoji 🚢", "slash / stays", "\\u0041 is not an escape here",
    ]

    @Test func stringsRoundTripAndFoundationReadsThem() throws {
        for s in Self.tricky {
            let text = JSON.string(s).serialized()
            #expect(try JSON.parse(text) == .string(s), "\(s)")
            let foundation = try JSONDecoder().decode(String.self, from: Data(text))
            #expect(foundation == s, "\(s)")
        }
        // The API server's bytes: short escapes for \n \r \t only, \u00XX for the other controls.
        #expect(JSON.string("a\u{08}b\u{0c}c\u{1f}\n\"\\/").text == #""a\u0008b\u000cc\u001f\n\"\\/""#)
    }

    @Test func escapesIncludingSurrogatePairsAreRead() throws {
        #expect(
            try JSON.parse(#""a\"b\\c\/d\n\u0041\u00e9\ud83d\udea2\b\f\r\t""#)
                == .string("a\"b\\c/d\nAé🚢\u{08}\u{0c}\r\t"))
        #expect(try JSON.parse(#""\uD83D\uDEA2""#) == "🚢")
        // Unpaired surrogates read as U+FFFD, as Go's encoding/json reads them; what follows is read on its own.
        #expect(try JSON.parse(#""\ud83d alone""#) == "\u{FFFD} alone")
        #expect(try JSON.parse(#""\udea2 low first""#) == "\u{FFFD} low first")
        #expect(try JSON.parse(#""\ud83d\u0041""#) == "\u{FFFD}A")
        #expect(try JSON.parse(#""\ud83d\ud83d\udea2""#) == "\u{FFFD}🚢")
        #expect(try JSON.parse(#""\ud83d""#) == "\u{FFFD}")
        let refused = [
            #""unterminated"#, #""bad \u12 escape""#, #""\ud83d\u12""#,
            #""\x""#, "\"raw\ttab\"", "\"raw\u{01}\"", "\"ends in backslash\\", #""\u00g0""#,
        ]
        for text in refused {
            #expect(throws: JSONParseError.self, "\(text)") { try JSON.parse(text) }
        }
    }

    @Test func objectsAreWrittenWithSortedKeys() throws {
        let o: JSON = ["b": 1, "a": ["z": .null, "y": [true, false, "x"]], "c": "", "B": [:], "é": []]
        #expect(o.text == #"{"B":{},"a":{"y":[true,false,"x"],"z":null},"b":1,"c":"","é":[]}"#)
        #expect(try JSON.parse(o.serialized()) == o)
        #expect(
            String(decoding: JSONWriter.write(["a": [1, ["b": []]]], pretty: true), as: UTF8.self)
                == "{\n  \"a\": [\n    1,\n    {\n      \"b\": []\n    }\n  ]\n}")
        #expect(try JSON.parse(#"{"a":1,"a":2}"#) == ["a": 2], "the last duplicate wins")
    }

    @Test func whitespaceAndTrailingData() throws {
        #expect(try JSON.parse(" \n\t\r{ \"a\" : [ 1 , 2 ] } \n") == ["a": [1, 2]])
        for text in [
            "", " ", "{} {}", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{1:2}", "nul", "truex", "[", "{", "// c\n1",
        ] {
            #expect(throws: JSONParseError.self, "\(text)") { try JSON.parse(text) }
        }
        #expect(try JSON.parse(Array("[1]".utf8)[...]) == [1])
    }

    @Test func nestingIsLimited() throws {
        let depth = JSONParser.maximumDepth
        let deepest = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let parsed = try JSON.parse(deepest)
        #expect(parsed.serialized().count == 2 * depth)
        #expect(throws: JSONParseError.self) { try JSON.parse("[" + deepest + "]") }
        let objects = String(repeating: #"{"a":"#, count: depth + 1) + "1" + String(repeating: "}", count: depth + 1)
        #expect(throws: JSONParseError.self) { try JSON.parse(objects) }
        // Far deeper hostile input is refused at the limit, not by overflowing the stack.
        #expect(throws: JSONParseError.self) { try JSON.parse(String(repeating: "[", count: 1_000_000)) }
    }

    @Test func treesPassThroughCodableWhole() throws {
        struct Plugin: Codable, Equatable {
            var type: String
            var extra: JSON
        }
        let text = Array(#"{"extra":{"big":18446744073709551615,"list":[1.5,null,"x"]},"type":"bridge"}"#.utf8)
        let plugin = try JSONTreeDecoder.decode(Plugin.self, from: text)
        #expect(plugin.extra["big"] == .number("18446744073709551615"))
        #expect(try JSONTreeEncoder.encode(plugin) == text)
        // Through Foundation's coders (the single-value container) too.
        let viaFoundation = try JSONDecoder().decode(Plugin.self, from: Data(text))
        #expect(viaFoundation.extra["list"] == [1.5, nil, "x"])
        #expect(try JSONDecoder().decode(JSON.self, from: JSONEncoder().encode(plugin.extra)) == plugin.extra)
    }
}

/// The parser given mutated and truncated documents: an error or a value, never a crash or a hang.
@Suite struct JSONParserFuzzTests {
    /// A small deterministic generator (SplitMix64), so a failure repeats.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let seed = Array(
        #"""
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-0","labels":{"app":"web"},"annotations":{"a":"q\"\\\/\n\u0041\ud83d\udea2"}},
         "spec":{"containers":[{"name":"c","image":"busybox","ports":[{"containerPort":8080}],"args":["-c","echo"]}],
         "priority":-12,"ratio":0.25,"big":1.5e300,"tiny":-2E-7,"flags":[true,false,null],"empty":{},"none":[]}}
        """#.utf8)

    @Test func mutatedAndTruncatedInputNeverCrashes() {
        var random = Generator(state: 0x5EED)
        let interesting: [UInt8] =
            Array(#"{}[]":,\"0123456789-+.eEtrufalsn u"#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xFF, 0x20]
        var accepted = 0
        for round in 0..<4000 {
            var bytes = Self.seed
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[at] = interesting.randomElement(using: &random)!
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(interesting.randomElement(using: &random)!, at: at)
                default: bytes[at] = UInt8.random(in: 0...255, using: &random)
                }
                if bytes.isEmpty { break }
            }
            if round % 3 == 0 { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random))) }
            if let value = try? JSON.parse(bytes) {
                accepted += 1
                // What it accepts it writes as JSON it reads back the same.
                #expect((try? JSON.parse(value.serialized())) == value, "round \(round)")
            }
        }
        #expect(accepted > 0, "some mutations (inside strings) stay valid JSON")
        // Every prefix of a valid document but the whole is an error.
        for end in 0..<Self.seed.count {
            #expect(throws: JSONParseError.self) { try JSON.parse(Array(Self.seed[..<end])) }
        }
        #expect(throws: Never.self) { try JSON.parse(Self.seed) }
    }
}

import BerthJSON

/// One line of docker's json-file log, `{"log":"…","stream":"stdout","time":"…"}`, read back.
///
/// `docker logs` of a big log reads a million of these: the monitor writes them in that key order,
/// so they are read by a direct scan (the log string unescaped straight into bytes) and only a line
/// in another shape goes through the general JSON parser. A line that is not such an object is
/// skipped, as docker skips what it cannot decode.
enum JSONFileLine {
    static func parse(_ line: ArraySlice<UInt8>) -> LogReader.Entry? {
        if let entry = scan(line) { return entry }
        guard case .object(let fields)? = try? JSONParser.parse(Array(line)),
              let log = fields["log"].string, let stream = fields["stream"].string else { return nil }
        return LogReader.Entry(stream: stream, bytes: Array(log.utf8), time: fields["time"].string ?? "")
    }

    private static let logKey = Array(#"{"log":""#.utf8)
    private static let streamKey = Array(#","stream":""#.utf8)
    private static let timeKey = Array(#","time":""#.utf8)

    /// The monitor's own shape, or nil for anything else.
    static func scan(_ line: ArraySlice<UInt8>) -> LogReader.Entry? {
        var i = line.startIndex
        guard expect(logKey, in: line, at: &i) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(0, line.count - 64))
        guard unescape(line, from: &i, into: &bytes) else { return nil }
        guard expect(streamKey, in: line, at: &i), let stream = plain(line, from: &i) else { return nil }
        guard expect(timeKey, in: line, at: &i), let time = plain(line, from: &i) else { return nil }
        guard i < line.endIndex, line[i] == UInt8(ascii: "}"), line.index(after: i) == line.endIndex else { return nil }
        return LogReader.Entry(stream: stream, bytes: bytes, time: time)
    }

    private static func expect(_ literal: [UInt8], in line: ArraySlice<UInt8>, at i: inout Int) -> Bool {
        guard line.endIndex - i >= literal.count else { return false }
        for (k, b) in literal.enumerated() where line[i + k] != b { return false }
        i += literal.count
        return true
    }

    /// A string without escapes up to its closing quote (stream names and times have none).
    private static func plain(_ line: ArraySlice<UInt8>, from i: inout Int) -> String? {
        let start = i
        while i < line.endIndex, line[i] != UInt8(ascii: "\"") {
            if line[i] == UInt8(ascii: "\\") { return nil }
            i += 1
        }
        guard i < line.endIndex else { return nil }
        let text = String(decoding: line[start..<i], as: UTF8.self)
        i += 1
        return text
    }

    /// A JSON string's contents as UTF-8, up to and past its closing quote; false when malformed.
    static func unescape(_ line: ArraySlice<UInt8>, from i: inout Int, into out: inout [UInt8]) -> Bool {
        while i < line.endIndex {
            // The run up to the next quote or backslash, copied at once.
            var j = i
            while j < line.endIndex, line[j] != UInt8(ascii: "\""), line[j] != UInt8(ascii: "\\") { j += 1 }
            out.append(contentsOf: line[i..<j])
            i = j
            guard i < line.endIndex else { return false }
            if line[i] == UInt8(ascii: "\"") {
                i += 1
                return true
            }
            i += 1
            guard i < line.endIndex else { return false }
            let c = line[i]
            i += 1
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(c)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                guard var scalar = hex4(line, &i) else { return false }
                // A surrogate pair is one scalar; a lone surrogate is U+FFFD, as Go decodes it.
                if (0xD800..<0xDC00).contains(scalar) {
                    var k = i
                    if k + 1 < line.endIndex, line[k] == UInt8(ascii: "\\"), line[k + 1] == UInt8(ascii: "u") {
                        k += 2
                        if let low = hex4(line, &k), (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            i = k
                        } else {
                            scalar = 0xFFFD
                        }
                    } else {
                        scalar = 0xFFFD
                    }
                } else if (0xDC00..<0xE000).contains(scalar) {
                    scalar = 0xFFFD
                }
                out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
            default:
                return false
            }
        }
        return false
    }

    private static func hex4(_ line: ArraySlice<UInt8>, _ i: inout Int) -> UInt32? {
        guard line.endIndex - i >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = line[i]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value << 4 | digit
            i += 1
        }
        return value
    }
}

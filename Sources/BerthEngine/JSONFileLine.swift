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
        guard case .object(let fields)? = try? JSONParser.parse(line),
            let log = fields["log"].string, let stream = fields["stream"].string
        else { return nil }
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
        do { try JSONParser.unescape(line, from: &i, into: &bytes) } catch { return nil }
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
}

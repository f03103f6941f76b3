#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Testing

@testable import BerthAgent

/// `kubectl logs` from a CRI log file, held to what the kubelet's kuberuntime/logs shows.
struct ContainerLogReaderTests {
    // MARK: - Fixtures

    /// A directory of its own per test, removed afterwards.
    final class Scratch {
        let directory: String
        var log: String { directory + "/0.log" }

        init() throws {
            var template = Array("/tmp/berth-log-reader-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw SystemCallError(call: "mkdtemp", errno: errno) }
            directory = String(cString: made)
        }

        deinit { try? FileSystem.removeTree(directory) }

        func append(_ text: String, to path: String? = nil) throws {
            let file = try FileDescriptor.open(path ?? log, O_WRONLY | O_APPEND | O_CREAT)
            try file.write(text)
        }
    }

    /// Entry `n`, `n` seconds into 2016-10-06T00:17:00Z.
    static func time(_ n: Int) -> String { "2016-10-06T00:17:\(n < 10 ? "0" : "")\(n).5Z" }

    static func read(_ path: String, _ options: ContainerLogOptions) async throws -> String {
        var output: [UInt8] = []
        try await ContainerLogReader.read(path: path, options: options) { output += $0 }
        return String(decoding: output, as: UTF8.self)
    }

    /// The last `count` lines of `output` as kubectl shows them: a line ends with a newline, except a
    /// last one still being written.
    static func lastLines(_ output: String, _ count: Int) -> String {
        var lines: [Substring] = []
        var start = output.startIndex
        while let newline = output[start...].firstIndex(of: "\n") {
            lines.append(output[start...newline])
            start = output.index(after: newline)
        }
        if start < output.endIndex { lines.append(output[start...]) }
        return lines.suffix(count).joined()
    }

    /// A log with partial lines, both streams, and lines that are not CRI entries.
    static let mixedLog = """
        \(time(1)) stdout F one
        \(time(2)) stdout P tw
        \(time(2)) stdout P o-
        \(time(2)) stdout F two
        not a log line
        \(time(3)) stderr F oops
        \(time(4)) stdout F\u{20}
        \(time(5)) stderr P par
        \(time(5)) stdout F five
        \(time(6)) stderr F tial
        2016-10-06T00:17:07Z stdin F wrong stream
        \(time(8)) stdout P still
        \(time(8)) stdout P  writing

        """

    /// Everything the output holds, and a way to wait for it, for a reader that is following.
    actor Output {
        private(set) var bytes: [UInt8] = []
        private var waiters: [Int: (text: String, continuation: CheckedContinuation<Bool, Never>)] = [:]
        private var nextWaiter = 0

        var text: String { String(decoding: bytes, as: UTF8.self) }

        func append(_ chunk: [UInt8]) {
            bytes += chunk
            let current = text
            for (id, waiter) in waiters where current.contains(waiter.text) {
                waiters[id] = nil
                waiter.continuation.resume(returning: true)
            }
        }

        /// Returns once the output contains `expected`; false if it does not within the limit (which only
        /// guards against a hang: success never waits for it).
        func waitUntil(contains expected: String, within limit: Duration = .seconds(10)) async -> Bool {
            if text.contains(expected) { return true }
            let id = nextWaiter
            nextWaiter += 1
            let timer = Task { [weak self] in
                try await Task.sleep(for: limit)
                await self?.expire(id)
            }
            defer { timer.cancel() }
            return await withCheckedContinuation { waiters[id] = (expected, $0) }
        }

        private func expire(_ id: Int) {
            waiters.removeValue(forKey: id)?.continuation.resume(returning: false)
        }
    }

    actor Flag {
        private(set) var value = true
        func lower() { value = false }
    }

    /// A following reader on `path`, its output, and the flag standing for "the container still runs".
    struct Follower {
        let output: Output
        let running: Flag
        let task: Task<Void, any Error>

        init(_ path: String, _ options: ContainerLogOptions = ContainerLogOptions(follow: true)) {
            let output = Output()
            let running = Flag()
            (self.output, self.running) = (output, running)
            task = Task {
                try await ContainerLogReader.read(
                    path: path, options: options, keepFollowing: { await running.value },
                    emit: { await output.append($0) })
            }
        }

        /// Says the container stopped and waits for the reader to return (cancelling it after a while,
        /// which then fails the test with a CancellationError).
        func stop() async throws {
            await running.lower()
            let guardTask = Task { [task] in
                try await Task.sleep(for: .seconds(10))
                task.cancel()
            }
            defer { guardTask.cancel() }
            try await task.value
        }
    }

    // MARK: - Parsing

    @Test func aFullLineParsesIntoItsParts() throws {
        let entry = try #require(CRILogEntry.parse(Array("2016-10-06T00:17:09.669794202Z stdout F hello  world".utf8)))
        #expect(entry.time.seconds == 1_475_713_029)
        #expect(entry.time.nanoseconds == 669_794_202)
        #expect(entry.time.utcOffset == 0)
        #expect(entry.stream == .stdout)
        #expect(!entry.isPartial)
        #expect(String(decoding: entry.content, as: UTF8.self) == "hello  world")
    }

    @Test func partialAndStderrLinesParseWithTheirNewlineIgnored() throws {
        let entry = try #require(CRILogEntry.parse(Array("2016-10-06T00:17:09Z stderr P part\n".utf8)))
        #expect(entry.stream == .stderr)
        #expect(entry.isPartial)
        #expect(Array(entry.content) == Array("part".utf8))
        // Only the first of `:`-separated tags counts, and anything but P is a full line.
        #expect(CRILogEntry.parse(Array("2016-10-06T00:17:09Z stdout P:x y".utf8))?.isPartial == true)
        #expect(CRILogEntry.parse(Array("2016-10-06T00:17:09Z stdout X y".utf8))?.isPartial == false)
        #expect(CRILogEntry.parse(Array("2016-10-06T00:17:09Z stdout F ".utf8))?.content.isEmpty == true)
    }

    @Test(arguments: [
        "", "garbage", "2016-10-06T00:17:09Z", "2016-10-06T00:17:09Z stdout", "2016-10-06T00:17:09Z stdout F",
        "2016-10-06T00:17:09Z stdin F text", "2016-10-06 00:17:09Z stdout F text", "2016-10-06T00:17:09 stdout F text",
        "2016-13-06T00:17:09Z stdout F text", "2016-02-30T00:17:09Z stdout F text", "2016-10-06T24:00:00Z stdout F x",
        "2016-10-06T00:17:09.Z stdout F text", "2016-10-06T00:17:09+0100 stdout F text",
        "2016-10-06t00:17:09z stdout F x",
    ])
    func linesThatAreNotEntriesDoNotParse(_ line: String) {
        #expect(CRILogEntry.parse(Array(line.utf8)) == nil)
    }

    @Test func fractionsOfAnyLengthParse() throws {
        #expect(CRILogEntry.Time.parse("2016-10-06T00:17:09Z")?.nanoseconds == 0)
        #expect(CRILogEntry.Time.parse("2016-10-06T00:17:09.5Z")?.nanoseconds == 500_000_000)
        #expect(CRILogEntry.Time.parse("2016-10-06T00:17:09.0000042Z")?.nanoseconds == 4_200)
        // Go reads past the ninth digit and ignores it, and takes a comma as well.
        #expect(CRILogEntry.Time.parse("2016-10-06T00:17:09.123456789987Z")?.nanoseconds == 123_456_789)
        #expect(CRILogEntry.Time.parse("2016-10-06T00:17:09,25Z")?.nanoseconds == 250_000_000)
    }

    @Test func offsetsGiveTheSameInstantAndAreKeptForPrinting() throws {
        let utc = try #require(CRILogEntry.Time.parse("2016-10-06T00:17:09Z"))
        let paris = try #require(CRILogEntry.Time.parse("2016-10-06T01:17:09+01:00"))
        let newfoundland = try #require(CRILogEntry.Time.parse("2016-10-05T20:47:09-03:30"))
        #expect(paris == utc)
        #expect(newfoundland == utc)
        #expect(paris.utcOffset == 3600)
        #expect(newfoundland.utcOffset == -12600)
        #expect(paris.kubeletFormat == "2016-10-06T01:17:09.000000000+01:00")
        #expect(newfoundland.kubeletFormat == "2016-10-05T20:47:09.000000000-03:30")
        // A zero offset prints as Z, as Go's Z07:00 does.
        #expect(CRILogEntry.Time.parse("2016-10-06T00:17:09+00:00")?.kubeletFormat == "2016-10-06T00:17:09.000000000Z")
    }

    /// The kubelet prints RFC3339NanoFixed (`types.RFC3339NanoFixed`), not Go's trimmed RFC3339Nano.
    @Test func timesPrintWithAllNineDigits() throws {
        #expect(
            CRILogEntry.Time.parse("2016-10-06T00:17:09.6697942Z")?.kubeletFormat == "2016-10-06T00:17:09.669794200Z")
        #expect(CRILogEntry.Time.parse("2024-02-29T23:30:00Z")?.kubeletFormat == "2024-02-29T23:30:00.000000000Z")
        #expect(
            CRILogEntry.Time(seconds: 1_709_249_400, nanoseconds: 7).kubeletFormat == "2024-02-29T23:30:00.000000007Z")
        #expect(CRILogEntry.Time(seconds: -1).kubeletFormat == "1969-12-31T23:59:59.000000000Z")
    }

    // MARK: - Output

    @Test func theOutputIsTheContentWithPartialLinesJoined() async throws {
        let scratch = try Scratch()
        try scratch.append(Self.mixedLog)
        let output = try await Self.read(scratch.log, ContainerLogOptions())
        #expect(output == "one\ntwo-two\noops\n\nparfive\ntial\nstill writing")
    }

    @Test func timestampsPrefixEachLineOnceInTheKubeletsFormat() async throws {
        let scratch = try Scratch()
        try scratch.append(
            """
            2016-10-06T00:17:09.6697942Z stdout P a long
            2016-10-06T00:17:10Z stdout P  line in
            2016-10-06T00:17:11Z stdout F  parts
            2016-10-06T01:17:12+01:00 stderr F short

            """)
        let output = try await Self.read(scratch.log, ContainerLogOptions(timestamps: true))
        #expect(
            output == """
                2016-10-06T00:17:09.669794200Z a long line in parts
                2016-10-06T01:17:12.000000000+01:00 short

                """)
    }

    @Test func aStreamCanBeChosen() async throws {
        let scratch = try Scratch()
        try scratch.append(Self.mixedLog)
        #expect(try await Self.read(scratch.log, ContainerLogOptions(stream: .stderr)) == "oops\npartial\n")
        #expect(
            try await Self.read(scratch.log, ContainerLogOptions(stream: .stdout))
                == "one\ntwo-two\n\nfive\nstill writing")
    }

    @Test func aLastLineWithoutItsNewlineIsShownAsItIs() async throws {
        let scratch = try Scratch()
        try scratch.append("\(Self.time(1)) stdout F one\n\(Self.time(2)) stdout F tw")
        #expect(try await Self.read(scratch.log, ContainerLogOptions()) == "one\ntw")
    }

    @Test func sinceTimeSkipsEntriesStrictlyBeforeIt() async throws {
        let scratch = try Scratch()
        try scratch.append(Self.mixedLog)
        let since = try #require(CRILogEntry.Time.parse(Self.time(5)))
        let output = try await Self.read(scratch.log, ContainerLogOptions(sinceTime: since))
        #expect(output == "parfive\ntial\nstill writing")
        // The tail is taken first, then filtered.
        let later = try #require(CRILogEntry.Time.parse(Self.time(6)))
        #expect(
            try await Self.read(scratch.log, ContainerLogOptions(tailLines: 4, sinceTime: later))
                == "tial\nstill writing")
    }

    @Test func sinceSecondsCountsBackFromNowAndTheLaterSinceWins() throws {
        let now = CRILogEntry.Time(seconds: 1000, nanoseconds: 5)
        #expect(
            ContainerLogOptions.sinceTime(seconds: 60, before: now) == CRILogEntry.Time(seconds: 940, nanoseconds: 5))
        #expect(ContainerLogOptions(sinceSeconds: 60, now: now).sinceTime?.seconds == 940)
        let earlier = CRILogEntry.Time(seconds: 900)
        let later = CRILogEntry.Time(seconds: 990)
        #expect(ContainerLogOptions(sinceTime: earlier, sinceSeconds: 60, now: now).sinceTime?.seconds == 940)
        #expect(ContainerLogOptions(sinceTime: later, sinceSeconds: 60, now: now).sinceTime?.seconds == 990)
    }

    @Test func limitBytesCutsTheOutputMidLine() async throws {
        let scratch = try Scratch()
        try scratch.append(Self.mixedLog)
        #expect(try await Self.read(scratch.log, ContainerLogOptions(limitBytes: 6)) == "one\ntw")
        #expect(try await Self.read(scratch.log, ContainerLogOptions(limitBytes: 0)) == "")
        // The prefix counts, and is cut too.
        let stamped = try await Self.read(scratch.log, ContainerLogOptions(timestamps: true, limitBytes: 20))
        #expect(stamped == "2016-10-06T00:17:01.")
    }

    // MARK: - Tail

    @Test func tailLinesShowsTheLastLinesAsKubectlShowsThem() async throws {
        let scratch = try Scratch()
        try scratch.append(Self.mixedLog)
        let all = try await Self.read(scratch.log, ContainerLogOptions())
        #expect(try await Self.read(scratch.log, ContainerLogOptions(tailLines: 0)) == "")
        // The line still being written counts as one.
        #expect(try await Self.read(scratch.log, ContainerLogOptions(tailLines: 1)) == "still writing")
        #expect(try await Self.read(scratch.log, ContainerLogOptions(tailLines: 3)) == "parfive\ntial\nstill writing")
        // A line in partial entries is one line.
        #expect(
            try await Self.read(scratch.log, ContainerLogOptions(tailLines: 6))
                == "two-two\noops\n\nparfive\ntial\nstill writing")
        #expect(try await Self.read(scratch.log, ContainerLogOptions(tailLines: 100)) == all)
        #expect(try await Self.read(scratch.log, ContainerLogOptions(tailLines: -1)) == all)
        // Any tail is the end of the whole output, timestamps and all.
        let stamped = try await Self.read(scratch.log, ContainerLogOptions(timestamps: true))
        for count in 0...9 {
            let tail = try await Self.read(scratch.log, ContainerLogOptions(timestamps: true, tailLines: count))
            #expect(tail == Self.lastLines(stamped, count), "tail \(count)")
        }
        // Of one stream, the lines of that stream (there, `par` and `tial` make one).
        #expect(try await Self.read(scratch.log, ContainerLogOptions(tailLines: 1, stream: .stderr)) == "partial\n")
    }

    @Test func theTailIsFoundTheSameWhereverTheBlocksEnd() throws {
        let bytes = Array(Self.mixedLog.utf8)
        for lines in 0...9 {
            let whole = ContainerLogReader.tailStart(
                lines: lines, streams: .all, size: Int64(bytes.count), blockSize: 1 << 20
            ) {
                Array(bytes[Int($0)..<(Int($0) + $1)])
            }
            for blockSize in 1...40 {
                let start = ContainerLogReader.tailStart(
                    lines: lines, streams: .all, size: Int64(bytes.count), blockSize: blockSize
                ) {
                    Array(bytes[Int($0)..<(Int($0) + $1)])
                }
                #expect(start == whole, "lines \(lines), block size \(blockSize)")
            }
        }
        // The last line is the one still being written, in two fragments: it starts after the full line
        // before it (the unparsable entry between them is skipped when shown).
        let lastLine = """
            2016-10-06T00:17:07Z stdin F wrong stream
            \(Self.time(8)) stdout P still
            \(Self.time(8)) stdout P  writing

            """
        let start = ContainerLogReader.tailStart(lines: 1, streams: .all, size: Int64(bytes.count)) {
            Array(bytes[Int($0)..<(Int($0) + $1)])
        }
        #expect(start == Int64(bytes.count - lastLine.utf8.count))
    }

    @Test func tailReadsALargeLogFromItsEnd() async throws {
        let scratch = try Scratch()
        var text = ""
        for n in 0..<3000 { text += "\(Self.time(n % 60)) stdout F line \(n) of a log larger than one block\n" }
        try scratch.append(text)
        #expect(text.utf8.count > 3 * ContainerLogReader.blockSize)
        #expect(
            try await Self.read(scratch.log, ContainerLogOptions(tailLines: 2))
                == "line 2998 of a log larger than one block\nline 2999 of a log larger than one block\n")
        let many = try await Self.read(scratch.log, ContainerLogOptions(tailLines: 2500))
        #expect(many.split(separator: "\n").count == 2500)
        #expect(many.hasPrefix("line 500 of"))
        #expect(try await Self.read(scratch.log, ContainerLogOptions()).split(separator: "\n").count == 3000)
    }

    // MARK: - Errors

    @Test func aMissingLogIsATypedErrorNamingItsPath() async throws {
        let scratch = try Scratch()
        let path = scratch.directory + "/absent.log"
        await #expect(throws: ContainerLogError.missing(path: path)) {
            try await ContainerLogReader.read(path: path, options: ContainerLogOptions()) { _ in }
        }
    }

    struct ClientGone: Error {}

    @Test func anEmitThatThrowsStopsTheReader() async throws {
        let scratch = try Scratch()
        try scratch.append(Self.mixedLog)
        var calls = 0
        await #expect(throws: ClientGone.self) {
            try await ContainerLogReader.read(path: scratch.log, options: ContainerLogOptions(follow: true)) { _ in
                calls += 1
                throw ClientGone()
            }
        }
        #expect(calls == 1)
    }

    // MARK: - Follow

    @Test func followingShowsWhatIsAppendedUntilTheContainerStops() async throws {
        let scratch = try Scratch()
        try scratch.append("\(Self.time(1)) stdout F first\n\(Self.time(2)) stdout P half")
        let follower = Follower(scratch.log, ContainerLogOptions(follow: true, timestamps: true))
        #expect(await follower.output.waitUntil(contains: "first\n"))
        // The rest of the half-written entry, and a line split into fragments.
        try scratch.append(" entry\n\(Self.time(3)) stdout F  done\n\(Self.time(4)) stderr P more")
        try scratch.append("\n\(Self.time(5)) stderr F  output\n")
        #expect(await follower.output.waitUntil(contains: "more output\n"))
        // What the container wrote just before it stopped is still shown.
        try scratch.append("\(Self.time(6)) stdout F last words\n")
        try await follower.stop()
        #expect(
            await follower.output.text == """
                2016-10-06T00:17:01.500000000Z first
                2016-10-06T00:17:02.500000000Z half entry done
                2016-10-06T00:17:04.500000000Z more output
                2016-10-06T00:17:06.500000000Z last words

                """)
    }

    @Test func followingAStoppedContainerReturnsAtTheEnd() async throws {
        let scratch = try Scratch()
        try scratch.append(Self.mixedLog + "\(Self.time(9)) stdout F unterminated")
        var output: [UInt8] = []
        try await ContainerLogReader.read(
            path: scratch.log, options: ContainerLogOptions(follow: true, tailLines: 2), keepFollowing: { false }
        ) { output += $0 }
        // An entry whose newline will never come is left out (and not counted), as the kubelet does.
        #expect(String(decoding: output, as: UTF8.self) == "tial\nstill writing")
    }

    @Test func followingWithTailStartsAtTheTail() async throws {
        let scratch = try Scratch()
        try scratch.append("\(Self.time(1)) stdout F old\n\(Self.time(2)) stdout F recent\n")
        let follower = Follower(scratch.log, ContainerLogOptions(follow: true, tailLines: 1))
        #expect(await follower.output.waitUntil(contains: "recent\n"))
        try scratch.append("\(Self.time(3)) stdout F new\n")
        #expect(await follower.output.waitUntil(contains: "new\n"))
        try await follower.stop()
        #expect(await follower.output.text == "recent\nnew\n")
    }

    @Test func followingContinuesIntoAReopenedLog() async throws {
        let scratch = try Scratch()
        try scratch.append("\(Self.time(1)) stdout F before rotation\n")
        let follower = Follower(scratch.log)
        #expect(await follower.output.waitUntil(contains: "before rotation\n"))
        // ReopenContainerLog: the file is renamed away, the runtime's last write to it lands there, and
        // a new file is created at the path.
        #expect(rename(scratch.log, scratch.log + ".1") == 0)
        try scratch.append("\(Self.time(2)) stdout F into the old file\n", to: scratch.log + ".1")
        try scratch.append("\(Self.time(3)) stdout F after rotation\n")
        #expect(await follower.output.waitUntil(contains: "after rotation\n"))
        try scratch.append("\(Self.time(4)) stdout F and more\n")
        #expect(await follower.output.waitUntil(contains: "and more\n"))
        try await follower.stop()
        #expect(await follower.output.text == "before rotation\ninto the old file\nafter rotation\nand more\n")
    }

    @Test func followingStartsOverInATruncatedLog() async throws {
        let scratch = try Scratch()
        try scratch.append("\(Self.time(1)) stdout F a rather long line before truncation\n")
        let follower = Follower(scratch.log)
        #expect(await follower.output.waitUntil(contains: "truncation\n"))
        #expect(truncate(scratch.log, 0) == 0)
        try scratch.append("\(Self.time(2)) stdout F anew\n")
        #expect(await follower.output.waitUntil(contains: "anew\n"))
        try await follower.stop()
        #expect(await follower.output.text == "a rather long line before truncation\nanew\n")
    }
}

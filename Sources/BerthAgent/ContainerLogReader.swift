#if canImport(Glibc)
import Glibc
#endif
import BerthKube
import BerthOS

// What the kubelet does for `GET /containerLogs/{namespace}/{pod}/{container}` (`kubectl logs`): read a
// container's log file in the CRI format and produce the bytes kubectl shows, as the kubelet's
// pkg/kubelet/kuberuntime/logs/logs.go applies PodLogOptions.

/// One line of a container log in the CRI format, as the runtime writes it:
/// `2016-10-06T00:17:09.669794202Z stdout F hello world`.
public struct CRILogEntry: Sendable, Equatable {
    public enum Stream: String, Sendable { case stdout, stderr }

    public var time: Time
    public var stream: Stream
    /// Tagged `P`: a fragment of a longer line, continued by the entries after it up to one tagged `F`.
    public var isPartial: Bool
    /// The text, without the entry's newline.
    public var content: ArraySlice<UInt8>

    public init(time: Time, stream: Stream, isPartial: Bool, content: ArraySlice<UInt8>) {
        self.time = time
        self.stream = stream
        self.isPartial = isPartial
        self.content = content
    }

    /// Parses one line (a trailing newline is ignored); nil when it is not a CRI entry, which the kubelet
    /// logs and skips.
    public static func parse(_ line: some Collection<UInt8>) -> CRILogEntry? {
        CRILogEntry(line: ArraySlice(line))
    }

    /// The parser the reader uses: the content shares the line's storage.
    init?(line: ArraySlice<UInt8>) {
        var rest = line.last == 0x0A ? line.dropLast() : line
        // Three fields separated by single spaces, then the content, as the kubelet's parseCRILog splits them.
        func field() -> ArraySlice<UInt8>? {
            guard let space = rest.firstIndex(of: 0x20) else { return nil }
            defer { rest = rest[(space + 1)...] }
            return rest[..<space]
        }
        guard let timeField = field(), let time = Time(bytes: timeField), let streamField = field(),
            let tagField = field()
        else { return nil }
        if streamField.elementsEqual("stdout".utf8) {
            stream = .stdout
        } else if streamField.elementsEqual("stderr".utf8) {
            stream = .stderr
        } else {
            return nil
        }
        self.time = time
        // Tags are `:`-separated for forward compatibility; only the first one means anything today, and
        // anything but `P` is a full line (the kubelet does not insist on `F`).
        isPartial = tagField.prefix { $0 != 0x3A }.elementsEqual([0x50])
        content = rest
    }
}

/// The options of `kubectl logs` (PodLogOptions) as the kubelet applies them to one container's log.
public struct ContainerLogOptions: Sendable, Equatable {
    /// Which of the container's streams to show (PodLogOptions.stream; `kubectl logs` shows both).
    public enum StreamSelection: Sendable, Equatable {
        case all, stdout, stderr

        func includes(_ stream: CRILogEntry.Stream) -> Bool {
            switch self {
            case .all: true
            case .stdout: stream == .stdout
            case .stderr: stream == .stderr
            }
        }
    }

    /// After the end of the file, keep showing what the container writes until it stops.
    public var follow: Bool
    /// Prefix each line with its time, as the kubelet prints it (`CRILogEntry.Time.kubeletFormat`).
    public var timestamps: Bool
    /// Only the last this many lines (nil or negative: all; 0: none, or only new ones when following).
    public var tailLines: Int?
    /// Skip entries written before this time.
    public var sinceTime: CRILogEntry.Time?
    /// Stop after this many bytes of output, even in the middle of a line.
    public var limitBytes: Int?
    public var stream: StreamSelection

    /// The options of a request. `sinceSeconds` counts back from `now`; with `sinceTime` as well, the later
    /// of the two wins, as in the kubelet's NewLogOptions (the API server rejects both together anyway).
    public init(
        follow: Bool = false, timestamps: Bool = false, tailLines: Int? = nil, sinceTime: CRILogEntry.Time? = nil,
        sinceSeconds: Int64? = nil, limitBytes: Int? = nil, stream: StreamSelection = .all,
        now: CRILogEntry.Time = .now()
    ) {
        self.follow = follow
        self.timestamps = timestamps
        self.tailLines = tailLines
        self.limitBytes = limitBytes
        self.stream = stream
        self.sinceTime = nil
        if let sinceSeconds { self.sinceTime = ContainerLogOptions.sinceTime(seconds: sinceSeconds, before: now) }
        if let sinceTime, self.sinceTime.map({ sinceTime > $0 }) ?? true { self.sinceTime = sinceTime }
    }

    /// PodLogOptions.sinceSeconds as a time: that many seconds before `now`.
    public static func sinceTime(seconds: Int64, before now: CRILogEntry.Time = .now()) -> CRILogEntry.Time {
        now.adding(seconds: -seconds)
    }
}

/// Why a container's log could not be read. Errors thrown by the `emit` closure pass through unchanged.
public enum ContainerLogError: Error, CustomStringConvertible, Sendable, Equatable {
    /// There is no log file at the path (the container never started, or its log was removed).
    case missing(path: String)
    /// Opening, reading or watching the log failed.
    case system(SystemCallError, path: String)

    public var description: String {
        switch self {
        // The kubelet's words: its first step is filepath.EvalSymlinks.
        case .missing(let path):
            return "failed to try resolving symlinks in path \"\(path)\": lstat \(path): no such file or directory"
        case .system(let error, let path): return "failed to read log file \"\(path)\": \(error)"
        }
    }
}

/// Reads a container's CRI log file for `kubectl logs`, in blocks: a log of any size is never held whole.
public enum ContainerLogReader {
    /// How much is read at a time, forwards and (for tailLines) backwards from the end.
    static let blockSize = 64 * 1024
    /// How often a follower asks whether the container still runs: a wake-up from the watcher comes at
    /// least every 250 ms, and a busy log must not turn every write into a runtime call.
    static let followCheckInterval: Duration = .milliseconds(200)

    /// Reads the log at `path` and hands the output to `emit` in order, in chunks, until the end of the
    /// file; or, with `follow`, until `keepFollowing` says the container no longer runs (what it wrote
    /// until then is still shown), `limitBytes` is reached, `emit` throws, or the task is cancelled.
    /// A log that the runtime reopens (renamed away and recreated at `path`) is followed into the new file.
    public static func read(
        path: String, options: ContainerLogOptions,
        keepFollowing: () async -> Bool = { true },
        emit: ([UInt8]) async throws -> Void
    ) async throws {
        // As the kubelet: resolve symlinks first (/var/log/containers/*.log point into /var/log/pods).
        let resolved: String
        do { resolved = try FileSystem.realPath(path) } catch {
            throw error.errno == ENOENT ? ContainerLogError.missing(path: path) : .system(error, path: path)
        }
        var log = try OpenLog(path: resolved)
        if let lines = options.tailLines, lines >= 0 {
            let size = try log.size()
            let start = try tailStart(lines: lines, streams: options.stream, size: size) {
                (offset, count) throws(ContainerLogError) in try log.read(at: offset, count: count)
            }
            try log.seek(to: start)
        }
        var renderer = ContainerLogRenderer(options: options)
        let watcher = options.follow ? LogChangeWatcher(directory: FileSystem.parent(of: resolved)) : nil
        defer { watcher?.stop() }
        var buffer = [UInt8](repeating: 0, count: blockSize)
        // The start of a line whose newline is not read yet.
        var pending: [UInt8] = []

        /// Reads and shows everything up to the end of the file; true when no more output is wanted.
        func readToEnd() async throws -> Bool {
            while true {
                try Task.checkCancellation()
                let count = try log.read(into: &buffer)
                if count == 0 { return false }
                var output: [UInt8] = []
                output.reserveCapacity(count + (options.timestamps ? count / 2 : 0))
                var lineStart = 0
                while !renderer.isFinished, let newline = buffer[lineStart..<count].firstIndex(of: 0x0A) {
                    if pending.isEmpty {
                        renderer.render(line: buffer[lineStart..<newline], terminated: true, into: &output)
                    } else {
                        pending.append(contentsOf: buffer[lineStart..<newline])
                        renderer.render(line: pending[...], terminated: true, into: &output)
                        pending.removeAll(keepingCapacity: true)
                    }
                    lineStart = newline + 1
                }
                if !renderer.isFinished { pending.append(contentsOf: buffer[lineStart..<count]) }
                if !output.isEmpty { try await emit(output) }
                if renderer.isFinished { return true }
            }
        }

        var lastCheck: ContinuousClock.Instant?
        var containerStopped = false
        while true {
            if try await readToEnd() { return }
            guard let watcher else {
                // Not following: a last line without its newline is shown as it is, as the kubelet does.
                var output: [UInt8] = []
                if !pending.isEmpty { renderer.render(line: pending[...], terminated: false, into: &output) }
                if !output.isEmpty { try await emit(output) }
                return
            }
            // The container had stopped and what it wrote is now read. (A line without its newline is
            // left out: the kubelet waits for the rest of it, which will not come.)
            if containerStopped { return }
            if let reopened = log.reopened(at: resolved) {
                // Rotated: the runtime renamed the file away and writes to a new one at the path. Finish
                // the old one first (lines written after our end of file but before the rename), then read
                // the new one from its start.
                if try await readToEnd() { return }
                log = reopened
                pending.removeAll()
                continue
            }
            if try log.wasTruncated() {
                // Rotated in place (copytruncate, or a runtime keeping one file): start over.
                try log.seek(to: 0)
                pending.removeAll()
                continue
            }
            let now = ContinuousClock.now
            if lastCheck.map({ now - $0 >= followCheckInterval }) ?? true {
                lastCheck = now
                // Stopped: read on to the end once more, for what it wrote just before.
                if !(await keepFollowing()) { containerStopped = true; continue }
            }
            await watcher.next()
        }
    }

    /// The offset at which the last `lines` output lines of `streams` begin in a log of `size` bytes,
    /// reading it backwards a block at a time with `read(offset, count)`.
    ///
    /// A line is what kubectl shows as one: the entries up to and including one tagged `F`; entries tagged
    /// `P` at the very end (a line still being written) count as a line too. For logs of full lines this is
    /// the kubelet's FindTailLineStartIndex, which counts entries: there a long line split into partial
    /// entries counts as several. Unparsable lines, other streams' entries, and a last entry without its
    /// newline (still being written to the file) are not counted.
    static func tailStart<E: Error>(
        lines: Int, streams: ContainerLogOptions.StreamSelection, size: Int64, blockSize: Int = blockSize,
        read: (_ offset: Int64, _ count: Int) throws(E) -> [UInt8]
    ) throws(E) -> Int64 {
        var counted = 0
        var sawSelected = false
        /// Whether the entry `line` is the first one not to show (it ends line `lines + 1`).
        func isBeyondTail(_ line: ArraySlice<UInt8>) -> Bool {
            guard let entry = CRILogEntry(line: line), streams.includes(entry.stream) else { return false }
            defer { sawSelected = true }
            // A fragment continues the line counted after it, unless it is the last fragment of all.
            guard !entry.isPartial || !sawSelected else { return false }
            if counted == max(0, lines) { return true }
            counted += 1
            return false
        }
        // `block` holds [blockStart, blockStart + block.count): newly read bytes, then the bytes of the
        // line whose start is not found yet (up to and including its newline, at `lineEnd`).
        var blockStart = size
        var carried: ArraySlice<UInt8> = []
        var lineEnd: Int?
        while blockStart > 0 {
            let start = max(0, blockStart - Int64(blockSize))
            var block = try read(start, Int(blockStart - start))
            let fresh = block.count
            block.append(contentsOf: carried)
            if lineEnd != nil { lineEnd = block.count }
            for index in stride(from: fresh - 1, through: 0, by: -1) where block[index] == 0x0A {
                if let end = lineEnd, isBeyondTail(block[(index + 1)..<(end - 1)]) { return start + Int64(end) }
                lineEnd = index + 1
            }
            blockStart = start
            carried = lineEnd.map { block[0..<$0] } ?? []
        }
        if let end = lineEnd, isBeyondTail(carried[0..<(end - 1)]) { return Int64(end) }
        return 0
    }
}

/// Turns entries into the bytes kubectl shows: the kubelet's logWriter, with its since filter, timestamp
/// prefix and byte limit, plus the line count of tailLines when not following.
struct ContainerLogRenderer {
    let options: ContainerLogOptions
    private var remainingBytes: Int
    /// Lines still to show: the kubelet stops after the tail's lines rather than at the end of a file
    /// that may have grown since the tail was found. Nil when following or without tailLines.
    private var remainingLines: Int?
    /// Whether the next entry starts a line (the last one shown ended with its newline), so that only the
    /// first fragment of a partial line gets the timestamp.
    private var atLineStart = true

    init(options: ContainerLogOptions) {
        self.options = options
        remainingBytes = options.limitBytes.map { max(0, $0) } ?? .max
        remainingLines = options.follow ? nil : options.tailLines.flatMap { $0 >= 0 ? $0 : nil }
    }

    /// No more output is wanted: the byte limit is reached, or the tail's lines are shown.
    var isFinished: Bool { remainingBytes == 0 || remainingLines == 0 }

    /// Appends the output for one line of the file (without its newline; `terminated`: it had one).
    mutating func render(line: ArraySlice<UInt8>, terminated: Bool, into output: inout [UInt8]) {
        guard !isFinished, let entry = CRILogEntry(line: line), options.stream.includes(entry.stream) else { return }
        let full = !entry.isPartial && terminated
        if full, let lines = remainingLines { remainingLines = lines - 1 }
        // Skipped, but still one of the tail's lines, as the kubelet counts it.
        if let since = options.sinceTime, entry.time < since { return }
        var text: [UInt8] = []
        if options.timestamps && atLineStart {
            text.append(contentsOf: entry.time.kubeletFormat.utf8)
            text.append(0x20)
        }
        text.append(contentsOf: entry.content)
        if full { text.append(0x0A) }
        // The limit may cut a line, the timestamp included, as the kubelet's does.
        let shown = min(text.count, remainingBytes)
        output.append(contentsOf: text[..<shown])
        if remainingBytes != .max { remainingBytes -= shown }
        atLineStart = entry.content.isEmpty || full
    }
}

/// The log file being read, and which file it is: a rotation puts another at the same path.
private struct OpenLog {
    let path: String
    let descriptor: FileDescriptor
    let device: UInt64
    let inode: UInt64
    private(set) var offset: Int64 = 0

    init(path: String) throws(ContainerLogError) {
        self.path = path
        do { descriptor = try FileDescriptor.open(path, O_RDONLY) } catch {
            throw error.errno == ENOENT ? .missing(path: path) : .system(error, path: path)
        }
        var info = stat()
        guard fstat(descriptor.rawValue, &info) == 0 else {
            throw .system(SystemCallError(call: "fstat", errno: errno, subject: path), path: path)
        }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    func size() throws(ContainerLogError) -> Int64 {
        var info = stat()
        guard fstat(descriptor.rawValue, &info) == 0 else {
            throw .system(SystemCallError(call: "fstat", errno: errno, subject: path), path: path)
        }
        return Int64(info.st_size)
    }

    /// The file is shorter than what was read of it.
    func wasTruncated() throws(ContainerLogError) -> Bool { try size() < offset }

    mutating func seek(to offset: Int64) throws(ContainerLogError) {
        do { _ = try sys("lseek", path) { lseek(descriptor.rawValue, off_t(offset), SEEK_SET) } } catch {
            throw .system(error, path: path)
        }
        self.offset = offset
    }

    /// Reads on from the current offset into `buffer`; 0 at the end of the file.
    mutating func read(into buffer: inout [UInt8]) throws(ContainerLogError) -> Int {
        let fd = descriptor.rawValue
        let count: Int
        do {
            count = try sys("read", path) { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
        } catch { throw .system(error, path: path) }
        offset += Int64(count)
        return count
    }

    /// Up to `count` bytes at `offset`, without moving the current offset (fewer only at the end of the file).
    func read(at offset: Int64, count: Int) throws(ContainerLogError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let fd = descriptor.rawValue
            let n: Int
            do {
                n = try sys("pread", path) {
                    bytes.withUnsafeMutableBytes {
                        pread(fd, $0.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
                    }
                }
            } catch { throw .system(error, path: path) }
            if n == 0 { break }
            filled += n
        }
        bytes.removeSubrange(filled...)
        return bytes
    }

    /// The file now at `path` when it is another than this one (the runtime reopened its log); nil while
    /// it is the same, or while there is none yet (renamed away, not yet recreated).
    func reopened(at path: String) -> OpenLog? {
        var info = stat()
        guard stat(path, &info) == 0, UInt64(info.st_dev) != device || UInt64(info.st_ino) != inode else { return nil }
        return try? OpenLog(path: path)
    }
}

/// Wakes a follower when the log's directory changes (inotify: writes, and the renames and creations of a
/// rotation, which a watch on the file itself would miss) and at least every 250 ms, so the follower can
/// ask whether the container still runs. The waiting is done on a thread of its own, not one of Swift's
/// few cooperative threads, for as long as the container runs. Without inotify it wakes every 100 ms.
private final class LogChangeWatcher {
    private var wakeups: AsyncStream<Void>.Iterator?
    private let stopper: Pipe?

    init(directory: String) {
        let inotify = inotify_init1(Int32(IN_CLOEXEC) | Int32(IN_NONBLOCK))
        let mask = UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)
        guard inotify >= 0 else { (wakeups, stopper) = (nil, nil); return }
        let events = FileDescriptor(owning: inotify)
        guard inotify_add_watch(inotify, directory, mask) >= 0, let stopper = try? Pipe() else {
            (wakeups, self.stopper) = (nil, nil)
            return
        }
        self.stopper = stopper
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        continuation.onTermination = { _ in _ = try? stopper.writing.write([1]) }
        wakeups = stream.makeAsyncIterator()
        BlockingThread.start(name: "berth-log-follow") {
            var fds = [
                pollfd(fd: events.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stopper.reading.rawValue, events: Int16(POLLIN), revents: 0),
            ]
            var scratch = [UInt8](repeating: 0, count: 4096)
            while true {
                if poll(&fds, 2, 250) < 0 && errno != EINTR { break }
                if fds[1].revents != 0 { break }
                // The events themselves do not matter (the follower looks at the file): drain them.
                while fds[0].revents != 0,
                    scratch.withUnsafeMutableBytes({ Glibc.read(events.rawValue, $0.baseAddress, $0.count) }) > 0
                {}
                if case .terminated = continuation.yield(()) { break }
            }
            continuation.finish()
        }
    }

    /// Returns after a change or a tick.
    func next() async {
        if var iterator = wakeups {
            let woken = await iterator.next() != nil
            wakeups = iterator
            if woken || Task.isCancelled { return }
            wakeups = nil  // the thread ended: poll from here on
        }
        try? await Task.sleep(for: .milliseconds(100))
    }

    /// Ends the thread.
    func stop() { _ = try? stopper?.writing.write([1]) }
}

// MARK: - Times

extension CRILogEntry {
    /// A time as Go's time.Time keeps it: an instant and the zone offset it was written with. Equality and
    /// order are of the instant (Go's Equal and Before), so `+01:00` and `Z` forms of one time are equal.
    public struct Time: Sendable, Comparable, CustomStringConvertible {
        /// Seconds since 1970-01-01T00:00:00Z.
        public var seconds: Int64
        public var nanoseconds: Int32
        /// Seconds east of UTC, as written (0 for `Z`); kept to print the time as it was written.
        public var utcOffset: Int32

        public init(seconds: Int64, nanoseconds: Int32 = 0, utcOffset: Int32 = 0) {
            self.seconds = seconds
            self.nanoseconds = nanoseconds
            self.utcOffset = utcOffset
        }

        public static func now() -> Time {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            return Time(seconds: Int64(now.tv_sec), nanoseconds: Int32(now.tv_nsec))
        }

        public func adding(seconds: Int64) -> Time {
            Time(seconds: self.seconds + seconds, nanoseconds: nanoseconds, utcOffset: utcOffset)
        }

        public static func == (a: Time, b: Time) -> Bool { (a.seconds, a.nanoseconds) == (b.seconds, b.nanoseconds) }
        public static func < (a: Time, b: Time) -> Bool { (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds) }

        /// Parses RFC 3339 as the kubelet does (Go's time.Parse with RFC3339Nano): `Z` or a `±hh:mm`
        /// offset, a fraction of any length (`.` or `,`; digits past the ninth ignored) or none.
        public static func parse(_ text: some Collection<UInt8>) -> Time? { Time(bytes: ArraySlice(text)) }
        public static func parse(_ text: String) -> Time? { Time(bytes: ArraySlice(text.utf8)) }

        init?(bytes text: ArraySlice<UInt8>) {
            let b = text
            var i = b.startIndex
            func digits(_ count: Int) -> Int? {
                guard b.endIndex - i >= count else { return nil }
                var value = 0
                for byte in b[i..<(i + count)] {
                    guard (0x30...0x39).contains(byte) else { return nil }
                    value = value * 10 + Int(byte - 0x30)
                }
                i += count
                return value
            }
            func literal(_ byte: UInt8) -> Bool {
                guard i < b.endIndex, b[i] == byte else { return false }
                i += 1
                return true
            }
            guard let year = digits(4), literal(0x2D), let month = digits(2), literal(0x2D), let day = digits(2),
                literal(0x54), let hour = digits(2), literal(0x3A), let minute = digits(2), literal(0x3A),
                let second = digits(2),
                (1...12).contains(month), (1...Time.daysIn(month: month, year: year)).contains(day),
                hour < 24, minute < 60, second < 60
            else { return nil }
            var nanoseconds = 0
            if i < b.endIndex, b[i] == 0x2E || b[i] == 0x2C, i + 1 < b.endIndex, (0x30...0x39).contains(b[i + 1]) {
                i += 1
                var count = 0
                while i < b.endIndex, (0x30...0x39).contains(b[i]) {
                    if count < 9 { nanoseconds = nanoseconds * 10 + Int(b[i] - 0x30) }
                    count += 1
                    i += 1
                }
                for _ in min(count, 9)..<9 { nanoseconds *= 10 }
            }
            var offset = 0
            if literal(0x5A) {
                offset = 0
            } else if i < b.endIndex, b[i] == 0x2B || b[i] == 0x2D {
                let sign = b[i] == 0x2B ? 1 : -1
                i += 1
                // Go allows up to 24 hours and 60 minutes: "some people do write offsets of 24 hours".
                guard let hours = digits(2), literal(0x3A), let minutes = digits(2), hours <= 24, minutes <= 60
                else { return nil }
                offset = sign * (hours * 3600 + minutes * 60)
            } else {
                return nil
            }
            guard i == b.endIndex else { return nil }
            let days = Time.days(year: year, month: month, day: day)
            let local = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + second)
            self.init(seconds: local - Int64(offset), nanoseconds: Int32(nanoseconds), utcOffset: Int32(offset))
        }

        /// As the kubelet prints a log line's time (RFC3339NanoFixed, `2006-01-02T15:04:05.000000000Z07:00`):
        /// all nine digits of the fraction, and the zone as written (`Z` for UTC).
        public var kubeletFormat: String {
            let local = seconds + Int64(utcOffset)
            let days = local >= 0 ? local / 86400 : (local - 86399) / 86400
            let secondOfDay = Int(local - days * 86400)
            let (year, month, day) = Time.civil(days: Int(days))
            func padded(_ value: Int, _ width: Int) -> String {
                let text = String(value)
                return String(repeating: "0", count: max(0, width - text.count)) + text
            }
            var text = "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))T"
            text +=
                "\(padded(secondOfDay / 3600, 2)):\(padded(secondOfDay / 60 % 60, 2)):\(padded(secondOfDay % 60, 2))"
            text += ".\(padded(Int(nanoseconds), 9))"
            if utcOffset == 0 { return text + "Z" }
            let minutes = Int(abs(utcOffset)) / 60
            return text + (utcOffset < 0 ? "-" : "+") + "\(padded(minutes / 60, 2)):\(padded(minutes % 60, 2))"
        }

        public var description: String { kubeletFormat }

        static func daysIn(month: Int, year: Int) -> Int {
            switch month {
            case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
            case 4, 6, 9, 11: return 30
            default: return 31
            }
        }

        /// Days since 1970-01-01 of a proleptic Gregorian date, and back (BerthKube's civil-date arithmetic).
        static func days(year: Int, month: Int, day: Int) -> Int {
            Int(RFC3339.days(year: Int64(year), month: Int64(month), day: Int64(day)))
        }

        static func civil(days: Int) -> (year: Int, month: Int, day: Int) {
            let date = RFC3339.civil(days: Int64(days))
            return (Int(date.year), Int(date.month), Int(date.day))
        }
    }
}

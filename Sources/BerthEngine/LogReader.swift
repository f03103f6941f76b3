#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import FoundationEssentials

/// Reading a container's log back (`berth logs`): docker's json-file format or the CRI format, across
/// rotated files, filtered by time and tail, and followed (through inotify) across rotations until the
/// container stops.
public struct LogReader {
    public struct Entry: Sendable {
        /// `stdout` or `stderr`.
        public var stream: String
        public var bytes: [UInt8]
        /// RFC 3339 as written.
        public var time: String
    }

    public struct Options: Sendable {
        public var follow = false
        /// Only entries at or after / before these times (seconds since 1970).
        public var since: Double?
        public var until: Double?
        /// Only the last N entries (before following).
        public var tail: Int?
        public var stdout = true
        public var stderr = true
        /// A descriptor that ends a follow when it becomes readable (a daemon's client went away); -1 for none.
        public var cancel: Int32 = -1
        public init() {}
    }

    let engine: Engine
    public init(engine: Engine) { self.engine = engine }

    /// Calls `emit` for each entry, in order. With `follow`, returns when the container has stopped and
    /// everything it wrote has been emitted.
    public func read(_ reference: String, options: Options, emit: (Entry) -> Void) throws(EngineError) {
        let record = try engine.lookup(reference)
        let format = try LogOptions(record.configuration).driver
        if format == "none" {
            throw .conflict("configured logging driver does not support reading")
        }
        let path = engine.layout.logFile(record.id)
        var maximumFiles = 1
        if let value = record.configuration.logOptions["max-file"], let n = Int(value) { maximumFiles = n }
        // Entries go out as they are parsed, a megabyte of file at a time: a 100 MB log is never held
        // whole. Only `tail` keeps entries back, the last N of them.
        var last = options.tail.map { TailBuffer(capacity: max(0, $0)) }
        let deliver: (Entry) -> Void = { entry in
            if last != nil { last!.append(entry) } else { emit(entry) }
        }
        // Oldest first: log.N-1 … log.1, then the live file.
        for index in stride(from: maximumFiles - 1, through: 1, by: -1) {
            let rotated = FileDescriptor(owning: open("\(path).\(index)", O_RDONLY | O_CLOEXEC))
            if rotated.rawValue >= 0 { _ = readLines(rotated, format: format, options: options, emit: deliver) }
        }
        let live = FileDescriptor(owning: open(path, O_RDONLY | O_CLOEXEC))
        var pending: [UInt8] = []
        if live.rawValue >= 0 { pending = readLines(live, format: format, options: options, emit: deliver) }
        if let last { for entry in last.entries { emit(entry) } }
        guard options.follow else { return }
        try follow(record, path: path, live: live, pending: pending, format: format, options: options, emit: emit)
    }

    /// The last `capacity` entries seen (a ring).
    struct TailBuffer {
        let capacity: Int
        private var ring: [Entry] = []
        private var next = 0
        init(capacity: Int) { self.capacity = capacity }
        mutating func append(_ entry: Entry) {
            guard capacity > 0 else { return }
            if ring.count < capacity { ring.append(entry) } else { ring[next] = entry }
            next = (next + 1) % capacity
        }
        var entries: [Entry] { ring.count < capacity ? ring : Array(ring[next...] + ring[..<next]) }
    }

    /// Reads `file` to its end, emitting each complete line's entry; returns the unfinished last line.
    private func readLines(_ file: FileDescriptor, format: String, options: Options, emit: (Entry) -> Void) -> [UInt8] {
        var buffer: [UInt8] = []
        while let chunk = try? file.read(upTo: 1 << 20), !chunk.isEmpty {
            buffer += chunk
            let consumed = parse(buffer, format: format, options: options, emit: emit)
            buffer.removeFirst(consumed)
        }
        return buffer
    }

    private func follow(
        _ record: ContainerRecord, path: String, live initial: FileDescriptor, pending initialPending: [UInt8],
        format: String, options: Options, emit: (Entry) -> Void
    ) throws(EngineError) {
        let directory = engine.layout.container(record.id)
        let inotify = FileDescriptor(owning: inotify_init1(Int32(IN_CLOEXEC)))
        guard inotify.rawValue >= 0 else {
            throw .system(SystemCallError(call: "inotify_init1", errno: errno), context: "following logs")
        }
        let mask = UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE)
        guard inotify_add_watch(inotify.rawValue, directory, mask) >= 0 else {
            throw .system(
                SystemCallError(call: "inotify_add_watch", errno: errno, subject: directory), context: "following logs")
        }
        var live = initial
        var pending = initialPending
        var liveInode = inode(live.rawValue)
        func drain() {
            guard live.rawValue >= 0 else { return }
            while let chunk = try? live.read(upTo: 1 << 20), !chunk.isEmpty {
                pending += chunk
                pending.removeFirst(parse(pending, format: format, options: options, emit: emit))
            }
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            drain()
            // Rotated: finish the old file (still open), then continue with the new one from its start.
            let current = open(path, O_RDONLY | O_CLOEXEC)
            if current >= 0 {
                if inode(current) != liveInode || live.rawValue < 0 {
                    drain()
                    live = FileDescriptor(owning: current)
                    liveInode = inode(current)
                    pending = []
                    drain()
                } else {
                    close(current)
                }
            }
            if !engine.observed(RecordFile.read(ContainerRecord.self, engine.layout.record(record.id)) ?? record).state
                .running
            {
                drain()
                return
            }
            var entries = [
                pollfd(fd: inotify.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: options.cancel, events: Int16(POLLIN), revents: 0),
            ]
            // The exit file's creation wakes us; the timeout only guards against a monitor that vanished.
            // (poll ignores a negative descriptor: no cancel, no entry.)
            if poll(&entries, 2, 1000) > 0 {
                if entries[1].revents != 0 { return }
                _ = buffer.withUnsafeMutableBytes { Glibc.read(inotify.rawValue, $0.baseAddress, $0.count) }
            }
        }
    }

    private func inode(_ fd: Int32) -> UInt64 {
        var info = stat()
        return fstat(fd, &info) == 0 ? UInt64(info.st_ino) : 0
    }

    /// Emits the entries of the complete lines in `bytes`; returns how many bytes they took (the
    /// unfinished last line waits for the rest).
    private func parse(_ bytes: [UInt8], format: String, options: Options, emit: (Entry) -> Void) -> Int {
        var start = 0
        while let newline = bytes[start...].firstIndex(of: 10) {
            let line = bytes[start..<newline]
            start = newline + 1
            var entry: Entry?
            if format == "cri" {
                // TIME STREAM P|F TEXT
                let parts = line.split(separator: 32, maxSplits: 3, omittingEmptySubsequences: false)
                if parts.count >= 3 {
                    var text = parts.count == 4 ? Array(parts[3]) : []
                    if parts[2].first == UInt8(ascii: "F") { text.append(10) }
                    entry = Entry(
                        stream: String(decoding: parts[1], as: UTF8.self), bytes: text,
                        time: String(decoding: parts[0], as: UTF8.self))
                }
            } else {
                entry = JSONFileLine.parse(line)
            }
            guard let entry else { continue }
            if entry.stream == "stdout" && !options.stdout || entry.stream == "stderr" && !options.stderr { continue }
            if options.since != nil || options.until != nil, let t = Timestamp.parse(entry.time) {
                let seconds = Double(t.seconds) + Double(t.nanoseconds) / 1e9
                if let since = options.since, seconds < since { continue }
                if let until = options.until, seconds > until { continue }
            }
            emit(entry)
        }
        return start
    }
}

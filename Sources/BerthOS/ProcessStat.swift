#if canImport(Glibc)
import Glibc
#endif

/// Facts about a process read from /proc/<pid>/stat.
public struct ProcessStat: Sendable, Equatable {
    public var state: Character
    public var startTime: UInt64

    public init(state: Character, startTime: UInt64) {
        self.state = state
        self.startTime = startTime
    }

    /// Reads /proc/<pid>/stat; nil when the process is gone.
    public static func read(pid: Int32) -> ProcessStat? {
        guard let text = try? FileSystem.readString("/proc/\(pid)/stat") else { return nil }
        return parse(text)
    }

    /// Parses the stat line; the command name (field 2) may itself contain spaces and parentheses.
    public static func parse(_ text: String) -> ProcessStat? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); start time is field 22.
        guard fields.count > 19, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return ProcessStat(state: state, startTime: start)
    }

    /// Whether `pid` is still the process that started at `startTime` (not a reused pid, not a zombie).
    /// A `startTime` of 0 accepts any process with that pid.
    public static func isAlive(pid: Int32, startTime: UInt64) -> Bool {
        guard pid > 0, let stat = read(pid: pid) else { return false }
        return (startTime == 0 || stat.startTime == startTime) && stat.state != "Z" && stat.state != "X"
    }
}

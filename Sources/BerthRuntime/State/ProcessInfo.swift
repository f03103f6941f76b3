#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// Facts about a process read from /proc/<pid>/stat.
public struct ProcessStat: Sendable, Equatable {
    public var state: Character
    public var startTime: UInt64

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
}

extension ContainerRecord {
    /// Whether the recorded init process is still the same live process (not reused, not a zombie).
    public var initIsAlive: Bool {
        guard pid > 0, let stat = ProcessStat.read(pid: pid) else { return false }
        return stat.startTime == pidStartTime && stat.state != "Z" && stat.state != "X"
    }
}

/// RFC 3339 timestamps with nanoseconds, as runc writes them, without Foundation's date formatting.
public enum Timestamp {
    public static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let nanos = String(spec.tv_nsec)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: 9 - nanos.count) + nanos + "Z"
    }
}

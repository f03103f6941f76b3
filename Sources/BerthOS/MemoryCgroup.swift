/// A process's memory cgroup, read from the host's view of /proc/PID/cgroup, and the kernel's count of
/// OOM kills in it: how a container monitor learns that its init died of the memory limit (docker's
/// `OOMKilled`, the CRI's `OOMKilled` reason). The count is read before the runtime removes the cgroup.
public enum MemoryCgroup {
    /// The memory cgroup directory of `pid` on v1 (`/sys/fs/cgroup/memory/…`, also on a hybrid host) or
    /// v2 (`/sys/fs/cgroup/…`); nil when the process is gone or has none.
    public static func directory(ofProcess pid: Int32) -> String? {
        guard let text = try? FileSystem.readString("/proc/\(pid)/cgroup") else { return nil }
        var unified: String?
        for line in text.split(separator: "\n") {
            // hierarchy-ID:controller-list:path; the path may itself hold colons.
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[1].split(separator: ",").contains("memory") {
                return "/sys/fs/cgroup/memory" + trimmed(fields[2])
            }
            if fields[0] == "0" && fields[1].isEmpty { unified = String(fields[2]) }
        }
        // Only a pure v2 host keeps memory in the unified hierarchy; a hybrid one's holds no memory.
        guard let path = unified, (try? FileSystemMagic.of(path: "/sys/fs/cgroup")) == FileSystemMagic.cgroup2
        else { return nil }
        return "/sys/fs/cgroup" + trimmed(Substring(path))
    }

    /// OOM kills the kernel has made in `directory` (v2 `memory.events`, v1 `memory.oom_control`,
    /// whose `oom_kill` line kernels since 4.13 write); nil when neither file can be read.
    public static func oomKills(in directory: String) -> UInt64? {
        for file in ["memory.events", "memory.oom_control"] {
            guard let text = try? FileSystem.readString(directory + "/" + file) else { continue }
            for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
                return UInt64(line.dropFirst("oom_kill ".count))
            }
        }
        return nil
    }

    private static func trimmed(_ path: Substring) -> String {
        path == "/" ? "" : String(path)
    }
}

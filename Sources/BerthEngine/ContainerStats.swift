#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// One reading of a container's resource use (docker stats), from its cgroup (v1 or v2) and the
/// network devices of its namespace.
public struct StatsSample: Sendable {
    /// Nanoseconds of CPU the container used, and the whole machine's (from /proc/stat) at the same time.
    public var cpuUsage: UInt64 = 0
    public var systemUsage: UInt64 = 0
    public var onlineCPUs = 1
    public var memoryUsage: UInt64 = 0
    /// The limit, or the machine's memory when unlimited (docker shows that).
    public var memoryLimit: UInt64 = 0
    public var networkReceived: UInt64 = 0
    public var networkSent: UInt64 = 0
    public var blockRead: UInt64 = 0
    public var blockWritten: UInt64 = 0
    public var pids: UInt64 = 0
    /// Per interface of the container's network namespace (docker's `networks`); the totals above sum them.
    public var networkInterfaces: [InterfaceCounters] = []
    /// Nanoseconds of CPU per CPU (cgroup v1's cpuacct.usage_percpu; empty on v2, as docker's).
    public var perCPUUsage: [UInt64] = []
    /// The cgroup's memory as the kernel counts it (page cache included), what it would keep under
    /// pressure (the kubelet's working set: less inactive file pages), anonymous memory, and faults.
    public var memoryRaw: UInt64 = 0
    public var memoryWorkingSet: UInt64 = 0
    public var memoryRSS: UInt64 = 0
    public var pageFaults: UInt64 = 0
    public var majorPageFaults: UInt64 = 0

    public struct InterfaceCounters: Sendable {
        public var name: String
        public var receivedBytes: UInt64
        public var receivedPackets: UInt64
        public var receiveErrors: UInt64
        public var receiveDropped: UInt64
        public var sentBytes: UInt64
        public var sentPackets: UInt64
        public var sendErrors: UInt64
        public var sendDropped: UInt64
    }

    public init() {}

    /// docker's CPU %: the container's share of the machine's time between two readings, times CPUs.
    public func cpuPercent(since previous: StatsSample?) -> Double {
        guard let previous, systemUsage > previous.systemUsage, cpuUsage >= previous.cpuUsage else { return 0 }
        return Double(cpuUsage - previous.cpuUsage) / Double(systemUsage - previous.systemUsage) * Double(onlineCPUs)
            * 100
    }
}

extension StatsSample {
    /// The counters of any cgroup (a container's, a pod's parent, the machine's root `/`) on v1 or v2:
    /// CPU, memory, processes, block I/O. `memoryUsage` is docker's (less inactive file pages on v1);
    /// ``memoryWorkingSet`` is the kubelet's (usage less inactive file pages on both).
    public static func cgroup(_ group: String) -> StatsSample {
        var sample = StatsSample()
        let v2 = (try? FileSystemMagic.of(path: "/sys/fs/cgroup")) == FileSystemMagic.cgroup2
        func read(_ path: String) -> String? { try? FileSystem.readString(path) }
        func number(_ path: String) -> UInt64? { read(path).flatMap { UInt64($0.trimmingCharacters(in: " \n")) } }
        func field(_ text: String?, _ name: String) -> UInt64? {
            guard let line = text?.split(separator: "\n").first(where: { $0.hasPrefix(name + " ") }) else { return nil }
            return UInt64(line.split(separator: " ")[1])
        }
        let group = group == "/" ? "" : group
        if v2 {
            let base = "/sys/fs/cgroup" + group
            sample.cpuUsage = (field(read(base + "/cpu.stat"), "usage_usec") ?? 0) * 1000
            sample.memoryUsage = number(base + "/memory.current") ?? 0
            sample.memoryRaw = sample.memoryUsage
            sample.memoryLimit = number(base + "/memory.max") ?? 0
            let stat = read(base + "/memory.stat")
            sample.memoryRSS = field(stat, "anon") ?? 0
            sample.pageFaults = field(stat, "pgfault") ?? 0
            sample.majorPageFaults = field(stat, "pgmajfault") ?? 0
            let inactive = field(stat, "inactive_file") ?? 0
            sample.memoryWorkingSet = sample.memoryRaw > inactive ? sample.memoryRaw - inactive : 0
            sample.pids = number(base + "/pids.current") ?? 0
            for line in (read(base + "/io.stat") ?? "").split(separator: "\n") {
                for field in line.split(separator: " ") {
                    let kv = field.split(separator: "=")
                    guard kv.count == 2, let v = UInt64(kv[1]) else { continue }
                    if kv[0] == "rbytes" { sample.blockRead += v }
                    if kv[0] == "wbytes" { sample.blockWritten += v }
                }
            }
        } else {
            sample.cpuUsage = number("/sys/fs/cgroup/cpuacct\(group)/cpuacct.usage") ?? 0
            sample.perCPUUsage = (read("/sys/fs/cgroup/cpuacct\(group)/cpuacct.usage_percpu") ?? "")
                .split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt64($0) }
            sample.memoryRaw = number("/sys/fs/cgroup/memory\(group)/memory.usage_in_bytes") ?? 0
            sample.memoryUsage = sample.memoryRaw
            // v1 reports cache as usage; docker and the kubelet subtract total_inactive_file.
            let stat = read("/sys/fs/cgroup/memory\(group)/memory.stat")
            if let inactive = field(stat, "total_inactive_file"), inactive < sample.memoryUsage {
                sample.memoryUsage -= inactive
            }
            sample.memoryWorkingSet = sample.memoryUsage
            sample.memoryRSS = field(stat, "total_rss") ?? 0
            sample.pageFaults = field(stat, "total_pgfault") ?? 0
            sample.majorPageFaults = field(stat, "total_pgmajfault") ?? 0
            sample.memoryLimit = number("/sys/fs/cgroup/memory\(group)/memory.limit_in_bytes") ?? 0
            sample.pids = number("/sys/fs/cgroup/pids\(group)/pids.current") ?? 0
            for line in (read("/sys/fs/cgroup/blkio\(group)/blkio.throttle.io_service_bytes") ?? "").split(
                separator: "\n")
            {
                let fields = line.split(separator: " ")
                guard fields.count == 3, let v = UInt64(fields[2]) else { continue }
                if fields[1] == "Read" { sample.blockRead += v }
                if fields[1] == "Write" { sample.blockWritten += v }
            }
        }
        let physical = UInt64(sysconf(Int32(_SC_PHYS_PAGES))) * UInt64(sysconf(Int32(_SC_PAGESIZE)))
        if sample.memoryLimit == 0 || sample.memoryLimit > physical { sample.memoryLimit = physical }
        sample.onlineCPUs = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        // /proc/stat's cpu line in USER_HZ ticks, as docker's systemUsage (nanoseconds).
        if let stat = read("/proc/stat"), let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        {
            let ticks = line.split(separator: " ").dropFirst().prefix(8).compactMap { UInt64($0) }.reduce(0, +)
            sample.systemUsage = ticks * (1_000_000_000 / UInt64(sysconf(Int32(_SC_CLK_TCK))))
        }
        return sample
    }

    /// The interfaces of the network namespace `pid` is in (loopback left out), summed into the totals.
    public mutating func readNetwork(of pid: Int32) {
        for line in ((try? FileSystem.readString("/proc/\(pid)/net/dev")) ?? "").split(separator: "\n").dropFirst(2) {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, String(parts[0]).trimmingCharacters(in: " ") != "lo" else { continue }
            let fields = parts[1].split(separator: " ").map { UInt64($0) ?? 0 }
            if fields.count >= 12 {
                networkReceived += fields[0]
                networkSent += fields[8]
                networkInterfaces.append(
                    .init(
                        name: String(parts[0]).trimmingCharacters(in: " "), receivedBytes: fields[0],
                        receivedPackets: fields[1],
                        receiveErrors: fields[2], receiveDropped: fields[3], sentBytes: fields[8],
                        sentPackets: fields[9],
                        sendErrors: fields[10], sendDropped: fields[11]))
            }
        }
    }
}

extension ContainerRecord {
    /// The container's cgroup: its pod's parent for a CRI container, else `/berth/<id>`.
    public var cgroupPath: String { configuration.pod.map { "\($0.cgroupParent)/\(id)" } ?? "/berth/\(id)" }
}

extension Engine {
    /// Reads the container's counters now, from its cgroup and its network namespace.
    public func stats(_ reference: String) throws(EngineError) -> StatsSample {
        let record = try lookup(reference)
        guard record.state.status == .running || record.state.status == .paused else {
            return StatsSample()
        }
        var sample = StatsSample.cgroup(record.cgroupPath)
        sample.readNetwork(of: record.state.pid)
        return sample
    }

    /// The container's processes (pids on the host), from the runtime's `ps`.
    public func processes(_ reference: String) throws(EngineError) -> [Int32] {
        let record = try lookup(reference)
        guard record.state.status == .running || record.state.status == .paused else {
            throw .conflict("Container \(record.id) is not running")
        }
        let output = try OCIRuntime(name: record.runtime, layout: layout, named: configuration.runtimes).run([
            "ps", "--format", "json", record.id,
        ])
        let text = output.stdoutText.filter { $0.isNumber || $0 == "," }
        return text.split(separator: ",").compactMap { Int32($0) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// What a container's spec depends on about the machine that will run it, read once by ``current()``.
/// Tests pass their own so that the same request gives the same spec on any host.
public struct HostFacts: Sendable, Equatable {
    /// A kernel's `major.minor`, as docker's seccomp profile compares them (`minKernel`).
    public struct KernelVersion: Sendable, Equatable, Comparable {
        public var major: Int
        public var minor: Int
        public init(_ major: Int, _ minor: Int) { self.major = major; self.minor = minor }
        public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

        /// `6.1.0-18-amd64` → 6.1; nil when the text does not start with two dotted numbers.
        public init?(release: String) {
            let parts = release.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, let major = Int(parts[0]),
                let minor = Int(parts[1].prefix(while: { $0.isNumber }))
            else { return nil }
            self.init(major, minor)
        }
    }

    /// The highest capability number the kernel knows (/proc/sys/kernel/cap_last_cap).
    public var lastCapability: Int
    /// The capabilities the engine itself holds (its effective set), which is all it can hand out:
    /// `--privileged` and `--cap-add ALL` grant these, as docker grants its own (containerd's
    /// cap.Current). nil: every capability up to ``lastCapability``.
    public var ownCapabilities: UInt64?

    /// What `--privileged` and `--cap-add ALL` grant: known to the kernel and held by the engine.
    public var availableCapabilities: [String] {
        ContainerCapabilities.available(lastCapability: lastCapability).enumerated()
            .filter { entry in ownCapabilities.map { $0 & (1 << UInt64(entry.offset)) != 0 } ?? true }
            .map(\.element)
    }
    /// /sys/fs/cgroup is a cgroup2 file system. docker then gives each container a private cgroup
    /// namespace; on cgroup v1 (and hybrid hosts) it shares the host's.
    public var unifiedCgroups: Bool
    public var kernel: KernelVersion
    /// Go's name for the machine (`amd64`, `arm64`): docker's seccomp profile names architectures so.
    public var architecture: String
    /// Online CPUs: `--cpus` cannot ask for more.
    public var cpuCount: Int
    /// Sysctls docker sets in a container's own network namespace, when the kernel has them.
    public var hasPingGroupRange: Bool
    public var hasUnprivilegedPortStart: Bool
    /// The memory cgroup can limit swap (cgroup v1 `memory.memsw.*`, present only with swap accounting;
    /// always on v2). Without it docker drops `--memory-swap`, as a runtime would fail writing it.
    public var swapLimit: Bool = true
    /// `/sys/devices/system/cpu/cpuN/thermal_throttle` directories: docker masks them too, as their
    /// counters leak what other tenants run (GHSA-6fw5-f8r9-fgfm).
    public var thermalThrottlePaths: [String] = []

    public init(
        lastCapability: Int, ownCapabilities: UInt64? = nil, unifiedCgroups: Bool, kernel: KernelVersion,
        architecture: String,
        cpuCount: Int, hasPingGroupRange: Bool = true, hasUnprivilegedPortStart: Bool = true,
        swapLimit: Bool = true, thermalThrottlePaths: [String] = []
    ) {
        self.lastCapability = lastCapability
        self.ownCapabilities = ownCapabilities
        self.unifiedCgroups = unifiedCgroups
        self.kernel = kernel
        self.architecture = architecture
        self.cpuCount = cpuCount
        self.hasPingGroupRange = hasPingGroupRange
        self.hasUnprivilegedPortStart = hasUnprivilegedPortStart
        self.swapLimit = swapLimit
        self.thermalThrottlePaths = thermalThrottlePaths
    }

    /// The facts of this machine.
    public static func current() -> HostFacts {
        let lastCapability =
            (try? FileSystem.readString("/proc/sys/kernel/cap_last_cap"))
            .flatMap { Int($0.trimmingCharacters(in: " \n")) } ?? ContainerCapabilities.knownNames.count - 1
        // A hybrid host has a tmpfs there with v1 hierarchies (and a cgroup2 one) under it.
        let unified = (try? FileSystemMagic.of(path: "/sys/fs/cgroup")) == FileSystemMagic.cgroup2
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) {
            String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let machine = withUnsafeBytes(of: &names.machine) {
            String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let status = (try? FileSystem.readString("/proc/self/status")) ?? ""
        let effective = status.split(separator: "\n").first { $0.hasPrefix("CapEff:") }
            .flatMap { UInt64(String($0.dropFirst("CapEff:".count)).trimmingCharacters(in: " \t"), radix: 16) }
        return HostFacts(
            lastCapability: lastCapability, ownCapabilities: effective, unifiedCgroups: unified,
            kernel: KernelVersion(release: release) ?? KernelVersion(0, 0),
            architecture: goArchitecture(machine: machine),
            cpuCount: max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            hasPingGroupRange: FileSystem.exists("/proc/sys/net/ipv4/ping_group_range"),
            hasUnprivilegedPortStart: FileSystem.exists("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
            swapLimit: unified || FileSystem.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
            thermalThrottlePaths: thermalThrottlePaths())
    }

    static func thermalThrottlePaths() -> [String] {
        let cpus = (try? FileSystem.listDirectory("/sys/devices/system/cpu")) ?? []
        return cpus.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("cpu"), let number = Int(name.dropFirst(3)) else { return nil }
            let path = "/sys/devices/system/cpu/\(name)/thermal_throttle"
            return FileSystem.exists(path) ? (number, path) : nil
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// uname's machine name → Go's GOARCH, the names docker's profile uses.
    static func goArchitecture(machine: String) -> String {
        switch machine {
        case "x86_64": return "amd64"
        case "i386", "i486", "i586", "i686": return "x86"
        case "aarch64", "arm64": return "arm64"
        case let m where m.hasPrefix("arm"): return "arm"
        case "ppc64le": return "ppc64le"
        case "s390x": return "s390x"
        case "riscv64": return "riscv64"
        default: return machine
        }
    }
}

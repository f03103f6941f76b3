import BerthOS

/// What state.json keeps about a container's cgroups, so later commands (kill, pause, ps, delete) can
/// reattach without reading the mount table again.
public struct CgroupState: Codable, Sendable, Equatable {
    /// 1 (v1 or hybrid) or 2 (unified).
    public var version: Int
    /// v1: controller name ("memory", "name=systemd") → the container's directory. Co-mounted
    /// controllers map to the same directory.
    public var paths: [String: String]
    /// v2: the container's directory. Hybrid v1 hosts: the container's directory in the cgroup2 hierarchy.
    public var path: String?
    /// The cgroup2 mount point (for enabling controllers in parents), when there is one.
    public var unifiedMount: String?

    public init(version: Int, paths: [String: String] = [:], path: String? = nil, unifiedMount: String? = nil) {
        self.version = version
        self.paths = paths
        self.path = path
        self.unifiedMount = unifiedMount
    }
}

/// The cgroup hierarchies mounted on this host: where systemd mounts them, when statfs confirms it, else
/// read from /proc/self/mountinfo.
public struct CgroupHierarchies: Sendable, Equatable {
    public struct Mount: Sendable, Equatable {
        public var mountPoint: String
        /// The cgroup this mount shows as its root (mountinfo field 4).
        public var root: String
        /// v1 controllers on this mount ("cpu", "cpuacct", "name=systemd"); empty for cgroup2.
        public var controllers: [String]
    }

    /// v1 hierarchies by controller (co-mounted controllers share one Mount).
    public var v1: [String: Mount] = [:]
    public var unified: Mount?

    /// True when the host is cgroup v2 only (no v1 controller mounted).
    public var isUnifiedOnly: Bool { v1.isEmpty && unified != nil }

    static let knownControllers: Set<String> = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio",
        "perf_event", "hugetlb", "pids", "rdma", "misc", "name=systemd",
    ]

    init() {}

    /// The hierarchies /proc/self/cgroup lists, when each is mounted where systemd (and so every
    /// distribution) mounts it: v1 controllers at /sys/fs/cgroup/<controllers> ("cpu,cpuacct",
    /// "systemd" for name=systemd), cgroup2 at /sys/fs/cgroup or, beside v1, /sys/fs/cgroup/unified —
    /// each confirmed by its file-system type. nil when one is anywhere else: the caller reads mountinfo.
    ///
    /// Why: mountinfo lists every mount on the host, and a node with pods has thousands (each pod's
    /// namespaces pinned, its /dev/shm, each container's root); the kernel formatting it and the runtime
    /// parsing it was ~7 % of a busy node's CPU, growing with every pod, for a dozen fixed paths.
    /// The mount roots are not known this way, so this serves absolute cgroup paths only (crun assumes
    /// the same layout for every path).
    public static func standard(ownCgroups: String, fileSystemType: (String) -> Int?) -> CgroupHierarchies? {
        var hierarchies = CgroupHierarchies()
        var listsUnified = false
        for line in ownCgroups.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { return nil }
            if parts[1].isEmpty {
                listsUnified = true
                continue
            }
            let controllers = parts[1].split(separator: ",").map(String.init).filter { knownControllers.contains($0) }
            if controllers.isEmpty { continue }
            let name = parts[1].split(separator: ",").map { $0.hasPrefix("name=") ? $0.dropFirst(5) : $0 }
                .joined(separator: ",")
            let mountPoint = "/sys/fs/cgroup/" + name
            guard fileSystemType(mountPoint) == FileSystemMagic.cgroup else { return nil }
            let mount = Mount(mountPoint: mountPoint, root: "/", controllers: controllers)
            for controller in controllers where hierarchies.v1[controller] == nil { hierarchies.v1[controller] = mount }
        }
        guard listsUnified else { return hierarchies.v1.isEmpty ? nil : hierarchies }
        if hierarchies.v1.isEmpty {
            guard fileSystemType("/sys/fs/cgroup") == FileSystemMagic.cgroup2 else { return nil }
            hierarchies.unified = Mount(mountPoint: "/sys/fs/cgroup", root: "/", controllers: [])
        } else {
            switch fileSystemType("/sys/fs/cgroup/unified") {
            case FileSystemMagic.cgroup2:
                hierarchies.unified = Mount(mountPoint: "/sys/fs/cgroup/unified", root: "/", controllers: [])
            case nil: break  // a v1 host without the hybrid mount
            default: return nil
            }
        }
        return hierarchies
    }

    public init(mountInfo: String) {
        for entry in MountInfo.cgroupEntries(Array(mountInfo.utf8)) {
            if entry.fileSystemType == "cgroup2" {
                if unified == nil { unified = Mount(mountPoint: entry.mountPoint, root: entry.root, controllers: []) }
            } else {
                let controllers = entry.superOptions.split(separator: ",").map(String.init)
                    .filter { CgroupHierarchies.knownControllers.contains($0) }
                let mount = Mount(mountPoint: entry.mountPoint, root: entry.root, controllers: controllers)
                for controller in controllers where v1[controller] == nil { v1[controller] = mount }
            }
        }
    }
}

/// Where a container's cgroup lives, from `linux.cgroupsPath` (runc's cgroupfs driver semantics).
enum CgroupPath {
    /// The cgroup path (as the hierarchy names it, e.g. "/berth/abc") for a container.
    /// - absolute: taken as is, relative to each hierarchy's root;
    /// - relative: below the caller's own cgroup (needs `ownCgroup`);
    /// - nil: `/berth/<id>` (never inside a cgroup Berth did not create).
    static func resolve(_ cgroupsPath: String?, containerID: String) throws(RuntimeError) -> (
        path: String, relative: Bool
    ) {
        guard let cgroupsPath, !cgroupsPath.isEmpty else { return ("/berth/" + containerID, false) }
        let parts = cgroupsPath.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 3 && !cgroupsPath.contains("/") {
            throw .unsupported(
                "linux.cgroupsPath \"\(cgroupsPath)\" is a systemd cgroup path (slice:prefix:name); Berth manages cgroups through cgroupfs only — use a path such as /berth/\(containerID)"
            )
        }
        let cleaned = FileSystem.clean(cgroupsPath)
        if cleaned == "/" || cleaned == "." {
            throw .invalidConfig(
                field: "linux.cgroupsPath",
                reason: "\"\(cgroupsPath)\" names the root cgroup; a container needs its own")
        }
        return (cleaned, !cgroupsPath.hasPrefix("/"))
    }

    /// The directory for `path` in a hierarchy mounted at `mount`; `own` is the caller's cgroup in it
    /// (only used for relative paths).
    static func directory(mount: CgroupHierarchies.Mount, path: String, relative: Bool, own: String?)
        throws(RuntimeError) -> String
    {
        var base = mount.mountPoint
        if relative {
            var ownPath = own ?? "/"
            // The caller's cgroup as seen through this mount: strip the mount's root.
            if mount.root != "/" && ownPath.hasPrefix(mount.root) {
                ownPath = String(ownPath.dropFirst(mount.root.count))
            }
            base = FileSystem.join(base, ownPath)
        }
        let full = FileSystem.clean(FileSystem.join(base, path))
        guard full.hasPrefix(mount.mountPoint + "/") else {
            throw .invalidConfig(
                field: "linux.cgroupsPath", reason: "\"\(path)\" leads outside the cgroup hierarchy \(mount.mountPoint)"
            )
        }
        return full
    }

    /// Parses /proc/self/cgroup into controller → path ("" for the cgroup2 entry).
    static func parseOwn(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[1].isEmpty { result[""] = String(parts[2]); continue }
            for controller in parts[1].split(separator: ",") { result[String(controller)] = String(parts[2]) }
        }
        return result
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// A `cgroup` mount in config.json: the container sees its own cgroups at the destination.
///
/// With a cgroup namespace the kernel roots a fresh cgroup mount at the container's cgroup. Without one,
/// the container's directories in each host hierarchy are bind-mounted (v1: under a tmpfs, one per
/// hierarchy, as runc does).
struct CgroupMounts {
    let spec: Spec
    let root: Root
    let destination: String
    let options: MountOptions
    /// The container's directories, when the init may not sit in them yet: they replace this process's
    /// own paths for the hierarchies they belong to.
    var directories: [String]?

    /// A cgroup hierarchy mounted on the host, and this process's place in it.
    struct Hierarchy: Equatable {
        var mountPoint: String
        var isVersion2: Bool
        /// Comma-separated controllers (v1) as in the mount options.
        var controllers: String
        /// This process's cgroup in that hierarchy (from /proc/self/cgroup).
        var path: String
    }

    var hasNamespace: Bool { (spec.linux?.namespaces ?? []).contains { $0.type == "cgroup" } }
    var flags: UInt { options.flags & ~UInt(MS_BIND | MS_REC | MS_REMOUNT) }

    func mount() throws(RuntimeError) {
        let cgroups = try readProc("/proc/self/cgroup")
        var hierarchies: [Hierarchy]
        if let standard = Self.standardHierarchies(
            cgroups: cgroups, fileSystemType: { try? FileSystemMagic.of(path: $0) })
        {
            hierarchies = standard
        } else {
            hierarchies = Self.hierarchies(mountinfo: try readProc("/proc/self/mountinfo"), cgroups: cgroups)
        }
        if let directories { hierarchies = Self.placing(hierarchies, in: directories) }
        let target = try RuntimeError.wrap("cgroup mount target") { () throws(SystemCallError) in
            try root.makeDirectories(destination)
        }
        if let unified = hierarchies.first(where: { $0.isVersion2 }), !hierarchies.contains(where: { !$0.isVersion2 }) {
            if hasNamespace {
                try RuntimeError.wrap("mounting cgroup2") { () throws(SystemCallError) in
                    try Mount.mount(source: "cgroup", target: target.procPath, type: "cgroup2", flags: flags, data: nil)
                }
            } else {
                try bind(FileSystem.join(unified.mountPoint, unified.path), at: destination)
            }
            return
        }
        try RuntimeError.wrap("mounting cgroup tmpfs") { () throws(SystemCallError) in
            try Mount.mount(
                source: "tmpfs", target: target.procPath, type: "tmpfs",
                flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), data: "mode=755")
        }
        for hierarchy in hierarchies where !hierarchy.isVersion2 {
            let name = String(hierarchy.mountPoint.split(separator: "/").last ?? "")
            let subdirectory = FileSystem.join(destination, name)
            let directory = try RuntimeError.wrap("cgroup mount target") { () throws(SystemCallError) in
                try root.makeDirectories(subdirectory)
            }
            if hasNamespace {
                try RuntimeError.wrap("mounting cgroup \(name)") { () throws(SystemCallError) in
                    try Mount.mount(
                        source: "cgroup", target: directory.procPath, type: "cgroup", flags: flags,
                        data: hierarchy.controllers)
                }
            } else {
                try bind(FileSystem.join(hierarchy.mountPoint, hierarchy.path), at: subdirectory)
            }
            // cpu,cpuacct is reachable as cpu and cpuacct too.
            if name.contains(",") {
                for alias in name.split(separator: ",") {
                    let dir = try RuntimeError.wrap("cgroup link") { () throws(SystemCallError) in
                        try root.makeDirectories(destination)
                    }
                    symlinkat(name, dir.rawValue, String(alias))
                }
            }
        }
        if options.flags & UInt(MS_RDONLY) != 0 {
            let mounted = try RuntimeError.wrap("reopening \(destination)") { () throws(SystemCallError) in
                try root.open(destination, BERTH_O_PATH | O_DIRECTORY)
            }
            try RuntimeError.wrap("remounting cgroup tmpfs read-only") { () throws(SystemCallError) in
                try Mount.mount(
                    source: nil, target: mounted.procPath, type: nil,
                    flags: UInt(MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC), data: "mode=755")
            }
        }
    }

    private func bind(_ source: String, at destination: String) throws(RuntimeError) {
        try RuntimeError.wrap("binding cgroup \(source)") { () throws(SystemCallError) in
            let target = try root.makeDirectories(destination)
            try Mount.mount(
                source: source, target: target.procPath, type: nil, flags: UInt(MS_BIND | MS_REC), data: nil)
            let remount = flags | UInt(MS_BIND | MS_REMOUNT)
            if flags != 0 {
                let mounted = try root.open(destination, BERTH_O_PATH | O_DIRECTORY)
                try Mount.mount(source: nil, target: mounted.procPath, type: nil, flags: remount, data: nil)
            }
        }
    }

    private func readProc(_ path: String) throws(RuntimeError) -> String {
        try RuntimeError.wrap("reading \(path)") { () throws(SystemCallError) in try FileSystem.readString(path) }
    }

    /// `hierarchies` with the path of each replaced by the directory of `directories` under its mount point
    /// (hierarchies without one keep theirs: the container is not placed there).
    static func placing(_ hierarchies: [Hierarchy], in directories: [String]) -> [Hierarchy] {
        hierarchies.map { hierarchy in
            var placed = hierarchy
            let prefix = hierarchy.mountPoint.hasSuffix("/") ? hierarchy.mountPoint : hierarchy.mountPoint + "/"
            if directories.contains(hierarchy.mountPoint) {
                placed.path = "/"
            } else if let directory = directories.first(where: { $0.hasPrefix(prefix) }) {
                placed.path = "/" + directory.dropFirst(prefix.count)
            }
            return placed
        }
    }

    /// The hierarchies in /proc/self/cgroup when each is mounted where systemd mounts it (see
    /// ``CgroupHierarchies/standard(ownCgroups:fileSystemType:)``: the mount table of a node with pods is
    /// long), else nil.
    static func standardHierarchies(cgroups: String, fileSystemType: (String) -> Int?) -> [Hierarchy]? {
        guard let standard = CgroupHierarchies.standard(ownCgroups: cgroups, fileSystemType: fileSystemType) else {
            return nil
        }
        var result: [Hierarchy] = []
        for line in cgroups.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[1].isEmpty {
                guard parts[0] == "0", let unified = standard.unified else { continue }
                result.append(
                    Hierarchy(mountPoint: unified.mountPoint, isVersion2: true, controllers: "", path: String(parts[2]))
                )
            } else if let controller = parts[1].split(separator: ",").first(where: {
                CgroupHierarchies.knownControllers.contains(String($0))
            }), let mount = standard.v1[String(controller)] {
                result.append(
                    Hierarchy(
                        mountPoint: mount.mountPoint, isVersion2: false, controllers: String(parts[1]),
                        path: String(parts[2])))
            }
        }
        return result
    }

    /// Cgroup hierarchies from mountinfo, joined with this process's paths from /proc/self/cgroup.
    static func hierarchies(mountinfo: String, cgroups: String) -> [Hierarchy] {
        var byControllers: [String: String] = [:]
        var unifiedPath: String?
        for line in cgroups.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                unifiedPath = String(parts[2])
            } else {
                byControllers[String(parts[1])] = String(parts[2])
            }
        }
        var result: [Hierarchy] = []
        for entry in MountInfo.cgroupEntries(Array(mountinfo.utf8)) {
            if entry.fileSystemType == "cgroup2", let unifiedPath {
                result.append(
                    Hierarchy(mountPoint: entry.mountPoint, isVersion2: true, controllers: "", path: unifiedPath))
            } else if entry.fileSystemType == "cgroup" {
                let superOptions = entry.superOptions.split(separator: ",")
                let known = byControllers.keys.first { key in
                    key.split(separator: ",").allSatisfy { superOptions.contains($0) }
                }
                guard let key = known, let path = byControllers[key] else { continue }
                result.append(Hierarchy(mountPoint: entry.mountPoint, isVersion2: false, controllers: key, path: path))
            }
        }
        return result
    }
}

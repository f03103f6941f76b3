#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS

/// The mounts of a container, in docker's order: its default file systems (moby `oci/defaults.go`), the
/// init, then the engine's files, volumes, binds and tmpfs mounts sorted parents first (moby `withMounts`).
enum ContainerMounts {
    /// docker's default `--shm-size`: 64 MiB.
    static let defaultShmSize: Int64 = 64 << 20
    /// Where `--init` puts the init, as docker does.
    static let initPath = "/sbin/docker-init"

    static let defaults: [Spec.Mount] = [
        Spec.Mount(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
        Spec.Mount(
            destination: "/dev", type: "tmpfs", source: "tmpfs",
            options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        Spec.Mount(
            destination: "/dev/pts", type: "devpts", source: "devpts",
            options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        Spec.Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
        Spec.Mount(
            destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
            options: ["ro", "nosuid", "noexec", "nodev"]),
        Spec.Mount(
            destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
        Spec.Mount(
            destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777"]),
    ]

    static func build(_ inputs: SpecInputs, writableCgroups: Bool) throws(EngineError) -> [Spec.Mount] {
        let request = inputs.configuration
        var requested: [Spec.Mount] = []
        for (index, mount) in request.mounts.enumerated() {
            requested.append(try userMount(mount, index: index, inputs: inputs))
        }
        for destination in request.tmpfs.keys.sorted() {
            let target = try cleanDestination(destination, option: "--tmpfs")
            let data = request.tmpfs[destination] ?? ""
            requested.append(
                try tmpfsMount(
                    target, data: data.isEmpty ? [] : data.split(separator: ",").map(String.init),
                    option: "--tmpfs"))
        }
        // The engine's /etc/hosts, hostname and resolv.conf, unless the user mounts their own there (docker
        // skips its file then, rather than calling it a duplicate).
        let userTargets = Set(requested.map(\.destination))
        let managed = inputs.managedFiles.keys.sorted().filter { !userTargets.contains(FileSystem.clean($0)) }.map {
            destination in
            Spec.Mount(
                destination: destination, type: "bind", source: inputs.managedFiles[destination],
                options: ["rbind"] + (request.readonlyRootfs ? ["ro"] : []) + ["rprivate"])
        }
        requested = managed + requested

        var seen = Set<String>()
        for mount in requested where !seen.insert(mount.destination).inserted {
            throw .invalidArgument(what: "mounts", reason: "Duplicate mount point: \(mount.destination)")
        }
        // Parents before children, else a child would be hidden by its parent's mount (moby sortMounts).
        let sorted = requested.enumerated().sorted { a, b in
            let depthA = a.element.destination.split(separator: "/").count
            let depthB = b.element.destination.split(separator: "/").count
            return depthA != depthB ? depthA < depthB : a.offset < b.offset
        }.map(\.element)

        let shmSize = request.shmSize ?? defaultShmSize
        guard shmSize >= 0 else {
            throw .invalidArgument(what: "--shm-size", reason: "SHM size can not be less than 0")
        }
        let userDestinations = seen
        let devReplaced = userDestinations.contains("/dev")
        var mounts: [Spec.Mount] = defaults.compactMap { mount in
            if userDestinations.contains(mount.destination) { return nil }
            if devReplaced && mount.destination.hasPrefix("/dev/") { return nil }
            var mount = mount
            if mount.destination == "/dev/shm" {
                mount.options?.append("size=\(shmSize == 0 ? defaultShmSize : shmSize)")
            }
            return mount
        }
        if request.initProcess {
            guard let initPath = inputs.initPath else {
                throw .invalidArgument(what: "--init", reason: "no init binary is configured on this engine")
            }
            mounts.append(
                Spec.Mount(destination: Self.initPath, type: "bind", source: initPath, options: ["bind", "ro"]))
        }
        mounts += sorted

        if request.readonlyRootfs {
            for index in mounts.indices {
                let destination = mounts[index].destination
                if ["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"].contains(destination) { continue }
                if userDestinations.contains(destination) { continue }
                if !(mounts[index].options ?? []).contains("ro") {
                    mounts[index].options = (mounts[index].options ?? []) + ["ro"]
                }
            }
        }
        for index in mounts.indices {
            let isSys = mounts[index].destination == "/sys" && request.privileged
            let isCgroup = mounts[index].type == "cgroup" && writableCgroups
            if isSys || isCgroup { mounts[index].options = mounts[index].options?.filter { $0 != "ro" } }
        }
        return mounts
    }

    /// `-v`/`--mount` entry `index` as an OCI mount.
    static func userMount(
        _ request: ContainerConfiguration.MountRequest, index: Int,
        inputs: SpecInputs
    ) throws(EngineError) -> Spec.Mount {
        let option = "mount \(request.target)"
        let target = try cleanDestination(request.target, option: option)
        switch request.type {
        case .bind:
            guard request.source.hasPrefix("/") else {
                throw .invalidArgument(
                    what: option, reason: "invalid mount path: '\(request.source)' mount path must be absolute")
            }
            let source = FileSystem.clean(request.source)
            guard FileSystem.exists(source) else {
                throw .invalidArgument(what: option, reason: "bind source path does not exist: \(source)")
            }
            let propagation = request.propagation ?? "rprivate"
            guard propagationModes.contains(propagation) else {
                throw .invalidArgument(what: option, reason: "invalid propagation mode: \(propagation)")
            }
            let recursive = request.options.contains("bind") ? "bind" : "rbind"
            return Spec.Mount(
                destination: target, type: "bind", source: source,
                options: [recursive] + (request.readOnly ? ["ro"] : []) + [propagation])
        case .volume:
            guard index < inputs.volumeSources.count, let source = inputs.volumeSources[index] else {
                throw .invalidArgument(
                    what: option,
                    reason:
                        "the volume \(request.source.isEmpty ? "(anonymous)" : request.source) for \(target) was not prepared"
                )
            }
            return Spec.Mount(
                destination: target, type: "bind", source: source,
                options: ["rbind"] + (request.readOnly ? ["ro"] : []))
        case .tmpfs:
            var data: [String] = []
            if request.readOnly { data.append("ro") }
            if let mode = request.tmpfsMode, mode != 0 { data.append("mode=" + String(mode, radix: 8)) }
            if let size = request.tmpfsSize, size != 0 { data.append("size=" + RunOptionParser.formatTmpfsSize(size)) }
            data += request.options
            return try tmpfsMount(target, data: data, option: option)
        }
    }

    /// A tmpfs with docker's defaults (noexec, nosuid, nodev, rprivate) overridden by `data`, merged as
    /// moby's MergeTmpfsOptions: a later flag or key wins over an earlier one of its kind.
    static func tmpfsMount(_ destination: String, data: [String], option: String) throws(EngineError) -> Spec.Mount {
        Spec.Mount(
            destination: destination, type: "tmpfs", source: "tmpfs",
            options: try RunOptionParser.mergeTmpfsOptions(
                ["noexec", "nosuid", "nodev", "rprivate"] + data, option: option))
    }

    static let propagationModes: Set<String> = ["private", "rprivate", "shared", "rshared", "slave", "rslave"]

    /// Absolute, lexically clean, not `/`.
    static func cleanDestination(_ path: String, option: String) throws(EngineError) -> String {
        guard path.hasPrefix("/") else {
            throw .invalidArgument(what: option, reason: "invalid mount path: '\(path)' mount path must be absolute")
        }
        let clean = FileSystem.clean(path)
        guard clean != "/" else {
            throw .invalidArgument(what: option, reason: "invalid specification: destination can't be '/'")
        }
        return clean
    }
}

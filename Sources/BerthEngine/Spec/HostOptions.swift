import BerthOS

extension RunOptionParser {
    /// Resource names `--ulimit` accepts (go-units), without RLIMIT_.
    public static let ulimitNames: Set<String> = [
        "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio",
        "rttime", "sigpending", "stack",
    ]

    /// `--ulimit nofile=1024:2048` (soft:hard; hard defaults to soft; -1 is unlimited), go-units ParseUlimit.
    public static func parseUlimit(_ text: String) throws(EngineError) -> ContainerConfiguration.Ulimit {
        func fail(_ reason: String) -> EngineError { .invalidArgument(what: "--ulimit", reason: reason) }
        guard let equals = text.firstIndex(of: "=") else { throw fail("invalid ulimit argument: \(text)") }
        let name = String(text[..<equals]), values = text[text.index(after: equals)...]
        guard ulimitNames.contains(name) else { throw fail("invalid ulimit type: \(name)") }
        let limits = values.split(separator: ":", omittingEmptySubsequences: false)
        guard limits.count <= 2 else {
            throw fail("too many limit value arguments - \(values), can only have up to two, `soft[:hard]`")
        }
        guard let soft = Int64(limits[0]) else { throw fail("invalid soft limit \"\(limits[0])\" in \(text)") }
        var hard = soft
        if limits.count == 2 {
            guard let value = Int64(limits[1]) else { throw fail("invalid hard limit \"\(limits[1])\" in \(text)") }
            hard = value
        }
        if hard != -1 {
            if soft == -1 {
                throw fail(
                    "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: \(hard)")
            }
            if soft > hard {
                throw fail("ulimit soft limit must be less than or equal to hard limit: \(soft) > \(hard)")
            }
        }
        return ContainerConfiguration.Ulimit(name: name, soft: soft, hard: hard)
    }

    /// Some of `r`, `w`, `m`, each at most once.
    public static func isDeviceMode(_ mode: String) -> Bool {
        !mode.isEmpty && mode.count == Set(mode).count && mode.allSatisfy { "rwm".contains($0) }
    }

    /// `--device /dev/fuse`, `/dev/sda:/dev/xvda`, `/dev/sda:rw`, `/dev/sda:/dev/xvda:rwm` (docker's
    /// validateLinuxPath and parseLinuxDevice): the path in the container must be absolute.
    public static func parseDevice(_ text: String) throws(EngineError) -> ContainerConfiguration.DeviceMapping {
        func fail(_ reason: String) -> EngineError { .invalidArgument(what: "--device", reason: reason) }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 3, !parts[0].isEmpty else { throw fail("bad format for path: \(text)") }
        var host = parts[0], container = parts[0], permissions = "rwm"
        switch parts.count {
        case 2:
            if isDeviceMode(parts[1]) { permissions = parts[1] } else { container = parts[1] }
        case 3:
            guard isDeviceMode(parts[2]) else { throw fail("bad mode specified: \(parts[2])") }
            container = parts[1]; permissions = parts[2]
        default: break
        }
        if container.isEmpty { container = host }
        guard container.hasPrefix("/") else { throw fail("\(container) is not an absolute path") }
        host = host.hasPrefix("/") ? FileSystem.clean(host) : host
        return ContainerConfiguration.DeviceMapping(
            pathOnHost: host, pathInContainer: FileSystem.clean(container),
            cgroupPermissions: permissions)
    }

    /// `--restart no|always|unless-stopped|on-failure[:N]`; a count only with on-failure, never negative.
    public static func parseRestartPolicy(_ text: String) throws(EngineError) -> ContainerConfiguration.RestartPolicy {
        func fail(_ reason: String) -> EngineError { .invalidArgument(what: "--restart", reason: reason) }
        if text.isEmpty { return ContainerConfiguration.RestartPolicy() }
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = parts[0]
        if parts.count == 2 && name.isEmpty {
            throw fail("invalid restart policy format: no policy provided before colon")
        }
        var count = 0
        if parts.count == 2 && !parts[1].isEmpty {
            guard let value = Int(parts[1]) else {
                throw fail("invalid restart policy format: maximum retry count must be an integer")
            }
            count = value
        }
        switch name {
        case "no", "always", "unless-stopped":
            if count != 0 {
                throw fail("invalid restart policy: maximum retry count can only be used with 'on-failure'")
            }
        case "on-failure":
            if count < 0 { throw fail("invalid restart policy: maximum retry count cannot be negative") }
        default:
            throw fail(
                "invalid restart policy: unknown policy '\(name)'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )
        }
        return ContainerConfiguration.RestartPolicy(name: name, maximumRetryCount: count)
    }

    /// `--sysctl net.ipv4.ip_forward=1` → key and value, the key checked by ``validateSysctl(_:)``.
    public static func parseSysctl(_ text: String) throws(EngineError) -> (key: String, value: String) {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw .invalidArgument(what: "--sysctl", reason: "sysctl '\(text)' is not allowed")
        }
        let key = String(text[..<equals])
        try validateSysctl(key)
        return (key, String(text[text.index(after: equals)...]))
    }

    /// Only namespaced sysctls can be set for a container (docker's ValidateSysctl): IPC ones
    /// (`kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`, `kernel.sem`, `kernel.shmall`, `kernel.shmmax`,
    /// `kernel.shmmni`, `kernel.shm_rmid_forced`, `fs.mqueue.*`) and network ones (`net.*`).
    public static func validateSysctl(_ key: String) throws(EngineError) {
        let ipc: Set<String> = [
            "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
            "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
        ]
        guard ipc.contains(key) || key.hasPrefix("net.") || key.hasPrefix("fs.mqueue.") else {
            throw .invalidArgument(what: "--sysctl", reason: "sysctl '\(key)' is not allowed")
        }
    }
}

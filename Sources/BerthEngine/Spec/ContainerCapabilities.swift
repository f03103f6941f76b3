/// Which capabilities a container gets: docker's default set, adjusted by `--cap-add`/`--cap-drop`,
/// or everything the kernel has with `--privileged` (moby `oci/caps`).
public enum ContainerCapabilities {
    /// docker's default: what a typical service needs to set itself up, without the dangerous ones
    /// (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, …). Order as moby lists them.
    public static let dockerDefault = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]

    /// Every capability by number (linux/capability.h), 0 through CAP_CHECKPOINT_RESTORE (40).
    public static let knownNames = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// What a privileged process gets on this machine (`run --privileged`, `exec --privileged`): every
    /// capability the kernel has and the engine holds. A root without CAP_SYS_RESOURCE (a container
    /// host, a restricted VM) cannot hand it out, and runtimes fail to start a process asking for it.
    public static func privileged() -> [String] {
        SpecBuilder.machine.availableCapabilities
    }

    /// The capabilities a kernel whose highest is `lastCapability` has.
    public static func available(lastCapability: Int) -> [String] {
        Array(knownNames.prefix(max(0, min(lastCapability + 1, knownNames.count))))
    }

    /// docker's TweakCapabilities: privileged → all `available`; `ALL` in adds → all minus drops; `ALL`
    /// in drops → only the adds; else the defaults minus drops plus adds. Names are case-insensitive,
    /// `CAP_` optional; a known name that is not available is an error, as in docker. Unlike docker, a
    /// name is listed once even if added twice or added while a default.
    public static func resolve(
        add: [String], drop: [String], privileged: Bool,
        available all: [String]
    ) throws(EngineError) -> [String] {
        if privileged { return all }
        if add.isEmpty && drop.isEmpty { return dockerDefault }
        let drops = try normalize(drop, option: "--cap-drop", available: all)
        let adds = try normalize(add, option: "--cap-add", available: all)
        var result: [String]
        if adds.contains("ALL") {
            result = all.filter { !drops.contains($0) }
        } else if drops.contains("ALL") {
            result = adds
        } else {
            result = dockerDefault.filter { !drops.contains($0) } + adds
        }
        var seen = Set<String>()
        return result.filter { seen.insert($0).inserted }
    }

    /// `net_admin`, `NET_ADMIN`, `cap_net_admin` → `CAP_NET_ADMIN`; `all` → `ALL`.
    static func normalize(_ names: [String], option: String, available: [String]) throws(EngineError) -> [String] {
        var result: [String] = []
        for name in names {
            var upper = name.uppercased()
            if upper == "ALL" { result.append(upper); continue }
            if !upper.hasPrefix("CAP_") { upper = "CAP_" + upper }
            guard knownNames.contains(upper) else {
                throw .invalidArgument(what: option, reason: "unknown capability: \"\(upper)\"")
            }
            guard available.contains(upper) else {
                throw .invalidArgument(
                    what: option,
                    reason:
                        "capability not supported by your kernel or not available in the current environment: \"\(upper)\""
                )
            }
            result.append(upper)
        }
        return result
    }
}

/// The config.json that `spec` writes: runc's default, so bundles made for runc work unchanged.
public enum DefaultSpec {
    public static let defaultCapabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

    public static func make() -> Spec {
        var process = Spec.Process(
            args: ["sh"], env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            cwd: "/")
        process.terminal = true
        process.capabilities = Spec.Capabilities(
            bounding: defaultCapabilities, effective: defaultCapabilities,
            permitted: defaultCapabilities, ambient: defaultCapabilities)
        process.rlimits = [Spec.Rlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)]
        process.noNewPrivileges = true
        var linux = Spec.Linux()
        linux.resources = Spec.Resources()
        linux.resources?.devices = [Spec.DeviceRule(allow: false, access: "rwm")]
        linux.namespaces = ["pid", "network", "ipc", "uts", "mount"].map { Spec.Namespace(type: $0) }
        linux.maskedPaths = [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
        ]
        linux.readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        return Spec(
            ociVersion: "1.2.0", process: process, root: Spec.Root(path: "rootfs", readonly: true),
            hostname: "berth", mounts: defaultMounts, linux: linux)
    }

    public static let defaultMounts: [Spec.Mount] = [
        Spec.Mount(destination: "/proc", type: "proc", source: "proc"),
        Spec.Mount(
            destination: "/dev", type: "tmpfs", source: "tmpfs",
            options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        Spec.Mount(
            destination: "/dev/pts", type: "devpts", source: "devpts",
            options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        Spec.Mount(
            destination: "/dev/shm", type: "tmpfs", source: "shm",
            options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        Spec.Mount(
            destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
        Spec.Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
        Spec.Mount(
            destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
            options: ["nosuid", "noexec", "nodev", "relatime", "ro"]),
    ]

    /// runc spec --rootless: a user namespace mapping the caller to root, no cgroup namespace writes.
    public static func rootless(uid: UInt32, gid: UInt32) -> Spec {
        var spec = make()
        spec.linux?.namespaces = ["pid", "ipc", "uts", "mount", "user", "cgroup"].map { Spec.Namespace(type: $0) }
        spec.linux?.uidMappings = [Spec.IDMapping(containerID: 0, hostID: uid, size: 1)]
        spec.linux?.gidMappings = [Spec.IDMapping(containerID: 0, hostID: gid, size: 1)]
        spec.linux?.resources = nil
        spec.mounts = defaultMounts.map { mount in
            var mount = mount
            if mount.destination == "/sys" {
                mount = Spec.Mount(
                    destination: "/sys", type: "none", source: "/sys",
                    options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
            }
            if mount.destination == "/dev/pts" { mount.options = mount.options?.filter { $0 != "gid=5" } }
            return mount
        }
        return spec
    }
}

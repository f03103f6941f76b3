/// How the host mounts cgroups, as far as callers outside the runtime need to know.
public enum CgroupLayout {
    /// v1 controllers under a tmpfs at /sys/fs/cgroup with a cgroup2 mount at /sys/fs/cgroup/unified
    /// whose root lists controllers: the layout crun 1.8 refuses ("cgroups in hybrid mode not supported").
    public static let isHybridWithControllers: Bool = {
        guard (try? FileSystemMagic.of(path: "/sys/fs/cgroup")) == FileSystemMagic.tmpfs,
            (try? FileSystemMagic.of(path: "/sys/fs/cgroup/unified")) == FileSystemMagic.cgroup2
        else { return false }
        let controllers = (try? FileSystem.readString("/sys/fs/cgroup/unified/cgroup.controllers")) ?? ""
        return !controllers.allSatisfy { $0 == " " || $0 == "\n" }
    }()
}

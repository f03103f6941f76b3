#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthRuntime
import Testing

/// A container on a cgroup v2-only host, as most users run: a private mount namespace whose
/// /sys/fs/cgroup is this host's cgroup2 hierarchy alone. The init is cloned straight into its cgroup
/// (CLONE_INTO_CGROUP), its device rules (an eBPF program) are applied while it builds its rootfs, and
/// the container sees its own cgroup at /sys/fs/cgroup. (This host's cgroup2 has only hugetlb to enable.)
@Suite(
    "Containers on cgroup v2 (root)",
    .enabled(if: isRealRoot && hasBusybox && FileSystem.exists("/sys/fs/cgroup/unified/cgroup.procs")))
struct CgroupV2ContainerTests {
    @Test func runOnAUnifiedOnlyHost() throws {
        let box = Sandbox("v2")
        let path = "/\(box.prefix)/c"
        let bundle = box.bundle(
            script:
                "grep '^0::' /proc/self/cgroup; cat /sys/fs/cgroup/cgroup.controllers >/dev/null && echo own-cgroup-mounted"
        ) { spec in
            spec.linux?.cgroupsPath = path
        }
        defer {
            rmdir("/sys/fs/cgroup/unified\(path)")
            rmdir("/sys/fs/cgroup/unified/\(box.prefix)")
        }
        // Only cgroup2 in view: the v1 hierarchies are unmounted in the private namespace (the host keeps them).
        let view = "umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" \"$@\""
        let ran = execute([
            "unshare", "-m", "--propagation", "private", "sh", "-c", view,
            runtimeBinary, "--root", box.root, "run", "--bundle", bundle, box.id("run"),
        ])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stdout.contains("0::\(path)\n"), "the init was cloned into its cgroup: \(ran.stdout)")
        #expect(ran.stdout.contains("own-cgroup-mounted"))
        #expect(!FileSystem.exists("/sys/fs/cgroup/unified\(path)"), "run removed the cgroup")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthRuntime
import Testing

/// Each feature of config.json proved by what a real container prints.
@Suite("Container setup (root)", .enabled(if: isRealRoot && hasBusybox))
struct ContainerSetupTests {
    @Test func namespacesHostnameAndDomainname() {
        let box = Sandbox("ns")
        let output = box.probe(
            "echo pid=$$; hostname; cat /proc/sys/kernel/domainname; ls /sys/class/net | tr '\\n' ' '"
        ) { spec in
            spec.hostname = "berth-box"
            spec.domainname = "example.test"
        }
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout == "pid=1\nberth-box\nexample.test\nlo ")
    }

    @Test func userNamespaceMapsIDs() {
        let box = Sandbox("userns")
        let output = box.probe("cat /proc/self/uid_map /proc/self/gid_map; id -u") { spec in
            spec.linux?.namespaces?.append(Spec.Namespace(type: "user"))
            spec.linux?.uidMappings = [Spec.IDMapping(containerID: 0, hostID: 100000, size: 65536)]
            spec.linux?.gidMappings = [Spec.IDMapping(containerID: 0, hostID: 100000, size: 65536)]
            spec.root?.readonly = false
            spec.mounts = spec.mounts?.filter { $0.type != "sysfs" && $0.type != "cgroup" }
        }
        #expect(output.status == 0, "\(output.stderr)")
        let fields = output.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
        #expect(fields == ["0", "100000", "65536", "0", "100000", "65536", "0"])
    }

    @Test func joinsAnExistingNetworkNamespaceByPath() throws {
        let box = Sandbox("join")
        let first = box.id("first")
        let bundle = box.bundle("first", script: "exec sleep 1000")
        #expect(box.runtime(["run", "--detach", "--bundle", bundle, first]).status == 0)
        let pid = try #require(box.state(first)?.pid)
        var link = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/\(pid)/ns/net", &link, 255)
        let target = String(decoding: link.prefix(Int(max(n, 0))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let output = box.probe("readlink /proc/self/ns/net") { spec in
            let namespaces = spec.linux?.namespaces ?? []
            spec.linux?.namespaces = namespaces.map { ns in
                ns.type == "network" ? Spec.Namespace(type: "network", path: "/proc/\(pid)/ns/net") : ns
            }
        }
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout == target + "\n")
    }

    @Test func timeNamespaceOffsets() {
        let box = Sandbox("time")
        let output = box.probe("cat /proc/uptime | cut -d. -f1") { spec in
            spec.linux?.namespaces?.append(Spec.Namespace(type: "time"))
            spec.linux?.timeOffsets = ["boottime": Spec.TimeOffset(secs: 86400 * 365, nanosecs: 0)]
        }
        #expect(output.status == 0, "\(output.stderr)")
        #expect((Int(output.stdout.filter { $0.isNumber }) ?? 0) >= 86400 * 365)
    }

    @Test func mountsWithOptionsAndBinds() throws {
        let box = Sandbox("mounts")
        let hostDirectory = box.directory + "/shared"
        try FileSystem.makeDirectories(hostDirectory)
        try FileSystem.writeAtomically(hostDirectory + "/note", Array("from host\n".utf8))
        let output = box.probe(
            """
            grep -E ' /scratch | /data ' /proc/self/mountinfo | awk '{print $5, $6}'; cat /data/note; \
            touch /data/x 2>/dev/null && echo data-writable || echo data-readonly; \
            touch /x 2>/dev/null && echo root-writable || echo root-readonly
            """
        ) { spec in
            spec.mounts?.append(
                Spec.Mount(
                    destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["nosuid", "noexec", "size=1m"]))
            spec.mounts?.append(
                Spec.Mount(
                    destination: "/data", type: "bind", source: hostDirectory, options: ["rbind", "ro", "nodev"]))
            spec.root?.readonly = true
        }
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("/scratch rw,nosuid,noexec"))
        #expect(output.stdout.contains("/data ro,nodev"))
        #expect(output.stdout.contains("from host"))
        #expect(output.stdout.contains("data-readonly"))
        #expect(output.stdout.contains("root-readonly"))
    }

    @Test func mountDestinationThroughSymlinkStaysInsideRootfs() throws {
        let box = Sandbox("escape")
        let outside = box.directory + "/outside"
        try FileSystem.makeDirectories(outside)
        let bundle = box.bundle(
            "escape", script: "grep ' /target/etc ' /proc/self/mountinfo | awk '{print $5}'; touch /escape/marker")
        // The image's /escape points at an absolute host path; mounting onto it must land in the rootfs.
        symlink(outside, bundle + "/rootfs/escape")
        var spec = try SpecLoader.load(bundle: bundle)
        spec.root?.readonly = false
        spec.mounts?.append(Spec.Mount(destination: "/escape", type: "tmpfs", source: "tmpfs"))
        box.writeConfig(spec, bundle: bundle)
        let output = box.runtime(["run", "--bundle", bundle, box.id()])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(!FileSystem.exists(outside + "/marker"), "a write through the symlinked mount escaped the rootfs")
        #expect(FileSystem.isDirectory(bundle + "/rootfs" + outside), "the mount must resolve to <rootfs>\(outside)")
        #expect(mounts(under: box.directory).isEmpty)
    }

    @Test func maskedAndReadonlyPaths() {
        let box = Sandbox("mask")
        let output = box.probe(
            """
            cat /proc/keys 2>&1 | wc -c; ls /sys/firmware | wc -l; \
            echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-writable || echo sys-readonly
            """)
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout == "0\n0\nsys-readonly\n")
    }

    @Test func devicesAndDevLinks() {
        let box = Sandbox("dev")
        let output = box.probe(
            """
            for d in null zero full random urandom tty fuse; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
            readlink /dev/fd; readlink /dev/stdin; readlink /dev/ptmx; head -c 4 /dev/zero | wc -c
            """
        ) { spec in
            spec.linux?.devices = [
                Spec.Device(type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o600, uid: 0, gid: 0)
            ]
        }
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("/dev/null character special file 1:3 666"))
        #expect(output.stdout.contains("/dev/urandom character special file 1:9 666"))
        #expect(output.stdout.contains("/dev/fuse character special file a:e5 600"))
        #expect(output.stdout.contains("/proc/self/fd\n/proc/self/fd/0\npts/ptmx\n"))
        #expect(output.stdout.hasSuffix("4\n"))
    }

    @Test func sysctlsInTheContainersNamespaces() {
        let box = Sandbox("sysctl")
        let output = box.probe("cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward") { spec in
            spec.linux?.sysctl = ["kernel.shmmni": "2048", "net.ipv4.ip_forward": "1"]
        }
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout == "2048\n1\n")
    }

    @Test func processUserCapabilitiesRlimitsAndMore() {
        let box = Sandbox("process")
        let output = box.probe(
            """
            id -u; id -g; id -G; umask; pwd; echo $GREETING; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; \
            ulimit -Sn; ulimit -Hn; cat /proc/self/oom_score_adj
            """
        ) { spec in
            spec.process?.user = Spec.User(uid: 1000, gid: 1001, umask: 0o027, additionalGids: [2000, 2001])
            spec.process?.cwd = "/tmp/work"
            spec.process?.env = ["PATH=/bin", "GREETING=hi"]
            spec.process?.capabilities = Spec.Capabilities(
                bounding: ["CAP_CHOWN", "CAP_KILL"], effective: ["CAP_KILL"],
                inheritable: ["CAP_KILL"], permitted: ["CAP_KILL"], ambient: ["CAP_KILL"])
            spec.process?.rlimits = [Spec.Rlimit(type: "RLIMIT_NOFILE", hard: 512, soft: 256)]
            spec.process?.noNewPrivileges = true
            spec.process?.oomScoreAdj = 300
            spec.root?.readonly = false
        }
        #expect(output.status == 0, "\(output.stderr)")
        let expected = """
            1000
            1001
            1001 2000 2001
            0027
            /tmp/work
            hi
            CapEff:\t0000000000000020
            CapBnd:\t0000000000000021
            NoNewPrivs:\t1
            256
            512
            300

            """
        #expect(output.stdout == expected)
    }

    @Test func seccompDeniesWithTheConfiguredErrno() {
        let box = Sandbox("seccomp")
        let output = box.probe("mkdir /tmp/a 2>&1; grep -E '^Seccomp:' /proc/self/status; echo ok") { spec in
            var profile = Spec.Seccomp(defaultAction: "SCMP_ACT_ALLOW")
            profile.architectures = ["SCMP_ARCH_X86_64"]
            profile.syscalls = [Spec.Syscall(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13)]
            spec.linux?.seccomp = profile
            spec.root?.readonly = false
        }
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("Permission denied"))
        #expect(output.stdout.contains("Seccomp:\t2"))
        #expect(!FileSystem.exists(box.directory + "/x/rootfs/tmp/a"))
    }

    @Test func cgroupLimitsAreApplied() throws {
        let box = Sandbox("cgroup")
        let id = box.id()
        let bundle = box.bundle(
            script: "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; exec sleep 1000"
        ) { spec in
            spec.linux?.cgroupsPath = "/\(box.prefix)/limits"
            var resources = Spec.Resources()
            var memory = Spec.Memory(); memory.limit = 64 << 20
            resources.memory = memory
            resources.pids = Spec.Pids(limit: 42)
            var cpu = Spec.CPU(); cpu.shares = 512; cpu.quota = 50000; cpu.period = 100000
            resources.cpu = cpu
            spec.linux?.resources = resources
        }
        #expect(box.runtime(["run", "--detach", "--bundle", bundle, id]).status == 0)
        let base = "\(box.prefix)/limits"
        #expect(try FileSystem.readString("/sys/fs/cgroup/memory/\(base)/memory.limit_in_bytes") == "\(64 << 20)\n")
        #expect(try FileSystem.readString("/sys/fs/cgroup/pids/\(base)/pids.max") == "42\n")
        #expect(try FileSystem.readString("/sys/fs/cgroup/cpu/\(base)/cpu.shares") == "512\n")
        #expect(try FileSystem.readString("/sys/fs/cgroup/cpu/\(base)/cpu.cfs_quota_us") == "50000\n")
        let pid = try #require(box.state(id)?.pid)
        #expect(try FileSystem.readString("/sys/fs/cgroup/memory/\(base)/cgroup.procs").contains("\(pid)"))
        #expect(box.runtime(["delete", "--force", id]).status == 0)
        #expect(!FileSystem.exists("/sys/fs/cgroup/memory/\(base)"), "delete must remove the cgroup")
        rmdir("/sys/fs/cgroup/memory/\(box.prefix)")
        for controller in ["cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "pids", "systemd", "unified"] {
            rmdir("/sys/fs/cgroup/\(controller)/\(box.prefix)")
        }
    }
}

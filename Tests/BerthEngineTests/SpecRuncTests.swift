#if canImport(Glibc)
import Glibc
#endif
@testable import BerthEngine
import BerthOCI
import BerthOS
import FoundationEssentials
import Testing

/// Real root: uid 0 in the initial user namespace, as runc needs to run a container.
private let specTestsRunAsRoot: Bool = {
    guard getuid() == 0, let map = try? FileSystem.readString("/proc/self/uid_map") else { return false }
    let fields = map.split(whereSeparator: { $0 == " " || $0 == "\n" })
    return fields.count >= 3 && fields[0] == "0" && fields[1] == "0" && fields[2] == "4294967295"
}()

private let specRunc = ChildProcess.lookup("runc", path: "/usr/sbin:/usr/bin:/sbin:/bin")

/// The OCI runtimes on this machine: runc (the reference), Berth's own built beside the tests, and crun
/// where it can work (crun 1.8 refuses hybrid cgroup hosts: "cgroups in hybrid mode not supported").
private let specRuntimes: [String] = {
    let names = HostFacts.current().unifiedCgroups ? ["runc", "crun"] : ["runc"]
    var found = names.compactMap { ChildProcess.lookup($0, path: "/usr/sbin:/usr/bin:/sbin:/bin") }
    var directory = FileSystem.parent(of: (try? FileSystem.realPath("/proc/self/exe")) ?? "")
    while !directory.isEmpty && directory != "/" {
        let candidate = directory + "/berth-runtime"
        if FileSystem.exists(candidate) && !FileSystem.isDirectory(candidate) { found.append(candidate); break }
        directory = FileSystem.parent(of: directory)
    }
    return found
}()

/// The cgroup the test containers are made under (removed after each).
private let cgroupParent = "berth-spec-test"

@Suite(
    "Spec builder: real runtimes run the spec",
    .enabled(if: specTestsRunAsRoot && specRunc != nil && FileSystem.exists("/bin/busybox")))
struct SpecRuncTests {
    /// A busybox root file system with `app` (1000:1000, also in group 1001) and /work.
    func busyboxRootfs(in directory: String) throws -> String {
        let rootfs = directory + "/rootfs"
        for path in ["bin", "proc", "sys", "dev", "etc", "tmp", "work"] {
            try FileSystem.makeDirectories(rootfs + "/" + path)
        }
        try FileSystem.writeAtomically(rootfs + "/bin/busybox", try FileSystem.readFile("/bin/busybox"), mode: 0o755)
        for applet in ["sh", "id", "pwd", "echo", "hostname", "cat", "grep"] {
            symlink("busybox", rootfs + "/bin/" + applet)
        }
        try FileSystem.writeAtomically(
            rootfs + "/etc/passwd", Array("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/work:/bin/sh\n".utf8))
        try FileSystem.writeAtomically(rootfs + "/etc/group", Array("root:x:0:\napp:x:1000:\nextra:x:1001:app\n".utf8))
        return rootfs
    }

    /// Runs `spec` as container `id` with `runtime`, from a bundle in `directory`.
    func run(_ spec: Spec, id: String, runtime: String, in directory: String) throws -> ChildProcess.Output {
        try FileSystem.writeAtomically(directory + "/config.json", Array(try JSONEncoder().encode(spec)))
        let state = directory + "/state"
        defer {
            _ = try? ChildProcess.run(
                runtime, arguments: [runtime, "--root", state, "delete", "--force", id], environment: [])
            // The runtime removes the container's cgroup, not the parent it made for it.
            for hierarchy in (try? FileSystem.listDirectory("/sys/fs/cgroup")) ?? [] {
                rmdir("/sys/fs/cgroup/\(hierarchy)/\(cgroupParent)")
            }
            rmdir("/sys/fs/cgroup/\(cgroupParent)")
        }
        return try ChildProcess.run(
            runtime, arguments: [runtime, "--root", state, "run", "--bundle", directory, id],
            environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
    }

    @Test(
        "the runtime accepts the spec; the container sees the user, groups, cwd, env, hostname, mounts, limits and init asked for",
        arguments: specRuntimes)
    func runtimeRunsIt(runtime: String) throws {
        let directory = SpecScratchDirectory("runc")
        let rootfs = try busyboxRootfs(in: directory.path)
        let hosts = directory.path + "/hosts"
        try FileSystem.writeAtomically(hosts, Array("127.0.0.1 localhost berth-managed\n".utf8))

        var request = ContainerConfiguration(image: "busybox")
        request.user = "app"
        request.workingDir = "/work"
        request.env = ["GREETING=hello from the spec"]
        request.tmpfs = ["/scratch": "size=1m"]
        request.cmd = [
            "sh", "-c",
            """
            echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"; echo "cwd=$(pwd)"; echo "greeting=$GREETING"; \
            echo "host=$(hostname)"; grep -c berth-managed /etc/hosts; grep -q ' /scratch tmpfs ' /proc/mounts && echo tmpfs-ok; \
            grep Seccomp: /proc/self/status; grep CapBnd: /proc/self/status; \
            echo "memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"; \
            echo "pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"; \
            echo "nofile=$(ulimit -n)"; echo "pid1=$(cat /proc/1/comm)"
            """,
        ]
        request.resources.memory = 64 << 20
        request.resources.nanoCPUs = 500_000_000
        request.resources.pidsLimit = 100
        request.ulimits = [.init(name: "nofile", soft: 512, hard: 1024)]
        request.readonlyRootfs = true
        let initBinary = ["/usr/bin/tini-static", "/usr/bin/docker-init"].first(where: FileSystem.exists)
        request.initProcess = initBinary != nil
        let id = "berth-spec-\(String(UInt32.random(in: 0..<UInt32.max), radix: 36))"
        var prepared = specInputs(request, image: nil, rootfs: rootfs) {
            $0.hostname = "spec-test-host"
            $0.managedFiles = ["/etc/hosts": hosts]
            $0.cgroupsPath = "/\(cgroupParent)/\(id)"
            $0.initPath = initBinary
        }
        prepared.containerID = id
        let spec = try SpecBuilder.build(prepared)
        let output = try run(spec, id: id, runtime: runtime, in: directory.path)
        #expect(output.status.succeeded, "\(runtime): \(output.stderrText)")
        let lines = output.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.contains("uid=1000 gid=1000 groups=1000 1001"), "\(lines)")
        #expect(lines.contains("cwd=/work"))
        #expect(lines.contains("greeting=hello from the spec"))
        #expect(lines.contains("host=spec-test-host"))
        #expect(lines.contains("1"))
        #expect(lines.contains("tmpfs-ok"))
        #expect(lines.contains { $0.hasPrefix("Seccomp:") && $0.hasSuffix("2") }, "seccomp filter mode expected")
        // docker's 14 capabilities: 0xa80425fb.
        #expect(lines.contains { $0.hasPrefix("CapBnd:") && $0.hasSuffix("00000000a80425fb") }, "\(lines)")
        #expect(lines.contains("memory=67108864"), "\(lines)")
        #expect(lines.contains("pids=100"))
        #expect(lines.contains("nofile=512"))
        if initBinary != nil { #expect(lines.contains { $0.hasPrefix("pid1=") && $0 != "pid1=sh" }, "\(lines)") }
    }

    @Test("a privileged spec runs with every capability and unconfined by seccomp", arguments: specRuntimes)
    func privileged(runtime: String) throws {
        let directory = SpecScratchDirectory("runc")
        let rootfs = try busyboxRootfs(in: directory.path)
        var request = ContainerConfiguration(image: "busybox")
        request.privileged = true
        request.cmd = [
            "sh", "-c", "grep -E '^(CapBnd|Seccomp):' /proc/self/status; test -c /dev/null && echo devices-ok",
        ]
        let id = "berth-spec-\(String(UInt32.random(in: 0..<UInt32.max), radix: 36))"
        let spec = try SpecBuilder.build(
            specInputs(request, rootfs: rootfs) { $0.cgroupsPath = "/\(cgroupParent)/\(id)" })
        let output = try run(spec, id: id, runtime: runtime, in: directory.path)
        #expect(output.status.succeeded, "\(runtime): \(output.stderrText)")
        let lines = output.stdoutText.split(separator: "\n").map(String.init)
        let host = HostFacts.current()
        let all = (UInt64(1) << UInt64(host.lastCapability + 1)) - 1
        let mask = String(all & (host.ownCapabilities ?? all), radix: 16)
        #expect(lines.contains { $0.hasPrefix("CapBnd:") && $0.hasSuffix(mask) }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("Seccomp:") && $0.hasSuffix("0") }, "\(lines)")
        #expect(lines.contains("devices-ok"))
    }
}

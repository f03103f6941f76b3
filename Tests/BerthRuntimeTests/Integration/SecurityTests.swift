#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthRuntime
import CBerthShim
import Testing

/// Regression tests for the runtime attacks every runtime now defends against.
@Suite("Runtime attacks (root)", .enabled(if: isRealRoot && hasBusybox))
struct SecurityTests {
    /// CVE-2019-5736: while the init is still the runtime binary, a handle to /proc/<init>/exe must
    /// never become a writable handle to the host binary.
    @Test func runtimeBinaryCannotBeOverwrittenThroughProcExe() throws {
        let box = Sandbox("exe")
        // A private copy of the runtime, so this test never risks the real one.
        let copy = box.directory + "/berth-runtime-copy"
        try FileSystem.writeAtomically(copy, try FileSystem.readFile(runtimeBinary), mode: 0o755)
        let id = box.id()
        let shared = box.directory + "/shared"
        try FileSystem.makeDirectories(shared)
        #expect(mkfifo(shared + "/ready", 0o600) == 0)
        let bundle = box.bundle(script: "echo up > /shared/ready; exec sleep 1000") { spec in
            spec.mounts?.append(Spec.Mount(destination: "/shared", type: "bind", source: shared, options: ["rbind"]))
        }
        #expect(box.runtime(["create", "--bundle", bundle, id], binary: copy).status == 0)
        let pid = try #require(box.state(id)?.pid)
        let handle = open("/proc/\(pid)/exe", BERTH_O_PATH | O_CLOEXEC)
        #expect(handle >= 0)
        defer { close(handle) }
        #expect(box.runtime(["start", id], binary: copy).status == 0)
        // The user's program is running (it wrote the fifo), so the init no longer executes the runtime
        // binary: the only thing between the handle and a write is the read-only mount.
        #expect(try FileSystem.readString(shared + "/ready") == "up\n")
        let writable = open("/proc/self/fd/\(handle)", O_WRONLY | O_CLOEXEC)
        let error = errno
        if writable >= 0 { close(writable) }
        #expect(writable < 0, "the runtime binary was opened for writing through /proc/<init>/exe")
        #expect(error == EROFS)
        #expect(box.runtime(["delete", "--force", id], binary: copy).status == 0)
    }

    /// CVE-2024-21626: no descriptor of the caller reaches the container, except --preserve-fds ones.
    @Test func noHostDescriptorLeaksIntoTheContainer() throws {
        let box = Sandbox("fds")
        let leaked = open("/", O_RDONLY | O_DIRECTORY)  // deliberately not CLOEXEC, dup2'd to 3 and 9
        defer { close(leaked) }
        let bundle = box.bundle(script: "ls /proc/self/fd | tr '\\n' ' '")
        let plain = box.runtime(["run", "--bundle", bundle, box.id("a")], extraFds: [(3, leaked), (9, leaked)])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout == "0 1 2 3 ", "only stdio (and ls's own directory handle) may be open: \(plain.stdout)")
        let preserved = box.runtime(
            ["run", "--preserve-fds", "1", "--bundle", bundle, box.id("b")], extraFds: [(3, leaked), (9, leaked)])
        #expect(preserved.stdout == "0 1 2 3 4 ", "fd 3 is preserved, ls opens the next one: \(preserved.stdout)")
    }

    /// CVE-2024-21626, the cwd half: a cwd that reaches a host directory through a leaked fd is refused.
    @Test func cwdOutsideTheContainerIsRefused() {
        let box = Sandbox("cwd")
        let leaked = open("/", O_RDONLY | O_DIRECTORY)
        defer { close(leaked) }
        let bundle = box.bundle("cwd", script: "pwd") { spec in spec.process?.cwd = "/proc/self/fd/42" }
        let leaking = box.runtime(["run", "--bundle", bundle, box.id("leak")], extraFds: [(42, leaked)])
        #expect(leaking.status == 1)
        #expect(
            leaking.stderr.contains("outside of the container") || leaking.stderr.contains("process.cwd"),
            "\(leaking.stderr)")
    }

    /// CVE-2019-16884 style: if /proc in the container is not procfs, nothing is written through it.
    @Test func fakeProcIsRefused() throws {
        let box = Sandbox("fakeproc")
        let bundle = box.bundle("fake", script: "true")
        // The image ships a /proc/sys/kernel/shmmni of its own and the config mounts no procfs over it.
        try FileSystem.makeDirectories(bundle + "/rootfs/proc/sys/kernel")
        try FileSystem.writeAtomically(bundle + "/rootfs/proc/sys/kernel/shmmni", Array("1\n".utf8))
        var spec = try SpecLoader.load(bundle: bundle)
        spec.mounts = spec.mounts?.filter { $0.destination != "/proc" }
        spec.linux?.sysctl = ["kernel.shmmni": "2048"]
        spec.linux?.readonlyPaths = []
        spec.linux?.maskedPaths = []
        spec.root?.readonly = false
        box.writeConfig(spec, bundle: bundle)
        let output = box.runtime(["run", "--bundle", bundle, box.id()])
        #expect(output.status == 1)
        #expect(output.stderr.contains("not on procfs"), "\(output.stderr)")
        #expect(try FileSystem.readString(bundle + "/rootfs/proc/sys/kernel/shmmni") == "1\n")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// `berth-monitor --legacy-cgroups RUNTIME ARGS…`: runs a runtime that refuses this host's hybrid cgroup
/// layout (crun 1.8 rejects a cgroup2 mount whose root lists controllers) in a private mount namespace
/// whose /sys/fs/cgroup holds only the v1 hierarchies, the same ones bound back, so cgroups are made
/// exactly where they would be in the host's view. The host's mounts are not touched.
///
/// Here, because the monitor is single-threaded: unshare(CLONE_NEWNS) is refused to a threaded process.
enum LegacyCgroupView {
    static func exec(_ arguments: [String]) -> Never {
        guard let program = arguments.first else { fail("--legacy-cgroups needs a program") }
        if CgroupLayout.isHybridWithControllers {
            do { try enter() } catch { fail("legacy cgroup view: \(error)") }
        }
        _ = withCStringArray(arguments) { argv in
            withCStringArray(ChildProcess.currentEnvironment) { envp in execve(program, argv, envp) }
        }
        fail("exec \(program): \(String(cString: strerror(errno)))")
    }

    static func enter() throws {
        let hierarchies = try FileSystem.listDirectory("/sys/fs/cgroup").filter { name in
            name != "unified" && (try? FileSystemMagic.of(path: "/sys/fs/cgroup/\(name)")) == FileSystemMagic.cgroup
        }
        _ = try sys("unshare(CLONE_NEWNS)") { berth_unshare(BERTH_CLONE_NEWNS) }
        try Mount.mount(source: nil, target: "/", type: nil, flags: UInt(MS_REC | MS_PRIVATE), data: nil)
        // Descriptors on the hierarchies before the tmpfs covers them; bound back through /proc/self/fd.
        var handles: [(String, FileDescriptor)] = []
        for name in hierarchies {
            handles.append(
                (name, try FileDescriptor.open("/sys/fs/cgroup/\(name)", BERTH_O_PATH | O_DIRECTORY | O_CLOEXEC)))
        }
        try Mount.mount(
            source: "cgroup-v1-view", target: "/sys/fs/cgroup", type: "tmpfs", flags: 0, data: "mode=755,size=64k")
        for (name, handle) in handles {
            let target = "/sys/fs/cgroup/\(name)"
            // Links such as cpu → cpu,cpuacct are directories here; a plain directory works for both.
            try FileSystem.makeDirectories(target, mode: 0o755)
            try Mount.mount(
                source: handle.procPath, target: target, type: nil, flags: UInt(MS_BIND | MS_REC), data: nil)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// The init of a pod's shared PID namespace (the kubelet's shareProcessNamespace, crictl's default): a
/// PID namespace dies with its first process, so unlike the network, IPC and UTS namespaces it cannot be
/// held by a pin alone. `berth-monitor --pod-pid-init` is that process (pause's job: reap orphans, exit
/// on SIGTERM), cloned straight into a new PID namespace that is then pinned for the containers to join.
enum PodPIDInit {
    /// Starts the init and pins its namespace at `pinAt`; returns its pid.
    static func start(monitorPath: String, pinAt path: String) throws(SystemCallError) -> Int32 {
        let pipe = try Pipe()
        let arguments = ["berth-monitor", "--pod-pid-init"]
        let pid: pid_t = withCStringArray(arguments) { argv in
            withCStringArray(["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]) { envp in
                monitorPath.withCString { exe in
                    var spawn = berth_spawn_args()
                    spawn.clone_flags = UInt64(BERTH_CLONE_NEWPID)
                    spawn.cgroup_fd = -1
                    spawn.sync_fd = -1
                    spawn.error_fd = pipe.writing.rawValue
                    spawn.exec_path = exe
                    spawn.argv = argv
                    spawn.envp = envp
                    return berth_spawn(&spawn)
                }
            }
        }
        guard pid > 0 else { throw SystemCallError(call: "clone3(CLONE_NEWPID)", errno: errno, subject: monitorPath) }
        pipe.writing.close()
        // EOF: the exec happened (the pipe is close-on-exec); a record: the child failed at that step.
        var report = berth_spawn_error()
        let n = withUnsafeMutableBytes(of: &report) { read(pipe.reading.rawValue, $0.baseAddress, $0.count) }
        if n == MemoryLayout<berth_spawn_error>.size {
            _ = try? ChildProcess.wait(pid)
            throw SystemCallError(
                call: "spawning the pod's PID init (step \(report.step))", errno: report.error, subject: monitorPath)
        }
        do {
            try FileSystem.makeDirectories(FileSystem.parent(of: path), mode: 0o700)
            let fd = try sys("open", path) { berth_open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o444) }
            close(fd)
            try Mount.mount(source: "/proc/\(pid)/ns/pid", target: path, type: "none", flags: UInt(MS_BIND), data: nil)
        } catch {
            stop(pid)
            throw error
        }
        // Reaped by whoever outlives it: a thread of ours waits so that it never lingers as a zombie.
        BlockingThread.start(name: "pod-pid-init") { _ = try? ChildProcess.wait(pid) }
        return pid
    }

    /// Ends the init (SIGKILL: every process of the pod's PID namespace goes with it). A pid that is no
    /// longer a pod init of ours (it exited and was reused) is left alone.
    static func stop(_ pid: Int32) {
        guard let command = try? FileSystem.readFile("/proc/\(pid)/cmdline"),
            String(decoding: command, as: UTF8.self).contains("--pod-pid-init")
        else { return }
        kill(pid, SIGKILL)
    }
}

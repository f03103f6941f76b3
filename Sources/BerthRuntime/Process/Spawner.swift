#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// Starts the runtime's own binary in `init` mode inside new or joined namespaces (berth_spawn in C).
struct Spawner {
    var cloneFlags: Int32 = 0
    var cgroupFd: FileDescriptor?
    var joins: [(kind: NamespaceKind, fd: FileDescriptor)] = []
    var environment: [String] = []
    var arguments: [String] = ["berth-runtime", "init"]

    /// A spawned child that has not yet been released past its sync point.
    struct Child {
        /// The spawned process; after `confirmExec`, the init (another process when the spawned one cloned
        /// it into a new pid namespace of a joined user namespace, see berth_shim.h).
        private(set) var pid: Int32
        let sync: FileDescriptor
        let errors: FileDescriptor
    }

    /// The runtime binary's real path: the child binds it read-only and execs it from there (CVE-2019-5736).
    static let executable: String = {
        (try? FileSystem.realPath("/proc/self/exe")) ?? "/proc/self/exe"
    }()

    func spawn() throws(RuntimeError) -> Child {
        let sync = try RuntimeError.wrap("creating sync pipe") { () throws(SystemCallError) in try Pipe() }
        let errors = try RuntimeError.wrap("creating error pipe") { () throws(SystemCallError) in try Pipe() }
        let joinFds = joins.map { $0.fd.rawValue }
        let joinTypes = joins.map { $0.kind.cloneFlag }
        let exe = Self.executable
        let pid: Int32 = withCStringArray(arguments) { argv in
            withCStringArray(environment) { envp in
                joinFds.withUnsafeBufferPointer { fds in
                    joinTypes.withUnsafeBufferPointer { types in
                        exe.withCString { exePath in
                            var args = berth_spawn_args(
                                clone_flags: UInt64(UInt32(bitPattern: cloneFlags)),
                                cgroup_fd: cgroupFd?.rawValue ?? -1,
                                sync_fd: sync.reading.rawValue,
                                error_fd: errors.writing.rawValue,
                                join_fds: fds.baseAddress, join_types: types.baseAddress,
                                join_count: Int32(fds.count),
                                sealed_exe: exePath, exec_path: exePath,
                                argv: argv, envp: envp, parent_death_signal: 0, become_root: 1)
                            return berth_spawn(&args)
                        }
                    }
                }
            }
        }
        if pid < 0 {
            throw .system(SystemCallError(call: "clone3", errno: errno), context: "spawning container init")
        }
        return Child(pid: pid, sync: sync.writing, errors: errors.reading)
    }
}

extension Spawner.Child {
    /// Lets the child go on past its sync point, then waits until it has exec'd (or reports why not).
    mutating func release() throws(RuntimeError) {
        try proceed()
        try confirmExec()
    }

    /// Lets the child go on past its sync point; `confirmExec` then waits for its exec.
    func proceed() throws(RuntimeError) {
        try RuntimeError.wrap("releasing init") { () throws(SystemCallError) in try sync.write([0]) }
        sync.close()
    }

    /// Waits until the released child has exec'd, or throws why it could not.
    mutating func confirmExec() throws(RuntimeError) {
        var failure: berth_spawn_error
        while true {
            let report = try RuntimeError.wrap("reading init's exec result") { () throws(SystemCallError) in
                try errors.readExactly(MemoryLayout<berth_spawn_error>.size)
            }
            guard report.count == MemoryLayout<berth_spawn_error>.size else { return }
            failure = report.withUnsafeBytes { $0.load(as: berth_spawn_error.self) }
            guard failure.step == Int32(BERTH_SPAWN_REPORT_PID) else { break }
            // The spawned process cloned the init (our child too) and exits: reap it, follow the init.
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            pid = failure.error
        }
        let step: String
        switch Int(failure.step) {
        case Int(BERTH_SPAWN_STEP_SYNC): step = "waiting for the parent"
        case Int(BERTH_SPAWN_STEP_SETNS): step = "setns"
        case Int(BERTH_SPAWN_STEP_UNSHARE): step = "unshare(CLONE_NEWNS)"
        case Int(BERTH_SPAWN_STEP_MOUNT): step = "mount (sealing the runtime binary)"
        case Int(BERTH_SPAWN_STEP_OPEN): step = "open (sealed runtime binary)"
        case Int(BERTH_SPAWN_STEP_EXEC): step = "execve"
        case Int(BERTH_SPAWN_STEP_SETID): step = "setresuid/setresgid (root of the user namespace)"
        case Int(BERTH_SPAWN_STEP_CLONE): step = "clone3 (init in a new pid namespace)"
        default: step = "prctl"
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        throw .system(SystemCallError(call: step, errno: failure.error), context: "starting container init")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// The options of `exec`.
public struct ExecOptions: Sendable {
    public var id: String
    public var process: Spec.Process
    public var detach = false
    public var pidFile: String?
    public var consoleSocket: String?
    public var preserveFds = 0

    public init(id: String, process: Spec.Process) {
        self.id = id
        self.process = process
    }
}

extension Runtime {
    /// `exec`: runs another process in a running container's namespaces and cgroups, with the
    /// container's seccomp profile. Returns its exit status (0 once started when detached).
    public func exec(_ options: ExecOptions) throws(RuntimeError) -> Int32 {
        let record = try store.load(options.id)
        let current = status(of: record)
        guard current == .running || current == .created else {
            throw .invalidState(id: options.id, status: current.rawValue, operation: "exec in")
        }
        try SpecValidator(spec: record.config, bundle: record.bundle).validate(
            process: options.process, field: "process")
        if options.process.terminal == true && options.consoleSocket == nil {
            throw .invalidConfig(field: "process.terminal", reason: "a terminal needs --console-socket")
        }

        var spawner = Spawner()
        var inherited: [FileDescriptor] = []
        var mountNamespaceFd: Int32?
        for namespace in NamespacePlan(record.config.linux?.namespaces ?? []).allKinds {
            let path = "/proc/\(record.pid)/ns/\(namespace.procName)"
            let fd = try RuntimeError.wrap("opening \(path)") { () throws(SystemCallError) in
                try FileDescriptor.open(path, O_RDONLY)
            }
            if namespace == .pid {
                _ = try RuntimeError.wrap("joining the container's pid namespace") { () throws(SystemCallError) in
                    try sys("setns", path) { berth_setns(fd.rawValue, BERTH_CLONE_NEWPID) }
                }
            } else if namespace == .mount {
                inherited.append(fd)
                mountNamespaceFd = fd.rawValue
            } else {
                spawner.joins.append((namespace, fd))
            }
        }
        let cgroups = record.cgroup.map { Cgroups.restore($0) }
        spawner.cgroupFd = try cgroups?.directoryForClone()

        var consoleFd: Int32?
        if options.process.terminal == true, let path = options.consoleSocket {
            let fd = try ConsoleSocket.connect(path)
            inherited.append(fd)
            consoleFd = fd.rawValue
        }
        let socket = try RuntimeError.wrap("creating exec socket") { () throws(SystemCallError) in try SocketPair() }
        inherited.append(socket.second)
        for fd in inherited {
            try RuntimeError.wrap("passing descriptors") { () throws(SystemCallError) in try fd.setCloseOnExec(false) }
        }
        spawner.environment = ["_BERTH_INIT_FD=\(socket.second.rawValue)"]

        var mask = Self.blockForwardedSignals(!options.detach)
        var child = try spawner.spawn()
        do {
            if spawner.cgroupFd == nil, let cgroups { try cgroups.add(pid: child.pid) }
            try child.release()
        } catch {
            Glibc.kill(child.pid, SIGKILL)
            var status: Int32 = 0
            waitpid(child.pid, &status, 0)
            throw error
        }
        for fd in inherited { fd.close() }

        let request = InitRequest(
            mode: .exec, containerID: options.id, bundle: record.bundle, rootfs: record.rootfs, spec: record.config,
            process: options.process, noPivot: false, noNewKeyring: true, preserveFds: options.preserveFds,
            consoleFd: consoleFd, fifoFd: nil, createdAt: Timestamp.now(fixedNanoseconds: true),
            mountNamespaceFd: mountNamespaceFd)
        do {
            try Frames.send(request, on: socket.first)
            // created: set up; then end of stream means the program was exec'd, a message means it failed.
            guard let ready = try Frames.receive(InitMessage.self, on: socket.first) else {
                throw RuntimeError.other("exec process exited during setup")
            }
            if ready.kind == .failed { throw RuntimeError.other(ready.detail ?? "exec failed") }
            if let failure = try Frames.receive(InitMessage.self, on: socket.first) {
                throw RuntimeError.other(failure.detail ?? "exec failed")
            }
        } catch let error as RuntimeError {
            var status: Int32 = 0
            waitpid(child.pid, &status, 0)
            throw error
        } catch {
            throw .other("\(error)")
        }
        if let pidFile = options.pidFile {
            // Renamed into place but not synced, as runc writes it: a pid means nothing after a crash.
            try RuntimeError.wrap("writing pid file \(pidFile)") { () throws(SystemCallError) in
                try FileSystem.writeAtomically(pidFile, Array("\(child.pid)".utf8), durable: false)
            }
        }
        if options.detach { return 0 }
        return waitForward(pid: child.pid, mask: &mask)
    }
}

extension NamespacePlan {
    /// Every namespace the container has, new or joined, in join order.
    var allKinds: [NamespaceKind] {
        NamespaceKind.allCases.filter { creates($0) || joins($0) }
    }
}

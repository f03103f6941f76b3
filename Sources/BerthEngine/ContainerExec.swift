#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import FoundationEssentials

/// `docker exec`'s options.
public struct ExecRequest: Sendable {
    public var command: [String]
    public var tty = false
    public var detach = false
    /// `KEY=value` added to (or replacing in) the container's environment.
    public var env: [String] = []
    /// `uid[:gid]` or names from the container's /etc/passwd; nil keeps the container's user.
    public var user: String?
    public var workingDir: String?
    public var privileged = false
    /// With a terminal, the caller waits for the runtime, which waits for the process and exits with its
    /// status: a daemon cannot be the child subreaper the detached form needs to learn that status.
    /// Berth's runtime takes a console socket without `--detach`; runc refuses it, so for other runtimes
    /// the exec is still detached and ``PreparedExec/runtimeWaits`` says so.
    public var terminalInForeground = false
    public init(command: [String]) { self.command = command }
}

/// A prepared `RUNTIME exec`: the caller runs it (with its own stdio, or a console socket for a terminal).
public struct PreparedExec: Sendable {
    public let runtimePath: String
    /// argv, the runtime's path first.
    public let arguments: [String]
    public let processFile: String
    /// Where the runtime sends the terminal (when `tty`).
    public let consoleSocket: String?
    /// Written by the runtime once the process runs: without it, the runtime failed to start it.
    public let pidFile: String
    /// The runtime exits when the process does, with its status (false: it detached once the process ran).
    public let runtimeWaits: Bool

    /// The process's pid on the host, once the runtime has started it.
    public var pid: pid_t? { (try? FileSystem.readString(pidFile)).flatMap { pid_t($0.filter(\.isNumber)) } }

    /// Whether the runtime got as far as running the process (docker exec exits 126 when it did not).
    public var started: Bool { access(pidFile, F_OK) == 0 }

    /// Removes the process file (and console socket path) once the exec has started or ended.
    public func discard() {
        unlink(processFile)
        unlink(pidFile)
        if let consoleSocket { unlink(consoleSocket) }
    }
}

extension Engine {
    /// The process the container runs, changed as `request` says, written for `RUNTIME exec --process`.
    public func prepareExec(_ reference: String, _ request: ExecRequest) throws(EngineError) -> PreparedExec {
        let record = try lookup(reference)
        guard record.state.status == .running else {
            if record.state.status == .paused {
                throw .conflict("Container \(record.id) is paused, unpause the container before exec")
            }
            throw .conflict("container \(record.id) is not running")
        }
        guard !request.command.isEmpty else { throw .invalidArgument(what: "exec", reason: "no command specified") }
        let bundle = layout.container(record.id)
        guard let spec = RecordFile.read(Spec.self, bundle + "/config.json"), var process = spec.process else {
            throw .other("container \(record.shortID) has no readable config.json")
        }
        process.args = request.command
        process.terminal = request.tty
        process.consoleSize = nil
        var env = process.env ?? []
        for entry in request.env {
            let key = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? entry
            env.removeAll { $0.hasPrefix(key + "=") }
            if entry.contains("=") { env.append(entry) }
        }
        if request.tty && !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        process.env = env
        if let cwd = request.workingDir { process.cwd = cwd }
        if let user = request.user {
            process.user = try SpecBuilder.resolveUser(user, rootfs: bundle + "/rootfs")
        }
        if request.privileged {
            let all = ContainerCapabilities.privileged()
            process.capabilities = Spec.Capabilities(bounding: all, effective: all, permitted: all)
        }
        let runtime = try OCIRuntime(name: record.runtime, layout: layout, named: configuration.runtimes)
        let state = layout.monitorState(record.id)
        do { try FileSystem.makeDirectories(state, mode: 0o700) } catch {
            throw .system(error, context: "preparing exec")
        }
        let token = ContainerNames.randomID().prefix(16)
        let processFile = "\(state)/exec-\(token).json"
        try RecordFile.write(process, processFile, durable: false)
        let pidFile = "\(state)/exec-\(token).pid"
        var arguments =
            [runtime.path] + runtime.globalArguments + ["exec", "--process", processFile, "--pid-file", pidFile]
        var consoleSocket: String?
        if request.tty {
            // A socket path must fit in 108 bytes: the container's directory is too deep for one.
            do { try FileSystem.makeDirectories(layout.run + "/sockets", mode: 0o700) } catch {
                throw .system(error, context: "preparing exec")
            }
            consoleSocket = "\(layout.run)/sockets/\(token).sock"
            // runc takes a console socket only when it detaches: the caller then waits for the process
            // itself (as a child subreaper it inherits it when the runtime exits).
            arguments += ["--tty", "--console-socket", consoleSocket!]
        }
        let foreground =
            request.tty && request.terminalInForeground && !request.detach && runtime.takesConsoleSocketInForeground
        let detached = request.detach || (request.tty && !foreground)
        if detached { arguments.append("--detach") }
        arguments.append(record.id)
        return PreparedExec(
            runtimePath: runtime.path, arguments: arguments, processFile: processFile, consoleSocket: consoleSocket,
            pidFile: pidFile, runtimeWaits: !detached)
    }
}

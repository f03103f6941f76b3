#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthOS
import CBerthShim
import FoundationEssentials
import Synchronization

/// The exec endpoints: `POST /containers/{id}/exec` (create), `POST /exec/{id}/start`,
/// `POST /exec/{id}/resize` and `GET /exec/{id}/json`. As in dockerd, an exec is a record in the
/// daemon's memory: created, started once, and kept after it ends so its exit code can be asked for.
extension DockerAPI {
    struct ExecCreateBody: Decodable {
        var AttachStdin: Bool?
        var AttachStdout: Bool?
        var AttachStderr: Bool?
        var DetachKeys: String?
        var Tty: Bool?
        var ConsoleSize: [UInt16]?
        var Env: [String]?
        var Cmd: [String]?
        var Privileged: Bool?
        var User: String?
        var WorkingDir: String?
    }

    struct ExecStartBody: Decodable {
        var Detach: Bool?
        var Tty: Bool?
        var ConsoleSize: [UInt16]?
    }

    struct IDResponse: Encodable { var Id: String }

    func createExec(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let body = try decodeBody(ExecCreateBody.self, request.body)
        let record = try engine.lookup(reference)
        switch record.state.status {
        case .running: break
        case .paused:
            throw DockerAPIError.conflict("container \(record.id) is paused, unpause the container before exec")
        default: throw DockerAPIError.conflict("container \(record.id) is not running")
        }
        guard let command = body.Cmd, !command.isEmpty else {
            throw DockerAPIError.badRequest("No exec command specified")
        }
        let keys = try DetachKeys(parsing: body.DetachKeys)
        if let size = body.ConsoleSize, size.count != 2 {
            throw DockerAPIError.badRequest("ConsoleSize must be [height, width]")
        }
        var exec = ExecRequest(command: command)
        exec.tty = body.Tty ?? false
        exec.env = body.Env ?? []
        exec.user = body.User.flatMap { $0.isEmpty ? nil : $0 }
        exec.workingDir = body.WorkingDir.flatMap { $0.isEmpty ? nil : $0 }
        exec.privileged = body.Privileged ?? false
        exec.terminalInForeground = true
        let instance = ExecInstance(
            id: ContainerNames.randomID(), containerID: record.id, request: exec,
            attachStdin: body.AttachStdin ?? false, attachStdout: body.AttachStdout ?? false,
            attachStderr: body.AttachStderr ?? false,
            detachKeys: keys, detachKeysText: body.DetachKeys ?? "", consoleSize: body.ConsoleSize,
            announce: { [engine] action, extra in engine.events.container(action, record, extra) })
        execs.add(instance)
        instance.announce("exec_create: " + command.joined(separator: " "), ["execID": instance.id])
        response.json(IDResponse(Id: instance.id), status: .created)
    }

    func inspectExec(_ id: String, _ response: ResponseWriter) throws {
        response.json(try execs.lookup(id).inspect())
    }

    func resizeExec(_ id: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let instance = try execs.lookup(id)
        let (height, width) = try Self.terminalSize(request)
        try instance.resize(height: height, width: width)
        response.send(.ok)
    }

    /// Detached: started and answered at once. Attached: the connection is hijacked and carries the
    /// process's stdio until it exits, by which time its exit code is recorded (the CLI asks for it next).
    func startExec(_ id: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let body = try decodeBody(ExecStartBody.self, request.body, emptyAllowed: true)
        let instance = try execs.lookup(id)
        let prepared = try instance.prepare(engine: engine)
        if body.Detach ?? false {
            do { try instance.runDetached(prepared) } catch {
                instance.failed()
                throw DockerAPIError.from(error)
            }
            return response.send(.ok)
        }
        let session = ExecSession(
            instance: instance, prepared: prepared, channel: response.channel,
            consoleSize: body.ConsoleSize ?? instance.consoleSize, logger: logger)
        let raw = RawStreamHandler(
            onInput: { session.clientInput($0) }, onInputClosed: { session.clientInputClosed() },
            onClose: { session.clientClosed() })
        let contentType =
            instance.request.tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream"
        if request.wantsUpgrade {
            response.hijack(contentType: contentType, raw: raw)
        } else {
            response.hijackWithoutUpgrade(contentType: contentType, raw: raw)
        }
        session.start()
    }

    /// `h` and `w` of a resize request, as dockerd checks them.
    static func terminalSize(_ request: APIRequest) throws(DockerAPIError) -> (UInt16, UInt16) {
        guard let h = request.value("h"), let height = UInt16(h) else {
            throw .badRequest("invalid resize height \"\(request.value("h") ?? "")\"")
        }
        guard let w = request.value("w"), let width = UInt16(w) else {
            throw .badRequest("invalid resize width \"\(request.value("w") ?? "")\"")
        }
        return (height, width)
    }

    func decodeBody<T: Decodable>(_ type: T.Type, _ body: [UInt8], emptyAllowed: Bool = false) throws(DockerAPIError)
        -> T
    {
        try Self.decodeBody(type, body, emptyAllowed: emptyAllowed)
    }

    /// A request body as `T`: an empty one is a 400 unless allowed (then `{}`), malformed JSON a 400.
    static func decodeBody<T: Decodable>(_ type: T.Type, _ body: [UInt8], emptyAllowed: Bool = false)
        throws(DockerAPIError) -> T
    {
        var bytes = body
        if !body.contains(where: { !($0 == 32 || $0 == 9 || $0 == 10 || $0 == 13) }) {
            guard emptyAllowed else { throw .badRequest("request body cannot be empty") }
            bytes = Array("{}".utf8)
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw .badRequest(ContainerCreateRequest.describe(error))
        } catch {
            throw .badRequest("invalid JSON: \(error)")
        }
    }
}

/// The daemon's execs, by id (dockerd forgets them when the daemon stops; so does this).
final class ExecStore: Sendable {
    private let execs = Mutex<[String: ExecInstance]>([:])

    func add(_ instance: ExecInstance) { execs.withLock { $0[instance.id] = instance } }

    func lookup(_ id: String) throws(DockerAPIError) -> ExecInstance {
        guard let found = execs.withLock({ $0[id] }) else { throw .notFound("No such exec instance: \(id)") }
        return found
    }

    /// The execs of a container that is gone are dropped (as dockerd does when it removes one).
    func forget(containerID: String) { execs.withLock { $0 = $0.filter { $0.value.containerID != containerID } } }
}

/// One exec: what was asked for, and how its one run went.
final class ExecInstance: @unchecked Sendable {
    let id: String
    let containerID: String
    let request: ExecRequest
    let attachStdin: Bool
    let attachStdout: Bool
    let attachStderr: Bool
    let detachKeys: DetachKeys
    let detachKeysText: String
    let consoleSize: [UInt16]?
    /// Records an event of the exec's container (dockerd's exec_create, exec_start, exec_die).
    let announce: @Sendable (_ action: String, _ attributes: [String: String]) -> Void

    private enum Phase { case created, running, exited }
    private struct State {
        var phase = Phase.created
        var pid: Int32 = 0
        /// Where the runtime writes the process's pid once it runs (read by an inspect until then).
        var pidFile: String?
        var exitCode: Int32?
        /// The terminal's master while the process runs (for resizes).
        var terminal: FileDescriptor?
        /// A resize that came before the runtime passed the terminal (the CLI resizes right after start).
        var pendingSize: (height: UInt16, width: UInt16)?
    }
    private let state = Mutex(State())

    init(
        id: String, containerID: String, request: ExecRequest, attachStdin: Bool, attachStdout: Bool,
        attachStderr: Bool,
        detachKeys: DetachKeys, detachKeysText: String, consoleSize: [UInt16]?,
        announce: @escaping @Sendable (String, [String: String]) -> Void
    ) {
        self.announce = announce
        self.id = id
        self.containerID = containerID
        self.request = request
        self.attachStdin = attachStdin
        self.attachStdout = attachStdout
        self.attachStderr = attachStderr
        self.detachKeys = detachKeys
        self.detachKeysText = detachKeysText
        self.consoleSize = consoleSize
    }

    /// Claims the one run an exec has and writes the runtime's process file.
    func prepare(engine: Engine) throws -> PreparedExec {
        let first = state.withLock { s in
            defer { s.phase = .running }
            return s.phase == .created
        }
        guard first else {
            throw DockerAPIError.conflict("Exec command \(id) has already run")
        }
        var exec = request
        // A detached exec keeps the runtime in the foreground too (it waits for the process and exits
        // with its status, which dockerd reports), unless the runtime can only hand over a terminal
        // when it detaches (runc, crun: then the status is not known).
        exec.detach = false
        do {
            let prepared = try engine.prepareExec(containerID, exec)
            announce("exec_start: " + request.command.joined(separator: " "), ["execID": id])
            return prepared
        } catch {
            failed()
            throw error
        }
    }

    func started(pid: Int32, pidFile: String?, terminal: FileDescriptor?) {
        state.withLock { s in
            s.pid = pid
            s.pidFile = pidFile
            s.terminal = terminal
            if let terminal, let size = s.pendingSize {
                ExecRelay.setTerminalSize(terminal.rawValue, height: size.height, width: size.width)
            }
            s.pendingSize = nil
        }
    }

    func exited(_ code: Int32) {
        defer { announce("exec_die", ["execID": id, "exitCode": String(code)]) }
        state.withLock { s in
            s.phase = .exited
            s.exitCode = code
            s.terminal = nil
            s.pidFile = nil
        }
    }

    /// Never ran (the runtime could not be started): exec's "cannot run" status, as docker's.
    func failed() { exited(126) }

    func resize(height: UInt16, width: UInt16) throws(DockerAPIError) {
        let tty = request.tty
        let resized = state.withLock { s -> Bool in
            guard let terminal = s.terminal else {
                guard tty && s.phase == .running else { return false }
                s.pendingSize = (height, width)
                return true
            }
            ExecRelay.setTerminalSize(terminal.rawValue, height: height, width: width)
            return true
        }
        // dockerd refuses a resize of an exec whose process has no terminal or is not running.
        if !resized { throw .conflict("Exec \(id) is not running or has no terminal") }
    }

    /// `docker exec -d` on a runtime that detaches to hand over a terminal (runc, crun): the process is
    /// no child of ours, so its end can be seen (a pidfd, or its terminal closing) but not its status,
    /// which stays 0 (dockerd knows it). With `-t` the terminal is still made: its master is taken from the
    /// console socket and read (and dropped) until the process ends, as no one is attached.
    func runDetached(_ prepared: PreparedExec) throws {
        if prepared.runtimeWaits { return try runDetachedInForeground(prepared) }
        defer { prepared.discard() }
        let listener = try prepared.consoleSocket.map { try UnixSocket.listen($0, backlog: 1) }
        let devnull = try FileDescriptor.open("/dev/null", O_RDWR)
        let pid = try ChildProcess.spawn(
            prepared.runtimePath, arguments: prepared.arguments, environment: ChildProcess.currentEnvironment,
            fileDescriptors: [0: devnull.rawValue, 1: devnull.rawValue, 2: devnull.rawValue])
        var master: FileDescriptor?
        if let listener {
            // The runtime passes the terminal before it detaches; it may also fail before.
            let runtime = berth_pidfd_open(pid, 0)
            var fds = [
                pollfd(fd: listener.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: runtime, events: Int16(POLLIN), revents: 0),
            ]
            while poll(&fds, 2, -1) < 0 && errno == EINTR {}
            if runtime >= 0 { close(runtime) }
            if fds[0].revents != 0, let connection = try? UnixSocket.accept(listener) {
                var received: Int32 = -1
                var byte: UInt8 = 0
                _ = berth_recv_fd(connection.rawValue, &received, &byte, 1)
                if received >= 0 { master = FileDescriptor(owning: received) }
            }
        }
        let status = try ChildProcess.wait(pid)
        guard status.succeeded, let process = prepared.pid else {
            throw DockerAPIError(.internalServerError, "exec \(id) failed to start: runtime \(status)")
        }
        started(pid: process, pidFile: nil, terminal: master)
        let terminal = master
        let pidfd = terminal == nil ? berth_pidfd_open(process, 0) : -1
        BlockingThread.start(name: "docker-exec-detached") {
            if let master = terminal {
                // EIO once the process (and whatever it left holding the terminal) has ended.
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(master.rawValue, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                }
            } else if pidfd >= 0 {
                var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                while poll(&entry, 1, -1) < 0 && errno == EINTR {}
                close(pidfd)
            }
            self.exited(0)
        }
    }

    /// `docker exec -d` with the runtime waiting for the process: answered once the process runs (its
    /// pid file written) or the runtime has failed; a thread then waits for the runtime's exit, the
    /// process's status. A terminal (`-dt`) is read and dropped meanwhile, as no one is attached.
    private func runDetachedInForeground(_ prepared: PreparedExec) throws {
        let listener = try prepared.consoleSocket.map { try UnixSocket.listen($0, backlog: 1) }
        let devnull = try FileDescriptor.open("/dev/null", O_RDWR)
        // The pid file appears in this directory once the process runs.
        let inotify = FileDescriptor(owning: inotify_init1(Int32(IN_CLOEXEC)))
        _ = inotify_add_watch(
            inotify.rawValue, FileSystem.parent(of: prepared.pidFile), UInt32(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE))
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(
                prepared.runtimePath, arguments: prepared.arguments, environment: ChildProcess.currentEnvironment,
                fileDescriptors: [0: devnull.rawValue, 1: devnull.rawValue, 2: devnull.rawValue])
        } catch {
            prepared.discard()
            throw error
        }
        let runtime = FileDescriptor(owning: berth_pidfd_open(pid, 0))
        var master: FileDescriptor?
        var runtimeEnded = false
        var scratch = [UInt8](repeating: 0, count: 4096)
        while !prepared.started && !runtimeEnded {
            var fds = [
                pollfd(fd: inotify.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: runtime.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: master == nil ? listener?.rawValue ?? -1 : -1, events: Int16(POLLIN), revents: 0),
            ]
            if poll(&fds, 3, -1) < 0 { if errno == EINTR { continue } else { break } }
            if fds[0].revents != 0 {
                _ = scratch.withUnsafeMutableBytes { read(inotify.rawValue, $0.baseAddress, $0.count) }
            }
            if fds[1].revents != 0 { runtimeEnded = true }
            if fds[2].revents != 0, let listener, let connection = try? UnixSocket.accept(listener) {
                var received: Int32 = -1
                var byte: UInt8 = 0
                _ = berth_recv_fd(connection.rawValue, &received, &byte, 1)
                if received >= 0 { master = FileDescriptor(owning: received) }
            }
        }
        guard prepared.started, let process = prepared.pid else {
            let status = try? ChildProcess.wait(pid)
            prepared.discard()
            failed()
            throw DockerAPIError(
                .internalServerError, "exec \(id) failed to start: runtime \(status.map { "\($0)" } ?? "ended")")
        }
        started(pid: process, pidFile: nil, terminal: master)
        prepared.discard()
        let terminal = master
        BlockingThread.start(name: "docker-exec-detached") {
            if let terminal {
                // EIO once the process (and whatever it left holding the terminal) has ended.
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(terminal.rawValue, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                }
            }
            let status = try? ChildProcess.wait(pid)
            // The runtime's exit is the process's: its code, or 128 + the signal that ended it.
            self.exited(status?.code ?? 126)
        }
    }

    struct Inspect: Encodable {
        struct Process: Encodable {
            var arguments: [String]
            var entrypoint: String
            var privileged: Bool
            var tty: Bool
            var user: String
        }
        var CanRemove: Bool
        var ContainerID: String
        var DetachKeys: String
        var ExitCode: Int32?
        var ID: String
        var OpenStderr: Bool
        var OpenStdin: Bool
        var OpenStdout: Bool
        var ProcessConfig: Process
        var Running: Bool
        var Pid: Int32

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(CanRemove, forKey: .CanRemove)
            try c.encode(ContainerID, forKey: .ContainerID)
            try c.encode(DetachKeys, forKey: .DetachKeys)
            // `null` until the process has exited, as dockerd writes it.
            try c.encode(ExitCode, forKey: .ExitCode)
            try c.encode(ID, forKey: .ID)
            try c.encode(OpenStderr, forKey: .OpenStderr)
            try c.encode(OpenStdin, forKey: .OpenStdin)
            try c.encode(OpenStdout, forKey: .OpenStdout)
            try c.encode(ProcessConfig, forKey: .ProcessConfig)
            try c.encode(Running, forKey: .Running)
            try c.encode(Pid, forKey: .Pid)
        }
        enum Keys: String, CodingKey {
            case CanRemove, ContainerID, DetachKeys, ExitCode, ID, OpenStderr, OpenStdin, OpenStdout, ProcessConfig,
                Running, Pid
        }
    }

    func inspect() -> Inspect {
        var s = state.withLock { $0 }
        // Until then the pid is the runtime's, which runs the process in the foreground.
        if s.phase == .running, let file = s.pidFile, let text = try? FileSystem.readString(file),
            let pid = Int32(text.filter(\.isNumber))
        {
            s.pid = pid
        }
        return Inspect(
            CanRemove: false, ContainerID: containerID, DetachKeys: detachKeysText, ExitCode: s.exitCode, ID: id,
            OpenStderr: attachStderr, OpenStdin: attachStdin, OpenStdout: attachStdout,
            ProcessConfig: .init(
                arguments: Array(request.command.dropFirst()), entrypoint: request.command.first ?? "",
                privileged: request.privileged, tty: request.tty, user: request.user ?? ""),
            Running: s.phase == .running, Pid: s.pid)
    }
}

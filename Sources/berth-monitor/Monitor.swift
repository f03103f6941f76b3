#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// The monitor's command line, written by the engine (BerthEngine.MonitorLaunch): `--name value` pairs.
struct MonitorOptions {
    var id = ""
    var bundle = ""
    var runtime = ""
    /// Global options put before the runtime's verb (`--root DIR`).
    var runtimeArguments: [String] = []
    /// Where the attach and console sockets and the pid file live (/run/berth/containers/ID).
    var stateDirectory = ""
    var exitFile = ""
    var logFormat = ContainerLog.Format.jsonFile
    var logPath = ""
    var logMaximumSize = 0
    var logMaximumFiles = 1
    var terminal = false
    var openStdin = false
    var exitCommand: [String] = []
    /// The descriptor on which the engine waits for "started PID" (or "error MESSAGE").
    var syncDescriptor: Int32 = 3
    /// The attach socket, listening already: the engine made it (and connected, to miss no output)
    /// before starting us, which saves a round trip between creating the container and starting it.
    var attachDescriptor: Int32 = -1
    /// HEALTHCHECK: the process to exec and where its state goes; durations in milliseconds.
    var healthProcess = ""
    var healthFile = ""
    var healthInterval = 30_000
    var healthTimeout = 30_000
    var healthStartPeriod = 0
    var healthStartInterval = 5_000
    var healthRetries = 3
    var eventsFile = ""
    var name = ""
    var image = ""
    /// The embedded DNS server (user-defined networks): the container's pinned network namespace,
    /// `<root>/containers`, and the servers to forward to.
    var dnsNamespace = ""
    var dnsContainers = ""
    var dnsUpstreams: [String] = []

    static func parse(_ arguments: [String]) -> MonitorOptions {
        var o = MonitorOptions()
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { fail("missing value for \(arguments[i - 1])") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--id": o.id = value()
            case "--bundle": o.bundle = value()
            case "--runtime": o.runtime = value()
            case "--runtime-arg": o.runtimeArguments.append(value())
            case "--state-dir": o.stateDirectory = value()
            case "--exit-file": o.exitFile = value()
            case "--log-driver":
                let v = value()
                guard let f = ContainerLog.Format(rawValue: v) else { fail("unknown log driver \(v)") }
                o.logFormat = f
            case "--log-path": o.logPath = value()
            case "--log-max-size": o.logMaximumSize = Int(value()) ?? 0
            case "--log-max-file": o.logMaximumFiles = Int(value()) ?? 1
            case "--tty": o.terminal = true
            case "--stdin": o.openStdin = true
            case "--exit-command": o.exitCommand.append(value())
            case "--sync-fd": o.syncDescriptor = Int32(value()) ?? 3
            case "--attach-fd": o.attachDescriptor = Int32(value()) ?? -1
            case "--health-process": o.healthProcess = value()
            case "--health-file": o.healthFile = value()
            case "--health-interval-ms": o.healthInterval = Int(value()) ?? 30_000
            case "--health-timeout-ms": o.healthTimeout = Int(value()) ?? 30_000
            case "--health-start-period-ms": o.healthStartPeriod = Int(value()) ?? 0
            case "--health-start-interval-ms": o.healthStartInterval = Int(value()) ?? 5_000
            case "--health-retries": o.healthRetries = Int(value()) ?? 3
            case "--events-file": o.eventsFile = value()
            case "--name": o.name = value()
            case "--image": o.image = value()
            case "--dns-netns": o.dnsNamespace = value()
            case "--dns-containers": o.dnsContainers = value()
            case "--dns-upstream": o.dnsUpstreams.append(value())
            default: fail("unknown option \(arguments[i])")
            }
            i += 1
        }
        if o.id.isEmpty || o.bundle.isEmpty || o.runtime.isEmpty || o.stateDirectory.isEmpty || o.exitFile.isEmpty {
            fail("--id, --bundle, --runtime, --state-dir and --exit-file are required")
        }
        return o
    }
}

func fail(_ message: String) -> Never {
    let line = "berth-monitor: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

/// One client attached through the attach socket.
final class AttachedClient {
    let fd: FileDescriptor
    var decoder = StreamFrameDecoder()
    init(fd: FileDescriptor) { self.fd = fd }
}

final class Monitor {
    let options: MonitorOptions
    let log: ContainerLog
    var sync: FileDescriptor
    var initPid: pid_t = 0
    var exitStatus: Int32?
    /// The init's memory cgroup and its OOM kill count at the start: a count that has grown by the exit
    /// is recorded as an OOM kill (read before the runtime's delete removes the cgroup).
    var memoryCgroup: String?
    var oomKillsAtStart: UInt64 = 0
    /// The container's output: two pipes, or the terminal's master.
    var stdoutReader: FileDescriptor?
    var stderrReader: FileDescriptor?
    var terminalMaster: FileDescriptor?
    /// Where clients' input goes (a pipe's write end; the master for a terminal).
    var stdinWriter: FileDescriptor?
    var attachListener: FileDescriptor?
    var clients: [AttachedClient] = []
    var dns: DNSServer?
    /// `runtime.lock` in the state directory, held from the start until the runtime's container is
    /// deleted: an engine that finds it held leaves the delete to us, and one that starts the container
    /// again waits for it (a delete by ID must not meet the next run's container).
    var runtimeLock: FileLock?

    init(options: MonitorOptions) {
        self.options = options
        self.log = ContainerLog(
            format: options.logFormat, path: options.logPath.isEmpty ? "/dev/null" : options.logPath,
            maximumSize: options.logMaximumSize, maximumFiles: options.logMaximumFiles)
        self.sync = FileDescriptor(owning: options.syncDescriptor)
        try? sync.setCloseOnExec(true)
    }

    func run() -> Never {
        do {
            try launch()
        } catch {
            // Deleted before the engine hears of it, so that it finds nothing left with the runtime.
            _ = try? runRuntime(["delete", "--force", options.id])
            report("error \(error)")
            exit(1)
        }
        report("started \(initPid)")
        sync.close()
        supervise()
        finish()
    }

    /// `RUNTIME run --detach`, with stdio the monitor holds the other ends of. One runtime process
    /// instead of `create` then `start` (runc, crun and berth-runtime all take the same options for
    /// both): nothing happens between the two any more, because the engine attached before we started.
    func launch() throws {
        try FileSystem.makeDirectories(options.stateDirectory, mode: 0o700)
        runtimeLock = try FileLock.acquire(options.stateDirectory + "/runtime.lock", wait: true)
        let listener =
            options.attachDescriptor >= 0
            ? FileDescriptor(owning: options.attachDescriptor)
            : try UnixSocket.listen(options.stateDirectory + "/attach.sock")
        try listener.setCloseOnExec(true)
        _ = berth_fcntl_int(listener.rawValue, F_SETFL, O_NONBLOCK)
        attachListener = listener
        // Listening before the container's program runs, so its first lookup finds the resolver.
        if !options.dnsNamespace.isEmpty && !options.dnsContainers.isEmpty {
            do {
                dns = try DNSServer(
                    settings: .init(
                        networkNamespace: options.dnsNamespace, containers: options.dnsContainers,
                        upstreams: options.dnsUpstreams, id: options.id))
            } catch {
                throw MonitorFailure("embedded DNS server: \(error)")
            }
        }
        let pidFile = options.stateDirectory + "/init.pid"
        unlink(pidFile)
        var arguments = ["run", "--detach", "--bundle", options.bundle, "--pid-file", pidFile]
        var fds: [Int32: Int32] = [:]
        // What the runtime itself prints (its errors) before the container's program runs.
        let diagnostics = try Pipe()
        var consoleListener: FileDescriptor?
        var childEnds: [FileDescriptor] = []
        if options.terminal {
            let consolePath = options.stateDirectory + "/console.sock"
            consoleListener = try UnixSocket.listen(consolePath, backlog: 1)
            arguments += ["--console-socket", consolePath]
            let null = try FileDescriptor.open("/dev/null", O_RDWR)
            childEnds.append(null)
            fds = [0: null.rawValue, 1: diagnostics.writing.rawValue, 2: diagnostics.writing.rawValue]
        } else {
            let out = try Pipe(), err = try Pipe()
            stdoutReader = out.reading
            stderrReader = err.reading
            childEnds += [out.writing, err.writing]
            let input: FileDescriptor
            if options.openStdin {
                let pipe = try Pipe()
                input = pipe.reading
                stdinWriter = pipe.writing
            } else {
                input = try FileDescriptor.open("/dev/null", O_RDONLY)
            }
            childEnds.append(input)
            fds = [0: input.rawValue, 1: out.writing.rawValue, 2: err.writing.rawValue]
        }
        arguments.append(options.id)
        let pid = try ChildProcess.spawn(
            options.runtime, arguments: [options.runtime] + options.runtimeArguments + arguments,
            environment: ChildProcess.currentEnvironment, fileDescriptors: fds)
        diagnostics.writing.close()
        for end in childEnds { end.close() }
        // Whatever the runtime says goes to the diagnostics (a terminal) or to the container's own pipes.
        // On failure both are the error (the program never ran); on success what is in the pipes is
        // the program's first output, for the log.
        var said = (try? diagnostics.reading.readAll()) ?? []
        let status = try ChildProcess.wait(pid)
        guard status.succeeded else {
            for reader in [stdoutReader, stderrReader].compactMap({ $0 }) {
                _ = berth_fcntl_int(reader.rawValue, F_SETFL, O_NONBLOCK)
                if let bytes = try? reader.read(upTo: 65536) { said += bytes }
            }
            throw MonitorFailure(oneLine(String(decoding: said, as: UTF8.self), or: "runtime run: \(status)"))
        }
        let pidText = try FileSystem.readString(pidFile).trimmedLine
        guard let parsed = pid_t(pidText), parsed > 0 else {
            throw MonitorFailure("runtime wrote no pid to \(pidFile)")
        }
        initPid = parsed
        memoryCgroup = MemoryCgroup.directory(ofProcess: parsed)
        oomKillsAtStart = memoryCgroup.flatMap(MemoryCgroup.oomKills(in:)) ?? 0
        if let listener = consoleListener {
            _ = berth_fcntl_int(listener.rawValue, F_SETFL, O_NONBLOCK)
            let connection = try UnixSocket.accept(listener)
            var received: Int32 = -1
            var byte: UInt8 = 0
            _ = try sys("recvmsg", "console socket") { berth_recv_fd(connection.rawValue, &received, &byte, 1) }
            guard received >= 0 else { throw MonitorFailure("the runtime sent no terminal on the console socket") }
            terminalMaster = FileDescriptor(owning: received)
            try terminalMaster?.setCloseOnExec(true)
            stdinWriter = terminalMaster
            unlink(options.stateDirectory + "/console.sock")
        }
    }

    /// Copies output to the log and to clients, input to the container, until the init has exited and
    /// its output has ended (or, with processes left holding it, two seconds after the init's exit).
    func supervise() {
        acceptClients()
        var health: HealthChecker?
        if !options.healthProcess.isEmpty && !options.healthFile.isEmpty {
            health = HealthChecker(
                settings: .init(
                    processFile: options.healthProcess, statusFile: options.healthFile,
                    eventsFile: options.eventsFile, name: options.name, image: options.image,
                    interval: Double(options.healthInterval) / 1000, timeout: Double(options.healthTimeout) / 1000,
                    startPeriod: Double(options.healthStartPeriod) / 1000,
                    startInterval: Double(options.healthStartInterval) / 1000, retries: max(1, options.healthRetries)),
                runtime: options.runtime, runtimeArguments: options.runtimeArguments, id: options.id)
        }
        let pidfd = berth_pidfd_open(initPid, 0)
        var exitedAt: timespec?
        var buffer = [UInt8](repeating: 0, count: 65536)
        // The binary's pages are let go of a quarter of a second in, not at once: while the container's
        // program is starting, the CPU is better spent on it (a `run --rm true` is over by then).
        let releaseAt = Timestamp.monotonic() + 0.25
        var pagesReleased = false
        while true {
            reap()
            let outputs = [stdoutReader, stderrReader, terminalMaster].compactMap { $0 }
            if exitStatus != nil {
                if outputs.isEmpty { return }
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                if exitedAt == nil { exitedAt = now }
                if now.tv_sec - exitedAt!.tv_sec >= 2 { return }
            }
            var fds: [pollfd] = outputs.map { pollfd(fd: $0.rawValue, events: Int16(POLLIN), revents: 0) }
            if let listener = attachListener {
                fds.append(pollfd(fd: listener.rawValue, events: Int16(POLLIN), revents: 0))
            }
            for client in clients { fds.append(pollfd(fd: client.fd.rawValue, events: Int16(POLLIN), revents: 0)) }
            if pidfd >= 0 && exitStatus == nil { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            let checks = exitStatus == nil ? health : nil
            for fd in checks?.descriptors ?? [] { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            if let dns { fds += dns.pollEntries }
            // Without a pidfd (old kernels), wake up to reap every 100 ms.
            var timeout: Int32 = exitStatus != nil ? 200 : (pidfd >= 0 ? -1 : 100)
            if let checks { timeout = timeout < 0 ? checks.timeout : min(timeout, checks.timeout) }
            if let due = dns?.timeout, due >= 0 { timeout = timeout < 0 ? due : min(timeout, due) }
            if !pagesReleased {
                let left = releaseAt - Timestamp.monotonic()
                if left <= 0 {
                    // Last before the poll: what an idle monitor would touch next runs only when it wakes.
                    ResidentMemory.releaseExecutablePages()
                    pagesReleased = true
                } else {
                    let due = Int32(left * 1000) + 1
                    timeout = timeout < 0 ? due : min(timeout, due)
                }
            }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR { return }
            checks?.step()
            dns?.step(fds)
            for entry in fds where entry.revents != 0 {
                if let listener = attachListener, entry.fd == listener.rawValue {
                    acceptClients()
                } else if let output = outputs.first(where: { $0.rawValue == entry.fd }) {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(entry.fd, $0.baseAddress, $0.count) }
                    if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                    if n <= 0 {
                        // EOF, or EIO on a terminal whose every slave is closed.
                        closeOutput(output)
                        continue
                    }
                    let stream: StreamFrame.Kind = output === stderrReader ? .stderr : .stdout
                    log.append(buffer[0..<n], stream: stream == .stderr ? "stderr" : "stdout")
                    broadcast(StreamFrame(stream, Array(buffer[0..<n])))
                } else if let index = clients.firstIndex(where: { $0.fd.rawValue == entry.fd }) {
                    readFromClient(clients[index])
                }
            }
        }
    }

    func closeOutput(_ output: FileDescriptor) {
        if output === stdoutReader { stdoutReader = nil }
        if output === stderrReader { stderrReader = nil }
        if output === terminalMaster {
            terminalMaster = nil
            stdinWriter = nil
        }
        output.close()
    }

    /// Reaps every child; the init's status is kept (128 + signal when killed, as docker reports it).
    func reap() {
        var status: Int32 = 0
        // The init first, then orphans the container left us. A running health check is reaped by the
        // checker (it needs its status), so waitid with WNOWAIT looks before anything is taken.
        if initPid > 0, exitStatus == nil, waitpid(initPid, &status, WNOHANG) == initPid {
            exitStatus = ChildProcess.ExitStatus(waitStatus: status).code
        }
        while true {
            var info = siginfo_t()
            guard waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { break }
            let pid = info._sifields._sigchld.si_pid
            if pid == 0 || HealthProcesses.active.contains(pid) { break }
            _ = waitpid(pid, &status, WNOHANG)
            if pid == initPid { exitStatus = ChildProcess.ExitStatus(waitStatus: status).code }
        }
    }

    func acceptClients() {
        guard let listener = attachListener else { return }
        while true {
            let fd = berth_accept_cloexec(listener.rawValue, 0)
            if fd < 0 { return }
            clients.append(AttachedClient(fd: FileDescriptor(owning: fd)))
        }
    }

    func readFromClient(_ client: AttachedClient) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(client.fd.rawValue, $0.baseAddress, $0.count) }
        if n < 0 && (errno == EINTR || errno == EAGAIN) { return }
        guard n > 0 else { drop(client); return }
        client.decoder.append(buffer[0..<n])
        while true {
            let frame: StreamFrame?
            do { frame = try client.decoder.next() } catch { drop(client); return }
            guard let frame else { return }
            switch frame.kind {
            case .stdin:
                if let writer = stdinWriter { try? writer.write(frame.payload) }
            case .closeStdin:
                // A terminal has no end of input: ^D is what a user would type. A pipe is closed.
                if let master = terminalMaster {
                    try? master.write([4])
                } else {
                    stdinWriter?.close(); stdinWriter = nil
                }
            case .resize:
                if let master = terminalMaster, let size = frame.size {
                    var window = winsize(ws_row: size.rows, ws_col: size.columns, ws_xpixel: 0, ws_ypixel: 0)
                    _ = berth_ioctl_ptr(master.rawValue, UInt(TIOCSWINSZ), &window)
                }
            case .reopenLog:
                let failure = log.reopen()
                _ = try? client.fd.send(StreamFrame(.reopenLog, Array((failure ?? "").utf8)).encoded)
            case .stdout, .stderr, .exit, .ready, .released:
                break
            }
        }
    }

    func drop(_ client: AttachedClient) {
        clients.removeAll { $0 === client }
        client.fd.close()
    }

    func broadcast(_ frame: StreamFrame) {
        guard !clients.isEmpty else { return }
        let bytes = frame.encoded
        for client in clients {
            do { try client.fd.send(bytes) } catch { drop(client) }
        }
    }

    /// Records the exit, tells clients, deletes the runtime's container, and hands over to the exit
    /// command.
    func finish() -> Never {
        log.flush()
        let status = exitStatus ?? 255
        writeExitFile(status: status)
        broadcast(.exit(status))
        unlink(options.stateDirectory + "/attach.sock")
        attachListener?.close()
        // The runtime's container is of no more use once its init has exited. Deleting it here, the
        // moment the exit is known, runs beside whatever the client does with the exit frame (`run
        // --rm` removes the container meanwhile) instead of after it; `released` says it is done.
        let deleted = (try? runRuntime(["delete", "--force", options.id]))?.status.succeeded ?? false
        if deleted { markRuntimeDeleted() }
        runtimeLock = nil
        broadcast(StreamFrame(.released))
        awaitClientsHangingUp(seconds: 10)
        // `run --rm` attached records the exit and removes the container itself once it has the exit
        // frame: then there is nothing left for the exit command to do, and starting another `berth`
        // process for it would only compete with that removal for the CPU.
        let containerDirectory = FileSystem.parent(of: options.exitFile)
        if !options.exitFile.isEmpty && !FileSystem.exists(containerDirectory) { exit(0) }
        if let program = options.exitCommand.first {
            let devnull = open("/dev/null", O_RDWR)
            if devnull >= 0 { dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2) }
            _ = withCStringArray(options.exitCommand) { argv in
                withCStringArray(ChildProcess.currentEnvironment) { envp in execve(program, argv, envp) }
            }
        }
        exit(0)
    }

    /// `exit.json` (BerthEngine.ExitRecord), written before the exit frame.
    func writeExitFile(status: Int32) {
        guard !options.exitFile.isEmpty else { return }
        let oomKilled = memoryCgroup.flatMap(MemoryCgroup.oomKills(in:)).map { $0 > oomKillsAtStart } ?? false
        let record =
            "{\"exitCode\":\(status),\"finishedAt\":\"\(Timestamp.now())\",\"pid\":\(initPid),\"oomKilled\":\(oomKilled),"
            + "\"runtimeDeleted\":false}\n"
        try? FileSystem.writeAtomically(options.exitFile, Array(record.utf8), mode: 0o644, durable: true)
    }

    /// `"runtimeDeleted":false}` becomes `true }` in place, five bytes over five: a reader sees one or
    /// the other, never a torn file, and a file a client has removed meanwhile (`run --rm`) is not made
    /// again, as a rename of a new copy would (leaving its directory behind).
    func markRuntimeDeleted() {
        guard !options.exitFile.isEmpty else { return }
        let fd = open(options.exitFile, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        guard let bytes = try? FileSystem.readFile(options.exitFile),
            let range = bytes.firstRange(of: Array("false}".utf8))
        else { return }
        let replacement = Array("true ".utf8)
        _ = replacement.withUnsafeBytes { pwrite(fd, $0.baseAddress, 5, off_t(range.lowerBound)) }
    }

    /// Waits (at most `seconds`) for the attached clients, which have the exit frame, to close their
    /// connections: a client that cleans up after the exit (`run --rm`) does so before it hangs up.
    func awaitClientsHangingUp(seconds: Int) {
        let deadline = Timestamp.monotonic() + Double(seconds)
        var scratch = [UInt8](repeating: 0, count: 512)
        while !clients.isEmpty {
            let left = deadline - Timestamp.monotonic()
            guard left > 0 else { break }
            var fds = clients.map { pollfd(fd: $0.fd.rawValue, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(left * 1000))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { break }
            for (client, entry) in zip(clients, fds) where entry.revents != 0 {
                let n = scratch.withUnsafeMutableBytes { recv(entry.fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)) { drop(client) }
            }
        }
        for client in clients { client.fd.close() }
        clients.removeAll()
    }

    func runRuntime(_ arguments: [String]) throws -> ChildProcess.Output {
        try ChildProcess.run(
            options.runtime, arguments: [options.runtime] + options.runtimeArguments + arguments,
            environment: ChildProcess.currentEnvironment)
    }

    func report(_ line: String) {
        try? sync.write(line + "\n")
    }
}

struct MonitorFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// One line from `fd` (without the newline); empty at EOF.
func readLine(_ fd: FileDescriptor) -> String {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while read(fd.rawValue, &byte, 1) == 1 {
        if byte == 10 { break }
        bytes.append(byte)
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The runtime's message on one line (the sync protocol is line-based), or `fallback` if it said nothing.
func oneLine(_ text: String, or fallback: String) -> String {
    let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map { $0.trimmedLine }.filter { !$0.isEmpty }
    return lines.isEmpty ? fallback : lines.joined(separator: "; ")
}

extension StringProtocol {
    var trimmedLine: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\n" || c == "\t" || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" || c == "\r" { s = s.dropLast() }
        return String(s)
    }
}

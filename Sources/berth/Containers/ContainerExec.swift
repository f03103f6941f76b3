import ArgumentParser
import BerthEngine
import BerthOS
import CBerthShim
#if canImport(Glibc)
import Glibc
#endif

/// `berth exec [-d] [-i] [-t] [-e] [-u] [-w] CONTAINER COMMAND…`: another process in a running container,
/// through the runtime's `exec`; its exit status is ours.
struct ContainerExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Execute a command in a running container.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Detached mode: run command in the background.") var detach = false
    @Flag(name: .shortAndLong, help: "Keep STDIN open even if not attached.") var interactive = false
    @Flag(name: .shortAndLong, help: "Allocate a pseudo-TTY.") var tty = false
    @Option(name: .shortAndLong, help: "Set environment variables.") var env: [String] = []
    @Option(name: .customLong("env-file"), help: "Read in a file of environment variables.") var envFiles: [String] = []
    @Option(name: .shortAndLong, help: "Username or UID (format: <name|uid>[:<group|gid>]).") var user: String?
    @Option(name: .shortAndLong, help: "Working directory inside the container.") var workdir: String?
    @Flag(help: "Give extended privileges to the command.") var privileged = false
    @Argument(help: "Container.") var container: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments.") var command: [String] = []

    func run() async throws {
        var request = ExecRequest(command: command)
        request.tty = tty
        request.detach = detach
        for file in envFiles { request.env += try RunOptionParsing.environmentFile(file) }
        request.env += try env.map(RunOptionParsing.environment)
        request.user = user
        request.workingDir = workdir
        request.privileged = privileged
        let prepared = try await withEngine(options) { engine in try engine.prepareExec(container, request) }
        defer { prepared.discard() }
        let status: Int32
        do {
            status = try tty ? runWithTerminal(prepared) : runPlain(prepared)
        } catch {
            printError("berth: \(error)")
            throw ExitCode(126)
        }
        if status != 0 { throw ExitCode(prepared.started ? status : 126) }
    }

    /// stdio straight through (stdin only with -i, as docker).
    func runPlain(_ prepared: PreparedExec) throws -> Int32 {
        let devnull = try FileDescriptor.open("/dev/null", O_RDONLY)
        let pid = try ChildProcess.spawn(
            prepared.runtimePath, arguments: prepared.arguments, environment: ChildProcess.currentEnvironment,
            fileDescriptors: [0: interactive && !detach ? 0 : devnull.rawValue, 1: 1, 2: 2])
        // ^C reaches the runtime through the terminal's process group; a kill of this process is passed on.
        let signals = SignalPipe.install([SIGTERM, SIGHUP])
        let pidfd = berth_pidfd_open(pid, 0)
        while pidfd >= 0 {
            var fds = [
                pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
                pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
            ]
            if poll(&fds, 2, -1) < 0 { if errno == EINTR { continue } else { break } }
            if fds[1].revents != 0 {
                var signal: UInt8 = 0
                while read(signals, &signal, 1) == 1 { kill(pid, Int32(signal)) }
            }
            if fds[0].revents != 0 { break }
        }
        if pidfd >= 0 { close(pidfd) }
        return try ChildProcess.wait(pid).code
    }

    /// The runtime sends the terminal's master to our console socket; we relay it to this terminal.
    func runWithTerminal(_ prepared: PreparedExec) throws -> Int32 {
        guard let socketPath = prepared.consoleSocket else { return 125 }
        let listener = try UnixSocket.listen(socketPath, backlog: 1)
        // The runtime detaches: its process becomes ours to reap (and its status ours to return).
        _ = berth_prctl(36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0)
        let pid = try ChildProcess.spawn(
            prepared.runtimePath, arguments: prepared.arguments, environment: ChildProcess.currentEnvironment,
            fileDescriptors: [0: 0, 1: 1, 2: 2])
        // Wait for the master, or for the runtime to fail before sending it.
        let pidfd = berth_pidfd_open(pid, 0)
        var fds = [
            pollfd(fd: listener.rawValue, events: Int16(POLLIN), revents: 0),
            pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
        ]
        while poll(&fds, 2, -1) < 0 && errno == EINTR {}
        guard fds[0].revents != 0 else {
            if pidfd >= 0 { close(pidfd) }
            return try ChildProcess.wait(pid).code
        }
        let connection = try UnixSocket.accept(listener)
        var received: Int32 = -1
        var byte: UInt8 = 0
        _ = berth_recv_fd(connection.rawValue, &received, &byte, 1)
        guard received >= 0 else { return try ChildProcess.wait(pid).code }
        let master = FileDescriptor(owning: received)
        let runtimeStatus = try ChildProcess.wait(pid)
        if detach || !runtimeStatus.succeeded { return runtimeStatus.code }
        guard let text = try? FileSystem.readString(prepared.pidFile), let process = pid_t(text.filter { $0.isNumber })
        else { return 126 }
        let raw = isatty(0) == 1 ? RawTerminal(fd: 0) : nil
        defer { raw?.restore() }
        let signals = SignalPipe.install([SIGWINCH])
        func resize() {
            var size = winsize()
            if ioctl(0, UInt(TIOCGWINSZ), &size) == 0 { _ = berth_ioctl_ptr(master.rawValue, UInt(TIOCSWINSZ), &size) }
        }
        resize()
        var inputOpen = interactive
        var buffer = [UInt8](repeating: 0, count: 65536)
        relay: while true {
            var set = [
                pollfd(fd: master.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
            ]
            if inputOpen { set.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            if poll(&set, nfds_t(set.count), -1) < 0 { if errno == EINTR { continue } else { break } }
            if set[1].revents != 0 {
                var signal: UInt8 = 0
                while read(signals, &signal, 1) == 1 {}
                resize()
            }
            if set.count > 2, set[2].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n <= 0 { inputOpen = false; try? master.write([4]) } else { try? master.write(buffer[0..<n]) }
            }
            if set[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(master.rawValue, $0.baseAddress, $0.count) }
                if n <= 0 { break relay }
                writeAll(1, Array(buffer[0..<n]))
            }
        }
        if pidfd >= 0 { close(pidfd) }
        return try ChildProcess.wait(process).code
    }
}

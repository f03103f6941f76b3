#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import Synchronization

/// A prepared exec run in the foreground with its stdio relayed to a client: the same loop serves
/// docker's exec (multiplexed frames on a hijacked connection) and the CRI's (channels of a WebSocket).
/// Without a terminal the process's stdout and stderr are pipes; with one, the runtime passes the
/// terminal's master through the console socket and its bytes are the output. Client input arrives on
/// another thread (`input`, `closeInput`, `clientGone`) and wakes the relay's poll.
///
/// `run` blocks its thread until the process ends, so it belongs on a ``BlockingThread``.
public final class ExecRelay: @unchecked Sendable {
    public enum Stream: Sendable { case stdout, stderr }

    public let prepared: PreparedExec
    public let tty: Bool
    /// Which of the process's streams the client takes; a stream not taken reads /dev/null or is dropped.
    public let stdin: Bool
    public let stdout: Bool
    public let stderr: Bool

    private struct State {
        var input: [UInt8] = []
        var inputClosed = false
        var clientGone = false
        var terminal: FileDescriptor?
        /// The size asked for before the runtime passed the terminal (clients resize right at start).
        var pendingSize: (height: UInt16, width: UInt16)?
    }
    private let state = Mutex(State())
    private let wake: WakePipe?

    public init(prepared: PreparedExec, tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) {
        self.prepared = prepared
        self.tty = tty
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        wake = WakePipe()
    }

    /// Bytes for the process's stdin (or its terminal).
    public func input(_ bytes: [UInt8]) {
        guard stdin, !bytes.isEmpty else { return }
        state.withLock { s in if !s.clientGone { s.input += bytes } }
        wake?.poke()
    }

    /// The client has no more input: stdin closes (a terminal gets an end-of-file character).
    public func closeInput() {
        state.withLock { $0.inputClosed = true }
        wake?.poke()
    }

    /// The client left (or detached): output is dropped from now on; a terminal's relay ends.
    public func clientGone() {
        state.withLock { $0.clientGone = true }
        wake?.poke()
    }

    /// Resizes the terminal now, or as soon as the runtime passes it. False without a terminal.
    @discardableResult
    public func resize(height: UInt16, width: UInt16) -> Bool {
        guard tty else { return false }
        state.withLock { s in
            if let terminal = s.terminal {
                Self.setTerminalSize(terminal.rawValue, height: height, width: width)
            } else {
                s.pendingSize = (height, width)
            }
        }
        return true
    }

    public static func setTerminalSize(_ fd: Int32, height: UInt16, width: UInt16) {
        var size = winsize(ws_row: height, ws_col: width, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(fd, UInt(TIOCSWINSZ), &size)
    }

    /// Runs the exec until its process ends and returns the runtime's exit status (the process's when
    /// ``PreparedExec/runtimeWaits``). `started` is told the process's pid and its terminal once it
    /// runs; `output` gets its bytes in order and returns false once the client is gone; `detached` is
    /// called when a client leaves a terminal that goes on running (the status is still awaited).
    public func run(
        started: (_ pid: pid_t, _ pidFile: String?, _ terminal: FileDescriptor?) -> Void,
        output: (Stream, [UInt8]) -> Bool,
        detached: () -> Void = {}
    ) throws -> Int32 {
        // A process that exits without reading its stdin makes our write to the pipe fail: EPIPE for
        // this thread, not a SIGPIPE that would end the daemon (the signal is the writing thread's).
        var pipeOnly = sigset_t()
        sigemptyset(&pipeOnly)
        sigaddset(&pipeOnly, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeOnly, nil)
        return try tty
            ? runWithTerminal(started: started, output: output, detached: detached)
            : runWithPipes(started: started, output: output)
    }

    /// What the client sent since the last look, whether stdin should now close, and whether it left.
    private func takeInput() -> (bytes: [UInt8], close: Bool, gone: Bool) {
        wake?.drain()
        return state.withLock { s in
            defer { s.input = [] }
            return (s.input, s.inputClosed, s.clientGone)
        }
    }

    private func runWithPipes(
        started: (pid_t, String?, FileDescriptor?) -> Void, output send: (Stream, [UInt8]) -> Bool
    ) throws -> Int32 {
        let output = try Pipe()
        let errors = try Pipe()
        let input = stdin ? try Pipe() : nil
        let devnull = try FileDescriptor.open("/dev/null", O_RDWR)
        let pid = try ChildProcess.spawn(
            prepared.runtimePath, arguments: prepared.arguments, environment: ChildProcess.currentEnvironment,
            fileDescriptors: [
                0: input?.reading.rawValue ?? devnull.rawValue,
                1: output.writing.rawValue, 2: errors.writing.rawValue,
            ])
        output.writing.close()
        errors.writing.close()
        input?.reading.close()
        devnull.close()
        started(pid, prepared.pidFile, nil)
        // stdin is written without blocking, when poll says it takes more: a process that does not
        // read its input while its output fills must not stop this loop from draining that output.
        var pending = PendingInput(input?.writing)
        var open: [(FileDescriptor, Stream, Bool)] = [
            (output.reading, .stdout, stdout), (errors.reading, .stderr, stderr),
        ]
        var buffer = [UInt8](repeating: 0, count: 65536)
        var clientThere = true
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0.0.rawValue, events: Int16(POLLIN), revents: 0) }
            let wakeIndex = fds.count
            if let wake { fds.append(pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0)) }
            let inputIndex = fds.count
            if let fd = pending.waitingDescriptor { fds.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if wake != nil, fds[wakeIndex].revents != 0 {
                let (bytes, close, gone) = takeInput()
                // No one to read the output: the process goes on, its output is dropped.
                if gone { clientThere = false }
                pending.add(bytes, close: close || gone)
            }
            if fds.count > inputIndex, fds[inputIndex].revents != 0 { pending.flush() }
            for index in (0..<open.count).reversed() where fds[index].revents != 0 {
                let (fd, stream, wanted) = open[index]
                let n = buffer.withUnsafeMutableBytes { read(fd.rawValue, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    open.remove(at: index)
                    continue
                }
                if wanted && clientThere && !send(stream, Array(buffer[0..<n])) { clientThere = false }
            }
        }
        return try ChildProcess.wait(pid).code
    }

    private func runWithTerminal(
        started: (pid_t, String?, FileDescriptor?) -> Void, output send: (Stream, [UInt8]) -> Bool,
        detached: () -> Void
    ) throws -> Int32 {
        guard let socketPath = prepared.consoleSocket else { return 126 }
        let listener = try UnixSocket.listen(socketPath, backlog: 1)
        // The runtime's own messages (a program not found) are the client's to read.
        let errors = try Pipe()
        let devnull = try FileDescriptor.open("/dev/null", O_RDWR)
        let pid = try ChildProcess.spawn(
            prepared.runtimePath, arguments: prepared.arguments, environment: ChildProcess.currentEnvironment,
            fileDescriptors: [0: devnull.rawValue, 1: devnull.rawValue, 2: errors.writing.rawValue])
        errors.writing.close()
        let pidfd = berth_pidfd_open(pid, 0)
        defer { if pidfd >= 0 { close(pidfd) } }
        var fds = [
            pollfd(fd: listener.rawValue, events: Int16(POLLIN), revents: 0),
            pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
        ]
        while poll(&fds, 2, -1) < 0 && errno == EINTR {}
        guard fds[0].revents != 0 else { return try runtimeFailed(pid, errors, send) }
        let connection = try UnixSocket.accept(listener)
        var received: Int32 = -1
        var byte: UInt8 = 0
        _ = berth_recv_fd(connection.rawValue, &received, &byte, 1)
        guard received >= 0 else { return try runtimeFailed(pid, errors, send) }
        let master = FileDescriptor(owning: received)
        state.withLock { s in
            s.terminal = master
            if let size = s.pendingSize {
                Self.setTerminalSize(master.rawValue, height: size.height, width: size.width)
            }
            s.pendingSize = nil
        }
        defer { state.withLock { $0.terminal = nil } }
        // The runtime has written the pid file before it waits for the process.
        started(prepared.pid ?? pid, nil, master)
        if !prepared.runtimeWaits { _ = try? ChildProcess.wait(pid) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var left = false
        relay: while true {
            var set = [pollfd(fd: master.rawValue, events: Int16(POLLIN), revents: 0)]
            if let wake { set.append(pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0)) }
            if poll(&set, nfds_t(set.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if set.count > 1, set[1].revents != 0 {
                let (bytes, close, gone) = takeInput()
                // Detached or gone: the process keeps its terminal; its exit is still awaited.
                if gone {
                    left = true
                    break relay
                }
                if !bytes.isEmpty { try? master.write(bytes) }
                if close { try? master.write([4]) }
            }
            if set[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(master.rawValue, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                // EIO once every descriptor of the terminal's other side is closed: the process ended.
                if n <= 0 { break relay }
                if stdout && !send(.stdout, Array(buffer[0..<n])) {
                    left = true
                    break relay
                }
            }
        }
        guard prepared.runtimeWaits else { return 0 }
        if left { detached() }
        // The master stays open until the runtime ends, so the process keeps its terminal.
        return try ChildProcess.wait(pid).code
    }

    /// The runtime ended before it passed a terminal: its message to the client, 126 as docker's.
    private func runtimeFailed(_ pid: pid_t, _ errors: Pipe, _ send: (Stream, [UInt8]) -> Bool) throws -> Int32 {
        let message = (try? errors.reading.readAll()) ?? []
        _ = try ChildProcess.wait(pid)
        if !message.isEmpty { _ = send(.stderr, message) }
        return 126
    }
}

/// What a client sent for a process's stdin and has not been written yet: written without blocking
/// whenever the pipe takes more, then closed once the client's input has ended and all of it went.
struct PendingInput {
    private var descriptor: FileDescriptor?
    private var bytes: [UInt8] = []
    private var closeWhenWritten = false

    init(_ descriptor: FileDescriptor?) {
        self.descriptor = descriptor
        if let descriptor { _ = fcntl(descriptor.rawValue, F_SETFL, fcntl(descriptor.rawValue, F_GETFL) | O_NONBLOCK) }
    }

    /// The descriptor to poll for POLLOUT, while something waits to be written.
    var waitingDescriptor: Int32? { bytes.isEmpty ? nil : descriptor?.rawValue }

    mutating func add(_ more: [UInt8], close: Bool) {
        guard descriptor != nil else { return }
        bytes += more
        closeWhenWritten = closeWhenWritten || close
        flush()
    }

    /// Writes what the pipe takes now; closes it when the input has ended and nothing is left (or the
    /// process closed its end: what is left has nowhere to go).
    mutating func flush() {
        guard let fd = descriptor else { return }
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(fd.rawValue, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes.removeFirst(n)
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            bytes = []
            closeWhenWritten = true
        }
        if closeWhenWritten {
            fd.close()
            descriptor = nil
        }
    }
}

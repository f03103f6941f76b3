#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthOS
import CBerthShim
import Logging
import NIOCore
import Synchronization

/// An attached exec: the runtime runs as the daemon's child, in the foreground, so its exit status is
/// the process's. Without a terminal its stdout and stderr are pipes sent to the client as docker's
/// multiplexed frames; with one, the runtime passes the terminal's master to a console socket and the
/// master's bytes go raw. Client input goes to the process's stdin (or the terminal); a half-close of
/// the client's side closes stdin. The connection closes after the exit code is recorded.
final class ExecSession: @unchecked Sendable {
    let instance: ExecInstance
    let prepared: PreparedExec
    let channel: Channel
    let logger: Logger
    /// [height, width] the terminal starts with.
    let consoleSize: [UInt16]?

    private struct State {
        var input: [UInt8] = []
        var inputClosed = false
        var clientGone = false
        var detachKeys: DetachKeys
    }
    private let state: Mutex<State>
    private let wake: WakePipe?

    init(instance: ExecInstance, prepared: PreparedExec, channel: Channel, consoleSize: [UInt16]?, logger: Logger) {
        self.instance = instance
        self.consoleSize = consoleSize
        self.prepared = prepared
        self.channel = channel
        self.logger = logger
        state = Mutex(State(detachKeys: instance.detachKeys))
        wake = WakePipe()
    }

    private func poke() { wake?.poke() }

    func clientInput(_ bytes: [UInt8]) {
        guard instance.attachStdin else { return }
        let terminal = instance.request.tty
        state.withLock { s in
            guard !s.clientGone else { return }
            // The detach sequence ends a terminal's attachment (docker applies it to terminals only).
            if terminal {
                let (forward, detach) = s.detachKeys.filter(bytes)
                s.input += forward
                if detach { s.clientGone = true }
            } else {
                s.input += bytes
            }
        }
        poke()
    }

    func clientInputClosed() {
        state.withLock { $0.inputClosed = true }
        poke()
    }

    func clientClosed() {
        state.withLock { $0.clientGone = true }
        poke()
    }

    func start() {
        BlockingThread.start(name: "docker-exec") {
            // A process that exits without reading its stdin makes our write to the pipe fail: EPIPE
            // for this thread, not a SIGPIPE that would end the daemon (the signal is the writing
            // thread's, and a new thread's mask dies with it).
            var pipeOnly = sigset_t()
            sigemptyset(&pipeOnly)
            sigaddset(&pipeOnly, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &pipeOnly, nil)
            defer { self.prepared.discard() }
            let code: Int32
            do {
                code = try self.instance.request.tty ? self.runWithTerminal() : self.runWithPipes()
            } catch is ExecDetached {
                return
            } catch {
                self.logger.notice("exec \(self.instance.id.prefix(12)): \(error)")
                self.send(self.frame(.stderr, Array("\(error)\n".utf8)))
                code = 126
            }
            self.instance.exited(self.prepared.started ? code : (code == 0 ? 0 : 126))
            self.channel.close(promise: nil)
        }
    }

    private func frame(_ kind: StreamFrame.Kind, _ bytes: [UInt8]) -> [UInt8] {
        instance.request.tty ? bytes : StreamFrame(kind, bytes).encoded
    }

    /// Writes to the client; false once it has gone.
    @discardableResult
    private func send(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return true }
        do { try channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).wait() } catch { return false }
        return true
    }

    /// What the client sent since the last look, whether stdin should now close, and whether it left.
    private func takeInput() -> (bytes: [UInt8], close: Bool, gone: Bool) {
        wake?.drain()
        return state.withLock { s in
            defer { s.input = [] }
            return (s.input, s.inputClosed, s.clientGone)
        }
    }

    private func runWithPipes() throws -> Int32 {
        let output = try Pipe()
        let errors = try Pipe()
        let input = instance.attachStdin ? try Pipe() : nil
        let devnull = try BerthOS.FileDescriptor.open("/dev/null", O_RDWR)
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
        instance.started(pid: pid, pidFile: prepared.pidFile, terminal: nil)
        var stdinOpen = input != nil
        var open: [(BerthOS.FileDescriptor, StreamFrame.Kind, Bool)] = [
            (output.reading, .stdout, instance.attachStdout),
            (errors.reading, .stderr, instance.attachStderr),
        ]
        var buffer = [UInt8](repeating: 0, count: 65536)
        var clientThere = true
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0.0.rawValue, events: Int16(POLLIN), revents: 0) }
            if let wake { fds.append(pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if wake != nil, fds[open.count].revents != 0 {
                let (bytes, close, gone) = takeInput()
                if gone && clientThere {
                    // No one to read the output: the process goes on, its output is dropped.
                    clientThere = false
                }
                if stdinOpen, let input {
                    if !bytes.isEmpty { try? input.writing.write(bytes) }
                    if close || gone {
                        input.writing.close()
                        stdinOpen = false
                    }
                }
            }
            for index in (0..<open.count).reversed() where fds[index].revents != 0 {
                let (fd, kind, wanted) = open[index]
                let n = buffer.withUnsafeMutableBytes { read(fd.rawValue, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    open.remove(at: index)
                    continue
                }
                if wanted && clientThere && !send(StreamFrame(kind, Array(buffer[0..<n])).encoded) {
                    clientThere = false
                }
            }
        }
        return try ChildProcess.wait(pid).code
    }

    private func runWithTerminal() throws -> Int32 {
        guard let socketPath = prepared.consoleSocket else { return 126 }
        let listener = try UnixSocket.listen(socketPath, backlog: 1)
        // The runtime's own messages (a program not found) are the client's to read.
        let errors = try Pipe()
        let devnull = try BerthOS.FileDescriptor.open("/dev/null", O_RDWR)
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
        guard fds[0].revents != 0 else { return try runtimeFailed(pid, errors) }
        let connection = try UnixSocket.accept(listener)
        var received: Int32 = -1
        var byte: UInt8 = 0
        _ = berth_recv_fd(connection.rawValue, &received, &byte, 1)
        guard received >= 0 else { return try runtimeFailed(pid, errors) }
        let master = BerthOS.FileDescriptor(owning: received)
        if let size = consoleSize, size.count == 2 {
            ExecInstance.setSize(master.rawValue, height: size[0], width: size[1])
        }
        // The runtime has written the pid file before it waits for the process.
        instance.started(pid: prepared.pid ?? pid, pidFile: nil, terminal: master)
        if !prepared.runtimeWaits { _ = try? ChildProcess.wait(pid) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        relay: while true {
            var set = [pollfd(fd: master.rawValue, events: Int16(POLLIN), revents: 0)]
            if let wake { set.append(pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0)) }
            if poll(&set, nfds_t(set.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if set.count > 1, set[1].revents != 0 {
                let (bytes, close, gone) = takeInput()
                // Detached or gone: the process keeps its terminal; its exit is still awaited and recorded.
                if gone { break relay }
                if !bytes.isEmpty { try? master.write(bytes) }
                if close { try? master.write([4]) }
            }
            if set[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(master.rawValue, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                // EIO once every descriptor of the terminal's other side is closed: the process ended.
                if n <= 0 { break relay }
                if instance.attachStdout && !send(Array(buffer[0..<n])) { break relay }
            }
        }
        guard prepared.runtimeWaits else { return 0 }
        // A detached client ends its connection now; the exit code comes when the runtime ends.
        if state.withLock({ $0.clientGone }) {
            channel.close(promise: nil)
            let keep = master
            BlockingThread.start(name: "docker-exec-wait") {
                let code = (try? ChildProcess.wait(pid).code) ?? 126
                keep.close()
                self.instance.exited(code)
            }
            throw ExecDetached()
        }
        return try ChildProcess.wait(pid).code
    }

    /// The runtime ended before it passed a terminal: its message to the client, 126 as docker's.
    private func runtimeFailed(_ pid: pid_t, _ errors: Pipe) throws -> Int32 {
        let message = (try? errors.reading.readAll()) ?? []
        _ = try ChildProcess.wait(pid)
        send(message)
        return 126
    }
}

/// The client detached from a terminal exec: the exit is recorded by the thread that waits for it.
struct ExecDetached: Error {}

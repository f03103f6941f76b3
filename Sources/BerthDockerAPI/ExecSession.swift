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
    let channel: Channel
    let logger: Logger
    /// [height, width] the terminal starts with.
    let consoleSize: [UInt16]?
    private let relay: ExecRelay
    private let detachKeys: Mutex<DetachKeys>

    init(instance: ExecInstance, prepared: PreparedExec, channel: Channel, consoleSize: [UInt16]?, logger: Logger) {
        self.instance = instance
        self.consoleSize = consoleSize
        self.channel = channel
        self.logger = logger
        relay = ExecRelay(
            prepared: prepared, tty: instance.request.tty, stdin: instance.attachStdin,
            stdout: instance.attachStdout, stderr: instance.attachStderr)
        detachKeys = Mutex(instance.detachKeys)
    }

    func clientInput(_ bytes: [UInt8]) {
        guard instance.attachStdin else { return }
        // The detach sequence ends a terminal's attachment (docker applies it to terminals only).
        guard instance.request.tty else { return relay.input(bytes) }
        let (forward, detach) = detachKeys.withLock { $0.filter(bytes) }
        relay.input(forward)
        if detach { relay.clientGone() }
    }

    func clientInputClosed() { relay.closeInput() }

    func clientClosed() { relay.clientGone() }

    func start() {
        BlockingThread.start(name: "docker-exec") {
            let prepared = self.relay.prepared
            defer { prepared.discard() }
            if let size = self.consoleSize, size.count == 2 { self.relay.resize(height: size[0], width: size[1]) }
            let code: Int32
            do {
                code = try self.relay.run(
                    started: { pid, pidFile, terminal in
                        self.instance.started(pid: pid, pidFile: pidFile, terminal: terminal)
                    },
                    output: { stream, bytes in self.send(self.frame(stream, bytes)) },
                    // A detached client's connection ends now; the exit code comes when the runtime ends.
                    detached: { self.channel.close(promise: nil) })
            } catch {
                self.logger.notice("exec \(self.instance.id.prefix(12)): \(error)")
                self.send(self.frame(.stderr, Array("\(error)\n".utf8)))
                code = 126
            }
            self.instance.exited(prepared.started ? code : (code == 0 ? 0 : 126))
            self.channel.close(promise: nil)
        }
    }

    private func frame(_ stream: ExecRelay.Stream, _ bytes: [UInt8]) -> [UInt8] {
        instance.request.tty ? bytes : StreamFrame(stream == .stdout ? .stdout : .stderr, bytes).encoded
    }

    /// Writes to the client; false once it has gone.
    @discardableResult
    private func send(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return true }
        do { try channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).wait() } catch { return false }
        return true
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthOS
import NIOCore
import Synchronization

/// `POST /containers/{id}/attach`: the connection is hijacked (`101 UPGRADED`, or a 200 for a client
/// that did not ask to upgrade) and relayed to the container's monitor, the same attach socket and
/// frames `berth run` and `berth attach` use: the monitor's stdout/stderr frames are docker's
/// multiplexed framing already, so a container without a terminal has its frames forwarded as they
/// come; with a terminal the payloads go raw. The connection closes when the container exits (the
/// client then asks `wait` for the status).
///
/// An attachment to a container that has not started (`docker run` attaches before it starts) waits
/// in the hub; the daemon's start hands it the connection the engine opens before the program runs,
/// so not a byte of output is missed.
extension DockerAPI {
    func attach(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let record = try engine.lookup(reference)
        let tty = record.configuration.tty
        let keys = try DetachKeys(parsing: request.value("detachKeys"))
        let attachment = Attachment(
            containerID: record.id, channel: response.channel, hub: hub, terminal: tty,
            stdout: request.flag("stdout"), stderr: request.flag("stderr"),
            stdin: request.flag("stdin") && record.configuration.openStdin,
            closesStdinAtEOF: record.configuration.stdinOnce ?? true, detachKeys: keys)
        let raw = RawStreamHandler(
            onInput: { attachment.clientInput($0) }, onInputClosed: { attachment.clientInputClosed() },
            onClose: { attachment.clientClosed() })
        let contentType = tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream"
        if request.wantsUpgrade {
            response.hijack(contentType: contentType, raw: raw)
        } else {
            response.hijackWithoutUpgrade(contentType: contentType, raw: raw)
        }
        // `logs=1`: the output so far first (what comes between the replay and the connection to the
        // monitor can be missed, as with dockerd's own replay).
        if request.flag("logs") && record.configuration.logDriver != "none" {
            replayLogs(record, to: attachment)
        }
        guard request.flag("stream") || request.value("stream") == nil else {
            response.close()
            return
        }
        if record.state.status == .running || record.state.status == .paused {
            connect(attachment)
            return
        }
        hub.addPending(attachment, for: record.id)
        // Started meanwhile (by a start that looked for attachments before this one was added)?
        if let now = try? engine.lookup(record.id), now.state.status == .running || now.state.status == .paused,
            hub.claimPending(attachment, for: record.id)
        {
            connect(attachment)
        }
    }

    private func replayLogs(_ record: ContainerRecord, to attachment: Attachment) {
        var options = LogReader.Options()
        options.stdout = attachment.stdout
        options.stderr = attachment.stderr
        guard options.stdout || options.stderr else { return }
        var out: [UInt8] = []
        try? LogReader(engine: engine).read(record.id, options: options) { entry in
            out +=
                attachment.terminal
                ? entry.bytes : StreamFrame(entry.stream == "stderr" ? .stderr : .stdout, entry.bytes).encoded
        }
        if !out.isEmpty {
            _ = try? attachment.channel.writeAndFlush(attachment.channel.allocator.buffer(bytes: out)).wait()
        }
    }

    /// Connects to a running container's monitor (output from now on).
    func connect(_ attachment: Attachment) {
        do {
            attachment.run(try UnixSocket.connect(engine.layout.attachSocket(attachment.containerID)))
        } catch {
            logger.notice("attaching to \(attachment.containerID.prefix(12)): \(error)")
            attachment.end()
        }
    }
}

extension StateHub {
    /// Takes `attachment` back out of the pending list; false if a start took it already.
    func claimPending(_ attachment: Attachment, for id: String) -> Bool {
        let pending = takePending(id)
        var found = false
        for other in pending {
            if other === attachment { found = true } else { addPending(other, for: id) }
        }
        return found
    }
}

/// One hijacked connection relayed to a container's monitor by a thread of its own.
final class Attachment: @unchecked Sendable {
    let containerID: String
    let channel: Channel
    let hub: StateHub
    let terminal: Bool
    let stdout: Bool
    let stderr: Bool
    let stdin: Bool
    /// The container's StdinOnce: the end of this client's input closes the container's stdin. Without
    /// it stdin stays open for the next client that attaches, as dockerd keeps it.
    let closesStdinAtEOF: Bool

    private struct State {
        var detachKeys: DetachKeys
        var input: [UInt8] = []
        var inputClosed = false
        var closeSent = false
        var clientGone = false
        var running = false
    }
    private let state: Mutex<State>
    /// Wakes the relay thread for input or the client's going.
    private let wake: WakePipe?

    init(
        containerID: String, channel: Channel, hub: StateHub, terminal: Bool, stdout: Bool, stderr: Bool, stdin: Bool,
        closesStdinAtEOF: Bool = true, detachKeys: DetachKeys = .standard
    ) {
        self.closesStdinAtEOF = closesStdinAtEOF
        state = Mutex(State(detachKeys: detachKeys))
        self.containerID = containerID
        self.channel = channel
        self.hub = hub
        self.terminal = terminal
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
        wake = WakePipe()
    }

    private func poke() { wake?.poke() }

    func clientInput(_ bytes: [UInt8]) {
        guard stdin else { return }
        let terminal = terminal
        state.withLock { s in
            // The detach sequence ends a terminal's attachment; the container runs on (docker's rule:
            // terminals only).
            guard terminal else { return s.input += bytes }
            let (forward, detach) = s.detachKeys.filter(bytes)
            s.input += forward
            if detach { s.clientGone = true }
        }
        poke()
    }

    /// The client half-closed (stdin ended): the container's stdin is closed too.
    func clientInputClosed() {
        state.withLock { $0.inputClosed = true }
        poke()
    }

    func clientClosed() {
        let running = state.withLock { s in
            s.clientGone = true
            return s.running
        }
        if running { poke() } else { hub.removePending(self, for: containerID) }
    }

    /// Ends the stream without relaying (the monitor could not be reached, the start failed).
    func end() {
        channel.close(promise: nil)
    }

    /// Relays between the monitor `connection` and the client until either ends.
    func run(_ connection: BerthOS.FileDescriptor) {
        let gone = state.withLock { s in
            s.running = true
            return s.clientGone
        }
        if gone { return }
        BlockingThread.start(name: "docker-attach") { self.relay(connection) }
    }

    private func relay(_ connection: BerthOS.FileDescriptor) {
        defer {
            connection.close()
            channel.close(promise: nil)
        }
        var decoder = StreamFrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var fds = [pollfd(fd: connection.rawValue, events: Int16(POLLIN), revents: 0)]
            if let wake { fds.append(pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds.count > 1 && fds[1].revents != 0 {
                wake!.drain()
                let (input, closeInput, clientGone) = state.withLock { s -> ([UInt8], Bool, Bool) in
                    let input = s.input
                    s.input = []
                    let close = s.inputClosed && !s.closeSent
                    if close { s.closeSent = true }
                    return (input, close, s.clientGone)
                }
                if clientGone { return }
                var offset = 0
                while offset < input.count {
                    let end = min(input.count, offset + StreamFrame.maximumPayload)
                    try? connection.send(StreamFrame(.stdin, Array(input[offset..<end])).encoded)
                    offset = end
                }
                if closeInput && stdin && closesStdinAtEOF { try? connection.send(StreamFrame(.closeStdin).encoded) }
            }
            guard fds[0].revents != 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(connection.rawValue, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            decoder.append(buffer[0..<n])
            var out: [UInt8] = []
            while true {
                let frame: StreamFrame?
                do { frame = try decoder.next() } catch { return }
                guard let frame else { break }
                switch frame.kind {
                case .stdout where stdout, .stderr where stderr:
                    // Docker's framing is the monitor's: stream 1 or 2, three zero bytes, the size.
                    out += terminal ? frame.payload : frame.encoded
                case .exit:
                    if let status = frame.exitStatus { hub.recordExit(containerID, status: status) }
                    if !out.isEmpty { _ = try? channel.writeAndFlush(channel.allocator.buffer(bytes: out)).wait() }
                    return
                default:
                    break
                }
            }
            if !out.isEmpty {
                do { try channel.writeAndFlush(channel.allocator.buffer(bytes: out)).wait() } catch { return }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthEngine
import BerthJSON
import BerthOS
import Dispatch
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

/// The WebSocket channel protocols of Kubernetes' remote commands (exec and attach), as the kubelet's
/// streaming server serves them: every binary message starts with its channel's number — 0 stdin,
/// 1 stdout, 2 stderr, 3 errors, 4 terminal resizes (from v3) — and from v4 the error channel carries
/// a JSON `Status` saying how the command ended. v5 adds a close signal (255, then the channel) so a
/// client can end stdin without closing the connection (`kubectl cp` needs it).
struct ChannelProtocol: Sendable, Equatable {
    let name: String
    let version: Int

    static let supported: [ChannelProtocol] = [
        .init(name: "v5.channel.k8s.io", version: 5), .init(name: "v4.channel.k8s.io", version: 4),
        .init(name: "v3.channel.k8s.io", version: 3), .init(name: "v2.channel.k8s.io", version: 2),
        .init(name: "channel.k8s.io", version: 1),
    ]

    /// The first protocol the client offers that is served (the kubelet's rule); with no offer at all,
    /// the first version (what an old client without the header speaks). Nil: nothing offered is served.
    static func negotiate(_ offered: [String]) -> ChannelProtocol? {
        guard !offered.isEmpty else { return supported.last }
        for name in offered { if let found = supported.first(where: { $0.name == name }) { return found } }
        return nil
    }

    static let stdin: UInt8 = 0
    static let stdout: UInt8 = 1
    static let stderr: UInt8 = 2
    static let error: UInt8 = 3
    static let resize: UInt8 = 4
    static let close: UInt8 = 255
}

/// What a client does during a remote command, whatever carries it (WebSocket channels, SPDY streams).
enum RemoteCommandEvent: Sendable {
    case input([UInt8])
    case closeInput
    case resize(height: UInt16, width: UInt16)
}

/// How a remote command's output and ending reach the client: the channel protocol's channels over a
/// WebSocket, or SPDY streams.
protocol RemoteCommandWire: Sendable {
    /// Writes stdout's (1) or stderr's (2) bytes; false once the client is gone.
    func send(_ channel: UInt8, _ bytes: [UInt8]) async -> Bool
    /// Writes the error channel's payload (none when empty) and ends the output.
    func finish(errorPayload: [UInt8]) async
}

/// One exec or attach streamed to a client: the process side runs on a thread of its own (the
/// engine's ``ExecRelay`` or a relay to the container's monitor), the connection's side here. Output
/// is written in order and the thread waits for each write, so a slow client slows the process's
/// output rather than filling the daemon's memory.
final class RemoteCommandSession: Sendable {
    let runtime: CRIRuntime
    let request: StreamingServer.StreamRequest
    let channelProtocol: ChannelProtocol
    let wire: any RemoteCommandWire
    let logger: Logger
    /// What the connection's side hands the process's side: until the process side is up, the
    /// client's input, close and resizes wait here and are replayed to it in order.
    private let inbox = Mutex(Inbox())

    private struct Inbox {
        var target: Target?
        var early: [@Sendable (Target) -> Void] = []
    }

    /// Where client input goes once the process side runs.
    enum Target {
        case exec(ExecRelay)
        case attach(MonitorAttachment)
    }

    init(
        runtime: CRIRuntime, request: StreamingServer.StreamRequest, channelProtocol: ChannelProtocol,
        wire: any RemoteCommandWire, logger: Logger
    ) {
        self.runtime = runtime
        self.request = request
        self.channelProtocol = channelProtocol
        self.wire = wire
        self.logger = logger
    }

    /// Over a WebSocket: its binary messages are the channels.
    func run(inbound: WebSocketInboundStream) async {
        await run(events: Self.events(inbound, version: channelProtocol.version))
    }

    /// Runs the command and relays until it ends (then the error channel says how) or the client leaves.
    func run(events: AsyncThrowingStream<RemoteCommandEvent, any Error>) async {
        let ending: Ending
        do {
            ending = try await withThrowingTaskGroup(of: Ending?.self) { group in
                group.addTask {
                    try await self.readClient(events); return nil
                }
                group.addTask { await BlockingThread.run(name: "cri-stream") { self.runProcessSide() } }
                while let result = try await group.next() {
                    if let result {
                        group.cancelAll()
                        return result
                    }
                }
                return .failed("the stream ended")
            }
        } catch {
            ending = .failed("\(error)")
        }
        await writeStatus(ending)
    }

    // MARK: The client's side

    private func readClient(_ events: AsyncThrowingStream<RemoteCommandEvent, any Error>) async throws {
        defer { withTarget { $0.clientGone() } }
        for try await event in events {
            switch event {
            case .input(let bytes): withTarget { $0.input(bytes) }
            case .closeInput: withTarget { $0.closeInput() }
            case .resize(let height, let width): withTarget { $0.resize(height: height, width: width) }
            }
        }
        // The connection ended: no more input either.
        withTarget { $0.closeInput() }
    }

    /// A WebSocket's messages as events: channel 0 input, 4 resizes (v3+), 255 closing stdin (v5).
    static func events(_ inbound: WebSocketInboundStream, version: Int) -> AsyncThrowingStream<
        RemoteCommandEvent, any Error
    > {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                    while let message = try await iterator.next() {
                        guard case .binary(var buffer) = message, let channel = buffer.readInteger(as: UInt8.self)
                        else { continue }
                        let payload = buffer.readBytes(length: buffer.readableBytes) ?? []
                        switch channel {
                        case ChannelProtocol.stdin: continuation.yield(.input(payload))
                        case ChannelProtocol.resize where version >= 3:
                            if let size = terminalSize(payload) {
                                continuation.yield(.resize(height: size.height, width: size.width))
                            }
                        case ChannelProtocol.close where version >= 5:
                            if payload.first == ChannelProtocol.stdin { continuation.yield(.closeInput) }
                        default: break
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// `{"Width": 80, "Height": 24}`, as kubectl sends a terminal's size.
    static func terminalSize(_ payload: [UInt8]) -> (height: UInt16, width: UInt16)? {
        guard let json = try? JSON.parse(payload), let width = json["Width"].int, let height = json["Height"].int,
            let w = UInt16(exactly: width), let h = UInt16(exactly: height)
        else { return nil }
        return (h, w)
    }

    /// Hands the client's action to the process side, or keeps it for when that side is up.
    private func withTarget(_ body: @escaping @Sendable (Target) -> Void) {
        inbox.withLock { box in
            if let target = box.target { body(target) } else { box.early.append(body) }
        }
    }

    /// The process side is up: what the client sent meanwhile goes to it first.
    private func connect(_ target: Target) {
        inbox.withLock { box in
            for action in box.early { action(target) }
            box.early = []
            box.target = target
        }
    }

    // MARK: The process's side

    enum Ending: Sendable {
        case exited(Int32)
        /// The command could not run (or the container could not be attached): the kubelet's
        /// InternalError with this message.
        case failed(String)
    }

    /// Blocks until the exec's process ends or the attachment does.
    private func runProcessSide() -> Ending {
        switch request {
        case .exec(let exec): return runExec(exec)
        case .attach(let attach): return runAttach(attach)
        case .portForward: return .failed("port forwarding is not a remote command")
        }
    }

    private func runExec(_ exec: Runtime_V1_ExecRequest) -> Ending {
        var execRequest = ExecRequest(command: exec.cmd)
        execRequest.tty = exec.tty
        execRequest.terminalInForeground = true
        let prepared: PreparedExec
        do {
            guard let (id, _) = runtime.containers.find(exec.containerID) else {
                return .failed("container \(exec.containerID) not found")
            }
            prepared = try runtime.engine.prepareExec(id, execRequest)
        } catch {
            return .failed("error executing command in container: \(error)")
        }
        defer { prepared.discard() }
        let relay = ExecRelay(
            prepared: prepared, tty: exec.tty, stdin: exec.stdin, stdout: exec.stdout, stderr: exec.stderr)
        connect(.exec(relay))
        var runtimeMessage: [UInt8] = []
        let code: Int32
        do {
            code = try relay.run(
                started: { _, _, _ in },
                output: { stream, bytes in
                    // Before the process runs, stderr is the runtime's own (its reason for failing).
                    if !prepared.started { runtimeMessage += bytes }
                    return self.send(stream == .stdout ? ChannelProtocol.stdout : ChannelProtocol.stderr, bytes)
                })
        } catch {
            return .failed("error executing command in container: \(error)")
        }
        guard prepared.started else {
            let reason = String(decoding: runtimeMessage, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return .failed(
                "error executing command in container: failed to exec in container: \(reason.isEmpty ? "exit status \(code)" : reason)"
            )
        }
        return .exited(code)
    }

    private func runAttach(_ attach: Runtime_V1_AttachRequest) -> Ending {
        guard let (id, _) = runtime.containers.find(attach.containerID),
            let record = try? runtime.engine.lookup(id)
        else { return .failed("container \(attach.containerID) not found") }
        guard record.state.running else { return .failed("container \(id) is not running") }
        let attachment: MonitorAttachment
        do {
            attachment = try MonitorAttachment(
                socket: runtime.engine.layout.attachSocket(id), tty: attach.tty, stdin: attach.stdin,
                closesStdinAtEOF: runtime.containers.all[id]?.config.stdinOnce ?? false)
        } catch {
            return .failed("attaching to container \(id): \(error)")
        }
        connect(.attach(attachment))
        attachment.relay { kind, bytes in
            switch kind {
            case .stdout where attach.stdout: return send(ChannelProtocol.stdout, bytes)
            case .stderr where attach.stderr: return send(ChannelProtocol.stderr, bytes)
            default: return true
            }
        }
        return .exited(0)
    }

    /// Writes one channel's bytes and waits until they are written; false once the client is gone.
    private func send(_ channel: UInt8, _ bytes: [UInt8]) -> Bool {
        let done = DispatchSemaphore(value: 0)
        let written = Atomic(false)
        let wire = self.wire
        Task {
            if await wire.send(channel, bytes) { written.store(true, ordering: .relaxed) }
            done.signal()
        }
        done.wait()
        return written.load(ordering: .relaxed)
    }

    // MARK: The ending

    /// The error channel as the kubelet writes it, then the connection closes normally.
    private func writeStatus(_ ending: Ending) async {
        var status: JSON? = nil
        var text: String? = nil
        switch ending {
        case .exited(0):
            status = ["metadata": [:], "status": "Success"]
        case .exited(let code):
            let message = "command terminated with non-zero exit code: exit status \(code)"
            text = message
            status = [
                "metadata": [:], "status": "Failure", "message": .string(message), "reason": "NonZeroExitCode",
                "details": ["causes": [["reason": "ExitCode", "message": .string(String(code))]]],
            ]
        case .failed(let reason):
            let message = "Internal error occurred: \(reason)"
            text = message
            status = [
                "metadata": [:], "status": "Failure", "message": .string(message), "reason": "InternalError",
                "details": ["causes": [["message": .string(reason)]]], "code": .number("500"),
            ]
        }
        var payload: [UInt8] = []
        if channelProtocol.version >= 4, let status {
            payload = status.serialized()
        } else if let text {
            payload = Array(text.utf8)
        }
        await wire.finish(errorPayload: payload)
    }
}

/// The channel protocols over a WebSocket: each message its channel's number, then the bytes.
struct WebSocketCommandWire: RemoteCommandWire {
    let outbound: WebSocketOutboundWriter

    func send(_ channel: UInt8, _ bytes: [UInt8]) async -> Bool {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(bytes.count + 1)
        buffer.writeInteger(channel)
        buffer.writeBytes(bytes)
        return (try? await outbound.write(.binary(buffer))) != nil
    }

    func finish(errorPayload: [UInt8]) async {
        guard !errorPayload.isEmpty else { return }
        var buffer = ByteBuffer()
        buffer.writeInteger(ChannelProtocol.error)
        buffer.writeBytes(errorPayload)
        try? await outbound.write(.binary(buffer))
    }
}

extension RemoteCommandSession.Target {
    func input(_ bytes: [UInt8]) {
        switch self {
        case .exec(let relay): relay.input(bytes)
        case .attach(let attachment): attachment.input(bytes)
        }
    }
    func closeInput() {
        switch self {
        case .exec(let relay): relay.closeInput()
        case .attach(let attachment): attachment.closeInput()
        }
    }
    func clientGone() {
        switch self {
        case .exec(let relay): relay.clientGone()
        case .attach(let attachment): attachment.clientGone()
        }
    }
    func resize(height: UInt16, width: UInt16) {
        switch self {
        case .exec(let relay): relay.resize(height: height, width: width)
        case .attach(let attachment): attachment.resize(height: height, width: width)
        }
    }
}

import BerthJSON
import Logging
import NIOCore
import Synchronization

/// Exec and attach over SPDY/3.1 (what the kubelet and crictl speak to a runtime's streaming server):
/// the client opens one stream per part of the command, named by its `streamtype` header — `error`,
/// and `stdin`, `stdout`, `stderr` (none with a terminal) and `resize` (with one, from v3) as the
/// request asked — and the command starts once they are all there. Output goes out as DATA frames on
/// its stream; at the end the error stream carries the Status (v4) or the failure's text, every
/// stream is finished and the connection closes.
public enum SPDYRemoteCommand {
    /// The protocols served over SPDY, preferred first (v5 is the WebSocket's only).
    public static let protocols = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]

    /// The first protocol the client offers that is served; with no offer, the first version.
    static func negotiate(_ offered: [String]) -> ChannelProtocol? {
        guard !offered.isEmpty else { return ChannelProtocol.supported.last }
        for name in offered where protocols.contains(name) {
            return ChannelProtocol.supported.first { $0.name == name }
        }
        return nil
    }

    /// The streams the command needs before it starts.
    static func expectedStreams(stdin: Bool, stdout: Bool, stderr: Bool, tty: Bool, version: Int) -> Set<String> {
        var streams: Set<String> = ["error"]
        if stdin { streams.insert("stdin") }
        if stdout { streams.insert("stdout") }
        if stderr && !tty { streams.insert("stderr") }
        if tty && version >= 3 { streams.insert("resize") }
        return streams
    }

    /// Serves one command on an upgraded connection until it ends.
    static func serve(
        _ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, runtime: CRIRuntime,
        request: StreamingServer.StreamRequest, channelProtocol: ChannelProtocol, logger: Logger
    ) async {
        let expected: Set<String>
        switch request {
        case .exec(let exec):
            expected = expectedStreams(
                stdin: exec.stdin, stdout: exec.stdout, stderr: exec.stderr, tty: exec.tty,
                version: channelProtocol.version)
        case .attach(let attach):
            expected = expectedStreams(
                stdin: attach.stdin, stdout: attach.stdout, stderr: attach.stderr, tty: attach.tty,
                version: channelProtocol.version)
        case .portForward:
            return
        }
        try? await channel.executeThenClose { inbound, outbound in
            let writer = SPDYWriter(outbound: outbound)
            let wire = SPDYCommandWire(writer: writer)
            let (events, continuation) = AsyncThrowingStream<RemoteCommandEvent, any Error>.makeStream()
            let session = RemoteCommandSession(
                runtime: runtime, request: request, channelProtocol: channelProtocol, wire: wire, logger: logger)
            await withDiscardingTaskGroup { group in
                var decoder = SPDYFrameDecoder(inflater: SPDYHeaderInflater())
                var started = false
                var resizeText: [UInt8] = []
                var chunks = inbound.makeAsyncIterator()
                // The streams must all come within the kubelet's 30 s, or the connection is dropped.
                let deadline = ContinuousClock.now + .seconds(30)
                let readingEnded = Atomic(false)
                group.addTask {
                    while ContinuousClock.now < deadline && !readingEnded.load(ordering: .relaxed)
                        && !wire.hasStreams(expected)
                    {
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                    if !wire.hasStreams(expected) { channel.channel.close(promise: nil) }
                }
                reading: while let chunk = try? await chunks.next() {
                    decoder.append(chunk.readableBytesView)
                    while let frame = try? decoder.next() {
                        switch frame {
                        case .synStream(let id, let headers, _):
                            await writer.synReply(id)
                            wire.add(headers["streamtype"] ?? "", id)
                            if !started && wire.hasStreams(expected) {
                                started = true
                                group.addTask {
                                    await session.run(events: events)
                                    await wire.close()
                                    // The command is over: no more reading of the client.
                                    channel.channel.close(promise: nil)
                                }
                            }
                        case .data(let id, let payload, let fin):
                            switch wire.type(of: id) {
                            case "stdin":
                                if !payload.isEmpty { continuation.yield(.input(payload)) }
                                if fin { continuation.yield(.closeInput) }
                            case "resize":
                                // JSON objects one after another: each whole one is a resize.
                                resizeText += payload
                                while let end = resizeText.firstIndex(of: UInt8(ascii: "}")) {
                                    let object = Array(resizeText[...end])
                                    resizeText.removeFirst(end + 1)
                                    if let size = RemoteCommandSession.terminalSize(object) {
                                        continuation.yield(.resize(height: size.height, width: size.width))
                                    }
                                }
                            default: break
                            }
                        case .ping(let id): await writer.ping(id)
                        case .goAway: break reading
                        default: break
                        }
                    }
                }
                readingEnded.store(true, ordering: .relaxed)
                continuation.finish()
                if !started { channel.channel.close(promise: nil) }
            }
        }
    }
}

/// A command's output on its SPDY streams.
final class SPDYCommandWire: RemoteCommandWire {
    let writer: SPDYWriter
    private let streams = Mutex<[String: UInt32]>([:])

    init(writer: SPDYWriter) { self.writer = writer }

    func add(_ type: String, _ id: UInt32) { streams.withLock { $0[type] = id } }
    func type(of id: UInt32) -> String? { streams.withLock { $0.first { $0.value == id }?.key } }
    func hasStreams(_ expected: Set<String>) -> Bool { streams.withLock { expected.isSubset(of: Set($0.keys)) } }

    func send(_ channel: UInt8, _ bytes: [UInt8]) async -> Bool {
        let type = channel == ChannelProtocol.stdout ? "stdout" : "stderr"
        // A stream the client did not open: its bytes have nowhere to go, as the kubelet drops them.
        guard let id = streams.withLock({ $0[type] }) else { return true }
        return await writer.data(id, bytes, fin: false)
    }

    func finish(errorPayload: [UInt8]) async {
        if let id = streams.withLock({ $0["error"] }), !errorPayload.isEmpty {
            await writer.data(id, errorPayload, fin: false)
        }
    }

    /// Every stream the server writes ends (a FIN), then the client sees the connection go.
    func close() async {
        for type in ["stdout", "stderr", "error"] {
            if let id = streams.withLock({ $0[type] }) { await writer.data(id, [], fin: true) }
        }
    }
}

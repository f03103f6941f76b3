#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// `kubectl port-forward` as the kubelet's streaming server serves it: SPDY/3.1 carried in a
/// WebSocket's binary messages (`SPDY/3.1+portforward.k8s.io`, what kubectl 1.31+ asks for). For each
/// local connection the client opens two streams with the same `requestID` — `error` then `data` — on
/// a `port`; the server connects to that port on the pod's localhost (a socket made in the sandbox's
/// network namespace) and copies bytes both ways, writing to the error stream why it could not.
final class PortForwardSession: Sendable {
    static let subprotocol = "SPDY/3.1+portforward.k8s.io"

    let sandboxID: String
    /// The sandbox's network namespace (nil: the host's, for a hostNetwork pod).
    let networkNamespace: String?
    let writer: SPDYWriter
    let logger: Logger

    /// One forwarded connection: its two streams and, once connected, where the client's bytes go.
    private struct Forward {
        var port: UInt16
        var errorStream: UInt32?
        var dataStream: UInt32?
        var started = false
    }

    private struct State {
        /// By requestID.
        var forwards: [String: Forward] = [:]
        /// Data stream → the client's bytes for the pod (nil yielded: the client closed its side).
        var toPod: [UInt32: AsyncStream<[UInt8]?>.Continuation] = [:]
        var lastStream: UInt32 = 0
    }
    private let state = Mutex(State())

    init(sandboxID: String, networkNamespace: String?, writer: SPDYWriter, logger: Logger) {
        self.sandboxID = sandboxID
        self.networkNamespace = networkNamespace
        self.writer = writer
        self.logger = logger
    }

    /// Serves a port-forward tunnelled in a WebSocket (its binary messages carry the frames).
    func run(inbound: WebSocketInboundStream) async {
        let chunks = inbound.messages(maxSize: 1 << 24).compactMap { message -> ByteBuffer? in
            guard case .binary(let buffer) = message else { return nil }
            return buffer
        }
        await run(chunks: chunks)
    }

    /// Serves the connection until the client goes (or says GOAWAY); forwards still open are ended.
    func run(chunks: some AsyncSequence<ByteBuffer, any Error>) async {
        await withDiscardingTaskGroup { group in
            var decoder = SPDYFrameDecoder(inflater: SPDYHeaderInflater())
            var messages = chunks.makeAsyncIterator()
            reading: while let buffer = try? await messages.next() {
                decoder.append(buffer.readableBytesView)
                while true {
                    let frame: SPDYFrame?
                    do { frame = try decoder.next() } catch {
                        logger.notice("port-forward to sandbox \(sandboxID.prefix(12)): \(error)")
                        break reading
                    }
                    guard let frame else { break }
                    if case .goAway = frame { break reading }
                    if let forward = await handle(frame) {
                        group.addTask { await self.forward(forward) }
                    }
                }
            }
            let open = state.withLock { s in
                defer { s.toPod = [:] }
                return Array(s.toPod.values)
            }
            for continuation in open { continuation.finish() }
            await writer.goAway(lastGoodStreamID: state.withLock { $0.lastStream })
            group.cancelAll()
        }
    }

    /// Both streams of one forwarded connection, and the client's bytes for the pod from its data stream.
    struct Pair: Sendable {
        var requestID: String
        var port: UInt16
        var error: UInt32
        var data: UInt32
        var toPod: AsyncStream<[UInt8]?>
    }

    /// Acts on one frame; returns a forward to start once both its streams are there.
    private func handle(_ frame: SPDYFrame) async -> Pair? {
        switch frame {
        case .synStream(let id, let headers, _):
            state.withLock { $0.lastStream = max($0.lastStream, id) }
            await writer.synReply(id)
            let type = headers["streamtype"] ?? ""
            guard let portText = headers["port"], let port = UInt16(portText), port > 0 else {
                await writer.rst(id)
                return nil
            }
            let requestID = headers["requestid"] ?? String(type == "data" && id >= 2 ? id - 2 : id)
            return state.withLock { s -> Pair? in
                var forward = s.forwards[requestID] ?? Forward(port: port)
                if type == "error" { forward.errorStream = id } else if type == "data" { forward.dataStream = id }
                defer { s.forwards[requestID] = forward }
                guard !forward.started, let error = forward.errorStream, let data = forward.dataStream else {
                    return nil
                }
                forward.started = true
                // Registered now, so that data the client sends before the pod is reached waits for it.
                let (toPod, continuation) = AsyncStream<[UInt8]?>.makeStream()
                s.toPod[data] = continuation
                return Pair(requestID: requestID, port: forward.port, error: error, data: data, toPod: toPod)
            }
        case .data(let id, let payload, let fin):
            let continuation = state.withLock { s in fin ? s.toPod.removeValue(forKey: id) : s.toPod[id] }
            if !payload.isEmpty { continuation?.yield(payload) }
            if fin { continuation?.yield(nil) }
        case .rstStream(let id, _):
            state.withLock { $0.toPod.removeValue(forKey: id) }?.finish()
        case .ping(let id):
            await writer.ping(id)
        default:
            break
        }
        return nil
    }

    /// Connects to the pod's port and copies both ways until both sides have ended.
    private func forward(_ forward: Pair) async {
        let toPod = forward.toPod
        defer {
            state.withLock { s in
                s.toPod.removeValue(forKey: forward.data)
                s.forwards.removeValue(forKey: forward.requestID)
            }
        }
        let socket: Int32
        do {
            socket = try await BlockingThread.run(name: "cri-portforward") { () throws(SystemCallError) in
                try Self.connect(port: forward.port, networkNamespace: self.networkNamespace)
            }
        } catch {
            // The kubelet's message, on the error stream (kubectl prints it), then both streams end.
            let message =
                "error forwarding port \(forward.port) to pod \(sandboxID), uid : failed to connect to localhost:\(forward.port) inside namespace \"\(sandboxID)\": \(error)"
            await writer.data(forward.error, Array(message.utf8), fin: true)
            await writer.data(forward.data, [], fin: true)
            return
        }
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .withConnectedSocket(socket) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true))
                    }
                }
            try await channel.executeThenClose { fromPod, podOutbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await chunk in fromPod {
                            await self.writer.data(forward.data, Array(chunk.readableBytesView), fin: false)
                        }
                        // The pod closed its side: the client's copy ends now (a server that closes to
                        // end its answer, HTTP/1.0), whatever the client still sends.
                        await self.writer.data(forward.data, [], fin: true)
                    }
                    group.addTask {
                        for await chunk in toPod {
                            guard let chunk else { break }
                            try await podOutbound.write(ByteBuffer(bytes: chunk))
                        }
                        podOutbound.finish()
                    }
                    try await group.waitForAll()
                }
            }
        } catch {
            logger.debug("port-forward \(forward.port) of sandbox \(sandboxID.prefix(12)): \(error)")
            await writer.data(forward.data, [], fin: true)
        }
        await writer.data(forward.error, [], fin: true)
    }

    /// A blocking TCP socket connected to 127.0.0.1:`port` in the namespace.
    static func connect(port: UInt16, networkNamespace: String?) throws(SystemCallError) -> Int32 {
        var step: Int32 = 0
        let fd =
            networkNamespace.map { berth_stream_socket_in_netns($0, &step) }
            ?? socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw SystemCallError(
                call: "socket in the pod's network namespace", errno: networkNamespace != nil ? -fd : errno)
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let error = errno
            close(fd)
            throw SystemCallError(call: "connect", errno: error, subject: "127.0.0.1:\(port)")
        }
        return fd
    }
}

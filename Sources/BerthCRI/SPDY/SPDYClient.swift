import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The client side of a runtime's streaming URL over SPDY/3.1, as the kubelet connects to a runtime's
/// streaming server: the HTTP upgrade (offering `X-Stream-Protocol-Version`s), then either the raw
/// upgraded bytes (``withUpgrade(url:protocols:_:)``, enough to relay a port-forward's frames) or a
/// session of streams (``SPDYClientSession``) for exec and attach.
public enum SPDYClient {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// What the upgrade gave: the protocol the server chose (nil when it named none), the bytes that
    /// followed its answer, and the connection.
    public struct Upgraded: Sendable {
        public var negotiated: String?
        public var leftover: ByteBuffer
    }

    /// Connects to `url` (http://HOST:PORT/PATH), asks for the SPDY upgrade and runs `body` on the
    /// upgraded connection; the connection closes when `body` returns.
    public static func withUpgrade<Result: Sendable>(
        url: String, protocols: [String],
        _ body:
            @Sendable (Upgraded, AsyncThrowingStream<ByteBuffer, any Error>, NIOAsyncChannelOutboundWriter<ByteBuffer>)
            async throws -> Result
    ) async throws -> Result {
        guard url.hasPrefix("http://") else {
            throw Failure(description: "\(url): only http:// streaming URLs are served")
        }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...])
        else { throw Failure(description: "\(url) names no port") }
        let host = String(authority[..<colon]).trimmingCharacters(in: ["[", "]"])
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var request = "POST \(path.isEmpty ? "/" : path) HTTP/1.1\r\nHost: \(authority)\r\n"
            request += "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n"
            for name in protocols { request += "X-Stream-Protocol-Version: \(name)\r\n" }
            try await outbound.write(ByteBuffer(string: request + "\r\n"))
            var iterator = inbound.makeAsyncIterator()
            var received = ByteBuffer()
            var headEnd: Int?
            while headEnd == nil {
                guard var chunk = try await iterator.next() else {
                    throw Failure(description: "\(url): the server closed before answering the upgrade")
                }
                received.writeBuffer(&chunk)
                headEnd = received.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)).map {
                    $0.upperBound - received.readableBytesView.startIndex
                }
                if received.readableBytes > 64 << 10 && headEnd == nil {
                    throw Failure(description: "\(url): the upgrade's answer has no end")
                }
            }
            let head = String(decoding: received.readableBytesView.prefix(headEnd!), as: UTF8.self)
            received.moveReaderIndex(forwardBy: headEnd!)
            let lines = head.split(separator: "\r\n")
            guard let status = lines.first, status.split(separator: " ").dropFirst().first == "101" else {
                throw Failure(description: "unable to upgrade connection: \(lines.first ?? "no answer")")
            }
            let negotiated = lines.dropFirst().first {
                $0.lowercased().hasPrefix("x-stream-protocol-version:")
            }.map { String($0.dropFirst("x-stream-protocol-version:".count)).trimmingCharacters(in: .whitespaces) }
            // The rest of the connection, read by the same iterator (a channel's stream has only one).
            nonisolated(unsafe) var rest = iterator
            let (chunks, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
            let pump = Task {
                do {
                    while let chunk = try await rest.next() { continuation.yield(chunk) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            defer { pump.cancel() }
            return try await body(Upgraded(negotiated: negotiated, leftover: received), chunks, outbound)
        }
    }
}

/// Streams of one SPDY connection as the client opens them (odd IDs), and the frames the server sends.
public final class SPDYClientSession: Sendable {
    /// What the server sent on a stream.
    public enum Event: Sendable {
        case data(streamID: UInt32, payload: [UInt8], fin: Bool)
        /// The server refused or cancelled the stream.
        case reset(streamID: UInt32)
    }

    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let state = Mutex<(next: UInt32, deflater: SPDYHeaderDeflater)>((1, SPDYHeaderDeflater()))

    public init(outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) { self.outbound = outbound }

    /// Opens a stream with `headers` (`streamtype`, …); returns its ID.
    public func open(_ headers: [String: String]) async throws -> UInt32 {
        let (id, frame) = state.withLock { s -> (UInt32, [UInt8]) in
            let id = s.next
            s.next += 2
            let body =
                SPDYFrameEncoder.bigEndian(id) + SPDYFrameEncoder.bigEndian(0) + [0, 0] + s.deflater.block(headers)
            return (id, SPDYFrameEncoder.control(1, body))
        }
        try await outbound.write(ByteBuffer(bytes: frame))
        return id
    }

    public func send(_ streamID: UInt32, _ bytes: [UInt8], fin: Bool) async throws {
        try await outbound.write(ByteBuffer(bytes: SPDYFrameEncoder.data(streamID, bytes, fin: fin)))
    }

    /// The server's stream events, from what followed the upgrade and then the connection; pings are
    /// answered here. Ends when the server closes the connection or says GOAWAY.
    public func events(leftover: ByteBuffer, inbound: AsyncThrowingStream<ByteBuffer, any Error>)
        -> AsyncThrowingStream<Event, any Error>
    {
        let outbound = self.outbound
        return AsyncThrowingStream { continuation in
            let task = Task {
                var decoder = SPDYFrameDecoder(inflater: SPDYHeaderInflater())
                decoder.append(leftover.readableBytesView)
                do {
                    var iterator = inbound.makeAsyncIterator()
                    reading: while true {
                        while let frame = try decoder.next() {
                            switch frame {
                            case .data(let id, let payload, let fin):
                                continuation.yield(.data(streamID: id, payload: payload, fin: fin))
                            case .rstStream(let id, _): continuation.yield(.reset(streamID: id))
                            case .ping(let id): try await outbound.write(ByteBuffer(bytes: SPDYFrameEncoder.ping(id)))
                            case .goAway: break reading
                            default: break
                            }
                        }
                        guard let chunk = try await iterator.next() else { break }
                        decoder.append(chunk.readableBytesView)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

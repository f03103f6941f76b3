import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// HTTP/1.1 connections (Hummingbird's, WebSocket upgrades included) that also take the SPDY/3.1
/// upgrade kubectl, the kubelet and crictl ask for (`Upgrade: SPDY/3.1`), which Hummingbird does not
/// serve. Each connection's first request head is read here; a SPDY upgrade's connection is handed
/// whole to `takeover` (which answers it: a 101 and a session, a tunnel to where the session is served,
/// or an HTTP error), anything else goes on to Hummingbird's pipeline with the bytes read so far.
/// Under TLS (HummingbirdTLS's `.tls(_:)`) the head is read after decryption.
public struct UpgradeSniffingChannel: ServerChildChannel {
    /// A SPDY upgrade's connection: its request head, the connection as bytes (what followed the head
    /// first), and the channel itself (for its peer's TLS certificate).
    public typealias Takeover =
        @Sendable (UpgradeRequestHead, NIOAsyncChannel<ByteBuffer, ByteBuffer>, any Channel, Logger) async -> Void

    let http: HTTP1WebSocketUpgradeChannel
    let takeover: Takeover

    public init(http: HTTP1WebSocketUpgradeChannel, takeover: @escaping Takeover) {
        self.http = http
        self.takeover = takeover
    }

    /// A connection whose head is still being read: the decision comes in ``handle(value:logger:)``,
    /// once the channel is registered and reading (the server sets it up before it reads anything).
    public struct Value: ServerChildChannelValue {
        public let channel: any Channel
        let sniffer: RequestHeadSniffer
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let sniffer = RequestHeadSniffer(promise: channel.eventLoop.makePromise())
        return channel.pipeline.addHandler(sniffer).map { Value(channel: channel, sniffer: sniffer) }
    }

    public func handle(value: Value, logger: Logger) async {
        // Cancellation (the server's hard stop) closes the connection whole. Hummingbird's own handler
        // closes only its input side, which TLS does not support: a kept-alive connection then waited for
        // its client to close it, and service-lifecycle ended the process when that took over its limit.
        // The close also ends a connection whose request head never came.
        let channel = value.channel
        await withTaskCancellationHandler {
            await serve(value, logger: logger)
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    private func serve(_ value: Value, logger: Logger) async {
        let channel = value.channel
        let sniffer = value.sniffer
        guard let sniffed = try? await sniffer.promise.futureResult.get() else {
            // Not SPDY: Hummingbird's handlers go after the sniffer, which then leaves and passes on
            // what it read.
            let inner = channel.eventLoop.flatSubmit {
                http.setup(channel: channel, logger: logger).flatMap { inner in
                    channel.pipeline.removeHandler(sniffer).map { inner }
                }
            }
            guard let inner = try? await inner.get() else {
                try? await channel.close()
                return
            }
            await http.handle(value: inner, logger: logger)
            return
        }
        let wrapped = channel.eventLoop.flatSubmit {
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            }.flatMap { asyncChannel in
                // Bytes that came after the head (a client's first frames) go to whoever takes over.
                sniffer.dropHead()
                return channel.pipeline.removeHandler(sniffer).map { asyncChannel }
            }
        }
        guard let connection = try? await wrapped.get() else {
            try? await channel.close()
            return
        }
        await takeover(sniffed, connection, channel, logger)
    }
}

/// A SPDY upgrade's request head: method, path (with its query) and header fields.
public struct UpgradeRequestHead: Sendable {
    public var method: String
    public var path: String
    public var headers: [(name: String, value: String)]

    public init(method: String, path: String, headers: [(name: String, value: String)]) {
        self.method = method
        self.path = path
        self.headers = headers
    }

    /// Every value of the header `name` (case-insensitive), comma-separated lists split.
    public func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.flatMap {
            $0.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    /// The path without its query, and the query's text (nil when there is none).
    public var pathAndQuery: (path: String, query: String?) {
        let parts = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return (String(parts.first ?? ""), parts.count > 1 ? String(parts[1]) : nil)
    }
}

/// Answers on a taken-over connection, before any session runs on it.
extension NIOAsyncChannelOutboundWriter<ByteBuffer> {
    /// An HTTP error instead of the upgrade; the connection is to be closed after it.
    public func refuseUpgrade(
        status: Int, reason: String, contentType: String = "text/plain; charset=utf-8", body: [UInt8]
    )
        async throws
    {
        var answer = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\n"
        answer += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        var buffer = ByteBuffer(string: answer)
        buffer.writeBytes(body)
        try await write(buffer)
    }
}

/// Holds a connection's first bytes until its request head is complete, then says whether it asks
/// for a SPDY upgrade; removed from the pipeline, it passes on whatever it held.
final class RequestHeadSniffer: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    /// A request head longer than this is not one a streaming client sends.
    static let maximumHead = 64 << 10

    let promise: EventLoopPromise<UpgradeRequestHead?>
    private var held: ByteBuffer?
    private var decided = false
    private var headLength = 0

    init(promise: EventLoopPromise<UpgradeRequestHead?>) { self.promise = promise }

    // The server's connections do not read on their own until a consumer asks (backpressure): the
    // head is asked for here.
    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.read() }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !decided { context.read() }
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        // Everything is held until this handler leaves, also what comes after the decision: until then
        // nothing is behind it to take the bytes (a request's body sent after its head, in a TLS record
        // of its own, was once passed on to the end of the pipeline and lost, and the request hung).
        if held == nil { held = bytes } else { held!.writeBuffer(&bytes) }
        guard !decided else { return }
        let view = held!.readableBytesView
        guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else {
            if view.count > Self.maximumHead {
                decided = true
                promise.succeed(nil)
            }
            return
        }
        decided = true
        headLength = end.upperBound - view.startIndex
        promise.succeed(Self.parse(Array(view[view.startIndex..<end.lowerBound])))
    }

    /// For a SPDY session: the head is answered, only what followed it is passed on.
    func dropHead() {
        held?.moveReaderIndex(forwardBy: headLength)
    }

    /// Nil unless the head is a request with `Upgrade: SPDY/3.1`.
    static func parse(_ head: [UInt8]) -> UpgradeRequestHead? {
        let lines = String(decoding: head, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        guard let first = lines.first else { return nil }
        let requestLine = first.split(separator: " ")
        guard requestLine.count == 3 else { return nil }
        var headers: [(String, String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append(
                (
                    String(line[..<colon]).trimmingCharacters(in: .whitespaces),
                    String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                ))
        }
        let request = UpgradeRequestHead(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers)
        guard request.values("Upgrade").contains(where: { $0.lowercased() == "spdy/3.1" }) else { return nil }
        return request
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !decided {
            decided = true
            promise.succeed(nil)
        }
        context.fireChannelInactive()
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if let held, held.readableBytes > 0 {
            self.held = nil
            // A SPDY session gets what followed the head; HTTP gets everything, head included. Handlers
            // that batch reads (NIOAsyncChannel's) pass them on at the read's completion.
            context.fireChannelRead(wrapInboundOut(held))
            context.fireChannelReadComplete()
        }
        context.leavePipeline(removalToken: removalToken)
    }
}

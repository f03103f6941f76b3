import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// The streaming server's connections: HTTP/1.1 with WebSocket upgrades (Hummingbird's), and besides
/// them the SPDY/3.1 upgrade the kubelet and crictl ask for (`Upgrade: SPDY/3.1`), which Hummingbird
/// does not serve. Each connection's request head is read first; a SPDY upgrade is answered here (101
/// and the negotiated `X-Stream-Protocol-Version`) and the connection's bytes go to a SPDY session,
/// anything else goes on to Hummingbird's pipeline with the bytes read so far.
struct SPDYOrHTTPChannel: ServerChildChannel {
    /// What a SPDY upgrade request asks for: its path and headers. The answer: the headers of the 101
    /// and the session to run on the connection's bytes, or nil to refuse (400).
    typealias Decide = @Sendable (SPDYUpgradeRequest) -> (HTTPFields, SPDYSessionHandler)?
    typealias SPDYSessionHandler = @Sendable (NIOAsyncChannel<ByteBuffer, ByteBuffer>, Logger) async -> Void

    let http: HTTP1WebSocketUpgradeChannel
    let decide: Decide

    /// A connection whose head is still being read: the decision comes in ``handle(value:logger:)``,
    /// once the channel is registered and reading (the server sets it up before it reads anything).
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let sniffer: RequestHeadSniffer
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let sniffer = RequestHeadSniffer(promise: channel.eventLoop.makePromise())
        return channel.pipeline.addHandler(sniffer).map { Value(channel: channel, sniffer: sniffer) }
    }

    func handle(value: Value, logger: Logger) async {
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
        guard let (headers, session) = decide(sniffed) else {
            let answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            try? await channel.writeAndFlush(ByteBuffer(string: answer))
            try? await channel.close()
            return
        }
        var answer = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        for field in headers { answer += "\(field.name.rawName): \(field.value)\r\n" }
        answer += "\r\n"
        let response = ByteBuffer(string: answer)
        let upgraded = channel.eventLoop.flatSubmit {
            channel.writeAndFlush(response).flatMapThrowing {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            }.flatMap { asyncChannel in
                // Bytes that came after the head (the first frames) go to the session.
                sniffer.dropHead()
                return channel.pipeline.removeHandler(sniffer).map { asyncChannel }
            }
        }
        guard let asyncChannel = try? await upgraded.get() else {
            try? await channel.close()
            return
        }
        await session(asyncChannel, logger)
    }
}

/// A SPDY upgrade's request: the path (with its query) and the header fields.
struct SPDYUpgradeRequest: Sendable {
    var method: String
    var path: String
    var headers: [(name: String, value: String)]

    func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.flatMap {
            $0.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }
}

/// Holds a connection's first bytes until its request head is complete, then says whether it asks
/// for a SPDY upgrade; removed from the pipeline, it passes on whatever it held.
final class RequestHeadSniffer: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    /// A request head longer than this is not one a streaming client sends.
    static let maximumHead = 64 << 10

    let promise: EventLoopPromise<SPDYUpgradeRequest?>
    private var held: ByteBuffer?
    private var decided = false
    private var headLength = 0

    init(promise: EventLoopPromise<SPDYUpgradeRequest?>) { self.promise = promise }

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
        guard !decided else {
            context.fireChannelRead(data)
            return
        }
        if held == nil { held = bytes } else { held!.writeBuffer(&bytes) }
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
    static func parse(_ head: [UInt8]) -> SPDYUpgradeRequest? {
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
        let request = SPDYUpgradeRequest(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers)
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

/// Every frame a SPDY session sends goes through here, in order, with the connection's one header
/// compression stream; `send` puts the bytes on the wire (a WebSocket message, or the TCP stream) and
/// says whether they went.
actor SPDYWriter {
    let send: @Sendable ([UInt8]) async -> Bool
    let deflater = SPDYHeaderDeflater()

    init(send: @escaping @Sendable ([UInt8]) async -> Bool) { self.send = send }

    /// Over a WebSocket: each frame one binary message.
    init(outbound: WebSocketOutboundWriter) {
        self.init { bytes in (try? await outbound.write(.binary(ByteBuffer(bytes: bytes)))) != nil }
    }

    /// Over the upgraded connection itself.
    init(outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.init { bytes in (try? await outbound.write(ByteBuffer(bytes: bytes))) != nil }
    }

    func synReply(_ id: UInt32) async {
        _ = await send(SPDYFrameEncoder.synReply(id, headerBlock: deflater.block([:])))
    }
    func rst(_ id: UInt32) async { _ = await send(SPDYFrameEncoder.rstStream(id, status: SPDYFrame.protocolError)) }
    func ping(_ id: UInt32) async { _ = await send(SPDYFrameEncoder.ping(id)) }
    func goAway(lastGoodStreamID: UInt32) async {
        _ = await send(SPDYFrameEncoder.goAway(lastGoodStreamID: lastGoodStreamID))
    }
    @discardableResult
    func data(_ id: UInt32, _ payload: [UInt8], fin: Bool) async -> Bool {
        await send(SPDYFrameEncoder.data(id, payload, fin: fin))
    }
}

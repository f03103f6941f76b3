import HummingbirdWebSocket
import NIOCore

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

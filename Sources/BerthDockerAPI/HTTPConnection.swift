#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import NIOCore
import NIOHTTP1
import Synchronization

/// One request, read whole: the Docker API's bodies are small JSON documents, except the uploads
/// (`docker cp` into a container, `docker load`), which arrive in a file instead.
public struct APIRequest: Sendable {
    public var method: HTTPMethod
    /// The path as sent, without the query, percent-decoded.
    public var path: String
    public var query: [String: [String]]
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// An upload's body, written to this file as it arrived (``HTTPConnectionHandler/isUpload(_:)``);
    /// the handler removes it when done.
    public var upload: String?
    /// The client asked to take the connection over (`Connection: Upgrade`, `Upgrade: tcp`).
    public var wantsUpgrade: Bool

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.method = method
        self.headers = headers
        self.body = body
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = PercentDecoding.decode(String(parts.first ?? ""), plusIsSpace: false)
        var query: [String: [String]] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") where !pair.isEmpty {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = PercentDecoding.decode(String(kv[0]), plusIsSpace: true)
                query[key, default: []].append(
                    kv.count > 1 ? PercentDecoding.decode(String(kv[1]), plusIsSpace: true) : "")
            }
        }
        self.query = query
        wantsUpgrade =
            headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
            && headers["upgrade"].contains { $0.lowercased() == "tcp" }
    }

    /// The query parameter's (last) value.
    public func value(_ name: String) -> String? { query[name]?.last }

    /// docker's boolean query values (httputils.BoolValue): absent, empty, 0, no, false and none are
    /// false, anything else true.
    public func flag(_ name: String, default fallback: Bool = false) -> Bool {
        guard let raw = value(name) else { return fallback }
        let v = raw.trimmingSpaces.lowercased()
        return !(v.isEmpty || v == "0" || v == "no" || v == "false" || v == "none")
    }

    /// An integer query parameter; a malformed one is a 400 naming it.
    public func integer(_ name: String) throws(DockerAPIError) -> Int? {
        guard let raw = value(name), !raw.isEmpty else { return nil }
        guard let n = Int(raw) else { throw .badRequest("invalid value for \(name): \(raw)") }
        return n
    }
}

enum PercentDecoding {
    static func decode(_ text: String, plusIsSpace: Bool) -> String {
        guard text.contains("%") || (plusIsSpace && text.contains("+")) else { return text }
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let b = utf8.first {
            utf8 = utf8.dropFirst()
            if b == UInt8(ascii: "%"), utf8.count >= 2, let hi = hex(utf8[utf8.startIndex]),
                let lo = hex(utf8[utf8.startIndex + 1])
            {
                bytes.append(hi << 4 | lo)
                utf8 = utf8.dropFirst(2)
            } else if b == UInt8(ascii: "+") && plusIsSpace {
                bytes.append(32)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// The HTTP/1.1 side of one connection to the API socket: reads a request whole, hands it to a thread
/// of its own (the engine's operations block: file locks, waits on monitors), and becomes ready for
/// the next request when the response is finished. A hijacked connection (attach) leaves HTTP: this
/// handler and the codecs are removed and the raw bytes go to the attachment.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Larger bodies are refused (413) and the connection closed: nothing the API takes as a whole
    /// document comes near it. Uploads have no limit but the disk's.
    static let maximumBody = 16 << 20

    /// A tar archive sent as the body (`PUT /containers/{id}/archive`, `POST /images/load`): written to
    /// a file under the data root as it arrives, never held in memory, whatever its size.
    static func isUpload(_ head: HTTPRequestHead) -> Bool {
        let path = head.uri.split(separator: "?", maxSplits: 1).first ?? ""
        return head.method == .PUT && path.hasSuffix("/archive")
            || head.method == .POST && path.hasSuffix("/images/load")
    }

    static let decoderName = "docker-api-http-decoder"
    static let encoderName = "docker-api-http-encoder"

    private let api: DockerAPI
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooLarge = false
    private var limit = HTTPConnectionHandler.maximumBody
    /// The upload being received: its file, open for writing.
    private var upload: (path: String, file: BerthOS.FileDescriptor)?
    private var waiting: [(HTTPRequestHead, ByteBuffer?, String?)] = []
    private var busy = false
    private var inputClosed = false
    private var current: Cancellation?

    init(api: DockerAPI) { self.api = api }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !tooLarge else { return }
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = nil
            if Self.isUpload(h) {
                do {
                    upload = try api.makeUploadFile()
                } catch {
                    refuse(context, h, DockerAPIError(.internalServerError, "cannot store the request body: \(error)"))
                    tooLarge = true
                }
                return
            }
            // Refused at once on its announced length: the client need not send it all first.
            limit = Self.maximumBody
            if let length = h.headers.first(name: "content-length").flatMap(Int.init), length > limit {
                refuseTooLarge(context, h)
            }
        case .body(var chunk):
            if let upload {
                // Written on the event loop: to the page cache, one chunk (≤ 64 KiB) at a time.
                do {
                    try chunk.withUnsafeReadableBytes { raw in try upload.file.write(UnsafeRawBufferPointer(raw)) }
                } catch {
                    discardUpload()
                    tooLarge = true
                    refuse(
                        context, head ?? HTTPRequestHead(version: .http1_1, method: .POST, uri: "/"),
                        DockerAPIError(.internalServerError, "cannot store the request body: \(error)"))
                }
            } else if (body?.readableBytes ?? 0) + chunk.readableBytes > limit {
                refuseTooLarge(context, head ?? HTTPRequestHead(version: .http1_1, method: .POST, uri: "/"))
            } else if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let h = head else { return }
            head = nil
            let uploaded = upload?.path
            upload?.file.close()
            upload = nil
            waiting.append((h, body, uploaded))
            body = nil
            startNext(context)
        }
    }

    /// 413 and close: the rest of the body is never read.
    private func refuseTooLarge(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        tooLarge = true
        body = nil
        self.head = nil
        guard !busy else { return context.close(promise: nil) }
        refuse(context, head, DockerAPIError(.payloadTooLarge, "request body larger than \(limit) bytes"))
    }

    /// A malformed request line or header: docker's 400, then the connection closes (the decoder
    /// cannot find the next request's start).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError && !busy {
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
            refuse(context, head, .badRequest("malformed HTTP request: \(error)"))
        } else {
            context.close(promise: nil)
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ error: DockerAPIError) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Connection", value: "close")
        let bytes = JSONBody.message(error.message)
        headers.add(name: "Content-Length", value: String(bytes.count))
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: error.status, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        busy = true
    }

    private func startNext(_ context: ChannelHandlerContext) {
        guard !busy, !waiting.isEmpty else { return }
        let (head, body, uploaded) = waiting.removeFirst()
        busy = true
        var request = APIRequest(
            method: head.method, uri: head.uri, headers: head.headers,
            body: body.map { Array($0.readableBytesView) } ?? [])
        request.upload = uploaded
        if head.version.major == 1 && head.version.minor == 0 { request.wantsUpgrade = false }
        let cancellation = Cancellation()
        current = cancellation
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        // An upgrade request answered without hijacking (an error) leaves the decoder in upgrade mode:
        // the connection cannot carry another request.
        let writer = ResponseWriter(
            channel: context.channel, version: head.version,
            keepAlive: head.isKeepAlive && !inputClosed && !request.wantsUpgrade,
            isHead: head.method == .HEAD, cancellation: cancellation,
            finished: { close in
                loopBound.value.handler.finished(loopBound.value.context, close: close)
            },
            hijack: { raw, preamble in
                loopBound.eventLoop.execute {
                    loopBound.value.handler.hijack(loopBound.value.context, raw: raw, preamble: preamble)
                }
            })
        let api = self.api
        let exchange = request
        BlockingThread.start(name: "docker-api") { api.handle(exchange, writer) }
    }

    /// The response is complete: on to the next request, or close.
    private func finished(_ context: ChannelHandlerContext, close: Bool) {
        busy = false
        current = nil
        if close || (inputClosed && waiting.isEmpty) {
            context.close(promise: nil)
            return
        }
        startNext(context)
    }

    /// Leaves HTTP: the codecs and this handler go, `raw` takes the bytes (including any the decoder
    /// held after the request), and `preamble` (the 101 or 200 response head) is written as is.
    private func hijack(_ context: ChannelHandlerContext, raw: RawStreamHandler, preamble: [UInt8]) {
        let pipeline = context.pipeline.syncOperations
        do {
            try pipeline.addHandler(raw, position: .last)
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            pipeline.removeHandler(encoder, promise: nil)
            context.channel.writeAndFlush(context.channel.allocator.buffer(bytes: preamble), promise: nil)
            pipeline.removeHandler(context: context, promise: nil)
            let decoder = try pipeline.context(name: Self.decoderName)
            pipeline.removeHandler(context: decoder, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            if !busy && waiting.isEmpty { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The client went away: whatever serves its request (a wait, a followed log) stops, and
        // uploads no handler will take are removed.
        current?.cancel()
        discardUpload()
        for (_, _, uploaded) in waiting { if let uploaded { unlink(uploaded) } }
        waiting = []
        context.fireChannelInactive()
    }

    private func discardUpload() {
        guard let upload else { return }
        upload.file.close()
        unlink(upload.path)
        self.upload = nil
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        current = nil
    }
}

/// The bytes of a hijacked connection after HTTP: input to the attachment, and its end.
final class RawStreamHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let onInput: @Sendable ([UInt8]) -> Void
    let onInputClosed: @Sendable () -> Void
    let onClose: @Sendable () -> Void

    init(
        onInput: @escaping @Sendable ([UInt8]) -> Void, onInputClosed: @escaping @Sendable () -> Void,
        onClose: @escaping @Sendable () -> Void
    ) {
        self.onInput = onInput
        self.onInputClosed = onInputClosed
        self.onClose = onClose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if buffer.readableBytes > 0 { onInput(Array(buffer.readableBytesView)) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { onInputClosed() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        onClose()
    }
}

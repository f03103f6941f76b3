#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import NIOCore
import NIOHTTP1
import Synchronization

/// One request, read whole: the Docker API's bodies are small JSON documents (streamed uploads —
/// `docker cp`, `load` — are not served yet).
public struct APIRequest: Sendable {
    public var method: HTTPMethod
    /// The path as sent, without the query, percent-decoded.
    public var path: String
    public var query: [String: [String]]
    public var headers: HTTPHeaders
    public var body: [UInt8]
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
                query[key, default: []].append(kv.count > 1 ? PercentDecoding.decode(String(kv[1]), plusIsSpace: true) : "")
            }
        }
        self.query = query
        wantsUpgrade = headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
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
            if b == UInt8(ascii: "%"), utf8.count >= 2, let hi = hex(utf8[utf8.startIndex]), let lo = hex(utf8[utf8.startIndex + 1]) {
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
    /// document comes near it.
    static let maximumBody = 16 << 20

    static let decoderName = "docker-api-http-decoder"
    static let encoderName = "docker-api-http-encoder"

    private let api: DockerAPI
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooLarge = false
    private var waiting: [(HTTPRequestHead, ByteBuffer?)] = []
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
            // Refused at once on its announced length: the client need not send it all first.
            if let length = h.headers.first(name: "content-length").flatMap(Int.init), length > Self.maximumBody {
                refuseTooLarge(context, h)
            }
        case .body(var chunk):
            if (body?.readableBytes ?? 0) + chunk.readableBytes > Self.maximumBody {
                refuseTooLarge(context, head ?? HTTPRequestHead(version: .http1_1, method: .POST, uri: "/"))
            } else if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let h = head else { return }
            head = nil
            waiting.append((h, body))
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
        refuse(context, head, DockerAPIError(.payloadTooLarge, "request body larger than \(Self.maximumBody) bytes"))
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
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: error.status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        busy = true
    }

    private func startNext(_ context: ChannelHandlerContext) {
        guard !busy, !waiting.isEmpty else { return }
        let (head, body) = waiting.removeFirst()
        busy = true
        var request = APIRequest(method: head.method, uri: head.uri, headers: head.headers,
                                 body: body.map { Array($0.readableBytesView) } ?? [])
        if head.version.major == 1 && head.version.minor == 0 { request.wantsUpgrade = false }
        let cancellation = Cancellation()
        current = cancellation
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        // An upgrade request answered without hijacking (an error) leaves the decoder in upgrade mode:
        // the connection cannot carry another request.
        let writer = ResponseWriter(channel: context.channel, version: head.version,
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
        // The client went away: whatever serves its request (a wait, a followed log) stops.
        current?.cancel()
        context.fireChannelInactive()
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

    init(onInput: @escaping @Sendable ([UInt8]) -> Void, onInputClosed: @escaping @Sendable () -> Void, onClose: @escaping @Sendable () -> Void) {
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

/// The writing half of one exchange, used from the thread that serves the request. Each write is
/// handed to the connection's event loop; `write` waits for it to be flushed, so a slow reader slows
/// the producer (a 100 MB log is never queued whole).
public final class ResponseWriter: @unchecked Sendable {
    let channel: Channel
    let version: HTTPVersion
    let keepAlive: Bool
    let isHead: Bool
    /// Readable once the client has gone (or the server stops): blocking work polls it with its own.
    public let cancellation: Cancellation
    private let finishedCallback: @Sendable (_ close: Bool) -> Void
    private let hijackCallback: @Sendable (RawStreamHandler, [UInt8]) -> Void
    /// Only touched by the serving thread.
    private(set) var started = false
    private var done = false
    private var chunked = false

    init(channel: Channel, version: HTTPVersion, keepAlive: Bool, isHead: Bool, cancellation: Cancellation,
         finished: @escaping @Sendable (Bool) -> Void, hijack: @escaping @Sendable (RawStreamHandler, [UInt8]) -> Void) {
        self.channel = channel
        self.version = version
        self.keepAlive = keepAlive
        self.isHead = isHead
        self.cancellation = cancellation
        self.finishedCallback = finished
        self.hijackCallback = hijack
    }

    /// Headers every response carries, as dockerd's.
    static func standardHeaders() -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Api-Version", value: DockerAPI.apiVersion)
        headers.add(name: "Docker-Experimental", value: "false")
        headers.add(name: "Ostype", value: "linux")
        headers.add(name: "Server", value: "Berth/\(DockerAPI.engineVersion) (linux)")
        return headers
    }

    /// A whole response.
    public func send(_ status: HTTPResponseStatus, contentType: String? = nil, headers extra: [(String, String)] = [], body: [UInt8] = []) {
        guard !started else { return }
        started = true
        var headers = Self.standardHeaders()
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        for (name, value) in extra { headers.add(name: name, value: value) }
        let hasBody = !(status == .noContent || status == .notModified || status.code < 200)
        if hasBody { headers.add(name: "Content-Length", value: String(body.count)) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers)), promise: nil)
        if hasBody && !body.isEmpty && !isHead {
            channel.write(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
        }
        end()
    }

    public func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) {
        send(status, contentType: "application/json", body: JSONBody.encode(value))
    }

    /// The error as a response; after the head was sent, nothing can be said but closing the stream.
    public func error(_ error: DockerAPIError) {
        guard !started else { return finish() }
        send(error.status, contentType: "application/json", body: JSONBody.message(error.message))
    }

    /// Starts a streamed body (chunked), flushing the head at once; `wait` blocks until it is written.
    public func begin(_ status: HTTPResponseStatus = .ok, contentType: String, headers extra: [(String, String)] = [], wait: Bool = true) {
        guard !started else { return }
        started = true
        chunked = true
        var headers = Self.standardHeaders()
        headers.add(name: "Content-Type", value: contentType)
        for (name, value) in extra { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let written = channel.writeAndFlush(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers)))
        if wait { _ = try? written.wait() }
    }

    /// Writes part of a streamed body; `wait` blocks until it has been flushed to the socket.
    /// Throws once the client has gone.
    public func write(_ bytes: [UInt8], wait: Bool = true) throws {
        guard !bytes.isEmpty else { return }
        let future = channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: bytes))))
        if wait { try future.wait() }
    }

    /// Ends a streamed body.
    public func finish() {
        if !started {
            send(.internalServerError, contentType: "application/json", body: JSONBody.message("no response"))
            return
        }
        end()
    }

    private func end() {
        guard !done else { return }
        done = true
        let close = !keepAlive
        let callback = finishedCallback
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { result in
            if case .failure = result { callback(true) } else { callback(close) }
        }
    }

    /// Takes the connection over: docker's `101 UPGRADED` (`Upgrade: tcp`) when the client asked for an
    /// upgrade, else a 200 whose body is the raw stream until the connection closes.
    func hijack(contentType: String, raw: RawStreamHandler) {
        guard !started else { return }
        started = true
        done = true
        var head = version.major == 1 && version.minor == 0 ? "HTTP/1.0" : "HTTP/1.1"
        head += " 101 UPGRADED\r\nContent-Type: \(contentType)\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        let standard = Self.standardHeaders()
        for (name, value) in standard { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        hijackCallback(raw, Array(head.utf8))
    }

    /// The same, for a client that did not ask to upgrade: a 200 and the raw stream.
    func hijackWithoutUpgrade(contentType: String, raw: RawStreamHandler) {
        guard !started else { return }
        started = true
        done = true
        var head = "HTTP/1.1 200 OK\r\nContent-Type: \(contentType)\r\nConnection: close\r\n"
        for (name, value) in Self.standardHeaders() { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        hijackCallback(raw, Array(head.utf8))
    }

    /// Closes the connection (the end of a hijacked stream).
    func close() {
        channel.close(promise: nil)
    }
}

/// A one-way flag a blocking thread can poll beside its own descriptors: readable once cancelled.
public final class Cancellation: @unchecked Sendable {
    private let pipe: Pipe?
    private let cancelled = Mutex(false)

    public init() {
        pipe = try? Pipe()
    }

    /// Readable once cancelled (-1 if no pipe could be made).
    public var descriptor: Int32 { pipe?.reading.rawValue ?? -1 }

    public var isCancelled: Bool { cancelled.withLock { $0 } }

    public func cancel() {
        let first = cancelled.withLock { value in
            defer { value = true }
            return !value
        }
        var byte: UInt8 = 1
        if first, let pipe { _ = write(pipe.writing.rawValue, &byte, 1) }
    }
}

enum JSONBody {
    static func message(_ text: String) -> [UInt8] { encode(["message": text]) }

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoderFactory.make()
        return (try? Array(encoder.encode(value))) ?? Array("{}".utf8)
    }
}

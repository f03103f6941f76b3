#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import NIOCore
import NIOHTTP1
import Synchronization

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

    init(
        channel: Channel, version: HTTPVersion, keepAlive: Bool, isHead: Bool, cancellation: Cancellation,
        finished: @escaping @Sendable (Bool) -> Void, hijack: @escaping @Sendable (RawStreamHandler, [UInt8]) -> Void
    ) {
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
    public func send(
        _ status: HTTPResponseStatus, contentType: String? = nil, headers extra: [(String, String)] = [],
        body: [UInt8] = []
    ) {
        guard !started else { return }
        started = true
        var headers = Self.standardHeaders()
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        for (name, value) in extra { headers.add(name: name, value: value) }
        let hasBody = !(status == .noContent || status == .notModified || status.code < 200)
        if hasBody { headers.add(name: "Content-Length", value: String(body.count)) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        channel.write(
            HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers)),
            promise: nil)
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
    public func begin(
        _ status: HTTPResponseStatus = .ok, contentType: String, headers extra: [(String, String)] = [],
        wait: Bool = true
    ) {
        guard !started else { return }
        started = true
        chunked = true
        var headers = Self.standardHeaders()
        headers.add(name: "Content-Type", value: contentType)
        for (name, value) in extra { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let written = channel.writeAndFlush(
            HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers)))
        if wait { _ = try? written.wait() }
    }

    /// Writes part of a streamed body; `wait` blocks until it has been flushed to the socket.
    /// Throws once the client has gone.
    public func write(_ bytes: [UInt8], wait: Bool = true) throws {
        guard !bytes.isEmpty else { return }
        let future = channel.writeAndFlush(
            HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: bytes))))
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
    private struct State {
        var cancelled = false
        var handlers: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())

    public init() {
        pipe = try? Pipe()
    }

    /// Readable once cancelled (-1 if no pipe could be made).
    public var descriptor: Int32 { pipe?.reading.rawValue ?? -1 }

    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Runs `handler` once cancelled (at once if it already is): for async work, which cannot poll the
    /// descriptor, to cancel its task.
    public func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if s.cancelled { return true }
            s.handlers.append(handler)
            return false
        }
        if now { handler() }
    }

    public func cancel() {
        let (first, handlers) = state.withLock { s -> (Bool, [@Sendable () -> Void]) in
            defer {
                s.cancelled = true
                s.handlers = []
            }
            return (!s.cancelled, s.handlers)
        }
        var byte: UInt8 = 1
        if first, let pipe { _ = write(pipe.writing.rawValue, &byte, 1) }
        for handler in handlers { handler() }
    }
}

enum JSONBody {
    static func message(_ text: String) -> [UInt8] { encode(["message": text]) }

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoderFactory.make()
        return (try? Array(encoder.encode(value))) ?? Array("{}".utf8)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import AsyncHTTPClient
import BerthOS
import FoundationEssentials
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// How to reach registries.
public struct RegistryOptions: Sendable {
    /// Registries spoken to over plain HTTP. Loopback hosts are always insecure, as with docker.
    public var insecureRegistries: Set<String> = []
    /// Registries always spoken to over HTTPS, even on loopback.
    public var secureRegistries: Set<String> = []
    /// Extra CA certificates (PEM files) trusted for HTTPS registries.
    public var caFiles: [String] = []
    public var credentials: CredentialStore = CredentialStore.load()
    /// Attempts per request on 429/5xx/connection failures (the first try included).
    public var attempts = 5
    public var retryBaseDelay: Duration = .milliseconds(200)
    /// A registry that sends nothing for this long is given up on.
    public var readTimeout: TimeAmount = .seconds(30)
    public var connectTimeout: TimeAmount = .seconds(10)
    /// Layers downloaded at once.
    public var parallelDownloads = 4
    /// Mirrors per registry (`docker.io` → [`http://127.0.0.1:5000`, `mirror.example:443`]), tried in order
    /// before the registry itself. A mirror named with `http://` is spoken to over plain HTTP.
    public var mirrors: [String: [String]] = [:] {
        didSet {
            for list in mirrors.values {
                for mirror in list where mirror.hasPrefix("http://") {
                    insecureRegistries.insert(RegistryOptions.mirrorHost(mirror))
                }
            }
        }
    }

    /// `http://host:port/` → `host:port`.
    public static func mirrorHost(_ mirror: String) -> String {
        var host = Substring(mirror)
        for scheme in ["http://", "https://"] where host.hasPrefix(scheme) { host = host.dropFirst(scheme.count) }
        while host.hasSuffix("/") { host = host.dropLast() }
        return String(host)
    }

    public init() {
        if let env = getenv("BERTH_INSECURE_REGISTRIES") {
            insecureRegistries = Set(String(cString: env).split(separator: ",").map(String.init))
        }
    }

    public func isInsecure(_ registry: String) -> Bool {
        if insecureRegistries.contains(registry) { return true }
        if secureRegistries.contains(registry) { return false }
        var host = registry
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix(while: { $0 != "]" }))
        } else if let c = host.lastIndex(of: ":") {
            host = String(host[..<c])
        }
        return host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }
}

/// Receives a blob's bytes as they arrive; `restart` is called when a resumed download had to begin again.
protocol BlobConsumer: AnyObject {
    func consume(_ buffer: ByteBuffer) throws
    func restart() throws
}

/// An OCI distribution-spec client: challenge-driven auth (anonymous, Basic, Bearer), retries with
/// back-off, Range resume, manifest and blob fetches, and pushes.
public final class RegistryClient: Sendable {
    public let options: RegistryOptions
    private let configuration: HTTPClient.Configuration
    /// Created on first use, so services used only for local work (prepareRootfs, load) never start one.
    private let client = Mutex<HTTPClient?>(nil)
    var http: HTTPClient {
        client.withLock { client in
            if let client { return client }
            let created = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            client = created
            return created
        }
    }
    private let tokens = Mutex<[String: String]>([:])
    let logger: Logger

    public init(options: RegistryOptions = RegistryOptions(), logger: Logger = Logger(label: "berth.image.registry"))
        throws(ImageError)
    {
        self.options = options
        self.logger = logger
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: options.connectTimeout, read: options.readTimeout))
        configuration.redirectConfiguration = .follow(max: 5, allowCycles: false)
        configuration.decompression = .disabled
        if !options.caFiles.isEmpty {
            var tls = TLSConfiguration.makeClientConfiguration()
            do {
                var roots: [NIOSSLCertificateSource] = []
                for file in options.caFiles {
                    roots += try NIOSSLCertificate.fromPEMFile(file).map { .certificate($0) }
                }
                tls.additionalTrustRoots = [
                    .certificates(
                        roots.compactMap { if case .certificate(let c) = $0 { return c } else { return nil } })
                ]
            } catch { throw .transport(options.caFiles.joined(separator: ","), cause: "reading CA file: \(error)") }
            configuration.tlsConfiguration = tls
        }
        self.configuration = configuration
    }

    public func shutdown() async {
        if let client = client.withLock({ c in
            defer { c = nil }; return c
        }) {
            try? await client.shutdown()
        }
    }

    deinit {
        // Forgotten shutdown(): AsyncHTTPClient traps when a live client is released, so hand it to a task.
        if let client = client.withLock({ c in
            defer { c = nil }; return c
        }) {
            Task.detached { try? await client.shutdown() }
        }
    }

    func baseURL(_ reference: Reference) -> String {
        "\(options.isInsecure(reference.registry) ? "http" : "https")://\(reference.endpointHost)/v2/\(reference.repository)"
    }

    // MARK: Requests with auth and retries

    struct Response {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: HTTPClientResponse.Body
    }

    /// Sends a request, answering an auth challenge once and retrying 429/5xx and broken connections.
    /// `body` is called again for each attempt.
    func send(
        _ method: HTTPMethod, _ url: String, reference: Reference, push: Bool = false,
        headers extra: [(String, String)] = [], body: (@Sendable () -> HTTPClientRequest.Body)? = nil,
        retryable: Bool = true
    ) async throws(ImageError) -> Response {
        let scope = "repository:\(reference.repository):\(push ? "pull,push" : "pull")"
        let tokenKey = "\(reference.registry)|\(scope)"
        var attempt = 0
        var answeredChallenge = false
        while true {
            attempt += 1
            // A cancelled pull (its client went away) stops here rather than retry a request that the
            // HTTP client cancels as soon as it is made.
            if Task.isCancelled { throw .transport("\(method) \(url)", cause: "cancelled") }
            var request = HTTPClientRequest(url: url)
            request.method = method
            for (k, v) in extra { request.headers.add(name: k, value: v) }
            if let auth = tokens.withLock({ $0[tokenKey] }) {
                request.headers.replaceOrAdd(name: "Authorization", value: auth)
            }
            if let body { request.body = body() }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: .hours(6), logger: logger)
            } catch {
                if retryable && attempt < options.attempts {
                    logger.debug("retrying \(method) \(url) after \(error)")
                    try? await Task.sleep(for: backoff(attempt))
                    continue
                }
                throw .transport("\(method) \(url)", cause: describe(error))
            }
            let status = response.status
            if status == .unauthorized && !answeredChallenge,
                let header = response.headers.first(name: "WWW-Authenticate"),
                let challenge = AuthChallenge.parse(header)
            {
                _ = try? await response.body.collect(upTo: 1 << 20)
                answeredChallenge = true
                let value = try await authorize(challenge, registry: reference.registry, scope: scope)
                tokens.withLock { $0[tokenKey] = value }
                attempt -= 1
                continue
            }
            if retryable && attempt < options.attempts && (status == .tooManyRequests || status.code >= 500) {
                _ = try? await response.body.collect(upTo: 1 << 20)
                var delay = backoff(attempt)
                if let after = response.headers.first(name: "Retry-After"), let seconds = Int(after), seconds <= 30 {
                    delay = max(delay, .seconds(seconds))
                }
                logger.debug("retrying \(method) \(url) after \(status.code)")
                try? await Task.sleep(for: delay)
                continue
            }
            return Response(status: status, headers: response.headers, body: response.body)
        }
    }

    private func backoff(_ attempt: Int) -> Duration {
        let factor = 1 << min(attempt - 1, 6)
        return options.retryBaseDelay * factor + .milliseconds(Int.random(in: 0...50))
    }

    func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            if e == .readTimeout || e == .deadlineExceeded { return "registry did not answer in time (\(e))" }
            if e == .connectTimeout { return "connection timed out" }
            if e == .remoteConnectionClosed { return "registry closed the connection" }
        }
        return "\(error)"
    }

    /// Answers a challenge: Basic with the stored credentials, or a Bearer token from the realm.
    func authorize(
        _ challenge: AuthChallenge, registry: String, scope: String?,
        credentials given: Credentials? = nil
    ) async throws(ImageError) -> String {
        let credentials = given ?? options.credentials.credentials(for: registry)
        switch challenge.scheme {
        case "basic":
            guard let credentials else {
                throw .authentication("\(registry) requires a user name and password (none in config.json)")
            }
            return credentials.basicHeader
        case "bearer":
            guard let realm = challenge.parameters["realm"] else {
                throw .authentication("Bearer challenge without realm from \(registry)")
            }
            var query: [String] = []
            if let service = challenge.parameters["service"] { query.append("service=" + percentEncode(service)) }
            if let scope = challenge.parameters["scope"] ?? scope { query.append("scope=" + percentEncode(scope)) }
            let url = realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
            var request = HTTPClientRequest(url: url)
            if let credentials { request.headers.add(name: "Authorization", value: credentials.basicHeader) }
            let response: HTTPClientResponse
            let body: ByteBuffer
            do {
                response = try await http.execute(request, timeout: .seconds(60), logger: logger)
                body = try await response.body.collect(upTo: 1 << 20)
            } catch { throw .authentication("token request to \(realm): \(describe(error))") }
            guard response.status == .ok else {
                throw .authentication(
                    "token endpoint \(realm) answered \(response.status.code)\(credentials == nil ? " (no credentials for \(registry))" : "")"
                )
            }
            struct Token: Decodable { var token: String?; var access_token: String? }
            guard let token = try? ImageCoding.decode(Token.self, Array(buffer: body)),
                let value = token.token ?? token.access_token
            else {
                throw .authentication("token endpoint \(realm) sent no token")
            }
            return "Bearer " + value
        default:
            throw .authentication("unsupported auth scheme \(challenge.scheme) from \(registry)")
        }
    }

    private func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 45 || b == 46 || b == 95
                || b == 126
            {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }

    private func failure(_ response: Response, _ url: String) async -> ImageError {
        let body = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
        struct Errors: Decodable { struct E: Decodable { var code: String?; var message: String? }; var errors: [E]? }
        var message = body.count > 300 ? String(body.prefix(300)) + "…" : body
        if let parsed = try? ImageCoding.decode(Errors.self, Array(body.utf8)), let first = parsed.errors?.first {
            message = [first.code, first.message].compactMap { $0 }.joined(separator: ": ")
        }
        if response.status == .notFound { return .notFound(url + (message.isEmpty ? "" : " (\(message))")) }
        if response.status == .unauthorized || response.status == .forbidden {
            return .authentication("\(url) answered \(response.status.code)\(message.isEmpty ? "" : ": " + message)")
        }
        return .registry(
            status: Int(response.status.code), url: url,
            message: message.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    // MARK: Pull

    /// Fetches a manifest or index by tag or digest; verifies it against the digest when pinned.
    public func fetchManifest(_ reference: Reference, _ tagOrDigest: String? = nil) async throws(ImageError) -> (
        bytes: [UInt8], mediaType: String?, digest: Digest
    ) {
        let what = tagOrDigest ?? reference.manifestReference
        let url = "\(baseURL(reference))/manifests/\(what)"
        let response = try await send(.GET, url, reference: reference, headers: [("Accept", MediaType.acceptManifests)])
        guard response.status == .ok else { throw await failure(response, url) }
        let buffer: ByteBuffer
        do { buffer = try await response.body.collect(upTo: 8 << 20) } catch {
            throw .transport(url, cause: describe(error))
        }
        let bytes = Array(buffer: buffer)
        let digest = Digest.sha256(bytes)
        if let expected = Digest(what), expected != digest {
            throw .digestMismatch(what: "manifest \(reference.name)@\(expected)", expected: expected, actual: digest)
        }
        var mediaType = response.headers.first(name: "Content-Type")
        if let m = mediaType, let semi = m.firstIndex(of: ";") { mediaType = String(m[..<semi]) }
        return (bytes, mediaType, digest)
    }

    /// Fetches a small blob (a config) into memory, verified.
    public func fetchSmallBlob(_ reference: Reference, _ descriptor: Descriptor) async throws(ImageError) -> [UInt8] {
        final class Collect: BlobConsumer {
            var bytes: [UInt8] = []
            func consume(_ buffer: ByteBuffer) throws { bytes += buffer.readableBytesView }
            func restart() throws { bytes.removeAll() }
        }
        let collector = Collect()
        try await fetchBlob(reference, descriptor, into: collector)
        let digest = Digest.sha256(collector.bytes)
        if digest != descriptor.digest {
            throw .digestMismatch(what: "blob \(descriptor.digest)", expected: descriptor.digest, actual: digest)
        }
        return collector.bytes
    }

    /// Streams a blob into `consumer`, resuming with Range after a broken connection when the registry
    /// allows (206), restarting otherwise. Refuses more bytes than the descriptor's size; the caller
    /// verifies the digest.
    func fetchBlob(
        _ reference: Reference, _ descriptor: Descriptor, into consumer: any BlobConsumer,
        progress: (@Sendable (Int64) -> Void)? = nil
    ) async throws(ImageError) {
        let url = "\(baseURL(reference))/blobs/\(descriptor.digest)"
        var received: Int64 = 0
        var attempt = 0
        while true {
            attempt += 1
            var headers: [(String, String)] = []
            if received > 0 { headers.append(("Range", "bytes=\(received)-")) }
            let response = try await send(.GET, url, reference: reference, headers: headers)
            if response.status == .ok && received > 0 {
                received = 0
                do { try consumer.restart() } catch { throw ImageError.wrap(error) }
            } else if response.status != .ok && response.status != .partialContent {
                throw await failure(response, url)
            }
            do {
                for try await buffer in response.body {
                    received += Int64(buffer.readableBytes)
                    if received > descriptor.size {
                        throw ImageError.sizeMismatch(
                            what: "blob \(descriptor.digest)", expected: descriptor.size, actual: received)
                    }
                    try consumer.consume(buffer)
                    progress?(received)
                }
            } catch let error as ImageError {
                throw error
            } catch let error as SystemCallError {
                throw ImageError.system(error)
            } catch {
                if attempt < options.attempts && received < descriptor.size {
                    logger.debug("blob \(descriptor.digest) broke at \(received) bytes (\(error)); resuming")
                    try? await Task.sleep(for: backoff(attempt))
                    continue
                }
                throw .transport(url, cause: "\(describe(error)) after \(received) of \(descriptor.size) bytes")
            }
            if received < descriptor.size {
                if attempt < options.attempts {
                    try? await Task.sleep(for: backoff(attempt))
                    continue
                }
                throw .sizeMismatch(
                    what: "blob \(descriptor.digest) (truncated)", expected: descriptor.size, actual: received)
            }
            return
        }
    }

    // MARK: Push

    public func blobExists(_ reference: Reference, _ digest: Digest) async throws(ImageError) -> Bool {
        let url = "\(baseURL(reference))/blobs/\(digest)"
        let response = try await send(.HEAD, url, reference: reference, push: true)
        _ = try? await response.body.collect(upTo: 1 << 20)
        return response.status == .ok
    }

    /// Uploads a blob from a file, streamed (never held in memory whole).
    public func pushBlob(_ reference: Reference, digest: Digest, file: String, size: Int64) async throws(ImageError) {
        try await pushBlob(reference, digest: digest, size: size) {
            .stream(FileChunks(path: file), length: .known(size))
        }
    }

    /// Uploads a blob monolithically (POST for an upload URL, then PUT with the digest).
    public func pushBlob(_ reference: Reference, digest: Digest, bytes: ByteBuffer) async throws(ImageError) {
        try await pushBlob(reference, digest: digest, size: Int64(bytes.readableBytes)) { .bytes(bytes) }
    }

    /// Asks the registry to link a blob it already has in repository `from` (cross-repository mount).
    /// Returns false when it would rather have the bytes.
    public func mountBlob(_ reference: Reference, digest: Digest, from repository: String) async throws(ImageError)
        -> Bool
    {
        let url = "\(baseURL(reference))/blobs/uploads/?mount=\(digest)&from=\(repository)"
        let response = try await send(.POST, url, reference: reference, push: true, retryable: false)
        _ = try? await response.body.collect(upTo: 1 << 20)
        return response.status == .created
    }

    func pushBlob(
        _ reference: Reference, digest: Digest, size: Int64, body: @escaping @Sendable () -> HTTPClientRequest.Body
    ) async throws(ImageError) {
        if try await blobExists(reference, digest) { return }
        let start = "\(baseURL(reference))/blobs/uploads/"
        let response = try await send(.POST, start, reference: reference, push: true)
        // The body is read once: by failure() for its message, else here (an async body has one reader).
        guard response.status == .accepted, let location = response.headers.first(name: "Location") else {
            throw await failure(response, start)
        }
        _ = try? await response.body.collect(upTo: 1 << 20)
        var url = location
        if url.hasPrefix("/") {
            url = "\(options.isInsecure(reference.registry) ? "http" : "https")://\(reference.endpointHost)\(location)"
        }
        url += (url.contains("?") ? "&" : "?") + "digest=\(digest)"
        let put = try await send(
            .PUT, url, reference: reference, push: true,
            headers: [("Content-Type", "application/octet-stream")],
            body: body, retryable: false)
        guard put.status == .created else { throw await failure(put, url) }
        _ = try? await put.body.collect(upTo: 1 << 20)
    }

    public func pushManifest(_ reference: Reference, tag: String, bytes: [UInt8], mediaType: String)
        async throws(ImageError)
    {
        let url = "\(baseURL(reference))/manifests/\(tag)"
        let buffer = ByteBuffer(bytes: bytes)
        let response = try await send(
            .PUT, url, reference: reference, push: true,
            headers: [("Content-Type", mediaType)], body: { .bytes(buffer) })
        guard response.status == .created || response.status == .ok else { throw await failure(response, url) }
        _ = try? await response.body.collect(upTo: 1 << 20)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// A file read in 1 MiB chunks, as an upload body.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String

    struct AsyncIterator: AsyncIteratorProtocol {
        var fd: BerthOS.FileDescriptor?
        let path: String
        mutating func next() async throws -> ByteBuffer? {
            if fd == nil { fd = try BerthOS.FileDescriptor.open(path, O_RDONLY) }
            let chunk = try fd!.read(upTo: 1 << 20)
            if chunk.isEmpty { fd?.close(); return nil }
            return ByteBuffer(bytes: chunk)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(fd: nil, path: path) }
}

import AsyncHTTPClient
import BerthAPI
import NIOCore
import NIOHTTP1
import NIOSSL

/// An API server on another machine and how to talk to it: its address, the CA its serving certificate
/// must be signed by, and who the caller is (kubeconfig's cluster and user, in short).
public struct RemoteAPIServer: Sendable {
    /// How the caller proves who it is.
    public enum Credentials: Sendable {
        /// `Authorization: Bearer …` (a service-account or static token).
        case bearerToken(String)
        /// A client certificate and its key, PEM, presented in the TLS handshake.
        case clientCertificate(certificatePEM: String, privateKeyPEM: String)
    }

    /// "https://host:port", without a path.
    public var url: String
    /// The CA (PEM, one or more certificates) the server's certificate must chain to. The server is always
    /// verified, hostname included: a node agent that trusted any server would run whatever it was told.
    public var caPEM: String
    public var credentials: Credentials

    public init(url: String, caPEM: String, credentials: Credentials) {
        self.url = url
        self.caPEM = caPEM
        self.credentials = credentials
    }
}

/// Why a request to a remote API server failed, with the error underneath.
public struct HTTPSourceError: Error, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A CA, certificate or key that does not parse, or a URL that is not https.
        case invalidConfiguration
        /// The server's certificate does not verify against the given CA (or does not name the host).
        case serverNotTrusted
        /// The TLS handshake failed for another reason (e.g. the server refused the client certificate).
        case tlsHandshakeFailed
        /// No connection, or it dropped, or the request timed out.
        case unreachable
        /// 410 Gone: the revision asked for was compacted away. List again.
        case expired
        /// Any other answer than 2xx (401, 403, 404, 500 …); the cause is the server's Status.
        case rejected(status: Int)
        /// Not what an API server sends: a body that is not JSON, an object of the wrong shape.
        case malformedResponse
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { cause.map { "\(message): \($0)" } ?? message }
}

/// The one HTTPS client every source of an ``HTTPSourceProvider`` shares: requests with the caller's
/// credentials, answers checked, failures turned into ``HTTPSourceError``s.
final class RemoteTransport: Sendable {
    let server: RemoteAPIServer
    let client: HTTPClient
    private let baseURL: String
    private let authorization: String?
    static let userAgent = "berth-informer/v1.32.0"
    /// How much of an error answer is read for its Status.
    static let maxErrorBody = 1 << 20

    init(server: RemoteAPIServer) throws(HTTPSourceError) {
        guard server.url.hasPrefix("https://") else {
            throw HTTPSourceError(.invalidConfiguration, "the API server URL must be https://, not \(server.url)")
        }
        self.server = server
        var base = server.url
        while base.hasSuffix("/") { base.removeLast() }
        baseURL = base

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        // A connection is closed here only when its watch is no longer wanted (or the client shuts down).
        // The server may keep streaming into a half-closed connection (Hummingbird allows remote half
        // closure) rather than answer close_notify, so waiting NIOSSL's default 5 s for it only delays
        // every informer's stop and the client's shutdown.
        tls.shutdownTimeout = .milliseconds(500)
        do {
            let authorities = try NIOSSLCertificate.fromPEMBytes(Array(server.caPEM.utf8))
            guard !authorities.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
            tls.trustRoots = .certificates(authorities)
        } catch {
            throw HTTPSourceError(.invalidConfiguration, "the CA is not a PEM certificate", cause: error)
        }
        switch server.credentials {
        case .bearerToken(let token):
            authorization = "Bearer " + token
        case .clientCertificate(let certificatePEM, let privateKeyPEM):
            authorization = nil
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map {
                    .certificate($0)
                }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem))
            } catch {
                throw HTTPSourceError(
                    .invalidConfiguration, "the client certificate or key is not valid PEM", cause: error)
            }
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10)))
        // Each watch holds an HTTP/1.1 connection for its whole life (the API server offers no HTTP/2), and
        // a control plane watches a dozen kinds or more: the default of 8 per host would queue the rest.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
        // The informer above retries with its own backoff; failing at once surfaces the real cause (an
        // untrusted server, a refused connection) instead of a connect timeout ten seconds later.
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// GETs `path` (with its query) and returns the response once its head arrived with a 2xx status; its
    /// body streams. `timeout` bounds the whole exchange, body included.
    func get(_ path: String, accept: String, timeout: TimeAmount) async throws(HTTPSourceError) -> HTTPClientResponse {
        let url = baseURL + path
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Accept", value: accept)
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: timeout)
        } catch {
            throw Self.transportError(error, url: url)
        }
        if (200..<300).contains(response.status.code) { return response }
        // The server's Status says why; a body that cannot be read still leaves the status code.
        let body = try? await response.body.collect(upTo: Self.maxErrorBody)
        let status = body.flatMap { try? JSON.parse(Array($0.readableBytesView)) } ?? .null
        throw Self.statusError(status, httpStatus: Int(response.status.code), url: url)
    }

    /// Sends one request with a JSON body (or none) and reads the whole answer, whatever its status:
    /// writes (``HTTPKubeClient``) map a failure's Status to an APIError themselves.
    func send(
        _ method: HTTPMethod, _ path: String, body: JSON?, contentType: String = "application/json",
        timeout: TimeAmount = .seconds(30)
    ) async throws(HTTPSourceError) -> (status: Int, body: JSON) {
        let url = baseURL + path
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        }
        do {
            let response = try await client.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: 64 << 20)
            let json = bytes.readableBytes == 0 ? JSON.null : (try? JSON.parse(Array(bytes.readableBytesView))) ?? .null
            return (Int(response.status.code), json)
        } catch {
            throw Self.transportError(error, url: url)
        }
    }

    /// A Kubernetes Status (from an error answer or a watch's ERROR event) as an ``HTTPSourceError``.
    static func statusError(_ status: JSON, httpStatus: Int, url: String) -> HTTPSourceError {
        let code = status["code"].int.map(Int.init) ?? httpStatus
        let api = APIError(
            code: code, reason: status["reason"].string ?? "", message: status["message"].string ?? "",
            details: status["details"])
        if code == 410 {
            return HTTPSourceError(.expired, "\(url): the resource version is too old, list again", cause: api)
        }
        return HTTPSourceError(.rejected(status: code), "\(url) answered \(code)", cause: api)
    }

    /// A failure below HTTP, named for what the caller can do about it.
    static func transportError(_ error: any Error, url: String) -> HTTPSourceError {
        if let known = error as? HTTPSourceError { return known }
        if case NIOSSLError.handshakeFailed(let ssl) = error {
            if "\(ssl)".contains("CERTIFICATE_VERIFY_FAILED") {
                return HTTPSourceError(
                    .serverNotTrusted, "\(url): the server's certificate is not signed by the given CA", cause: error)
            }
            return HTTPSourceError(.tlsHandshakeFailed, "\(url): the TLS handshake failed", cause: error)
        }
        if error is NIOSSLExtraError {
            return HTTPSourceError(
                .serverNotTrusted, "\(url): the server's certificate does not name this host", cause: error)
        }
        return HTTPSourceError(.unreachable, "\(url): the request failed", cause: error)
    }

    func shutdown() async throws { try await client.shutdown() }
}

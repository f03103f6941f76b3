import AsyncHTTPClient
import BerthAPI
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// The joining side of `POST /berth/v1/join`: a machine that has only the server's URL and the join
/// token fetches the cluster CA over a connection it cannot verify yet, keeps it only if its hash is
/// the one the token pins (so a server in the middle cannot hand it another CA), and then asks, over
/// a connection verified against that CA, for its node certificates.
public struct JoinClient: Sendable {
    /// What the server gives a joining node (PEM).
    public struct Answer: Sendable {
        public var clientCertificatePEM: String
        public var servingCertificatePEM: String
        public var caPEM: String
        /// The cluster's pod range, when the server allocates pod CIDRs (its --cluster-cidr).
        public var clusterCIDR: String?
    }

    public var server: String
    public var token: JoinToken

    /// `server`: https://host:port.
    public init(server: String, token: JoinToken) throws(JoinError) {
        self.server = try Self.baseURL(server)
        self.token = token
    }

    /// `server` without a trailing slash, if it is an https://HOST[:PORT] URL.
    public static func baseURL(_ server: String) throws(JoinError) -> String {
        guard let url = URL(string: server), url.scheme == "https", let host = url.host, !host.isEmpty,
            url.path.isEmpty || url.path == "/", url.query == nil
        else {
            throw JoinError(.invalid, "--server: \"\(server)\" is not an https://HOST:PORT URL")
        }
        var base = server
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// The cluster CA, checked against the token's hash.
    public func fetchCA() async throws(JoinError) -> String {
        var tls = TLSConfiguration.makeClientConfiguration()
        // Nothing to verify against yet: the token's hash is what makes the answer trustworthy.
        tls.certificateVerification = .none
        // No token on this connection: whoever answers it is not trusted yet.
        let (status, body) = try await send(.GET, JoinPaths.caCerts, body: nil, tls: tls, authorized: false)
        guard status == 200 else {
            throw JoinError(.unreachable, "\(server)\(JoinPaths.caCerts) answered \(status): is it a berth server?")
        }
        let pem = String(decoding: body, as: UTF8.self)
        let hash: String
        do { hash = try JoinToken.caHash(pem: pem) } catch {
            throw JoinError(.unreachable, "\(server)\(JoinPaths.caCerts) answered no PEM certificate")
        }
        guard hash == token.caHash else {
            throw JoinError(
                .caMismatch,
                "the server's CA (sha256 \(hash)) is not the one the join token pins (sha256 \(token.caHash)): wrong server, or a token of another cluster"
            )
        }
        return pem
    }

    /// Joins as `nodeName` with a CSR of the node's key; the server's certificate must chain to `caPEM`.
    public func join(nodeName: String, csrPEM: String, addresses: [String], caPEM: String) async throws(JoinError)
        -> Answer
    {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        do {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        } catch {
            throw JoinError(.invalid, "the cluster CA is not a PEM certificate: \(error)")
        }
        let request: JSON = [
            "nodeName": .string(nodeName), "csr": .string(csrPEM), "addresses": .array(addresses.map { .string($0) }),
        ]
        let (status, body) = try await send(.POST, JoinPaths.join, body: request, tls: tls, authorized: true)
        let answer = (try? JSON.parse(body)) ?? .null
        guard status == 200 else {
            let message = answer["message"].string ?? String(decoding: body.prefix(500), as: UTF8.self)
            throw JoinError(.refused(status: status), "the server refused the join (\(status)): \(message)")
        }
        guard let client = answer["clientCertificate"].string, let serving = answer["servingCertificate"].string,
            let ca = answer["ca"].string
        else {
            throw JoinError(.unreachable, "\(server)\(JoinPaths.join) answered no certificates")
        }
        return Answer(
            clientCertificatePEM: client, servingCertificatePEM: serving, caPEM: ca,
            clusterCIDR: answer["clusterCIDR"].string)
    }

    private func send(
        _ method: HTTPMethod, _ path: String, body: JSON?, tls: TLSConfiguration, authorized: Bool
    ) async throws(JoinError) -> (Int, [UInt8]) {
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10)))
        configuration.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        var request = HTTPClientRequest(url: server + path)
        request.method = method
        request.headers.add(name: "User-Agent", value: "berth-agent/v1.32.0")
        if authorized { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        }
        let result: Result<(Int, [UInt8]), any Error>
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            result = .success((Int(response.status.code), Array(bytes.readableBytesView)))
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        switch result {
        case .success(let answer): return answer
        case .failure(let error):
            let known = RemoteTransport.transportError(error, url: server + path)
            throw JoinError(.unreachable, known.description)
        }
    }
}

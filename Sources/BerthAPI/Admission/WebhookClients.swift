import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// HTTPS clients for admission webhooks, one per trust bundle and address override (connections are
/// pooled per client, so a webhook called for every write keeps its connection). A client whose
/// webhook was removed is shut down once more than `limit` are kept.
final class WebhookClients: @unchecked Sendable {
    private let lock = NSLock()
    private var clients: [String: HTTPClient] = [:]
    private var order: [String] = []
    private var closed = false
    static let limit = 32

    enum ClientError: Error, CustomStringConvertible {
        case badCABundle(String)
        case shutDown
        var description: String {
            switch self {
            case .badCABundle(let why): return "unable to load root certificates: \(why)"
            case .shutDown: return "the API server is shutting down"
            }
        }
    }

    /// The client trusting `caBundle` (PEM; nil: the system's roots) that connects to `address` for `host`
    /// (a Service webhook's name resolved to one of its endpoints) or to the URL's host itself.
    func client(caBundle: [UInt8]?, host: String, address: String?) throws -> HTTPClient {
        let bundleKey = caBundle.map { SHA256.hash(data: $0).map { String(format: "%02x", $0) }.joined() } ?? "system"
        let key = bundleKey + "|" + host + "|" + (address ?? "")
        var evicted: HTTPClient?
        let made: HTTPClient = try lock.withLock {
            if closed { throw ClientError.shutDown }
            if let c = clients[key] { return c }
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caBundle {
                do {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(caBundle))
                } catch { throw ClientError.badCABundle("\(error)") }
            }
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
            configuration.timeout.connect = .seconds(10)
            configuration.redirectConfiguration = .disallow
            // A webhook that refuses the connection or fails the handshake fails the request now, as Go's
            // client does (retrying would hold every write until the webhook's timeout).
            configuration.connectionPool.retryConnectionEstablishment = false
            if let address { configuration.dnsOverride = [host: address] }
            let c = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[key] = c
            order.append(key)
            if order.count > Self.limit {
                let oldest = order.removeFirst()
                evicted = clients.removeValue(forKey: oldest)
            }
            return c
        }
        if let evicted {
            // Requests still running on it finish first (shutdown waits for them).
            Task { try? await evicted.shutdown() }
        }
        return made
    }

    func shutdown() async {
        let all: [HTTPClient] = lock.withLock {
            closed = true
            defer { clients = [:]; order = [] }
            return Array(clients.values)
        }
        for c in all { try? await c.shutdown() }
    }
}

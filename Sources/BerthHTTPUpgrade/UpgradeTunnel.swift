import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// kube-apiserver's and the kubelet's upgrade-aware proxy for SPDY streams: the client's upgrade
/// request is sent on to where the stream is served (the node agent, the runtime's streaming server),
/// and from then on the two connections are one — the backend's answer (its 101 and negotiated
/// protocol, or its error) and every frame after it pass through as bytes. Nothing in between parses
/// SPDY, so any protocol version the two ends agree on works.
public enum UpgradeTunnel {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Where to send the upgrade: `http://` or `https://` (with `tls`, the client certificate and trust
    /// roots to use) host, port and path with its query.
    public struct Target: Sendable {
        public var host: String
        public var port: Int
        public var pathAndQuery: String
        public var useTLS: Bool

        /// Parses `http[s]://HOST:PORT/PATH?QUERY` (an IPv6 host in brackets).
        public init(url: String) throws {
            let scheme: String
            if url.hasPrefix("https://") {
                scheme = "https://"
                useTLS = true
            } else if url.hasPrefix("http://") {
                scheme = "http://"
                useTLS = false
            } else {
                throw Failure(description: "\(url): not an http:// or https:// URL")
            }
            let rest = url.dropFirst(scheme.count)
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            let path = rest.dropFirst(authority.count)
            pathAndQuery = path.isEmpty ? "/" : (path.hasPrefix("?") ? "/" + path : String(path))
            if let close = authority.lastIndex(of: "]") {
                host = String(authority[authority.index(after: authority.startIndex)..<close])
                let afterHost = authority[authority.index(after: close)...]
                port = afterHost.hasPrefix(":") ? Int(afterHost.dropFirst()) ?? -1 : (useTLS ? 443 : 80)
            } else if let colon = authority.lastIndex(of: ":") {
                host = String(authority[..<colon])
                port = Int(authority[authority.index(after: colon)...]) ?? -1
            } else {
                host = String(authority)
                port = useTLS ? 443 : 80
            }
            guard !host.isEmpty, (1...65535).contains(port) else {
                throw Failure(description: "\(url): no host and port")
            }
        }

        var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// The headers of the client's request that travel on: which stream protocols it speaks and who
    /// it is as a program. Its credentials stay here (the backend trusts this hop's certificate).
    static let forwardedHeaders: Set<String> = ["x-stream-protocol-version", "user-agent"]

    /// Sends `request` (its method, the target's path and the client's stream protocols) to `target`,
    /// then relays bytes both ways until either side closes. When the backend cannot be reached the
    /// client gets a 502 naming why, as kube-apiserver's proxy answers.
    public static func run(
        _ request: UpgradeRequestHead, client: NIOAsyncChannel<ByteBuffer, ByteBuffer>, to target: Target,
        tls: TLSConfiguration?, logger: Logger
    ) async {
        let backend: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            backend = try await connect(target, tls: tls)
        } catch {
            try? await client.executeThenClose { _, outbound in
                try await outbound.refuseUpgrade(
                    status: 502, reason: "Bad Gateway",
                    body: Array("error dialing backend: \(error)".utf8))
            }
            return
        }
        var head = "\(request.method) \(target.pathAndQuery) HTTP/1.1\r\nHost: \(target.authority)\r\n"
        head += "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n"
        for field in request.headers where forwardedHeaders.contains(field.name.lowercased()) {
            head += "\(field.name): \(field.value)\r\n"
        }
        head += "\r\n"
        do {
            try await client.executeThenClose { clientIn, clientOut in
                try await backend.executeThenClose { backendIn, backendOut in
                    try await backendOut.write(ByteBuffer(string: head))
                    await withTaskGroup(of: Void.self) { group in
                        group.addTask {
                            do { for try await chunk in clientIn { try await backendOut.write(chunk) } } catch {}
                        }
                        group.addTask {
                            do { for try await chunk in backendIn { try await clientOut.write(chunk) } } catch {}
                        }
                        // Either side gone ends the stream for both.
                        await group.next()
                        group.cancelAll()
                    }
                }
            }
        } catch {
            logger.debug("upgrade tunnel ended", metadata: ["target": "\(target.authority)", "error": "\(error)"])
        }
    }

    static func connect(_ target: Target, tls: TLSConfiguration?) async throws -> NIOAsyncChannel<
        ByteBuffer, ByteBuffer
    > {
        let context: NIOSSLContext?
        if target.useTLS {
            context = try NIOSSLContext(configuration: tls ?? .makeClientConfiguration())
        } else {
            context = nil
        }
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: target.host, port: target.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: context, serverHostname: nil))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
    }
}

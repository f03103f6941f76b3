import BerthCRIProtocol
import BerthHTTPUpgrade
import BerthOS
import FoundationEssentials
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

/// The CRI's streaming server: Exec, Attach and PortForward answer with a URL here, and the client
/// (the kubelet or the node agent proxying kubectl, crictl) connects to it to stream. As containerd's,
/// it listens on loopback on a port of its own and each URL carries a one-time token that expires a
/// minute after the RPC made it (the kubelet streaming library's cache).
///
/// Exec and attach speak the WebSocket channel protocols (`v5.channel.k8s.io` down to `channel.k8s.io`):
/// what kubectl 1.32 sends and what the node agent relays; and SPDY/3.1 over an HTTP upgrade (v4 down,
/// what the kubelet and crictl speak; ``SPDYRemoteCommand``). Port forwarding speaks SPDY/3.1,
/// tunnelled in a WebSocket or over the upgrade itself (``PortForwardSession``).
public final class StreamingServer: Sendable {
    enum StreamRequest: Sendable {
        case exec(Runtime_V1_ExecRequest)
        case attach(Runtime_V1_AttachRequest)
        case portForward(Runtime_V1_PortForwardRequest)

        var path: String {
            switch self {
            case .exec: "exec"
            case .attach: "attach"
            case .portForward: "portforward"
            }
        }
    }

    static let tokenLifetime: Duration = .seconds(60)

    let host: String
    private struct State {
        var port: Int?
        var pending: [String: (request: StreamRequest, expires: ContinuousClock.Instant)] = [:]
    }
    private let state = Mutex(State())

    public init(host: String = "127.0.0.1") { self.host = host }

    /// The URL a client streams `request` at, with a fresh token; nil until the server listens.
    func url(for request: StreamRequest) -> String? {
        let token = Self.token()
        let port: Int? = state.withLock { s in
            let now = ContinuousClock.now
            s.pending = s.pending.filter { $0.value.expires > now }
            guard let port = s.port else { return nil }
            s.pending[token] = (request, now + Self.tokenLifetime)
            return port
        }
        guard let port else { return nil }
        return "http://\(host):\(port)/\(request.path)/\(token)"
    }

    /// The request a token stands for, once: a token is spent by the connection that presents it.
    func take(_ token: String, kind: String) -> StreamRequest? {
        state.withLock { s in
            guard let entry = s.pending[token], entry.expires > ContinuousClock.now else { return nil }
            guard entry.request.path == kind else { return nil }
            s.pending[token] = nil
            return entry.request
        }
    }

    /// 16 random bytes, URL-safe: a token cannot be guessed by another local user.
    static func token() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
        return bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            .joined()
    }

    /// Serves until the calling task is cancelled.
    func serve(runtime: CRIRuntime, logger: Logger) async throws {
        let app = Application(
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in
                // Only upgrades reach a session; anything else is a client that cannot stream this way.
                Response(
                    status: .badRequest, headers: [.contentType: "text/plain"],
                    body: .init(
                        byteBuffer: ByteBuffer(
                            string: "Berth's streaming server speaks the WebSocket channel protocols only\n")))
            },
            server: HTTPServerBuilder { [self] responder in
                UpgradeSniffingChannel(
                    http: HTTP1WebSocketUpgradeChannel(
                        responder: responder, configuration: .init(ws: .init(maxFrameSize: 1 << 20))
                    ) { head, _, logger in
                        try self.shouldUpgrade(head, runtime: runtime, logger: logger)
                    },
                    takeover: { upgrade, connection, _, logger in
                        guard let (headers, session) = self.spdySession(upgrade, runtime: runtime, logger: logger)
                        else {
                            try? await connection.executeThenClose { _, outbound in
                                try await outbound.refuseUpgrade(status: 400, reason: "Bad Request", body: [])
                            }
                            return
                        }
                        do {
                            try await connection.channel.eventLoop.flatSubmit {
                                connection.channel.writeAndFlush(ByteBuffer(string: Self.switchingProtocols(headers)))
                            }.get()
                        } catch {
                            try? await connection.channel.close()
                            return
                        }
                        await session(connection, logger)
                    })
            },
            configuration: .init(address: .hostname(host, port: 0), serverName: nil),
            onServerRunning: { [self] channel in
                state.withLock { $0.port = channel.localAddress?.port }
            },
            logger: logger)
        defer { state.withLock { $0.port = nil } }
        try await app.run()
    }

    /// A SPDY upgrade (the kubelet's and crictl's way): the token's request, served in the protocol
    /// negotiated from the client's `X-Stream-Protocol-Version` offers; nil refuses it.
    typealias SPDYSession = @Sendable (NIOAsyncChannel<ByteBuffer, ByteBuffer>, Logger) async -> Void

    /// The 101 of a SPDY upgrade with the negotiated protocol.
    static func switchingProtocols(_ headers: HTTPFields) -> String {
        var answer = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        for field in headers { answer += "\(field.name.rawName): \(field.value)\r\n" }
        return answer + "\r\n"
    }

    private func spdySession(_ upgrade: UpgradeRequestHead, runtime: CRIRuntime, logger: Logger)
        -> (HTTPFields, SPDYSession)?
    {
        let parts = (upgrade.path.split(separator: "?").first ?? "").split(separator: "/").map(String.init)
        guard parts.count == 2, let request = take(parts[1], kind: parts[0]) else { return nil }
        let offered = upgrade.values("X-Stream-Protocol-Version")
        let versionHeader = HTTPField.Name("X-Stream-Protocol-Version")!
        if case .portForward(let forward) = request {
            guard offered.isEmpty || offered.contains("portforward.k8s.io") else { return nil }
            guard let sandbox = runtime.sandboxes.get(forward.podSandboxID) else { return nil }
            let networkNamespace = sandbox.record.namespacePaths["network"]
            guard networkNamespace != nil || sandbox.record.hostNamespaces.contains("network") else { return nil }
            var headers = HTTPFields()
            if !offered.isEmpty { headers[versionHeader] = "portforward.k8s.io" }
            return (
                headers,
                { channel, logger in
                    try? await channel.executeThenClose { inbound, outbound in
                        let session = PortForwardSession(
                            sandboxID: forward.podSandboxID, networkNamespace: networkNamespace,
                            writer: SPDYWriter(outbound: outbound), logger: logger)
                        await session.run(chunks: inbound)
                    }
                }
            )
        }
        guard let channelProtocol = SPDYRemoteCommand.negotiate(offered) else { return nil }
        var headers = HTTPFields()
        if !offered.isEmpty { headers[versionHeader] = channelProtocol.name }
        return (
            headers,
            { channel, logger in
                await SPDYRemoteCommand.serve(
                    channel, runtime: runtime, request: request, channelProtocol: channelProtocol, logger: logger)
            }
        )
    }

    private func shouldUpgrade(_ head: HTTPRequest, runtime: CRIRuntime, logger: Logger) throws
        -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>
    {
        let parts = (head.path ?? "").split(separator: "?").first?.split(separator: "/").map(String.init) ?? []
        guard parts.count == 2, let request = take(parts[1], kind: parts[0]) else { return .dontUpgrade }
        let offered = head.headerFields[values: .secWebSocketProtocol]
            .flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        if case .portForward(let forward) = request {
            guard offered.contains(PortForwardSession.subprotocol) else { return .dontUpgrade }
            // The pod's own network, or the host's for a hostNetwork pod; never the host's by mistake.
            guard let sandbox = runtime.sandboxes.get(forward.podSandboxID) else { return .dontUpgrade }
            let networkNamespace = sandbox.record.namespacePaths["network"]
            guard networkNamespace != nil || sandbox.record.hostNamespaces.contains("network") else {
                return .dontUpgrade
            }
            return .upgrade([.secWebSocketProtocol: PortForwardSession.subprotocol]) { inbound, outbound, _ in
                let session = PortForwardSession(
                    sandboxID: forward.podSandboxID, networkNamespace: networkNamespace,
                    writer: SPDYWriter(outbound: outbound), logger: logger)
                await session.run(inbound: inbound)
            }
        }
        guard let channelProtocol = ChannelProtocol.negotiate(offered) else { return .dontUpgrade }
        var headers = HTTPFields()
        if !offered.isEmpty { headers[.secWebSocketProtocol] = channelProtocol.name }
        return .upgrade(headers) { inbound, outbound, _ in
            let session = RemoteCommandSession(
                runtime: runtime, request: request, channelProtocol: channelProtocol,
                wire: WebSocketCommandWire(outbound: outbound), logger: logger)
            await session.run(inbound: inbound)
        }
    }
}

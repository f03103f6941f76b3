import HTTPTypes
import HummingbirdWSClient
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL

/// Relays a WebSocket message for message to another WebSocket server: how the API server passes
/// `kubectl exec` and `attach` to the node agent, and the agent to its runtime's streaming server
/// (the kubelet's and kube-apiserver's upgrade-aware proxies, at the message level). Both sides keep
/// the subprotocol the client chose, so the channel protocol passes through untouched.
public enum WebSocketRelay {
    /// Kubernetes' remote-command channel protocols, newest first (the streaming server's order).
    public static let channelProtocols = [
        "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io",
    ]

    /// What `kubectl port-forward` asks for: SPDY/3.1 tunnelled in the WebSocket's binary messages.
    public static let portForwardProtocol = "SPDY/3.1+portforward.k8s.io"

    /// The first of the request's `Sec-WebSocket-Protocol` values that is one of `served` (by default
    /// the channel protocols, which a request offering none gets the first version of).
    public static func negotiate(_ request: HTTPRequest, served: [String] = channelProtocols) -> String? {
        let offered = request.headerFields[values: .secWebSocketProtocol]
            .flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        guard !offered.isEmpty else { return served == channelProtocols ? "channel.k8s.io" : nil }
        return offered.first { served.contains($0) }
    }

    /// Relays between the client's socket (`inbound`, `outbound`) and `url` until either side closes.
    /// A server that cannot be reached ends the client's with the reason on the error channel.
    public static func relay(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, to url: String, subprotocol: String,
        tls: TLSConfiguration?, logger: Logger
    ) async {
        // An agent is addressed by IP, which TLS cannot carry as a server name: a fixed name instead
        // (the agent's certificate is checked against the CA, not for a name).
        var configuration = WebSocketClientConfiguration(
            maxFrameSize: 1 << 20, sniHostname: tls != nil ? "kubelet" : nil)
        configuration.additionalHeaders[.secWebSocketProtocol] = subprotocol
        let client = WebSocketClient(url: url, configuration: configuration, tlsConfiguration: tls, logger: logger) {
            upstreamIn, upstreamOut, _ in
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    var messages = upstreamIn.messages(maxSize: 1 << 20).makeAsyncIterator()
                    while let message = try? await messages.next() {
                        guard (try? await outbound.write(frame(message))) != nil else { return }
                    }
                }
                group.addTask {
                    var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                    while let message = try? await messages.next() {
                        guard (try? await upstreamOut.write(frame(message))) != nil else { return }
                    }
                    // The client closed: so does the connection to the server, which ends its session.
                    try? await upstreamOut.close(.normalClosure, reason: nil)
                }
                // Whichever side ends first ends the relay.
                await group.next()
                group.cancelAll()
            }
        }
        do {
            try await client.run()
        } catch {
            logger.notice("relaying a stream to \(redacted(url)): \(error)")
            let status = APIError.internalError("unable to upgrade connection: \(error)").status
            await fail(outbound, status: status, protocol: subprotocol)
        }
    }

    private static func frame(_ message: WebSocketMessage) -> WebSocketOutboundWriter.OutboundFrame {
        switch message {
        case .text(let text): .text(text)
        case .binary(let buffer): .binary(buffer)
        }
    }

    /// A streaming URL without its one-time token or query (for logs).
    public static func redacted(_ url: String) -> String { String(url.split(separator: "?").first ?? "") }

    /// Tells the client why its stream cannot be: on the error channel for a channel protocol; for
    /// port-forward's tunnelled SPDY (where any byte is a frame) in the WebSocket's close reason.
    public static func fail(_ outbound: WebSocketOutboundWriter, status: JSON, protocol name: String) async {
        if name == portForwardProtocol {
            // A close reason holds at most 123 bytes.
            let reason = String(decoding: Array((status["message"].string ?? "").utf8.prefix(120)), as: UTF8.self)
            try? await outbound.close(.unexpectedServerError, reason: reason)
        } else {
            try? await outbound.write(.binary(errorChannelStatus(status, protocol: name)))
        }
    }

    /// A Status on the error channel (3), as the client's protocol carries it: JSON from v4, its
    /// message alone before.
    public static func errorChannelStatus(_ status: JSON, protocol name: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(3))
        if name.hasPrefix("v5.") || name.hasPrefix("v4.") {
            buffer.writeBytes(status.serialized())
        } else {
            buffer.writeString(status["message"].string ?? "")
        }
        return buffer
    }
}

import BerthCRIProtocol
import GRPCCore
import GRPCNIOTransportHTTP2

/// A CRI client over a runtime's unix socket (Berth's `/run/berth/cri.sock`, containerd's
/// `/run/containerd/containerd.sock`): the only door the node agent has to containers, so that any CRI
/// runtime can run its pods. Connections are kept by a task of its own until ``close()``.
public final class CRIClient: Sendable {
    public let runtime: Runtime_V1_RuntimeService.Client<HTTP2ClientTransport.Posix>
    public let images: Runtime_V1_ImageService.Client<HTTP2ClientTransport.Posix>
    let client: GRPCClient<HTTP2ClientTransport.Posix>
    let connections: Task<Void, Never>

    /// `endpoint` is a socket path or a `unix://PATH` URL, as the kubelet's --container-runtime-endpoint.
    public init(endpoint: String) throws {
        let path = endpoint.hasPrefix("unix://") ? String(endpoint.dropFirst("unix://".count)) : endpoint
        let transport = try HTTP2ClientTransport.Posix(
            target: .unixDomainSocket(path: path), transportSecurity: .plaintext)
        let client = GRPCClient(transport: transport)
        self.client = client
        connections = Task { try? await client.runConnections() }
        runtime = Runtime_V1_RuntimeService.Client(wrapping: client)
        images = Runtime_V1_ImageService.Client(wrapping: client)
    }

    /// Lets calls in flight finish and closes the connections.
    public func close() async {
        client.beginGracefulShutdown()
        await connections.value
    }
}

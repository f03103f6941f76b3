import BerthCRIProtocol
import GRPCCore
import GRPCInProcessTransport
import GRPCNIOTransportHTTP2

/// A CRI client: the only door the node agent has to containers, so that any CRI runtime can run its
/// pods. Over a runtime's unix socket (Berth's `/run/berth/cri.sock`, containerd's
/// `/run/containerd/containerd.sock`), or in process to services of the same binary (a hollow node's
/// fake runtime: the same generated client, the same serialised messages, no socket). Connections are
/// kept by a task of its own until ``close()``.
public final class CRIClient: Sendable {
    public let runtime: any Runtime_V1_RuntimeService.ClientProtocol
    public let images: any Runtime_V1_ImageService.ClientProtocol
    private let shutdown: @Sendable () -> Void
    private let connections: Task<Void, Never>

    /// `endpoint` is a socket path or a `unix://PATH` URL, as the kubelet's --container-runtime-endpoint.
    public init(endpoint: String) throws {
        let path = endpoint.hasPrefix("unix://") ? String(endpoint.dropFirst("unix://".count)) : endpoint
        let transport = try HTTP2ClientTransport.Posix(
            target: .unixDomainSocket(path: path), transportSecurity: .plaintext)
        let client = GRPCClient(transport: transport)
        connections = Task { try? await client.runConnections() }
        shutdown = { client.beginGracefulShutdown() }
        runtime = Runtime_V1_RuntimeService.Client(wrapping: client)
        images = Runtime_V1_ImageService.Client(wrapping: client)
    }

    /// A client of `services` served in this process (a RuntimeService and an ImageService).
    public init(inProcess services: [any RegistrableRPCService]) {
        let transport = InProcessTransport()
        let server = GRPCServer(transport: transport.server, services: services)
        let client = GRPCClient(transport: transport.client)
        connections = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await server.serve() }
                group.addTask { try? await client.runConnections() }
                await group.waitForAll()
            }
        }
        shutdown = {
            client.beginGracefulShutdown()
            server.beginGracefulShutdown()
        }
        runtime = Runtime_V1_RuntimeService.Client(wrapping: client)
        images = Runtime_V1_ImageService.Client(wrapping: client)
    }

    /// Lets calls in flight finish and closes the connections.
    public func close() async {
        shutdown()
        await connections.value
    }
}

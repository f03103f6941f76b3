#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import GRPCCore
import GRPCNIOTransportHTTP2

/// The CRI's gRPC server on a unix socket (`/run/berth/cri.sock` by default): HTTP/2 in plaintext, as
/// the kubelet and crictl connect to containerd's. The socket is made owner-only: whoever reaches it
/// runs containers as root.
public struct CRIServer: Sendable {
    public static let defaultSocket = "/run/berth/cri.sock"

    let runtime: CRIRuntime
    public let socketPath: String

    public init(runtime: CRIRuntime, socketPath: String = CRIServer.defaultSocket) {
        self.runtime = runtime
        self.socketPath = socketPath
    }

    /// The RuntimeService and ImageService: served on the socket, and to an agent in this process
    /// through ``CRIClient/init(inProcess:)``.
    public var services: [any RegistrableRPCService] {
        [RuntimeServiceHandler(runtime: runtime), ImageServiceHandler(runtime: runtime)]
    }

    /// Serves until the calling task is cancelled; `onReady` gets `unix://PATH` once it accepts calls.
    public func serve(onReady: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        try FileSystem.makeDirectories(FileSystem.parent(of: socketPath), mode: 0o711)
        unlink(socketPath)
        // 16 MiB requests, as the kubelet's client sends at most (the default is 4).
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = 16 << 20
        let transport = HTTP2ServerTransport.Posix(
            address: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext, config: config)
        let server = GRPCServer(transport: transport, services: services)
        // Ready once the socket listens. Not awaited by serve: a transport that failed to bind never
        // reports an address (until it is shut down, which the defer below does), and awaiting it
        // would hang the daemon's shutdown.
        let notifier = Task {
            guard (try? await transport.listeningAddress) != nil else { return }
            chmod(socketPath, 0o600)
            onReady("unix://\(socketPath)")
        }
        defer {
            transport.beginGracefulShutdown()
            notifier.cancel()
        }
        // Cancelled (the daemon shutting down): stop accepting, let calls in flight finish.
        // The streaming server (exec, attach) lives and ends with the gRPC server.
        let streaming = Task { [runtime] in try await runtime.streaming.serve(runtime: runtime, logger: runtime.logger)
        }
        defer { streaming.cancel() }
        try await withTaskCancellationHandler {
            try await server.serve()
        } onCancel: {
            server.beginGracefulShutdown()
        }
    }
}

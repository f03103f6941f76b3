#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Why the API server could not start serving.
public enum DockerAPIServerError: Error, CustomStringConvertible {
    case inUse(String)
    case listen(String, cause: any Error)

    public var description: String {
        switch self {
        case .inUse(let path): return "another daemon is already serving \(path)"
        case .listen(let path, let cause): return "cannot listen on \(path): \(cause)"
        }
    }
}

/// The Docker Engine API on a unix socket, as a service: bound on `run()`, closed (with every
/// connection) on graceful shutdown. The socket is created mode 0660, owned by root and `group`.
///
/// A plain SwiftNIO HTTP/1.1 pipeline rather than Hummingbird: `attach` hijacks the connection after
/// its `101 UPGRADED`, taking the channel out of HTTP (codecs removed, raw bytes both ways), which
/// needs the channel pipeline itself; Hummingbird's router gives a handler a request and a response
/// body writer, not the channel.
public final class DockerAPIServer: Service, Sendable {
    public let api: DockerAPI
    public let socketPath: String
    let group: gid_t?
    let logger: Logger
    let onReady: (@Sendable (String) -> Void)?
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])

    public init(api: DockerAPI, socketPath: String, group: gid_t? = nil, logger: Logger = Logger(label: "berth.docker-api"),
                onReady: (@Sendable (String) -> Void)? = nil) {
        self.api = api
        self.socketPath = socketPath
        self.group = group
        self.logger = logger
        self.onReady = onReady
    }

    public func run() async throws {
        // A live daemon's socket is not taken over (a stale file left by a killed one is replaced).
        if let existing = try? UnixSocket.connect(socketPath) {
            existing.close()
            throw DockerAPIServerError.inUse(socketPath)
        }
        let directory = FileSystem.parent(of: socketPath)
        if !directory.isEmpty && !FileSystem.exists(directory) { try FileSystem.makeDirectories(directory, mode: 0o755) }
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let api = self.api
        let bootstrap = ServerBootstrap(group: loops)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                                            name: HTTPConnectionHandler.decoderName)
                    try pipeline.addHandler(HTTPResponseEncoder(), name: HTTPConnectionHandler.encoderName)
                    try pipeline.addHandler(HTTPConnectionHandler(api: api))
                    self.track(channel)
                }
            }
        // Created 0600 (no window in which anyone else could connect), then opened to the group.
        let previous = umask(0o177)
        let server: any Channel
        do {
            server = try await bootstrap.bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true).get()
            umask(previous)
        } catch {
            umask(previous)
            try? await loops.shutdownGracefully()
            throw DockerAPIServerError.listen(socketPath, cause: error)
        }
        chmod(socketPath, 0o660)
        if let group {
            chown(socketPath, 0, group)
            openDirectory(directory, to: group)
        }
        logger.info("serving the Docker Engine API", metadata: ["socket": "\(socketPath)", "api": "\(DockerAPI.apiVersion)"])
        onReady?(socketPath)
        await withGracefulShutdownHandler {
            try? await server.closeFuture.get()
        } onGracefulShutdown: {
            server.close(promise: nil)
        }
        // Clients still connected (a followed log, an attachment) are cut: their threads see it and end.
        let open = connections.withLock { Array($0.values) }
        for channel in open { try? await channel.close() }
        try? await loops.shutdownGracefully()
        unlink(socketPath)
        logger.info("stopped serving", metadata: ["socket": "\(socketPath)"])
    }

    /// The group must be able to reach the socket: a directory the engine made 0700 (/run/berth) gets
    /// the group and its search bit (0710), nothing more (no listing, nothing for others).
    private func openDirectory(_ directory: String, to group: gid_t) {
        var info = stat()
        guard !directory.isEmpty, stat(directory, &info) == 0, info.st_mode & 0o011 == 0 else { return }
        if info.st_gid != group && chown(directory, uid_t.max, group) != 0 { return }
        chmod(directory, (info.st_mode & 0o7777) | 0o010)
        logger.info("opened the socket's directory to its group", metadata: ["directory": "\(directory)", "gid": "\(group)"])
    }

    private func track(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        connections.withLock { $0[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = connections.withLock { $0.removeValue(forKey: key) }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Why the API server could not start serving.
public enum DockerAPIServerError: Error, CustomStringConvertible {
    case inUse(String)
    case listen(String, cause: any Error)
    case tls(String, cause: any Error)

    public var description: String {
        switch self {
        case .inUse(let path): return "another daemon is already serving \(path)"
        case .listen(let path, let cause): return "cannot listen on \(path): \(cause)"
        case .tls(let what, let cause): return "cannot load the TLS \(what): \(cause)"
        }
    }
}

/// Where the API is served: docker's `-H` addresses.
public enum DockerAPIListener: Sendable, CustomStringConvertible {
    /// A unix socket, mode 0660, owned by root and `group` (root's group when nil).
    case unix(path: String, group: gid_t?)
    /// TCP, always behind TLS with client certificates checked against a CA (docker's `--tlsverify`):
    /// the API is root on the host, so it is never served on a network without both.
    case tcp(host: String, port: Int, tls: DockerAPITLS)

    public var description: String {
        switch self {
        case .unix(let path, _): return "unix://\(path)"
        case .tcp(let host, let port, _): return "tcp://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        }
    }
}

/// The PEM files of docker's `--tlscacert`, `--tlscert` and `--tlskey`.
public struct DockerAPITLS: Sendable {
    public var caCertificate: String
    public var certificate: String
    public var key: String

    public init(caCertificate: String, certificate: String, key: String) {
        self.caCertificate = caCertificate
        self.certificate = certificate
        self.key = key
    }

    /// A server context that requires a client certificate signed by the CA (`tls.RequireAndVerifyClientCert`
    /// in dockerd), TLS 1.2 at least, speaking HTTP/1.1.
    func context() throws(DockerAPIServerError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate], key: NIOSSLPrivateKey, roots: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certificate) } catch {
            throw .tls("certificate \(certificate)", cause: error)
        }
        do { key = try NIOSSLPrivateKey(file: self.key, format: .pem) } catch {
            throw .tls("key \(self.key)", cause: error)
        }
        do { roots = try NIOSSLCertificate.fromPEMFile(caCertificate) } catch {
            throw .tls("CA certificate \(caCertificate)", cause: error)
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.trustRoots = .certificates(roots)
        // A client has no host name to check; its certificate must chain to the CA, nothing more.
        tls.certificateVerification = .noHostnameVerification
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = ["http/1.1"]
        do { return try NIOSSLContext(configuration: tls) } catch { throw .tls("configuration", cause: error) }
    }
}

/// The Docker Engine API on its listeners, as a service: bound on `run()`, closed (with every
/// connection) on graceful shutdown.
///
/// A plain SwiftNIO HTTP/1.1 pipeline rather than Hummingbird: `attach` hijacks the connection after
/// its `101 UPGRADED`, taking the channel out of HTTP (codecs removed, raw bytes both ways), which
/// needs the channel pipeline itself; Hummingbird's router gives a handler a request and a response
/// body writer, not the channel. On TCP the TLS handler stays first in the pipeline, so a hijacked
/// stream stays encrypted.
public final class DockerAPIServer: Service, Sendable {
    public let api: DockerAPI
    public let listeners: [DockerAPIListener]
    let logger: Logger
    let onReady: (@Sendable ([DockerAPIListener]) -> Void)?
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])

    public init(
        api: DockerAPI, listeners: [DockerAPIListener], logger: Logger = Logger(label: "berth.docker-api"),
        onReady: (@Sendable ([DockerAPIListener]) -> Void)? = nil
    ) {
        self.api = api
        self.listeners = listeners
        self.logger = logger
        self.onReady = onReady
    }

    public func run() async throws {
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var servers: [any Channel] = []
        var bound: [DockerAPIListener] = []
        do {
            for listener in listeners {
                let (channel, actual) = try await bind(listener, on: loops)
                servers.append(channel)
                bound.append(actual)
            }
        } catch {
            for server in servers { try? await server.close() }
            try? await loops.shutdownGracefully()
            throw error
        }
        onReady?(bound)
        let open = servers
        // A graceful shutdown (SIGTERM) or a cancellation (the group ending because a sibling service
        // failed) both close the listeners: awaiting only the former left a daemon whose CRI server
        // failed to start hanging for ever, deaf to signals.
        await withTaskCancellationOrGracefulShutdownHandler {
            for server in open { try? await server.closeFuture.get() }
        } onCancelOrGracefulShutdown: {
            for server in open { server.close(promise: nil) }
        }
        // Clients still connected (a followed log, an attachment) are cut: their threads see it and end.
        let clients = connections.withLock { Array($0.values) }
        for channel in clients { try? await channel.close() }
        try? await loops.shutdownGracefully()
        for case .unix(let path, _) in listeners { unlink(path) }
        logger.info("stopped serving")
    }

    /// Binds one listener; returns it with the port the kernel chose when asked for port 0.
    private func bind(_ listener: DockerAPIListener, on loops: MultiThreadedEventLoopGroup) async throws -> (
        any Channel, DockerAPIListener
    ) {
        switch listener {
        case .unix(let path, let group):
            return (try await bindUnix(path, group: group, loops), listener)
        case .tcp(let host, let port, let tls):
            let context = try tls.context()
            let server: any Channel
            do {
                server = try await bootstrap(loops, tls: context).bind(host: host, port: port).get()
            } catch {
                throw DockerAPIServerError.listen(listener.description, cause: error)
            }
            let actual = DockerAPIListener.tcp(host: host, port: server.localAddress?.port ?? port, tls: tls)
            logger.info(
                "serving the Docker Engine API",
                metadata: ["address": "\(actual)", "api": "\(DockerAPI.apiVersion)", "tls": "verify"])
            return (server, actual)
        }
    }

    private func bindUnix(_ path: String, group: gid_t?, _ loops: MultiThreadedEventLoopGroup) async throws
        -> any Channel
    {
        // A live daemon's socket is not taken over (a stale file left by a killed one is replaced).
        if let existing = try? UnixSocket.connect(path) {
            existing.close()
            throw DockerAPIServerError.inUse(path)
        }
        let directory = FileSystem.parent(of: path)
        if !directory.isEmpty && !FileSystem.exists(directory) {
            try FileSystem.makeDirectories(directory, mode: 0o755)
        }
        // Created 0600 (no window in which anyone else could connect), then opened to the group.
        let previous = umask(0o177)
        let server: any Channel
        do {
            server = try await bootstrap(loops, tls: nil).bind(
                unixDomainSocketPath: path, cleanupExistingSocketFile: true
            ).get()
            umask(previous)
        } catch {
            umask(previous)
            throw DockerAPIServerError.listen(path, cause: error)
        }
        chmod(path, 0o660)
        if let group {
            chown(path, 0, group)
            openDirectory(directory, to: group)
        }
        logger.info("serving the Docker Engine API", metadata: ["socket": "\(path)", "api": "\(DockerAPI.apiVersion)"])
        return server
    }

    private func bootstrap(_ loops: MultiThreadedEventLoopGroup, tls: NIOSSLContext?) -> ServerBootstrap {
        let api = self.api
        return ServerBootstrap(group: loops)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    try pipeline.addHandler(
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                        name: HTTPConnectionHandler.decoderName)
                    try pipeline.addHandler(HTTPResponseEncoder(), name: HTTPConnectionHandler.encoderName)
                    try pipeline.addHandler(HTTPConnectionHandler(api: api))
                    self.track(channel)
                }
            }
    }
    /// The group must be able to reach the socket: a directory the engine made 0700 (/run/berth) gets
    /// the group and its search bit (0710), nothing more (no listing, nothing for others).
    private func openDirectory(_ directory: String, to group: gid_t) {
        var info = stat()
        guard !directory.isEmpty, stat(directory, &info) == 0, info.st_mode & 0o011 == 0 else { return }
        if info.st_gid != group && chown(directory, uid_t.max, group) != 0 { return }
        chmod(directory, (info.st_mode & 0o7777) | 0o010)
        logger.info(
            "opened the socket's directory to its group", metadata: ["directory": "\(directory)", "gid": "\(group)"])
    }

    private func track(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        connections.withLock { $0[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = connections.withLock { $0.removeValue(forKey: key) }
        }
    }
}

import ArgumentParser
import BerthCRI
import BerthDockerAPI
import BerthEngine
import BerthImage
import BerthOS
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// The engine daemon's verb.
let engineVerbs: [any ParsableCommand.Type] = [EngineDaemonCommand.self]

/// `berth engine`: the Docker Engine API on a unix socket, over the same store, run directory and
/// monitors as the CLI's verbs. Containers are their monitors' and keep running when it stops; their
/// exits are recorded by the monitors' exit commands, with or without the daemon.
struct EngineDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine", abstract: "Serve the Docker Engine API (the docker CLI's DOCKER_HOST).")

    @OptionGroup var options: ImageOptions
    @Option(
        name: [.customShort("H"), .long],
        help: ArgumentHelp(
            "Address to serve, repeatable: unix:///PATH or tcp://HOST:PORT (TCP needs --tlsverify).",
            valueName: "address"))
    var host: [String] = []
    @Option(help: "Group owning the unix sockets (name or GID); root only when not given.") var group: String?
    @Flag(help: "Serve TCP with TLS and require client certificates signed by --tlscacert.") var tlsverify = false
    @Option(help: "CA certificate that signs the clients' certificates (PEM).") var tlscacert = "~/.docker/ca.pem"
    @Option(help: "The daemon's certificate (PEM).") var tlscert = "~/.docker/cert.pem"
    @Option(help: "The daemon's private key (PEM).") var tlskey = "~/.docker/key.pem"
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"
    @Option(
        name: .customLong("cri-socket"),
        help:
            "Serve the Kubernetes CRI (runtime.v1) on this unix socket (default <run dir>/cri.sock, /run/berth/cri.sock); \"\" for none."
    )
    var criSocket: String?
    @Option(name: .customLong("cri-network"), help: "The network CRI pods join (an engine network or CNI config name).")
    var criNetwork = "bridge"

    /// `/run/berth/docker.sock`, as `/var/run/docker.sock` is dockerd's.
    static let defaultSocket = "unix:///run/berth/docker.sock"

    func run() async throws {
        let gid = try group.map(Self.groupID)
        let tls =
            tlsverify
            ? DockerAPITLS(
                caCertificate: Self.expandHome(tlscacert), certificate: Self.expandHome(tlscert),
                key: Self.expandHome(tlskey)) : nil
        let listeners = try (host.isEmpty ? [Self.defaultSocket] : host).map {
            try Self.listener($0, group: gid, tls: tls)
        }
        var logger = Logger(label: "berth.engine")
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("invalid --log-level \(logLevel)")
        }
        logger.logLevel = level
        let images = try options.service()
        let engine: Engine
        do {
            engine = try Engine(
                images: images, exitCommand: try cleanupCommand(options.settings),
                configuration: try options.engineConfiguration())
        } catch {
            await images.shutdown()
            throw engineFailure(error)
        }
        let server = DockerAPIServer(
            api: DockerAPI(engine: engine, logger: logger), listeners: listeners, logger: logger,
            onReady: { bound in
                // One line per address on stdout once all accept connections, for
                // scripts (with the port the kernel chose for tcp://HOST:0).
                for listener in bound { print("ready \(listener)") }
                fflush(nil)
                // And to systemd, under the Type=notify unit.
                ServiceNotify.send("READY=1\nSTATUS=serving the Docker Engine API\nMAINPID=\(getpid())")
            })
        var served: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)]
        // Beside the engine's other sockets, so that engines on other run directories never share it.
        let criSocket = self.criSocket ?? engine.layout.run + "/cri.sock"
        if !criSocket.isEmpty {
            var settings = CRIRuntime.Settings.beside(engine)
            settings.network = criNetwork
            let runtime: CRIRuntime
            do { runtime = try CRIRuntime(engine: engine, settings: settings, logger: logger) } catch {
                await images.shutdown()
                printError("berth engine: preparing the CRI's state: \(error)")
                throw ExitCode(1)
            }
            served.append(.init(service: CRIService(server: CRIServer(runtime: runtime, socketPath: criSocket))))
        }
        let services = ServiceGroup(
            configuration: .init(
                services: served,
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await services.run()
        } catch {
            await images.shutdown()
            printError("berth engine: \(error)")
            throw ExitCode(1)
        }
        await images.shutdown()
    }

    /// docker's `-H` forms: `unix:///PATH`, `tcp://HOST:PORT` (HOST defaults to 127.0.0.1, PORT to 2376,
    /// `[::1]` for IPv6). TCP is served only with --tlsverify: without client certificates anyone who
    /// reaches the port is root on the host.
    static func listener(_ address: String, group: gid_t?, tls: DockerAPITLS?) throws -> DockerAPIListener {
        if address.hasPrefix("unix://") {
            let path = String(address.dropFirst(7))
            guard path.hasPrefix("/") else {
                throw ValidationError("--host \(address): a unix socket needs an absolute path (unix:///PATH)")
            }
            return .unix(path: path, group: group)
        }
        if address.hasPrefix("tcp://") {
            guard let tls else {
                throw ValidationError(
                    "--host \(address): TCP is served only with --tlsverify (client certificates); use a unix socket otherwise"
                )
            }
            var rest = Substring(address.dropFirst(6))
            if let slash = rest.firstIndex(of: "/") {
                guard rest[slash...] == "/" else {
                    throw ValidationError("--host \(address): a TCP address takes no path")
                }
                rest = rest[..<slash]
            }
            var host = "127.0.0.1"
            var portText = ""
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else {
                    throw ValidationError("--host \(address): unclosed [ in an IPv6 address")
                }
                host = String(rest[rest.index(after: rest.startIndex)..<close])
                let after = rest[rest.index(after: close)...]
                if after.hasPrefix(":") {
                    portText = String(after.dropFirst())
                } else if !after.isEmpty {
                    throw ValidationError("--host \(address): expected :PORT after the IPv6 address")
                }
            } else if let colon = rest.lastIndex(of: ":") {
                if colon != rest.startIndex { host = String(rest[..<colon]) }
                portText = String(rest[rest.index(after: colon)...])
            } else if !rest.isEmpty {
                host = String(rest)
            }
            let port = portText.isEmpty ? 2376 : Int(portText) ?? -1
            guard (0...65535).contains(port) else {
                throw ValidationError("--host \(address): invalid port \(portText)")
            }
            return .tcp(host: host, port: port, tls: tls)
        }
        if address.hasPrefix("fd://") {
            throw ValidationError(
                "--host \(address): systemd socket activation is not used; berth engine binds its own sockets")
        }
        throw ValidationError("--host \(address): expected unix:///PATH or tcp://HOST:PORT")
    }

    static func expandHome(_ path: String) -> String {
        guard path.hasPrefix("~/") else { return path }
        let home = getenv("HOME").map { String(cString: $0) } ?? "/root"
        return home + path.dropFirst(1)
    }

    static func groupID(_ text: String) throws -> gid_t {
        if let number = gid_t(text) { return number }
        guard let entry = getgrnam(text) else { throw ValidationError("no such group: \(text)") }
        return entry.pointee.gr_gid
    }
}

/// The CRI server as a service of the daemon's group: it stops serving when the daemon shuts down.
struct CRIService: Service {
    let server: CRIServer

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await server.serve { address in
                    print("ready cri \(address)")
                    fflush(nil)
                }
            }
        } catch  where Task.isShuttingDownGracefully || Task.isCancelled {
            // The transport reports the cancellation that stopped it: a shutdown, not a failure.
        } catch {
            throw CRIServeFailure(socket: server.socketPath, cause: error)
        }
    }
}

/// The CRI could not be served (its socket cannot be bound): the daemon stops with this.
struct CRIServeFailure: Error, CustomStringConvertible {
    let socket: String
    let cause: any Error
    var description: String { "serving the CRI on \(socket): \(cause)" }
}

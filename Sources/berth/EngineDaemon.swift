import ArgumentParser
import BerthDockerAPI
import BerthEngine
import BerthImage
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
    static let configuration = CommandConfiguration(commandName: "engine", abstract: "Serve the Docker Engine API (the docker CLI's DOCKER_HOST).")

    @OptionGroup var options: ImageOptions
    @Option(name: [.customShort("H"), .long], help: "Socket to serve: unix:///PATH.") var host = "unix:///run/berth/docker.sock"
    @Option(help: "Group owning the socket (name or GID); root only when not given.") var group: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel = "info"

    func run() async throws {
        guard host.hasPrefix("unix://"), host.count > 7 else {
            throw ValidationError("--host must be unix:///PATH (TCP with TLS is not served yet)")
        }
        let path = String(host.dropFirst(7))
        let gid = try group.map(Self.groupID)
        var logger = Logger(label: "berth.engine")
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("invalid --log-level \(logLevel)") }
        logger.logLevel = level
        let images = try options.service()
        let engine: Engine
        do {
            engine = try Engine(images: images, exitCommand: try cleanupCommand(options.settings), configuration: try options.engineConfiguration())
        } catch {
            await images.shutdown()
            throw engineFailure(error)
        }
        let server = DockerAPIServer(api: DockerAPI(engine: engine, logger: logger), socketPath: path, group: gid, logger: logger,
                                     onReady: { path in
                                         // One line on stdout when the socket accepts connections, for scripts.
                                         print("ready unix://\(path)")
                                         fflush(nil)
                                     })
        let services = ServiceGroup(configuration: .init(services: [.init(service: server)],
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

    static func groupID(_ text: String) throws -> gid_t {
        if let number = gid_t(text) { return number }
        guard let entry = getgrnam(text) else { throw ValidationError("no such group: \(text)") }
        return entry.pointee.gr_gid
    }
}

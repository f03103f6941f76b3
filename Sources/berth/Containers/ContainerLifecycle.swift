import ArgumentParser
import BerthEngine
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` for each name given (containers, volumes, networks), printing each as docker does, and
/// fails (exit 1) if any failed, after trying them all.
func forEachName(
    _ options: ImageOptions, _ names: [String], echo: Bool = true,
    _ body: @escaping (Engine, String) throws -> Void
) async throws {
    let failed: Bool = try await withEngine(options) { engine in
        var failed = false
        for name in names {
            do {
                try body(engine, name)
                if echo { print(name) }
            } catch {
                printError("Error response from daemon: \(error)")
                failed = true
            }
        }
        return failed
    }
    if failed { throw ExitCode(1) }
}

struct ContainerStartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start one or more stopped containers.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Attach STDOUT/STDERR and forward signals.") var attach = false
    @Flag(name: .shortAndLong, help: "Attach container's STDIN.") var interactive = false
    @Argument(help: "Containers.") var containers: [String]

    func run() async throws {
        if attach || interactive {
            guard containers.count == 1 else {
                throw ValidationError("you cannot start and attach multiple containers at once")
            }
            let name = containers[0]
            let status: Int32 = try await withEngine(options) { engine in
                let record = try engine.lookup(name)
                guard let connection = try engine.start(name, attach: true) else { return record.state.exitCode }
                let relay = AttachRelay(
                    connection: connection, forwardInput: interactive && record.configuration.openStdin,
                    terminal: record.configuration.tty, forwardSignal: { try? engine.kill(record.id, signal: $0) })
                return relay.status(of: record.id, engine: engine).status
            }
            if status != 0 { throw ExitCode(status) }
            return
        }
        try await forEachName(options, containers) { engine, name in try engine.start(name) }
    }
}

struct ContainerStopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop one or more running containers.")
    @OptionGroup var options: ImageOptions
    @Option(
        name: [.customShort("t"), .customLong("timeout"), .customLong("time")],
        help: "Seconds to wait before killing the container.") var timeout: Int?
    @Option(name: .shortAndLong, help: "Signal to send to the container.") var signal: String?
    @Argument(help: "Containers.") var containers: [String]

    func run() async throws {
        try await forEachName(options, containers) { engine, name in
            try engine.stop(name, timeout: timeout, signal: signal)
        }
    }
}

struct ContainerRestartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart one or more containers.")
    @OptionGroup var options: ImageOptions
    @Option(
        name: [.customShort("t"), .customLong("timeout"), .customLong("time")],
        help: "Seconds to wait before killing the container.") var timeout: Int?
    @Argument(help: "Containers.") var containers: [String]

    func run() async throws {
        try await forEachName(options, containers) { engine, name in
            try engine.stop(name, timeout: timeout)
            try engine.start(name)
        }
    }
}

struct ContainerKillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill", abstract: "Kill one or more running containers.")
    @OptionGroup var options: ImageOptions
    @Option(name: .shortAndLong, help: "Signal to send to the container.") var signal = "KILL"
    @Argument(help: "Containers.") var containers: [String]

    func run() async throws {
        let number = try Signal.number(signal)
        try await forEachName(options, containers) { engine, name in try engine.kill(name, signal: number) }
    }
}

struct ContainerRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more containers.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Force the removal of a running container (uses SIGKILL).") var force = false
    @Flag(name: .shortAndLong, help: "Remove anonymous volumes associated with the container.") var volumes = false
    @Argument(help: "Containers.") var containers: [String]

    func run() async throws {
        try await forEachName(options, containers) { engine, name in
            try engine.remove(name, force: force, volumes: volumes)
        }
    }
}

struct ContainerPauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Pause all processes within one or more containers.")
    @OptionGroup var options: ImageOptions
    @Argument(help: "Containers.") var containers: [String]
    func run() async throws { try await forEachName(options, containers) { engine, name in try engine.pause(name) } }
}

struct ContainerUnpauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpause", abstract: "Unpause all processes within one or more containers.")
    @OptionGroup var options: ImageOptions
    @Argument(help: "Containers.") var containers: [String]
    func run() async throws { try await forEachName(options, containers) { engine, name in try engine.unpause(name) } }
}

struct ContainerRenameCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a container.")
    @OptionGroup var options: ImageOptions
    @Argument(help: "Container.") var container: String
    @Argument(help: "New name.") var newName: String
    func run() async throws {
        try await forEachName(options, [container], echo: false) { engine, name in try engine.rename(name, to: newName)
        }
    }
}

struct ContainerWaitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Block until one or more containers stop, then print their exit codes.")
    @OptionGroup var options: ImageOptions
    @Argument(help: "Containers.") var containers: [String]
    func run() async throws {
        try await forEachName(options, containers, echo: false) { engine, name in print(try engine.wait(name)) }
    }
}

/// `berth container cleanup ID` (hidden): what a monitor execs when its container exits.
struct ContainerCleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup", abstract: "Record a container's exit (run by its monitor).",
        shouldDisplay: false)
    @OptionGroup var options: ImageOptions
    @Argument(help: "Container ID.") var id: String
    func run() async throws {
        try await withEngine(options) { engine in try engine.cleanup(id) }
    }
}

/// Signal names on the command line (docker's forms).
enum Signal {
    static func number(_ text: String) throws -> Int32 {
        do { return try RunOptionParser.parseSignal(text) } catch { throw ValidationError("\(error)") }
    }
}

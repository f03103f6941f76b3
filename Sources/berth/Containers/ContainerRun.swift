import ArgumentParser
import BerthEngine
import BerthImage
import BerthOS
#if canImport(Glibc)
import Glibc
#endif

/// `berth run [OPTIONS] IMAGE [COMMAND] [ARG…]`: create and start a container (pulling a missing image),
/// attached to its output unless -d, with docker's exit statuses (the container's own, or 125/126/127).
struct ContainerRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Create and run a new container from an image.")

    @OptionGroup var options: ImageOptions
    @OptionGroup var run: RunOptions
    @Flag(name: .shortAndLong, help: "Run container in background and print container ID.") var detach = false
    @Flag(name: .customLong("sig-proxy"), inversion: .prefixedNo, help: "Proxy received signals to the process.")
    var signalProxy = true
    @Option(help: "Pull image before running (always, missing, never).") var pull = "missing"
    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Suppress the pull output.") var quiet = false
    @Argument(help: "Image to run.") var image: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments.") var command: [String] = []

    func run() async throws {
        try await ContainerRunCommand.execute(
            options.settings, run.settings, detach: detach, signalProxy: signalProxy, pull: pull,
            quiet: quiet, image: image, command: command)
    }

    /// The verb itself, for ArgumentParser's parse and ``HotRun``'s alike.
    static func execute(
        _ options: ImageSettings, _ run: RunSettings, detach: Bool, signalProxy: Bool, pull: String, quiet: Bool,
        image: String, command: [String]
    ) async throws {
        var configuration = try run.configuration(image: image, command: command)
        let status: Int32 = try await withEngine(options) { engine in
            run.applyDefaults(engine.configuration, to: &configuration)
            try await ensureImage(engine, image, policy: pull, quiet: quiet)
            let record = try engine.create(configuration, name: run.name)
            if detach {
                do { try engine.start(record.id) } catch {
                    if configuration.autoRemove { try? engine.remove(record.id, force: true) }
                    throw error
                }
                print(record.id)
                return 0
            }
            let connection: FileDescriptor?
            do { connection = try engine.start(record.id, attach: true) } catch {
                if configuration.autoRemove { try? engine.remove(record.id, force: true) }
                throw error
            }
            var status: Int32 = 0
            var relay: AttachRelay?
            if let connection {
                let attached = AttachRelay(
                    connection: connection, forwardInput: configuration.openStdin, terminal: configuration.tty,
                    forwardSignal: { signal in if signalProxy { try? engine.kill(record.id, signal: signal) } })
                let outcome = attached.status(of: record.id, engine: engine)
                if outcome.detached { return 0 }
                status = outcome.status
                relay = attached
            }
            if configuration.autoRemove {
                // Recorded and removed here, without waiting for the monitor's exit command to do the same
                // (it finds the work done; the engine lock keeps the two apart). The monitor deletes the
                // runtime's container meanwhile; done when it says so.
                try? engine.cleanup(record.id)
                try? engine.remove(record.id, force: true)
                relay?.awaitRelease(seconds: 10)
            }
            return status
        }
        if status != 0 { throw ExitCode(status) }
    }
}

/// `berth create [OPTIONS] IMAGE [COMMAND] [ARG…]`: create a container without starting it.
struct ContainerCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a new container.")

    @OptionGroup var options: ImageOptions
    @OptionGroup var run: RunOptions
    @Option(help: "Pull image before creating (always, missing, never).") var pull = "missing"
    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Suppress the pull output.") var quiet = false
    @Argument(help: "Image to create the container from.") var image: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments.") var command: [String] = []

    func run() async throws {
        try await ContainerCreateCommand.execute(
            options.settings, run.settings, pull: pull, quiet: quiet, image: image, command: command)
    }

    /// The verb itself, for ArgumentParser's parse and ``HotRun``'s alike.
    static func execute(
        _ options: ImageSettings, _ run: RunSettings, pull: String, quiet: Bool, image: String, command: [String]
    ) async throws {
        var configuration = try run.configuration(image: image, command: command)
        try await withEngine(options) { engine in
            run.applyDefaults(engine.configuration, to: &configuration)
            try await ensureImage(engine, image, policy: pull, quiet: quiet)
            print(try engine.create(configuration, name: run.name).id)
        }
    }
}

/// Pulls `image` when the policy says so (docker's "Unable to find image … locally" first).
func ensureImage(_ engine: Engine, _ image: String, policy: String, quiet: Bool) async throws {
    let present = engine.images.store.lookup(image) != nil
    switch policy {
    case "never":
        if !present { throw EngineError.noSuchImage(image) }
        return
    case "missing":
        if present { return }
        if !quiet { printError("Unable to find image '\(image)' locally") }
    case "always":
        break
    default:
        throw ValidationError("invalid pull option: '\(policy)': must be one of \"always\", \"missing\" or \"never\"")
    }
    let record = try await engine.images.pull(image)
    engine.events.append(type: "image", action: "pull", id: record.name, attributes: ["name": record.name])
    if !quiet { printError("Status: Downloaded newer image for \(record.name)") }
}

import ArgumentParser
import BerthEngine
import BerthOS

/// `berth attach CONTAINER`: this terminal's stdin/stdout/stderr to a running container's, through its
/// monitor (ctrl-p ctrl-q detaches; the container's exit status is ours).
struct ContainerAttachCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Attach local standard input, output, and error streams to a running container.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .customLong("no-stdin"), help: "Do not attach STDIN.") var noStdin = false
    @Flag(name: .customLong("sig-proxy"), inversion: .prefixedNo, help: "Proxy all received signals to the process.")
    var signalProxy = true
    @Argument(help: "Container.") var container: String

    func run() async throws {
        let status: Int32 = try await withEngine(options) { engine in
            let record = try engine.lookup(container)
            guard record.state.status == .running else {
                throw EngineError.conflict("You cannot attach to a stopped container, start it first")
            }
            let connection: FileDescriptor
            do throws(SystemCallError) {
                connection = try UnixSocket.connect(engine.layout.attachSocket(record.id))
            } catch {
                throw EngineError.system(error, context: "attaching to \(record.shortID) (is its monitor running?)")
            }
            let relay = AttachRelay(
                connection: connection, forwardInput: !noStdin && record.configuration.openStdin,
                terminal: record.configuration.tty,
                forwardSignal: { signal in if signalProxy { try? engine.kill(record.id, signal: signal) } })
            return relay.status(of: record.id, engine: engine).status
        }
        if status != 0 { throw ExitCode(status) }
    }
}

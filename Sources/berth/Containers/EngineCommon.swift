import ArgumentParser
import BerthEngine
import BerthImage
import BerthOS
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` with an engine over the image store named by `options`, turning errors into docker's
/// one-line message and exit status (125 for the engine's own failures).
func withEngine<T>(_ options: ImageOptions, _ body: (Engine) async throws -> T) async throws -> T {
    try await withEngine(options.settings, body)
}

func withEngine<T>(_ options: ImageSettings, _ body: (Engine) async throws -> T) async throws -> T {
    let service: ImageService
    do { service = try options.service() } catch { throw failure(error) }
    defer { Task { await service.shutdown() } }
    do {
        let configuration = try options.engineConfiguration()
        let engine = try Engine(images: service, exitCommand: try cleanupCommand(options), configuration: configuration)
        let result = try await body(engine)
        await service.shutdown()
        return result
    } catch {
        await service.shutdown()
        throw engineFailure(error)
    }
}

/// What a monitor runs when its container exits: this executable's `container cleanup`.
func cleanupCommand(_ options: ImageSettings) throws -> [String] {
    let executable = (try? FileSystem.realPath("/proc/self/exe")) ?? CommandLine.arguments[0]
    return [executable, "container", "cleanup", "--root", try options.dataRoot()]
}

func engineFailure(_ error: any Error) -> any Error {
    if error is ValidationError || error is ExitCode || error is CleanExit { return error }
    if let engine = error as? EngineError {
        printError("berth: \(engine)")
        return ExitCode(engine.exitStatus)
    }
    if let image = error as? ImageError {
        printError("berth: \(image)")
        return ExitCode(125)
    }
    printError("berth: \(error)")
    return ExitCode(125)
}

/// `Up 5 seconds`, `Exited (0) 3 minutes ago`, `Created` — docker's STATUS column.
func statusText(_ record: ContainerRecord) -> String {
    let state = record.state
    func since(_ time: String) -> String {
        guard let t = Timestamp.parse(time) else { return "" }
        return humanDuration(max(0, Int(Glibc.time(nil)) - t.seconds))
    }
    switch state.status {
    case .created: return "Created"
    case .running: return "Up \(since(state.startedAt))" + (record.state.health.map { " (\($0.status))" } ?? "")
    case .paused: return "Up \(since(state.startedAt)) (Paused)"
    case .restarting: return "Restarting (\(state.exitCode)) \(since(state.finishedAt)) ago"
    case .removing: return "Removal In Progress"
    case .exited: return "Exited (\(state.exitCode)) \(since(state.finishedAt)) ago"
    case .dead: return "Dead"
    }
}

/// go-units HumanDuration, as docker's ps prints ages.
func humanDuration(_ seconds: Int) -> String {
    switch seconds {
    case ..<1: return "Less than a second"
    case 1: return "1 second"
    case ..<60: return "\(seconds) seconds"
    case ..<120: return "About a minute"
    case ..<3600: return "\(seconds / 60) minutes"
    case ..<7200: return "About an hour"
    case ..<(48 * 3600): return "\(seconds / 3600) hours"
    case ..<(7 * 24 * 3600 * 2): return "\(seconds / 86400) days"
    case ..<(30 * 24 * 3600 * 3): return "\(seconds / (7 * 86400)) weeks"
    case ..<(365 * 24 * 3600 * 2): return "\(seconds / (30 * 86400)) months"
    default: return "\(seconds / (365 * 86400)) years"
    }
}

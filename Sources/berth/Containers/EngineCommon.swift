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

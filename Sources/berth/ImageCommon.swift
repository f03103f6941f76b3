import ArgumentParser
import BerthEngine
import BerthImage
#if canImport(Glibc)
import Glibc
#endif

/// Options every image verb takes: where the store is and how to reach registries.
struct ImageOptions: ParsableArguments {
    @Option(name: .long, help: "Data root (default $BERTH_ROOT or /var/lib/berth).")
    var root: String?

    @Option(
        name: .customLong("insecure-registry"),
        help: "Registry to reach over plain HTTP (loopback always is). Repeatable.")
    var insecureRegistries: [String] = []

    @Option(name: .customLong("ca-file"), help: "Extra CA certificate (PEM) for HTTPS registries. Repeatable.")
    var caFiles: [String] = []

    @Option(name: .customLong("auth-config"), help: "docker-style config.json with registry credentials.")
    var authConfig: String?

    /// The parsed values, as plain ones.
    var settings: ImageSettings {
        ImageSettings(root: root, insecureRegistries: insecureRegistries, caFiles: caFiles, authConfig: authConfig)
    }

    func engineConfiguration() throws -> EngineConfiguration { try settings.engineConfiguration() }
    func dataRoot() throws -> String { try settings.dataRoot() }
    func service() throws -> ImageService { try settings.service() }
}

/// ``ImageOptions`` as plain values (``HotRun`` fills them without ArgumentParser).
struct ImageSettings: Equatable {
    var root: String?
    var insecureRegistries: [String] = []
    var caFiles: [String] = []
    var authConfig: String?

    static let options: [HotOption<ImageSettings>] = [
        .single(["--root"]) {
            $0.root = $1; return true
        },
        .repeated(["--insecure-registry"]) { $0.insecureRegistries.append($1) },
        .repeated(["--ca-file"]) { $0.caFiles.append($1) },
        .single(["--auth-config"]) {
            $0.authConfig = $1; return true
        },
    ]

    /// The engine configuration file's settings (`$BERTH_CONFIG` or /etc/berth/engine.json).
    func engineConfiguration() throws -> EngineConfiguration {
        try EngineConfiguration.load()
    }

    /// The data root: --root, else $BERTH_ROOT, else the configuration's data-root, else /var/lib/berth.
    func dataRoot() throws -> String {
        if let root { return root }
        if getenv("BERTH_ROOT") == nil, let configured = try engineConfiguration().dataRoot { return configured }
        return ContentStore.defaultRoot
    }

    func service() throws -> ImageService {
        let configuration = try engineConfiguration()
        var registry = RegistryOptions()
        registry.insecureRegistries.formUnion(insecureRegistries + configuration.insecureRegistries)
        registry.mirrors = configuration.allMirrors
        registry.caFiles = caFiles
        registry.credentials = CredentialStore.load(path: authConfig)
        return try ImageService(store: try ContentStore(root: try dataRoot()), registryOptions: registry)
    }
}

/// Runs `body` with a service, shutting its HTTP client down afterwards and turning errors into a message.
func withImageService<T>(_ options: ImageOptions, _ body: (ImageService) async throws -> T) async throws -> T {
    let service: ImageService
    do { service = try options.service() } catch { throw failure(error) }
    do {
        let result = try await body(service)
        await service.shutdown()
        return result
    } catch {
        await service.shutdown()
        throw failure(error)
    }
}

func failure(_ error: any Error) -> any Error {
    if error is ValidationError || error is ExitCode || error is CleanExit { return error }
    printError("Error: \(error)")
    return ExitCode(1)
}

func printError(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// 12.3MB style sizes, as docker prints them.
func humanSize(_ bytes: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
    if unit == 0 { return "\(bytes)B" }
    let rounded = (value * 10).rounded() / 10
    return "\(rounded)\(units[unit])"
}

func humanAge(_ seconds: Int) -> String {
    let age = max(0, Int(time(nil)) - seconds)
    switch age {
    case ..<60: return "Less than a minute ago"
    case ..<3600: return "\(age / 60) minutes ago"
    case ..<86400: return "\(age / 3600) hours ago"
    default: return "\(age / 86400) days ago"
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + "   " : s + String(repeating: " ", count: width - s.count + 3)
}

extension Duration {
    /// The duration in seconds, for the rates the verbs print.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

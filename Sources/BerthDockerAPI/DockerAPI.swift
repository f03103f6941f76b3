#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthOS
import Logging
import NIOHTTP1

/// The Docker Engine API over one ``Engine``: routes a request (with or without its `/v1.NN` prefix)
/// to the handler of its endpoint. Handlers run on a thread of their own and may block.
public final class DockerAPI: Sendable {
    /// The version advertised (`_ping`'s API-Version, `/version`): docker 27's, whose container and
    /// image shapes are the ones served here; the CLI 28 negotiates down to it.
    public static let apiVersion = "1.47"
    /// Requests under `/v1.24` … `/v1.50` are accepted.
    public static let minimumAPIVersion = "1.24"
    public static let maximumAPIVersion = "1.50"
    /// Berth's version, reported as the engine's.
    public static let engineVersion = Engine.version

    public let engine: Engine
    let logger: Logger
    /// Changes made through this daemon, for waits and pending attachments.
    let hub = StateHub()
    /// `docker exec` instances, kept in memory as dockerd keeps them.
    let execs = ExecStore()

    public init(engine: Engine, logger: Logger = Logger(label: "berth.docker-api")) {
        self.engine = engine
        self.logger = logger
    }

    /// Serves one request to its end (the response finished, or the connection hijacked).
    func handle(_ request: APIRequest, _ response: ResponseWriter) {
        do {
            try route(request, response)
        } catch {
            let api = DockerAPIError.from(error)
            if api.status.code >= 500 {
                logger.warning("\(request.method) \(request.path): \(api.message)")
            }
            response.error(api)
        }
        if !response.started { response.finish() }
    }

    /// `/v1.47/containers/json` → (`1.47`, `/containers/json`); refuses versions outside the range.
    static func splitVersion(_ path: String) throws(DockerAPIError) -> (version: String?, path: String) {
        guard path.hasPrefix("/v") else { return (nil, path) }
        let rest = path.dropFirst(2)
        let end = rest.firstIndex(of: "/") ?? rest.endIndex
        let version = String(rest[..<end])
        guard !version.isEmpty, version.allSatisfy({ $0.isNumber || $0 == "." }) else { return (nil, path) }
        guard let asked = APIVersion(version) else { throw .badRequest("invalid API version: \(version)") }
        if asked > APIVersion(maximumAPIVersion)! {
            throw .badRequest(
                "client version \(version) is too new. Maximum supported API version is \(maximumAPIVersion)")
        }
        if asked < APIVersion(minimumAPIVersion)! {
            throw .badRequest(
                "client version \(version) is too old. Minimum supported API version is \(minimumAPIVersion), please upgrade your client to a newer version"
            )
        }
        let remainder = String(rest[end...])
        return (version, remainder.isEmpty ? "/" : remainder)
    }

    private func route(_ request: APIRequest, _ response: ResponseWriter) throws {
        let (_, path) = try Self.splitVersion(request.path)
        let parts = path.split(separator: "/").map(String.init)
        let method = request.method
        switch parts.first ?? "" {
        case "_ping" where parts.count == 1 && (method == .GET || method == .HEAD):
            return ping(response)
        case "version" where parts.count == 1 && method == .GET:
            return version(response)
        case "info" where parts.count == 1 && method == .GET:
            return try info(response)
        case "containers":
            if try routeContainers(method, Array(parts.dropFirst()), request, response) { return }
        case "exec":
            if try routeExec(method, Array(parts.dropFirst()), request, response) { return }
        case "images":
            let rest = Array(parts.dropFirst())
            if try routeImages(method, rest, request, response) || routeImageManagement(method, rest, request, response)
            {
                return
            }
        case "networks":
            if try routeNetworks(method, Array(parts.dropFirst()), request, response) { return }
        case "volumes":
            if try routeVolumes(method, Array(parts.dropFirst()), request, response) { return }
        case "events" where parts.count == 1 && method == .GET:
            return try events(request, response)
        case "system" where parts == ["system", "df"] && method == .GET:
            return try diskUsage(request, response)
        case "auth" where parts.count == 1 && method == .POST:
            return try login(request, response)
        case "distribution" where method == .GET && parts.count >= 3 && parts.last == "json":
            return try distributionInspect(parts.dropFirst().dropLast().joined(separator: "/"), request, response)
        case "build" where method == .POST:
            throw DockerAPIError.notImplemented("building images is not supported by Berth yet")
        case "session" where method == .POST:
            throw DockerAPIError.notImplemented("BuildKit sessions are not supported by Berth yet")
        default:
            break
        }
        throw DockerAPIError.notFound("page not found")
    }

    private func routeContainers(
        _ method: HTTPMethod, _ parts: [String], _ request: APIRequest, _ response: ResponseWriter
    ) throws -> Bool {
        switch (method, parts.count) {
        case (.GET, 1) where parts[0] == "json":
            try listContainers(request, response)
        case (.POST, 1) where parts[0] == "create":
            try createContainer(request, response)
        case (.GET, 2) where parts[1] == "json":
            try inspectContainer(parts[0], response)
        case (.GET, 2) where parts[1] == "logs":
            try logs(parts[0], request, response)
        case (.POST, 1) where parts[0] == "prune":
            try pruneContainers(request, response)
        case (.GET, 2):
            switch parts[1] {
            case "top": try top(parts[0], request, response)
            case "changes": try changes(parts[0], response)
            case "export": try export(parts[0], response)
            case "stats": try stats(parts[0], request, response)
            case "archive": try getArchive(parts[0], request, response)
            default: return false
            }
        case (.HEAD, 2) where parts[1] == "archive":
            try statPath(parts[0], request, response)
        case (.PUT, 2) where parts[1] == "archive":
            try putArchive(parts[0], request, response)
        case (.DELETE, 1):
            try removeContainer(parts[0], request, response)
        case (.POST, 2):
            switch parts[1] {
            case "start": try startContainer(parts[0], request, response)
            case "stop": try stopContainer(parts[0], request, response)
            case "restart": try restartContainer(parts[0], request, response)
            case "kill": try killContainer(parts[0], request, response)
            case "wait": try waitContainer(parts[0], request, response)
            case "attach": try attach(parts[0], request, response)
            case "exec": try createExec(parts[0], request, response)
            case "pause": try pauseContainer(parts[0], response)
            case "unpause": try unpauseContainer(parts[0], response)
            case "rename": try renameContainer(parts[0], request, response)
            case "resize": try resizeContainer(parts[0], request, response)
            default: return false
            }
        default:
            return false
        }
        return true
    }

    private func routeExec(_ method: HTTPMethod, _ parts: [String], _ request: APIRequest, _ response: ResponseWriter)
        throws -> Bool
    {
        switch (method, parts.count) {
        case (.POST, 2) where parts[1] == "start": try startExec(parts[0], request, response)
        case (.POST, 2) where parts[1] == "resize": try resizeExec(parts[0], request, response)
        case (.GET, 2) where parts[1] == "json": try inspectExec(parts[0], response)
        default: return false
        }
        return true
    }

    private func routeImages(_ method: HTTPMethod, _ parts: [String], _ request: APIRequest, _ response: ResponseWriter)
        throws -> Bool
    {
        if method == .GET, parts == ["json"] {
            try listImages(request, response)
            return true
        }
        if method == .POST, parts == ["create"] {
            try pullImage(request, response)
            return true
        }
        // Image names hold slashes: /images/127.0.0.1:5000/test/busybox:1/json.
        if method == .GET, parts.count >= 2, parts.last == "json" {
            try inspectImage(parts.dropLast().joined(separator: "/"), response)
            return true
        }
        return false
    }
}

/// `1.47` as a comparable pair.
struct APIVersion: Comparable {
    var major: Int
    var minor: Int
    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
        self.major = major
        self.minor = minor
    }
    static func < (a: APIVersion, b: APIVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
}

extension DockerAPI {
    /// A path for a whole archive under the data root (not the run directory, often a small tmpfs).
    func temporaryFile(_ hint: String) throws -> String {
        let directory = engine.layout.root + "/tmp"
        do { try FileSystem.makeDirectories(directory, mode: 0o700) } catch {
            throw DockerAPIError(.internalServerError, "creating \(directory): \(error)")
        }
        return engine.images.store.temporaryPath("api-" + hint, in: directory)
    }

    /// A new file for an upload's body, readable by root only.
    func makeUploadFile() throws -> (path: String, file: BerthOS.FileDescriptor) {
        let path = try temporaryFile("upload")
        return (path, try BerthOS.FileDescriptor.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o600))
    }
}

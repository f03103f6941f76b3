#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthImage
import BerthOS
import FoundationEssentials
import NIOHTTP1
import Synchronization

/// The image endpoints beyond list, inspect and pull: tag, remove, push, save (get), load, history,
/// prune and search, through BerthEngine's ``ImageManagement`` (which writes the image events).
extension DockerAPI {
    /// Routes the image endpoints this file serves; names hold slashes, so the verb is the last part.
    func routeImageManagement(
        _ method: HTTPMethod, _ parts: [String], _ request: APIRequest, _ response: ResponseWriter
    ) throws -> Bool {
        switch (method, parts) {
        case (.POST, ["load"]): try loadImages(request, response)
        case (.POST, ["prune"]): try pruneImages(request, response)
        case (.GET, ["search"]): try searchImages(request)
        case (.GET, ["get"]): try saveImages(request.query["names"] ?? [], response)
        case (.DELETE, _) where !parts.isEmpty: try removeImage(parts.joined(separator: "/"), request, response)
        case (_, _) where parts.count >= 2:
            let name = parts.dropLast().joined(separator: "/")
            switch (method, parts.last!) {
            case (.POST, "tag"): try tagImage(name, request, response)
            case (.POST, "push"): try pushImage(name, request, response)
            case (.GET, "get"): try saveImages([name], response)
            case (.GET, "history"): try imageHistory(name, response)
            default: return false
            }
        default: return false
        }
        return true
    }

    var imageManagement: ImageManagement { ImageManagement(engine.images) }

    func record(_ name: String) throws -> ImageRecord {
        guard let record = engine.images.store.lookup(name) else { throw EngineError.noSuchImage(name) }
        return record
    }

    // MARK: Tag and remove

    func tagImage(_ name: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        _ = try record(name)
        guard let repository = request.value("repo"), !repository.isEmpty else {
            throw DockerAPIError.badRequest("repository name (repo) is required")
        }
        let tag = request.value("tag").flatMap { $0.isEmpty ? nil : $0 } ?? "latest"
        let target = repository + ":" + tag
        guard (try? Reference(parsing: target)) != nil else {
            throw DockerAPIError.badRequest("invalid reference format: \(target)")
        }
        let management = imageManagement
        try BlockingThread.await { try await management.tag(name, target) }
        response.send(.created)
    }

    func removeImage(_ name: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        _ = try record(name)
        let management = imageManagement
        let force = request.flag("force"), prune = !request.flag("noprune")
        let removals = try BlockingThread.await { try await management.remove(name, force: force, prune: prune) }
        response.json(
            removals.map { removal -> [String: String] in
                switch removal {
                case .untagged(let name): return ["Untagged": name]
                case .deleted(let id): return ["Deleted": id]
                }
            })
    }

    // MARK: Push

    /// `POST /images/{name}/push?tag=`: docker's JSON-lines progress; without a tag, every tag of the
    /// repository. Errors after the stream began are its last line, as dockerd reports them.
    func pushImage(_ name: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let tag = request.value("tag") ?? ""
        let repository: Reference
        do { repository = try Reference(parsing: name) } catch {
            throw DockerAPIError.badRequest("invalid reference format: \(name)")
        }
        let bare = Reference(registry: repository.registry, repository: repository.repository)
        var names: [String]
        if !tag.isEmpty {
            names = [Reference(registry: bare.registry, repository: bare.repository, tag: tag).description]
        } else if repository.tag != nil || repository.digest != nil {
            names = [repository.description]
        } else {
            names = engine.images.store.images().compactMap { r in
                guard let ref = try? Reference(parsing: r.name), ref.registry == bare.registry,
                    ref.repository == bare.repository
                else { return nil }
                return r.name
            }.sorted()
        }
        guard !names.isEmpty, names.allSatisfy({ engine.images.store.lookup($0) != nil }) else {
            throw DockerAPIError.notFound(
                "An image does not exist locally with the tag: \(ImageNames.familiar(names.first ?? name))")
        }
        let service = try registryService(request)
        defer { service.release() }
        let management = ImageManagement(service.images)
        let stream = PushStream(response: response)
        stream.line(["status": "The push refers to repository [\(bare.familiar)]"])
        for target in names {
            do {
                try BlockingThread.await(cancellation: response.cancellation) {
                    try await management.push(target, events: { stream.event($0) })
                }
            } catch {
                stream.fail(DockerAPIError.from(error).message)
                return response.finish()
            }
        }
        response.finish()
    }

    /// The image service a pull or push uses: the engine's, or — when the client sent credentials in
    /// `X-Registry-Auth` (base64 JSON: username, password, serveraddress) — one over the same store that
    /// answers the registry's challenges with them.
    func registryService(_ request: APIRequest) throws -> RegistryService {
        guard let header = request.headers.first(name: "X-Registry-Auth"), !header.isEmpty else {
            return RegistryService(engine.images)
        }
        struct AuthConfig: Decodable {
            var username: String?; var password: String?; var serveraddress: String?; var identitytoken: String?
        }
        var text = header.replacing("-", with: "+").replacing("_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text), let auth = try? JSONDecoder().decode(AuthConfig.self, from: data)
        else {
            throw DockerAPIError.badRequest("invalid X-Registry-Auth header")
        }
        guard let username = auth.username, !username.isEmpty else { return RegistryService(engine.images) }
        var options = engine.images.registry.options
        let registry = RegistryClient.loginRegistry(auth.serveraddress ?? "")
        options.credentials.entries[registry] = Credentials(username: username, password: auth.password ?? "")
        return RegistryService(try ImageService(store: engine.images.store, registryOptions: options), owned: true)
    }

    // MARK: Save and load

    /// `GET /images/{name}/get`, `GET /images/get?names=`: a docker-archive (and OCI layout) tar.
    /// Written to a file first, then streamed: the archive is whole before the 200 is sent, so a
    /// failure is an HTTP error.
    func saveImages(_ names: [String], _ response: ResponseWriter) throws {
        guard !names.isEmpty else { throw DockerAPIError.badRequest("no image names given") }
        for name in names { _ = try record(name) }
        let path = try temporaryFile("save")
        defer { unlink(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DockerAPIError(.internalServerError, "cannot create \(path): errno \(errno)") }
        do { try imageManagement.save(names, to: fd) } catch {
            close(fd)
            throw error
        }
        close(fd)
        let file = try FileDescriptor.open(path, O_RDONLY)
        response.begin(contentType: "application/x-tar")
        while let chunk = try? file.read(upTo: 1 << 20), !chunk.isEmpty {
            do { try response.write(chunk) } catch { break }
        }
        response.finish()
    }

    /// `POST /images/load`: the body is an archive `docker save` (or `berth save`) made.
    func loadImages(_ request: APIRequest, _ response: ResponseWriter) throws {
        // The connection wrote the body to a file as it came (any size); a body read whole (a
        // request built in-process) is written out the same way.
        let path: String
        if let upload = request.upload {
            path = upload
        } else {
            let spooled = try makeUploadFile()
            path = spooled.path
            try spooled.file.write(request.body)
        }
        defer { unlink(path) }
        var size = stat()
        guard stat(path, &size) == 0, size.st_size > 0 else {
            throw DockerAPIError.badRequest("no archive in the request body")
        }
        let management = imageManagement
        let records = try BlockingThread.await { try await management.load(from: path) }
        response.begin(contentType: "application/json")
        for record in records {
            try? response.write(
                JSONBody.encode(["stream": "Loaded image: \(ImageNames.familiar(record.name))\n"]) + [10])
        }
        response.finish()
    }

    // MARK: History, prune, search

    struct HistoryEntry: Encodable {
        var Id: String
        var Created: Int
        var CreatedBy: String
        var Tags: [String]?
        var Size: Int64
        var Comment: String

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(Id, forKey: .Id)
            try c.encode(Created, forKey: .Created)
            try c.encode(CreatedBy, forKey: .CreatedBy)
            try c.encode(Tags, forKey: .Tags)
            try c.encode(Size, forKey: .Size)
            try c.encode(Comment, forKey: .Comment)
        }
        enum Keys: String, CodingKey { case Id, Created, CreatedBy, Tags, Size, Comment }
    }

    /// `GET /images/{name}/history`: the config's history, newest first, each step that made a layer
    /// with that layer's size; only the newest has the image's ID (docker's `<missing>` for the rest).
    func imageHistory(_ name: String, _ response: ResponseWriter) throws {
        let record = try record(name)
        let config = self.config(record)
        let created = config?.created.flatMap { Timestamp.parse($0)?.seconds } ?? record.stored
        var entries: [HistoryEntry] = []
        if let history = config?.history, !history.isEmpty {
            var layerIndex = 0
            for step in history {
                var size: Int64 = 0
                if step.empty_layer != true, layerIndex < record.layers.count {
                    size = record.layers[layerIndex].size
                    layerIndex += 1
                }
                entries.append(
                    HistoryEntry(
                        Id: "<missing>", Created: step.created.flatMap { Timestamp.parse($0)?.seconds } ?? created,
                        CreatedBy: step.created_by ?? "", Tags: nil, Size: size, Comment: step.comment ?? ""))
            }
        } else {
            entries = record.layers.map {
                HistoryEntry(Id: "<missing>", Created: created, CreatedBy: "", Tags: nil, Size: $0.size, Comment: "")
            }
        }
        entries.reverse()
        if !entries.isEmpty {
            entries[0].Id = record.config.digest.description
            entries[0].Tags = engine.images.store.images().filter { $0.config.digest == record.config.digest }
                .map { ImageNames.familiar($0.name) }.sorted()
        }
        response.json(entries)
    }

    /// `POST /images/prune`: `dangling=false` (docker's `-a`) removes every image no container uses.
    func pruneImages(_ request: APIRequest, _ response: ResponseWriter) throws {
        let filters = try Filters.parse(request.value("filters"))
        try filters.allow(["dangling", "label", "label!", "until"])
        let dangling = filters.values("dangling").last.map { $0 == "true" || $0 == "1" } ?? true
        let until = try filters.values("until").first.map { try PruneFilters.until($0) }
        let management = imageManagement
        let images = engine.images
        let labels = filters.values("label"), absent = filters.values("label!")
        let result = try BlockingThread.await {
            try await management.prune(all: !dangling) { record in
                let config = (try? images.store.readBlob(record.config.digest)).flatMap {
                    try? JSONDecoder().decode(ImageConfig.self, from: Data($0))
                }
                let imageLabels = config?.config?.Labels ?? [:]
                return Filters(entries: ["label": labels]).matchesLabel(imageLabels)
                    && PruneFilters.labelAbsent(absent, imageLabels)
                    && (until.map { Double(DockerAPI.created(config, fallback: record.stored)) < $0 } ?? true)
            }
        }
        struct Report: Encodable { var ImagesDeleted: [[String: String]]; var SpaceReclaimed: Int64 }
        response.json(
            Report(
                ImagesDeleted: result.removals.map { removal in
                    switch removal {
                    case .untagged(let name): return ["Untagged": name]
                    case .deleted(let id): return ["Deleted": id]
                    }
                }, SpaceReclaimed: result.reclaimed))
    }

    /// `GET /images/search`: Docker Hub's search index is a service of its own (index.docker.io/v1/search),
    /// which Berth does not speak; said as dockerd says an unreachable index.
    func searchImages(_ request: APIRequest) throws {
        let term = request.value("term") ?? ""
        throw DockerAPIError(
            .serviceUnavailable,
            "Get \"https://index.docker.io/v1/search?q=\(term)&n=25\": searching a registry's index is not supported by Berth"
        )
    }
}

/// The image service a request uses, shut down after it when it was made for that request only.
struct RegistryService {
    let images: ImageService
    var owned = false

    init(_ images: ImageService, owned: Bool = false) {
        self.images = images
        self.owned = owned
    }

    func release() {
        guard owned else { return }
        let images = self.images
        _ = try? BlockingThread.await { await images.shutdown() }
    }
}

/// A push's progress as docker's JSON lines: each layer `Preparing`, then `Pushed`, `Layer already
/// exists` or `Mounted from …`, then the digest line and the `aux` record the CLI reads.
final class PushStream: Sendable {
    private let response: ResponseWriter
    private let layers = Mutex<Set<Digest>>([])
    private let begun = Mutex(false)

    init(response: ResponseWriter) { self.response = response }

    private struct Line: Encodable {
        struct Empty: Encodable {}
        var status: String
        var progressDetail = Empty()
        var id: String?
    }

    private struct Aux: Encodable {
        struct Empty: Encodable {}
        struct Detail: Encodable { var Tag: String; var Digest: String; var Size: Int }
        var progressDetail = Empty()
        var aux: Detail
    }

    private struct ErrorLine: Encodable {
        struct Detail: Encodable { var message: String }
        var errorDetail: Detail
        var error: String
    }

    func line(_ fields: [String: String]) { emit(JSONBody.encode(fields)) }

    private func emit(_ json: [UInt8]) {
        begun.withLock { begun in
            if !begun {
                begun = true
                response.begin(contentType: "application/json")
            }
            // Not waited for: events come from the push's tasks, which must not block on the client.
            try? response.write(json + [10], wait: false)
        }
    }

    func fail(_ message: String) {
        emit(JSONBody.encode(ErrorLine(errorDetail: .init(message: message), error: message)))
    }

    func event(_ event: PushEvent) {
        switch event {
        case .started(_, let digests):
            layers.withLock { $0 = Set(digests) }
            for digest in digests { emit(JSONBody.encode(Line(status: "Preparing", id: digest.shortID))) }
        case .blobExists(let digest):
            if isLayer(digest) { emit(JSONBody.encode(Line(status: "Layer already exists", id: digest.shortID))) }
        case .blobMounted(let digest, let repository):
            if isLayer(digest) { emit(JSONBody.encode(Line(status: "Mounted from \(repository)", id: digest.shortID))) }
        case .blobPushed(let digest, _):
            if isLayer(digest) { emit(JSONBody.encode(Line(status: "Pushed", id: digest.shortID))) }
        case .manifestPushed(let target, let digest, let size):
            let tag = target.tag ?? "latest"
            emit(JSONBody.encode(["status": "\(tag): digest: \(digest) size: \(size)"]))
            emit(JSONBody.encode(Aux(aux: .init(Tag: tag, Digest: digest.description, Size: size))))
        }
    }

    private func isLayer(_ digest: Digest) -> Bool { layers.withLock { $0.contains(digest) } }
}

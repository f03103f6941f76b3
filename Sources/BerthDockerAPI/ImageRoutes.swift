#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthImage
import BerthOS
import FoundationEssentials
import Synchronization

/// The image endpoints: list, inspect, and create (pull) with docker's JSON-lines progress.
extension DockerAPI {
    struct ImageSummary: Encodable {
        var Id: String
        var ParentId = ""
        var RepoTags: [String]
        var RepoDigests: [String]
        var Created: Int
        var Size: Int64
        var SharedSize: Int64 = -1
        var Labels: [String: String]
        var Containers: Int = -1
    }

    /// An image's stored records (one per name) grouped by image ID, as docker lists an image once with
    /// all its tags.
    private func groupedImages() -> [(id: Digest, records: [ImageRecord])] {
        var groups: [Digest: [ImageRecord]] = [:]
        for record in engine.images.store.images() { groups[record.config.digest, default: []].append(record) }
        return groups.map { ($0.key, $0.value) }.sorted { $0.records[0].stored > $1.records[0].stored }
    }

    func config(_ record: ImageRecord) -> ImageConfig? {
        guard let bytes = try? engine.images.store.readBlob(record.config.digest) else { return nil }
        return try? JSONDecoder().decode(ImageConfig.self, from: Data(bytes))
    }

    func listImages(_ request: APIRequest, _ response: ResponseWriter) throws {
        let filters = try Filters.parse(request.value("filters"))
        try filters.allow(["reference", "label", "dangling"])
        var summaries: [ImageSummary] = []
        for (id, records) in groupedImages() {
            let config = self.config(records[0])
            let tags = records.map { ImageNames.familiar($0.name) }.sorted()
            // Every stored image has a name: none is dangling.
            if filters.values("dangling").contains(where: { $0 == "true" || $0 == "1" }) { continue }
            guard
                filters.matches("reference", { pattern in tags.contains { ImageNames.matches($0, pattern: pattern) } }),
                filters.matchesLabel(config?.config?.Labels ?? [:])
            else { continue }
            summaries.append(
                ImageSummary(
                    Id: id.description, RepoTags: tags, RepoDigests: Self.repoDigests(records),
                    Created: Self.created(config, fallback: records[0].stored), Size: records[0].size,
                    Labels: config?.config?.Labels ?? [:]))
        }
        response.json(summaries)
    }

    static func repoDigests(_ records: [ImageRecord]) -> [String] {
        Array(
            Set(
                records.compactMap { r -> String? in
                    guard let ref = try? Reference(parsing: r.name) else { return nil }
                    let bare = Reference(registry: ref.registry, repository: ref.repository).familiar
                    return
                        "\(bare.hasSuffix(":latest") ? String(bare.dropLast(7)) : bare)@\(r.indexDigest ?? r.manifestDigest)"
                })
        ).sorted()
    }

    static func created(_ config: ImageConfig?, fallback: Int) -> Int {
        config?.created.flatMap { Timestamp.parse($0)?.seconds } ?? fallback
    }

    struct ImageInspectResponse: Encodable {
        struct GraphDriverSection: Encodable { var Name: String; var Data: [String: String]? }
        struct RootFSSection: Encodable { var `Type`: String; var Layers: [String] }
        var Id: String
        var RepoTags: [String]
        var RepoDigests: [String]
        var Parent = ""
        var Comment = ""
        var Created: String
        var DockerVersion = ""
        var Author = ""
        var Config: ImageConfig.ContainerConfig?
        var Architecture: String
        var Variant: String?
        var Os: String
        var Size: Int64
        var GraphDriver: GraphDriverSection
        var RootFS: RootFSSection
        var Metadata: [String: String]
    }

    func inspectImage(_ name: String, _ response: ResponseWriter) throws {
        guard let record = engine.images.store.lookup(name) else { throw EngineError.noSuchImage(name) }
        let records = engine.images.store.images().filter { $0.config.digest == record.config.digest }
        let config = self.config(record)
        response.json(
            ImageInspectResponse(
                Id: record.config.digest.description, RepoTags: records.map { ImageNames.familiar($0.name) }.sorted(),
                RepoDigests: Self.repoDigests(records),
                Created: config?.created ?? Timestamp.format(seconds: record.stored),
                Config: config?.config, Architecture: config?.architecture ?? record.platform.architecture,
                Variant: config?.variant ?? record.platform.variant, Os: config?.os ?? record.platform.os,
                Size: record.size,
                GraphDriver: .init(Name: Snapshotter.preferred == .overlay ? "overlay2" : "vfs", Data: nil),
                RootFS: .init(Type: "layers", Layers: record.diffIDs.map(\.description)),
                Metadata: ["LastTagTime": Timestamp.format(seconds: record.stored)]))
    }

    /// `POST /images/create?fromImage=…&tag=…`: a pull, its progress as docker's JSON lines. An error
    /// before anything was written is an HTTP error; after, it is the stream's last line
    /// (`{"errorDetail":{"message":…},"error":…}`), as dockerd reports it.
    func pullImage(_ request: APIRequest, _ response: ResponseWriter) throws {
        if let source = request.value("fromSrc"), !source.isEmpty { throw unsupported("importing images (fromSrc)") }
        guard let image = request.value("fromImage"), !image.isEmpty else {
            throw DockerAPIError.badRequest("fromImage is required")
        }
        let tag = request.value("tag") ?? ""
        var text = image
        if !tag.isEmpty { text += (tag.contains(":") ? "@" : ":") + tag }
        let reference: Reference
        do { reference = try Reference(parsing: text) } catch {
            throw DockerAPIError.badRequest("invalid reference format: \(text)")
        }
        let platform: Platform?
        do { platform = try request.value("platform").flatMap { $0.isEmpty ? nil : try Platform(parsing: $0) } } catch {
            throw DockerAPIError.badRequest("\(error)")
        }
        let before = engine.images.store.image(reference.description)?.manifestDigest
        let stream = PullStream(response: response)
        // Credentials from X-Registry-Auth, when the client sent some.
        let registry = try registryService(request)
        defer { registry.release() }
        let service = registry.images
        let record: ImageRecord
        do {
            // A client that goes mid-pull cancels it: its downloads stop and nothing half-pulled stays.
            record = try BlockingThread.await(cancellation: response.cancellation) {
                try await service.pull(reference, platform: platform, progress: { stream.event($0, reference) })
            }
        } catch {
            let api = DockerAPIError.from(error)
            if !stream.fail(api.message) { throw api }
            return response.finish()
        }
        imageManagement.pulled(record)
        stream.line(["status": "Digest: \(record.indexDigest ?? record.manifestDigest)"])
        let familiar = ImageNames.familiar(record.name)
        stream.line([
            "status": before == record.manifestDigest
                ? "Status: Image is up to date for \(familiar)"
                : "Status: Downloaded newer image for \(familiar)"
        ])
        response.finish()
    }
}

/// A pull's progress as docker's JSON lines, written as the pull's tasks report it. The response head
/// goes out with the first line, so that a pull failing before any progress is an HTTP error.
final class PullStream: Sendable {
    private struct State {
        var begun = false
        var lastProgress: [Digest: Double] = [:]
    }
    private let state = Mutex(State())
    private let response: ResponseWriter

    init(response: ResponseWriter) { self.response = response }

    struct ProgressDetail: Encodable {
        var current: Int64?
        var total: Int64?
    }

    struct Line: Encodable {
        var status: String
        var progressDetail: ProgressDetail?
        var progress: String?
        var id: String?
    }

    struct ErrorLine: Encodable {
        struct Detail: Encodable { var message: String }
        var errorDetail: Detail
        var error: String
    }

    func line(_ fields: [String: String]) {
        emit(JSONBody.encode(fields))
    }

    private func emit(_ json: [UInt8]) {
        state.withLock { s in
            if !s.begun {
                s.begun = true
                response.begin(contentType: "application/json", wait: false)
            }
            // Not waited for: this runs on the pull's tasks, which must not block on the client.
            try? response.write(json + [10], wait: false)
        }
    }

    /// Reports `message` in the stream; false if nothing was written yet (the caller answers with an
    /// HTTP error instead).
    func fail(_ message: String) -> Bool {
        let begun = state.withLock { $0.begun }
        guard begun else { return false }
        emit(JSONBody.encode(ErrorLine(errorDetail: .init(message: message), error: message)))
        return true
    }

    func event(_ event: PullEvent, _ reference: Reference) {
        switch event {
        case .resolved:
            // docker names the repository's path here, without the registry.
            emit(
                JSONBody.encode(
                    Line(
                        status: "Pulling from \(reference.repository)",
                        id: reference.tag ?? reference.digest?.description ?? "latest")))
        case .layerExists(let digest):
            emit(JSONBody.encode(Line(status: "Already exists", progressDetail: .init(), id: digest.shortID)))
        case .layerStarted(let digest, _):
            emit(JSONBody.encode(Line(status: "Pulling fs layer", progressDetail: .init(), id: digest.shortID)))
        case .layerProgress(let digest, let received, let total):
            // At most ten lines a second per layer, as a terminal can show them.
            let now = Timestamp.monotonic()
            let due = state.withLock { s -> Bool in
                if let last = s.lastProgress[digest], now - last < 0.1 { return false }
                s.lastProgress[digest] = now
                return true
            }
            guard due else { return }
            emit(
                JSONBody.encode(
                    Line(
                        status: "Downloading", progressDetail: .init(current: received, total: total),
                        progress: Self.bar(received, total), id: digest.shortID)))
        case .layerDone(let digest):
            emit(JSONBody.encode(Line(status: "Download complete", progressDetail: .init(), id: digest.shortID)))
            emit(JSONBody.encode(Line(status: "Pull complete", progressDetail: .init(), id: digest.shortID)))
        }
    }

    /// `[=====>      ]  1.2MB/3.4MB`, docker's progress text.
    static func bar(_ current: Int64, _ total: Int64) -> String {
        guard total > 0 else { return ImageNames.size(current) }
        let width = 50
        let filled = min(width, Int(Double(current) / Double(total) * Double(width)))
        let arrow = filled < width ? ">" : ""
        return "[" + String(repeating: "=", count: max(0, filled - (arrow.isEmpty ? 0 : 1))) + arrow
            + String(repeating: " ", count: width - filled) + "] " + ImageNames.size(current) + "/"
            + ImageNames.size(total)
    }
}

/// Image names as docker prints them.
enum ImageNames {
    /// `busybox:latest` for `docker.io/library/busybox:latest`; other registries keep their host.
    static func familiar(_ name: String) -> String {
        (try? Reference(parsing: name))?.familiar ?? name
    }

    /// docker's `reference` filter: the pattern matched against the name with and without its tag.
    static func matches(_ familiarName: String, pattern: String) -> Bool {
        let bare = familiarName.split(separator: ":").dropLast().joined(separator: ":")
        return glob(pattern, familiarName) || (!pattern.contains(":") && glob(pattern, bare))
    }

    private static func glob(_ pattern: String, _ text: String) -> Bool {
        fnmatch(pattern, text, 0) == 0
    }

    /// 12.3MB, as docker's progress prints sizes.
    static func size(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
        if unit == 0 { return "\(bytes)B" }
        return "\((value * 100).rounded() / 100)\(units[unit])"
    }
}

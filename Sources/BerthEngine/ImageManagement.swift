import BerthImage
import BerthOS

/// The image operations users ask for by name — tag, remove, push, save, load, prune — with docker's
/// rules (what needs `force`) and the `image` events dockerd writes for each. Over an ``ImageService``
/// alone, so the `berth` image verbs (which need no engine) and the Docker API share it.
public struct ImageManagement: Sendable {
    public let service: ImageService
    let events: EventLog

    public init(_ service: ImageService) {
        self.service = service
        events = EventLog(layout: EngineLayout(root: service.store.root))
    }

    /// What removing an image did, in docker's order: names untagged, then content deleted.
    public enum Removal: Sendable, Equatable {
        case untagged(String)
        case deleted(String)
    }

    /// An `image` event: Actor ID the image's ID (docker's, the config digest) unless `id` says otherwise.
    func event(_ action: String, _ record: ImageRecord, name: String? = nil, id: String? = nil) {
        events.append(
            type: "image", action: action, id: id ?? record.config.digest.description,
            attributes: ["name": name ?? record.name])
    }

    /// Records a pull (Actor ID the reference, as dockerd's).
    public func pulled(_ record: ImageRecord) {
        event("pull", record, id: record.name)
    }

    public func tag(_ source: String, _ target: String) async throws(ImageError) {
        try await service.tag(source, target)
        if let record = service.store.lookup(target) { event("tag", record) }
    }

    /// `rmi`: by name, that name goes; by ID, every name of the image (refused without `force` when there
    /// are several). Refused without `force` while a container was made from it. When no name is left
    /// the image is deleted, and with `prune` the content nothing else references goes too.
    public func remove(_ reference: String, force: Bool, prune: Bool) async throws(ImageError) -> [Removal] {
        guard let record = service.store.lookup(reference) else { throw .notFound("image \(reference)") }
        let imageID = record.config.digest
        let siblings = service.store.images().filter { $0.config.digest == imageID }
        let byName = (try? Reference(parsing: reference))?.description == record.name
        let names = byName ? [record.name] : siblings.map(\.name).sorted()
        if !byName && names.count > 1 && !force {
            throw .inUse(
                "image \(imageID.shortID) (must be forced)", "several repositories: \(names.joined(separator: ", "))")
        }
        if !force, let user = service.store.containers().first(where: { names.contains($0.image) }) {
            throw .inUse(
                "image \(ImageManagement.familiar(record.name)) (must force)", "container \(String(user.id.prefix(12)))"
            )
        }
        var removals: [Removal] = []
        for name in names {
            try service.store.removeImage(name)
            removals.append(.untagged(ImageManagement.familiar(name)))
            event("untag", record, name: name)
        }
        guard !service.store.images().contains(where: { $0.config.digest == imageID }) else { return removals }
        removals.append(.deleted(imageID.description))
        event("delete", record)
        if prune {
            let collected = try service.store.collectGarbage()
            let layers = Set(record.layers.map(\.digest))
            removals += collected.removedBlobs.filter { layers.contains($0) }.map { .deleted($0.description) }
        }
        return removals
    }

    /// `push`: Actor ID the pushed reference.
    public func push(
        _ name: String, to destination: Reference? = nil, events report: @escaping @Sendable (PushEvent) -> Void
    ) async throws(ImageError) {
        try await service.push(name, to: destination, events: report)
        if let record = service.store.lookup(name) {
            let target = destination?.description ?? record.name
            event("push", record, name: target, id: target)
        }
    }

    /// `save`: the images as one archive (an OCI layout that is also a docker-archive) written to `fd`.
    public func save(_ names: [String], to fd: Int32) throws(ImageError) {
        let records = try names.map { name throws(ImageError) -> ImageRecord in
            guard let record = service.store.lookup(name) else { throw .notFound("image \(name)") }
            return record
        }
        try service.save(names, to: fd)
        for record in records { event("save", record) }
    }

    /// `load`: the images of an archive or OCI layout at `path`.
    public func load(from path: String) async throws(ImageError) -> [ImageRecord] {
        let records = try await service.load(from: path)
        for record in records { event("load", record) }
        return records
    }

    /// `image prune`: every stored image has a name, so none is dangling; with `all`, the images no
    /// container was made from (that `include` accepts) are removed. Then the content nothing references
    /// is collected. Returns what was removed and the bytes reclaimed.
    public func prune(all: Bool, where include: (ImageRecord) -> Bool = { _ in true }) async throws(ImageError) -> (
        removals: [Removal], reclaimed: Int64
    ) {
        var removals: [Removal] = []
        if all {
            let used = Set(service.store.containers().map(\.image))
            for record in service.store.images() where !used.contains(record.name) && include(record) {
                guard service.store.image(record.name) != nil else { continue }
                removals += try await remove(record.name, force: false, prune: false)
            }
        }
        let collected = try service.store.collectGarbage()
        return (removals, collected.reclaimedBytes)
    }

    /// `busybox:latest` for `docker.io/library/busybox:latest`, as docker prints names.
    static func familiar(_ name: String) -> String {
        (try? Reference(parsing: name))?.familiar ?? name
    }
}

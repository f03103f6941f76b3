#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import Logging
import NIOCore
import Synchronization

/// The image layer's front door: pull, push, list, remove, prepare root filesystems.
///
/// One actor per data root. Concurrent pulls of the same image (or the same layer from different
/// images) in this process share one download; across processes, content-addressed names and atomic
/// renames make the second writer harmless, and the store's flock keeps gc away from a pull in flight.
public actor ImageService {
    public nonisolated let store: ContentStore
    public nonisolated let registry: RegistryClient
    public nonisolated let unpackOptions: UnpackOptions
    let logger: Logger
    private var pulls: [String: SharedTask<ImageRecord>] = [:]
    private var layers: [Digest: SharedTask<[(path: String, target: String)]>] = [:]

    public init(
        store: ContentStore, registryOptions: RegistryOptions = RegistryOptions(),
        unpackOptions: UnpackOptions = UnpackOptions(), logger: Logger = Logger(label: "berth.image")
    ) throws(ImageError) {
        self.store = store
        self.registry = try RegistryClient(options: registryOptions, logger: logger)
        self.unpackOptions = unpackOptions
        self.logger = logger
    }

    public func shutdown() async { await registry.shutdown() }

    // MARK: Pull

    /// Pulls `reference` for `platform` (the host's by default): manifest (or index → platform manifest),
    /// config, then every layer in parallel, each streamed through digest check, decompression and
    /// unpack into its snapshot. The image is registered only when everything verified.
    /// Cancelling the calling task stops the pull (its downloads end, its temporary files go) once no
    /// other caller waits for the same pull.
    public func pull(_ reference: Reference, platform: Platform? = nil, progress: PullProgress? = nil)
        async throws(ImageError) -> ImageRecord
    {
        let key = "\(reference)|\(platform?.description ?? "")"
        if let running = pulls[key], let waiter = running.join() {
            do { return try await waiter.value() } catch { throw ImageError.wrap(error) }
        }
        let shared = SharedTask(
            Task { () async throws -> ImageRecord in
                try await self.pullThroughMirrors(reference, platform: platform, progress: progress)
            })
        let waiter = shared.join()!
        pulls[key] = shared
        defer { if pulls[key] === shared { pulls[key] = nil } }
        do { return try await waiter.value() } catch { throw ImageError.wrap(error) }
    }

    public func pull(_ text: String, platform: Platform? = nil, progress: PullProgress? = nil) async throws(ImageError)
        -> ImageRecord
    {
        try await pull(try Reference(parsing: text), platform: platform, progress: progress)
    }

    /// Tries the registry's mirrors in order (dockerd's registry-mirrors, podman's registries.conf): the
    /// image is stored under its own name whichever answered; the registry itself is the last resort.
    private func pullThroughMirrors(_ reference: Reference, platform: Platform?, progress: PullProgress?)
        async throws(ImageError) -> ImageRecord
    {
        for mirror in registry.options.mirrors[reference.registry] ?? [] {
            let source = Reference(
                registry: RegistryOptions.mirrorHost(mirror), repository: reference.repository,
                tag: reference.tag, digest: reference.digest)
            do { return try await doPull(reference, from: source, platform: platform, progress: progress) } catch {
                logger.notice("mirror \(mirror) could not serve \(reference): \(error); trying the next source")
            }
        }
        return try await doPull(reference, from: reference, platform: platform, progress: progress)
    }

    private func doPull(
        _ reference: Reference, from source: Reference, platform requested: Platform?, progress: PullProgress?
    ) async throws(ImageError) -> ImageRecord {
        let lock = try await store.sharedLock()
        defer { lock.close() }
        let platform = requested ?? Platform.host
        do {
            var fetched = try await registry.fetchManifest(source)
            var indexBytes: [UInt8]?
            var indexDigest: Digest?
            var document = try ManifestDocument.parse(
                fetched.bytes, mediaType: fetched.mediaType, what: "manifest \(reference)")
            if case .index(let index) = document {
                guard let chosen = Platform.select(from: index, for: platform) else {
                    throw ImageError.noMatchingPlatform(
                        platform.description, available: index.manifests.compactMap { $0.platform?.description })
                }
                indexBytes = fetched.bytes
                indexDigest = fetched.digest
                fetched = try await registry.fetchManifest(source, chosen.digest.description)
                document = try ManifestDocument.parse(
                    fetched.bytes, mediaType: fetched.mediaType ?? chosen.mediaType, what: "manifest \(chosen.digest)")
            }
            guard case .manifest(let manifest) = document else {
                throw ImageError.invalidManifest(reference.description, "an index inside an index")
            }
            for layer in manifest.layers where MediaType.layerCompression(layer.mediaType) == nil {
                throw ImageError.unsupportedMediaType(layer.mediaType, what: "layer \(layer.digest)")
            }
            guard
                manifest.config.mediaType == MediaType.ociConfig || manifest.config.mediaType == MediaType.dockerConfig
            else {
                throw ImageError.unsupportedMediaType(
                    manifest.config.mediaType, what: "config \(manifest.config.digest)")
            }
            progress?(.resolved(image: reference.description, manifest: fetched.digest, layers: manifest.layers.count))
            let configBytes =
                store.hasBlob(manifest.config.digest)
                ? try store.readBlob(manifest.config.digest)
                : try await registry.fetchSmallBlob(source, manifest.config)
            let config: ImageConfig
            do { config = try ImageCoding.decode(ImageConfig.self, configBytes) } catch {
                throw ImageError.invalidManifest("config \(manifest.config.digest)", "\(error)")
            }
            guard config.rootfs.diff_ids.count == manifest.layers.count else {
                throw ImageError.invalidManifest(
                    reference.description,
                    "\(manifest.layers.count) layers but \(config.rootfs.diff_ids.count) diff_ids")
            }
            let chainIDs = config.chainIDs
            try await fetchLayers(
                source, manifest.layers, diffIDs: config.rootfs.diff_ids, chainIDs: chainIDs, progress: progress)
            try store.writeBlob(configBytes, expected: manifest.config.digest, what: "config")
            try store.writeBlob(fetched.bytes, expected: fetched.digest, what: "manifest")
            if let indexBytes { try store.writeBlob(indexBytes, expected: indexDigest, what: "index") }
            let record = ImageRecord(
                name: reference.description, manifestDigest: fetched.digest,
                manifestMediaType: manifest.mediaType ?? MediaType.ociManifest, indexDigest: indexDigest,
                config: manifest.config, layers: manifest.layers, diffIDs: config.rootfs.diff_ids,
                platform: Platform(
                    os: config.os ?? platform.os, architecture: config.architecture ?? platform.architecture,
                    variant: config.variant),
                stored: Int(time(nil)))
            try store.saveImage(record)
            return record
        } catch {
            throw .pulling(reference.description, ImageError.wrap(error).cause)
        }
    }

    /// Downloads and unpacks missing layers, at most `parallelDownloads` at once.
    private func fetchLayers(
        _ reference: Reference, _ descriptors: [Descriptor], diffIDs: [Digest], chainIDs: [Digest],
        progress: PullProgress?
    ) async throws(ImageError) {
        var tasks: [SharedTask<[(path: String, target: String)]>.Waiter] = []
        let gate = Gate(limit: max(1, registry.options.parallelDownloads))
        for (index, descriptor) in descriptors.enumerated() {
            let chainID = chainIDs[index]
            if let running = layers[chainID], let waiter = running.join() {
                tasks.append(waiter)
                continue
            }
            let haveSnapshot = FileSystem.isDirectory(store.snapshotPath(chainID))
            if haveSnapshot && store.hasBlob(descriptor.digest) {
                progress?(.layerExists(descriptor.digest))
                tasks.append(SharedTask(Task { [] }).join()!)
                continue
            }
            let store = self.store, registry = self.registry, options = self.unpackOptions, diffID = diffIDs[index]
            let task = Task { () async throws -> [(path: String, target: String)] in
                await gate.enter()
                defer { Task { await gate.leave() } }
                try Task.checkCancellation()
                if store.hasBlob(descriptor.digest) {
                    let temporary = store.temporaryPath(chainID.hex, in: "\(store.root)/snapshots")
                    do {
                        try FileSystem.makeDirectories(temporary, mode: 0o755)
                        let result = try unpackLocalBlob(
                            store: store, descriptor: descriptor, expectedDiffID: diffID,
                            into: try Root(path: temporary), options: options)
                        try commitSnapshot(store: store, temporary: temporary, chainID: chainID)
                        progress?(.layerDone(descriptor.digest))
                        return result.links
                    } catch {
                        try? FileSystem.removeTree(temporary)
                        throw error
                    }
                }
                progress?(.layerStarted(descriptor.digest, size: descriptor.size))
                let download = try LayerDownload(
                    store: store, descriptor: descriptor, unpack: !haveSnapshot, options: options)
                do {
                    try await registry.fetchBlob(reference, descriptor, into: download) { received in
                        progress?(.layerProgress(descriptor.digest, received: received, total: descriptor.size))
                    }
                    let links = try download.commit(expectedDiffID: diffID, chainID: chainID)
                    progress?(.layerDone(descriptor.digest))
                    return links
                } catch {
                    download.discard()
                    throw error
                }
            }
            let shared = SharedTask(task)
            layers[chainID] = shared
            tasks.append(shared.join()!)
        }
        // Every layer task is waited for, even after a failure or a cancellation, so that none is still
        // writing its temporary files when the pull reports its end.
        var failure: (any Error)?
        var results: [[(path: String, target: String)]] = []
        for task in tasks {
            do { results.append(try await task.value()) } catch {
                if failure == nil {
                    failure = error
                    for t in tasks { t.leave() }
                }
                results.append([])
            }
        }
        for chainID in chainIDs { layers[chainID] = nil }
        if let failure { throw ImageError.wrap(failure) }
        do {
            for (index, links) in results.enumerated() {
                try resolvePendingLinks(
                    store: store, chainIDs: chainIDs, layer: index, links: links,
                    layerName: descriptors[index].digest.description)
            }
        } catch { throw ImageError.wrap(error) }
    }

    // MARK: Push

    /// Pushes a stored image to `destination` (by default its own name), each step as a line of text.
    public func push(_ name: String, to destination: Reference? = nil, progress: (@Sendable (String) -> Void)? = nil)
        async throws(ImageError)
    {
        try await push(
            name, to: destination,
            events: { event in
                if case .started = event { return }
                progress?(event.description)
            })
    }

    /// Pushes a stored image to `destination` (by default its own name): blobs the registry lacks, then
    /// the manifest under the destination's tag, reporting each step as it happens.
    public func push(_ name: String, to destination: Reference? = nil, events: @escaping @Sendable (PushEvent) -> Void)
        async throws(ImageError)
    {
        guard let record = store.lookup(name) else { throw .notFound("image \(name)") }
        let target: Reference
        if let destination { target = destination } else { target = try Reference(parsing: record.name) }
        do {
            events(.started(target, layers: record.layers.map(\.digest)))
            for blob in record.layers + [record.config] {
                if try await registry.blobExists(target, blob.digest) {
                    events(.blobExists(blob.digest))
                    continue
                }
                if let source = try? Reference(parsing: record.name), source.registry == target.registry,
                    source.repository != target.repository,
                    try await registry.mountBlob(target, digest: blob.digest, from: source.repository)
                {
                    events(.blobMounted(blob.digest, from: source.repository))
                    continue
                }
                guard let size = store.blobSize(blob.digest) else { throw ImageError.notFound("blob \(blob.digest)") }
                try await registry.pushBlob(target, digest: blob.digest, file: store.blobPath(blob.digest), size: size)
                events(.blobPushed(blob.digest, size: size))
            }
            let manifest = try store.readBlob(record.manifestDigest)
            try await registry.pushManifest(
                target, tag: target.tag ?? target.digest?.description ?? "latest",
                bytes: manifest, mediaType: record.manifestMediaType)
            events(.manifestPushed(target, digest: record.manifestDigest, size: manifest.count))
        } catch {
            throw .pushing(target.description, ImageError.wrap(error).cause)
        }
    }

    // MARK: Names

    /// Removes a name; blobs and snapshots go at the next `collectGarbage` once nothing references them.
    public func remove(_ name: String) throws(ImageError) {
        guard let record = store.lookup(name) else { throw .notFound("image \(name)") }
        let users = store.containers().filter { $0.image == record.name }
        if let user = users.first { throw .inUse("image \(record.name)", "container \(user.id)") }
        try store.removeImage(record.name)
    }

    /// Adds another name for a stored image.
    public func tag(_ source: String, _ target: String) throws(ImageError) {
        guard var record = store.lookup(source) else { throw .notFound("image \(source)") }
        record.name = try Reference(parsing: target).description
        try store.saveImage(record)
    }
}

/// A task several callers wait for (one pull asked for twice, a layer two images share): it is
/// cancelled only when every caller that joined it has left (was cancelled or gave up), so one
/// client going away does not fail another's pull.
final class SharedTask<T: Sendable>: Sendable {
    let task: Task<T, any Error>
    private let counts = Mutex((joined: 0, left: 0, cancelled: false))

    init(_ task: Task<T, any Error>) { self.task = task }

    /// One caller's wait; leaving twice counts once.
    final class Waiter: Sendable {
        let shared: SharedTask<T>
        private let gone = Atomic<Bool>(false)
        init(_ shared: SharedTask<T>) { self.shared = shared }

        /// The task's result; cancelling the calling task leaves.
        func value() async throws -> T {
            try await withTaskCancellationHandler {
                try await shared.task.value
            } onCancel: {
                self.leave()
            }
        }

        func leave() {
            if !gone.exchange(true, ordering: .relaxed) { shared.left() }
        }
    }

    /// A new waiter, or nil once the task was given up (the caller starts another).
    func join() -> Waiter? {
        let joined = counts.withLock { c -> Bool in
            if c.cancelled { return false }
            c.joined += 1
            return true
        }
        return joined ? Waiter(self) : nil
    }

    private func left() {
        let cancel = counts.withLock { c -> Bool in
            c.left += 1
            guard c.left >= c.joined, !c.cancelled else { return false }
            c.cancelled = true
            return true
        }
        if cancel { task.cancel() }
    }
}

/// A counting semaphore for tasks.
actor Gate {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []
    init(limit: Int) { available = limit }
    func enter() async {
        if available > 0 { available -= 1; return }
        await withCheckedContinuation { waiters.append($0) }
    }
    func leave() {
        if waiters.isEmpty { available += 1 } else { waiters.removeFirst().resume() }
    }
}

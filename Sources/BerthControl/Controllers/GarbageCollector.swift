import BerthAPI
import BerthKube
import Foundation
import Logging

/// Upstream's garbage collector: all cascading deletion happens here, off the API's request path (the API
/// server only marks an owner or removes it, as kube-apiserver does).
///
/// - Background (the default delete): the owner is gone; an object whose ownerReferences all point to
///   owners that no longer exist is deleted (Background), and one with some live owners loses only its
///   dangling references. The same catches owners removed any other way (another server, a crash, an
///   object created with a reference to an owner that is gone or was re-created with a new uid).
/// - Foreground: the owner is kept, marked, with the "foregroundDeletion" finalizer; its dependents are
///   deleted (in foreground too when their reference has blockOwnerDeletion), and once none that blocks it
///   is left the finalizer is removed, which lets the owner go.
/// - Orphan: the owner is kept, marked, with the "orphan" finalizer; its references are removed from every
///   dependent, then the finalizer, which lets the owner go.
///
/// It holds only metadata (a ``MetaV1/PartialObjectMetadata`` informer per served kind), as
/// kube-controller-manager's collector does: owners, uids and finalizers are all it decides on. An owner
/// exists when an object of its apiVersion/kind and name (in the dependent's namespace, unless the owner
/// kind is cluster-scoped) has the referenced uid; a kind Berth does not serve counts as existing, so
/// nothing is ever deleted for an owner the collector cannot see. A missing owner is always confirmed
/// with an uncached read before anything is changed. Every change it makes is a delete with the uid as
/// precondition or a merge patch carrying the resourceVersion it decided on, so a decision made on a
/// stale view fails with a conflict (and is made again) instead of overwriting a newer object.
///
/// Objects are checked when they are added or their references change, when an object they reference is
/// deleted, and by a sweep of every informer cache every `sweepInterval`. An owner waiting for the collector
/// is checked when it is marked, whenever one of its dependents is deleted, and by the sweep. An orphaning
/// owner's dependents are found by uncached reads, not the caches: a dependent the caches had not seen
/// yet would otherwise be left with a reference to a deleted owner, and collected when it was meant to be
/// orphaned. A foreground owner's come from the caches (see `cachedDependents`).
struct GarbageCollector: ControlLoop {
    typealias Metadata = MetaV1.PartialObjectMetadata

    let name = "garbage-collector"
    let client: any KubeClient
    /// One metadata informer per served type, by `Self.typeID`.
    let informers: [String: Informer<Metadata>]
    /// Custom kinds (CustomResourceDefinitions') as last read, each with a metadata informer of its own
    /// made when the kind is first seen.
    let customKinds: CustomKinds
    let queue = WorkQueue(name: "garbage-collector")
    let logger: Logger
    let workers: Int
    let sweepInterval: Duration = .seconds(30)
    static let ownerIndex = "gc-owner-uid"

    init(_ ctx: ControllerContext) {
        client = ctx.client("garbage-collector")
        logger = ctx.logger
        workers = max(1, min(ctx.config.workers, 4))
        customKinds = CustomKinds(factory: ctx.informers)
        var informers: [String: Informer<Metadata>] = [:]
        for r in Registry.stored {
            let informer = ctx.informers.metadataInformer(r)
            informer.addIndex(Self.ownerIndex) { object in object.metadata.ownerReferences.map(\.uid) }
            informers[Self.typeID(r)] = informer
        }
        self.informers = informers
        let queue = self.queue, customKinds = self.customKinds, builtIn = informers
        let all: @Sendable () -> [String: Informer<Metadata>] = {
            builtIn.merging(customKinds.informers, uniquingKeysWith: { kept, _ in kept })
        }
        for (id, informer) in builtIn { Self.observe(informer, id: id, queue: queue, all: all) }
        customKinds.observe = { informer, id in Self.observe(informer, id: id, queue: queue, all: all) }
    }

    /// Queues what an informer's events make worth a look: objects that gained owners or wait for the
    /// collector, and on a delete the object's owners and dependents (in every informer, `all`).
    static func observe(
        _ informer: Informer<Metadata>, id: String, queue: WorkQueue,
        all: @escaping @Sendable () -> [String: Informer<Metadata>]
    ) {
        informer.onChange { event in
            switch event {
            case .added(let object):
                if Self.hasOwners(object) || Self.awaitsCollector(object) {
                    Task { await queue.add(Self.itemKey(id, object)) }
                }
            case .updated(let old, let new):
                if Self.awaitsCollector(new)
                    || (Self.hasOwners(new) && old.metadata.ownerReferences != new.metadata.ownerReferences)
                {
                    Task { await queue.add(Self.itemKey(id, new)) }
                }
            case .deleted(let object):
                // Its dependents may now be orphans, and an owner deleting in foreground may be done.
                let namespace = object.metadata.namespace
                var keys = object.metadata.ownerReferences.compactMap { Self.ownerKey($0, namespace: namespace) }
                guard let uid = object.metadata.uid else { return }
                for (dependentID, informer) in all() {
                    for dependent in informer.byIndex(Self.ownerIndex, uid) {
                        keys.append(Self.itemKey(dependentID, dependent))
                    }
                }
                if !keys.isEmpty { Task { for key in keys { await queue.add(key) } } }
            }
        }
    }

    /// The informer of a type: built-in, or a custom kind's once the collector has seen its definition.
    func informer(_ r: ResourceType) -> Informer<Metadata>? {
        informers[Self.typeID(r)] ?? customKinds.informers[Self.typeID(r)]
    }

    func run() async {
        await withTaskGroup(of: Void.self) { g in
            g.addTask {
                await runWorkers(
                    queue, count: workers, sync: sync,
                    onError: { key, error in
                        logger.debug("garbage collection failed", metadata: ["object": "\(key)", "error": "\(error)"])
                    })
            }
            g.addTask {
                while !Task.isCancelled {
                    do { try await Task.sleep(for: sweepInterval) } catch { return }
                    await sweep()
                }
            }
            g.addTask { await customKinds.runInformers() }
            g.addTask {
                // Custom kinds defined before the collector started get their informers now.
                _ = await customKinds.refresh(client)
            }
            await g.waitForAll()
        }
    }

    /// Queues every cached object that has an owner the caches do not know (an uncached read has the
    /// last word). Custom kinds defined since the last sweep get their informers first.
    func sweep() async {
        _ = await customKinds.refresh(client)
        for (id, informer) in informers.merging(customKinds.informers, uniquingKeysWith: { kept, _ in kept }) {
            for object in informer.list() {
                if Self.awaitsCollector(object) {
                    await queue.add(Self.itemKey(id, object))
                    continue
                }
                guard Self.hasOwners(object) && !object.isTerminating else { continue }
                let namespace = object.metadata.namespace
                if object.metadata.ownerReferences.contains(where: {
                    cachedOwnerState($0, namespace: namespace) != .exists
                }) {
                    await queue.add(Self.itemKey(id, object))
                }
            }
        }
    }

    enum OwnerState { case exists, absent, unknown }

    /// An owner reference resolved: the owner's type (nil: a kind Berth does not serve), namespace, name, uid.
    struct Owner {
        var type: ResourceType?
        var namespace: String?
        var name: String
        var uid: String
    }

    /// nil for a reference that cannot name an owner (missing fields, or a namespaced owner of a
    /// cluster-scoped object), which counts as absent (upstream treats it as unresolvable).
    static func resolve(_ ref: MetaV1.OwnerReference, namespace: String?, custom: [ResourceType] = []) -> Owner? {
        guard !ref.apiVersion.isEmpty, !ref.kind.isEmpty, !ref.name.isEmpty, !ref.uid.isEmpty else { return nil }
        guard
            let r = Registry.find(apiVersion: ref.apiVersion, kind: ref.kind)
                ?? custom.first(where: { $0.apiVersion == ref.apiVersion && $0.kind == ref.kind })
        else {
            return Owner(type: nil, namespace: nil, name: ref.name, uid: ref.uid)
        }
        if r.namespaced && (namespace ?? "").isEmpty { return nil }
        return Owner(type: r, namespace: r.namespaced ? namespace : nil, name: ref.name, uid: ref.uid)
    }

    /// What the informer caches say about an owner reference; a custom resource owner is `.absent` to
    /// them (no cache), which sends the decision to an uncached read.
    func cachedOwnerState(_ ref: MetaV1.OwnerReference, namespace: String?) -> OwnerState {
        guard let owner = Self.resolve(ref, namespace: namespace, custom: customKinds.current) else { return .absent }
        guard let r = owner.type else { return .unknown }
        guard let informer = informer(r) else { return .absent }
        let cached = informer.get(namespace: owner.namespace, name: owner.name)
        return cached?.metadata.uid == owner.uid ? .exists : .absent
    }

    /// The owner reference checked against the caches and, when they say it is gone, an uncached read.
    func ownerState(_ ref: MetaV1.OwnerReference, namespace: String?) async throws -> OwnerState {
        var cached = cachedOwnerState(ref, namespace: namespace)
        if cached == .unknown, Registry.find(apiVersion: ref.apiVersion, kind: ref.kind) == nil {
            // Perhaps a kind defined since the custom kinds were last read.
            _ = await customKinds.refresh(client)
            cached = cachedOwnerState(ref, namespace: namespace)
        }
        if cached != .absent { return cached }
        guard let owner = Self.resolve(ref, namespace: namespace, custom: customKinds.current), let r = owner.type
        else { return .absent }
        let live = try await client.getMetadata(r, namespace: owner.namespace, name: owner.name)
        return live?.metadata.uid == owner.uid ? .exists : .absent
    }

    func sync(_ key: String) async throws {
        guard let (r, namespace, name) = parse(key) else { return }
        if let cached = informer(r)?.get(namespace: namespace, name: name) {
            if Self.awaitsCollector(cached) {
                try await finishDeletion(r, namespace: namespace, name: name)
                return
            }
            // An owner of a kind not known yet may be a custom resource defined since: its informer
            // is made now, so the owner's deletion is seen when it comes.
            let refs = cached.metadata.ownerReferences
            if refs.contains(where: { cachedOwnerState($0, namespace: namespace) == .unknown }) {
                _ = await customKinds.refresh(client)
            }
            // Fast path: every owner is in the caches (most objects, most of the time).
            if refs.allSatisfy({ cachedOwnerState($0, namespace: namespace) != .absent }) {
                return
            }
        }
        // Decide on the object as stored, not as cached: it may have been adopted or re-created meanwhile.
        guard let object = try await client.getMetadata(r, namespace: namespace, name: name) else { return }
        if Self.awaitsCollector(object) && informer(r) == nil {
            // A custom kind whose informer is not there yet: not found waiting in the cache above.
            try await finishDeletion(r, namespace: namespace, name: name)
            return
        }
        if object.isTerminating { return }
        let refs = object.metadata.ownerReferences
        if refs.isEmpty { return }
        var dangling: Set<String> = []
        for ref in refs {
            if try await ownerState(ref, namespace: namespace) == .absent { dangling.insert(ref.uid) }
        }
        if dangling.isEmpty { return }
        if refs.allSatisfy({ dangling.contains($0.uid) }) {
            do {
                try await client.delete(
                    r, namespace: namespace, name: name, gracePeriod: nil, uid: object.metadata.uid,
                    propagation: "Background")
                logger.debug("garbage collected", metadata: ["object": "\(key)"])
            } catch let e as APIError where e.code == 404 || e.code == 409 {
                // Gone, or a new object of the same name: nothing to collect.
            }
            return
        }
        // A conflict (the object changed since it was read) fails the sync, which the queue retries.
        try await patchMetadata(
            r, object, ["ownerReferences": Self.list(refs.filter { !dangling.contains($0.uid) })])
    }

    // MARK: foreground and orphan deletion

    /// Marked for deletion and holding one of the collector's finalizers.
    static func awaitsCollector(_ object: Metadata) -> Bool {
        guard object.isTerminating else { return false }
        let finalizers = object.metadata.finalizers
        return finalizers.contains(DeletionFinalizers.foreground) || finalizers.contains(DeletionFinalizers.orphan)
    }

    /// Orphans or deletes the dependents of an owner being deleted, then removes the finalizer that was
    /// waiting for that. Orphaning comes first: an owner with both finalizers keeps its dependents.
    func finishDeletion(_ r: ResourceType, namespace: String?, name: String) async throws {
        guard let owner = try await client.getMetadata(r, namespace: namespace, name: name),
            Self.awaitsCollector(owner), let uid = owner.metadata.uid
        else { return }
        if owner.metadata.finalizers.contains(DeletionFinalizers.orphan) {
            let dependents = try await storedDependents(of: r, namespace: namespace, uid: uid)
            for (dependentType, dependent) in dependents {
                let rest = dependent.metadata.ownerReferences.filter { $0.uid != uid }
                // A conflict fails the sync and the queue retries it, reading the dependents again.
                try await patchMetadata(dependentType, dependent, ["ownerReferences": Self.list(rest)])
            }
            try await removeFinalizer(DeletionFinalizers.orphan, from: owner, r)
            logger.debug(
                "dependents orphaned", metadata: ["owner": "\(r.plural)/\(name)", "dependents": "\(dependents.count)"])
            return
        }
        var blocking = 0
        for (dependentType, dependent) in cachedDependents(uid: uid) {
            let blocks = dependent.metadata.ownerReferences.first { $0.uid == uid }?.blockOwnerDeletion == true
            if blocks { blocking += 1 }
            if dependent.isTerminating { continue }
            do {
                try await client.delete(
                    dependentType, namespace: dependent.metadata.namespace, name: dependent.metadata.name ?? "",
                    gracePeriod: nil, uid: dependent.metadata.uid, propagation: blocks ? "Foreground" : "Background")
            } catch let e as APIError where e.code == 404 || e.code == 409 {}
        }
        // Still waiting: each dependent that goes queues this owner again (and the sweep does, regardless).
        if blocking > 0 { return }
        try await removeFinalizer(DeletionFinalizers.foreground, from: owner, r)
        logger.debug("foreground deletion finished", metadata: ["owner": "\(r.plural)/\(name)"])
    }

    /// The objects (and their types) the caches know with an owner reference to `uid`. Enough for a
    /// foreground delete: a dependent the caches have not seen yet only lets the owner go a moment early,
    /// and is then collected as the dependent of a missing owner. Uncached reads instead made a
    /// foreground delete quadratic (each of an owner's pods is itself deleted in foreground, and each
    /// sync listed the whole namespace).
    func cachedDependents(uid: String) -> [(ResourceType, Metadata)] {
        var out: [(ResourceType, Metadata)] = []
        for r in Registry.stored + customKinds.current {
            for dependent in informer(r)?.byIndex(Self.ownerIndex, uid) ?? [] {
                out.append((r, dependent))
            }
        }
        return out
    }

    /// The objects (and their types) with an owner reference to `uid`, read uncached: a namespaced
    /// owner's dependents are in its namespace, a cluster-scoped owner's may be anywhere. For orphaning,
    /// where a dependent missed would be collected when it was meant to be kept.
    func storedDependents(of r: ResourceType, namespace: String?, uid: String) async throws
        -> [(ResourceType, Metadata)]
    {
        var out: [(ResourceType, Metadata)] = []
        for dependentType in Registry.stored + customKinds.current where !(r.namespaced && !dependentType.namespaced) {
            for object in try await client.listMetadata(dependentType, namespace: r.namespaced ? namespace : nil)
            where object.metadata.ownerReferences.contains(where: { $0.uid == uid }) {
                out.append((dependentType, object))
            }
        }
        return out
    }

    /// Removes `finalizer` from the owner; with none left (and no grace period running) the API server
    /// deletes it. A conflict fails the sync, which the queue retries.
    func removeFinalizer(_ finalizer: String, from owner: Metadata, _ r: ResourceType) async throws {
        let rest = owner.metadata.finalizers.filter { $0 != finalizer }
        try await patchMetadata(r, owner, ["finalizers": rest.isEmpty ? .null : .array(rest.map { .string($0) })])
    }

    /// Merge-patches `fields` into the object's metadata, with the resourceVersion it was read at as the
    /// precondition: a change made meanwhile (a new owner, a new finalizer) is a 409, not overwritten.
    /// An object gone meanwhile needs nothing more.
    func patchMetadata(_ r: ResourceType, _ object: Metadata, _ fields: [String: JSON]) async throws {
        var metadata = fields
        metadata["resourceVersion"] = .string(object.metadata.resourceVersion ?? "")
        do {
            try await client.mergePatch(
                r, namespace: object.metadata.namespace, name: object.metadata.name ?? "",
                ["metadata": .object(metadata)], subresource: nil)
        } catch let e as APIError where e.code == 404 {}
    }

    /// Owner references as a merge patch writes them: none is `null`, which removes the field.
    static func list(_ refs: [MetaV1.OwnerReference]) -> JSON {
        refs.isEmpty ? .null : .array(refs.map { $0.kubeJSON() })
    }

    // MARK: keys

    /// The queue key of the owner an owner reference names, nil for a kind Berth does not serve.
    static func ownerKey(_ ref: MetaV1.OwnerReference, namespace: String?) -> String? {
        guard let owner = resolve(ref, namespace: namespace), let r = owner.type else { return nil }
        return typeID(r) + "/" + (owner.namespace.map { $0 + "/" } ?? "") + owner.name
    }

    static func typeID(_ r: ResourceType) -> String { r.plural + "." + r.group }
    static func hasOwners(_ object: Metadata) -> Bool { !object.metadata.ownerReferences.isEmpty }
    /// "<plural>.<group>/<namespace>/<name>" or "<plural>.<group>/<name>".
    static func itemKey(_ typeID: String, _ object: Metadata) -> String { typeID + "/" + object.cacheKey }
    func parse(_ key: String) -> (ResourceType, String?, String)? {
        guard let slash = key.firstIndex(of: "/") else { return nil }
        let id = key[..<slash], rest = String(key[key.index(after: slash)...])
        guard let r = (Registry.stored + customKinds.current).first(where: { Self.typeID($0) == id }) else {
            return nil
        }
        if r.namespaced {
            let (namespace, name) = Objects.split(rest)
            return (r, namespace, name)
        }
        return (r, nil, rest)
    }
}

/// The custom kinds the garbage collector knows, one version of each definition (its versions share
/// their objects), with a metadata informer each, started when the kind is first seen: by the sweep, at
/// start, and when an owner's kind is not known.
final class CustomKinds: @unchecked Sendable {
    private typealias Entry = (informer: Informer<MetaV1.PartialObjectMetadata>, stop: AsyncStream<Void>.Continuation)
    private let factory: InformerFactory
    private let lock = NSLock()
    private var types: [ResourceType] = []
    private var byID: [String: Entry] = [:]
    private let (started, starting) = AsyncStream<(Informer<MetaV1.PartialObjectMetadata>, AsyncStream<Void>)>
        .makeStream()
    /// Wires a new informer's events into the collector's queue (set once, by the collector's init).
    var observe: (@Sendable (Informer<MetaV1.PartialObjectMetadata>, String) -> Void)? {
        get { lock.withLock { observer } }
        set { lock.withLock { observer = newValue } }
    }
    private var observer: (@Sendable (Informer<MetaV1.PartialObjectMetadata>, String) -> Void)?

    init(factory: InformerFactory) { self.factory = factory }

    var current: [ResourceType] { lock.withLock { types } }
    var informers: [String: Informer<MetaV1.PartialObjectMetadata>] { lock.withLock { byID.mapValues(\.informer) } }

    /// Reads the served custom kinds again (on failure keeps what it had), starting an informer for each
    /// new one and stopping those of kinds no longer served (a deleted definition, a version dropped):
    /// their watches would otherwise outlive them.
    func refresh(_ client: any KubeClient) async -> [ResourceType] {
        guard let served = try? await client.customResourceTypes() else { return current }
        var seen = Set<String>()
        let unique = served.filter { seen.insert($0.keyPrefix).inserted }
        let (fresh, gone): ([(String, Entry, AsyncStream<Void>)], [Entry]) = lock.withLock {
            types = unique
            let wanted = Set(unique.map(GarbageCollector.typeID))
            var made: [(String, Entry, AsyncStream<Void>)] = []
            for r in unique where byID[GarbageCollector.typeID(r)] == nil {
                let informer = factory.metadataInformer(r)
                informer.addIndex(GarbageCollector.ownerIndex) { $0.metadata.ownerReferences.map(\.uid) }
                let (stopped, stop) = AsyncStream<Void>.makeStream()
                byID[GarbageCollector.typeID(r)] = (informer, stop)
                made.append((GarbageCollector.typeID(r), (informer, stop), stopped))
            }
            let removed = byID.keys.filter { !wanted.contains($0) }
            return (made, removed.compactMap { byID.removeValue(forKey: $0) })
        }
        for entry in gone { entry.stop.finish() }
        for (id, entry, stopped) in fresh {
            observe?(entry.informer, id)
            starting.yield((entry.informer, stopped))
        }
        return unique
    }

    /// Runs each custom kind's informer as it is made, until it is stopped or this is cancelled.
    func runInformers() async {
        await withTaskGroup(of: Void.self) { group in
            for await (informer, stopped) in started {
                group.addTask {
                    await withTaskGroup(of: Void.self) { one in
                        one.addTask { await informer.run() }
                        one.addTask { for await _ in stopped {} }
                        await one.next()
                        one.cancelAll()
                    }
                }
            }
            group.cancelAll()
        }
    }
}

import BerthAPI
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
/// An owner exists when an object of its apiVersion/kind and name (in the dependent's namespace, unless
/// the owner kind is cluster-scoped) has the referenced uid; a kind Berth does not serve counts as
/// existing, so nothing is ever deleted for an owner the collector cannot see. A missing owner is always
/// confirmed with a read from the store before anything is changed.
///
/// Objects are checked when they are added or their references change, when an object they reference is
/// deleted, and by a sweep of every informer cache every `sweepInterval`. An owner waiting for the collector
/// is checked when it is marked, whenever one of its dependents is deleted, and by the sweep. An orphaning
/// owner's dependents are found by reading the store, not the caches: a dependent the caches had not seen
/// yet would otherwise be left with a reference to a deleted owner, and collected when it was meant to be
/// orphaned. A foreground owner's come from the caches (see `cachedDependents`).
struct GarbageCollector: ControlLoop {
    let name = "garbage-collector"
    let client: LocalClient
    /// One informer per served type, by `Self.typeID`.
    let informers: [String: UntypedInformer]
    let queue = WorkQueue(name: "garbage-collector")
    let logger: Logger
    let workers: Int
    let sweepInterval: Duration = .seconds(30)
    static let ownerIndex = "gc-owner-uid"

    init(_ ctx: ControllerContext) {
        client = ctx.localClient("garbage-collector")
        logger = ctx.logger
        workers = max(1, min(ctx.config.workers, 4))
        var informers: [String: UntypedInformer] = [:]
        for r in Registry.all {
            let informer = ctx.informers.informer(r)
            informer.addIndex(Self.ownerIndex) { obj in
                (obj["metadata"]["ownerReferences"].array ?? []).compactMap { $0["uid"].string }
            }
            informers[Self.typeID(r)] = informer
        }
        self.informers = informers
        let queue = self.queue, all = informers
        for r in Registry.all {
            let id = Self.typeID(r)
            all[id]!.onChange { e in
                switch e {
                case .added(let obj):
                    if Self.hasOwners(obj) || Self.awaitsCollector(obj) {
                        Task { await queue.add(Self.itemKey(id, obj)) }
                    }
                case .updated(let old, let new):
                    if Self.awaitsCollector(new)
                        || (Self.hasOwners(new)
                            && old["metadata"]["ownerReferences"] != new["metadata"]["ownerReferences"])
                    {
                        Task { await queue.add(Self.itemKey(id, new)) }
                    }
                case .deleted(let obj):
                    // Its dependents may now be orphans, and an owner deleting in foreground may be done.
                    let ns = obj["metadata"]["namespace"].string
                    var keys = (obj["metadata"]["ownerReferences"].array ?? []).compactMap {
                        Self.ownerKey($0, namespace: ns)
                    }
                    guard let uid = obj["metadata"]["uid"].string else { return }
                    for (depID, informer) in all {
                        for dep in informer.byIndex(Self.ownerIndex, uid) { keys.append(Self.itemKey(depID, dep)) }
                    }
                    if !keys.isEmpty { Task { for k in keys { await queue.add(k) } } }
                }
            }
        }
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
            await g.waitForAll()
        }
    }

    /// Queues every cached object that has an owner the caches do not know (the store has the last word).
    func sweep() async {
        for (id, informer) in informers {
            for obj in informer.list() {
                if Self.awaitsCollector(obj) { await queue.add(Self.itemKey(id, obj)); continue }
                guard Self.hasOwners(obj) && !Objects.isTerminating(obj) else { continue }
                let ns = obj["metadata"]["namespace"].string
                let refs = obj["metadata"]["ownerReferences"].array ?? []
                if refs.contains(where: { cachedOwnerState($0, namespace: ns) != .exists }) {
                    await queue.add(Self.itemKey(id, obj))
                }
            }
        }
    }

    enum OwnerState { case exists, absent, unknown }

    /// An owner reference resolved: the owner's type (nil: a kind Berth does not serve), namespace, name, uid.
    struct Owner { var type: ResourceType?; var namespace: String?; var name: String; var uid: String }

    /// nil for a reference that cannot name an owner (missing fields, or a namespaced owner of a
    /// cluster-scoped object), which counts as absent (upstream treats it as unresolvable).
    static func resolve(_ ref: JSON, namespace: String?) -> Owner? {
        guard let apiVersion = ref["apiVersion"].string, let kind = ref["kind"].string,
            let name = ref["name"].string, !name.isEmpty, let uid = ref["uid"].string, !uid.isEmpty
        else { return nil }
        guard let r = Registry.find(apiVersion: apiVersion, kind: kind) else {
            return Owner(type: nil, namespace: nil, name: name, uid: uid)
        }
        if r.namespaced && (namespace ?? "").isEmpty { return nil }
        return Owner(type: r, namespace: r.namespaced ? namespace : nil, name: name, uid: uid)
    }

    /// What the informer caches say about an owner reference.
    func cachedOwnerState(_ ref: JSON, namespace: String?) -> OwnerState {
        guard let owner = Self.resolve(ref, namespace: namespace) else { return .absent }
        guard let r = owner.type else { return .unknown }
        let cached = informers[Self.typeID(r)]?.get(namespace: owner.namespace, name: owner.name)
        return cached?["metadata"]["uid"].string == owner.uid ? .exists : .absent
    }

    /// The owner reference checked against the caches and, when they say it is gone, the store.
    func ownerState(_ ref: JSON, namespace: String?) async throws -> OwnerState {
        let cached = cachedOwnerState(ref, namespace: namespace)
        if cached != .absent { return cached }
        guard let owner = Self.resolve(ref, namespace: namespace), let r = owner.type else { return .absent }
        let live = try await client.get(r, namespace: owner.namespace, name: owner.name)
        return live?["metadata"]["uid"].string == owner.uid ? .exists : .absent
    }

    func sync(_ key: String) async throws {
        guard let (r, ns, name) = Self.parse(key) else { return }
        if let cached = informers[Self.typeID(r)]?.get(namespace: ns, name: name) {
            if Self.awaitsCollector(cached) {
                try await finishDeletion(r, namespace: ns, name: name)
                return
            }
            // Fast path: every owner is in the caches (most objects, most of the time).
            if (cached["metadata"]["ownerReferences"].array ?? []).allSatisfy({
                cachedOwnerState($0, namespace: ns) != .absent
            }) {
                return
            }
        }
        // Decide on the stored object, not the cache: it may have been adopted or re-created meanwhile.
        guard let obj = try await client.get(r, namespace: ns, name: name), !Objects.isTerminating(obj) else { return }
        let refs = obj["metadata"]["ownerReferences"].array ?? []
        if refs.isEmpty { return }
        var dangling: Set<String> = []
        for ref in refs {
            if try await ownerState(ref, namespace: ns) == .absent { dangling.insert(ref["uid"].string ?? "") }
        }
        if dangling.isEmpty { return }
        let uid = obj["metadata"]["uid"].string
        if refs.allSatisfy({ dangling.contains($0["uid"].string ?? "") }) {
            do {
                try await client.delete(r, namespace: ns, name: name, uid: uid, propagation: "Background")
                logger.debug("garbage collected", metadata: ["object": "\(key)"])
            } catch let e as APIError where e.code == 404 || e.code == 409 {
                // Gone, or a new object of the same name: nothing to collect.
            }
            return
        }
        var updated = obj
        updated["metadata"]["ownerReferences"] = .array(refs.filter { !dangling.contains($0["uid"].string ?? "") })
        do {
            try await client.update(r, updated)  // resourceVersion is the precondition; a conflict retries
        } catch let e as APIError where e.code == 404 {}
    }

    // MARK: foreground and orphan deletion

    /// Marked for deletion and holding one of the collector's finalizers.
    static func awaitsCollector(_ obj: JSON) -> Bool {
        guard Objects.isTerminating(obj) else { return false }
        let finalizers = (obj["metadata"]["finalizers"].array ?? []).compactMap(\.string)
        return finalizers.contains(DeletionFinalizers.foreground) || finalizers.contains(DeletionFinalizers.orphan)
    }

    /// Orphans or deletes the dependents of an owner being deleted, then removes the finalizer that was
    /// waiting for that. Orphaning comes first: an owner with both finalizers keeps its dependents.
    func finishDeletion(_ r: ResourceType, namespace ns: String?, name: String) async throws {
        guard let owner = try await client.get(r, namespace: ns, name: name), Self.awaitsCollector(owner),
            let uid = owner["metadata"]["uid"].string
        else { return }
        let finalizers = (owner["metadata"]["finalizers"].array ?? []).compactMap(\.string)
        if finalizers.contains(DeletionFinalizers.orphan) {
            let dependents = try await storedDependents(of: r, namespace: ns, uid: uid)
            for (dr, dep) in dependents {
                var updated = dep
                let refs = dep["metadata"]["ownerReferences"].array ?? []
                let rest = refs.filter { $0["uid"].string != uid }
                updated["metadata"]["ownerReferences"] = rest.isEmpty ? .null : .array(rest)
                do {
                    try await client.update(dr, updated)  // resourceVersion is the precondition; a conflict retries
                } catch let e as APIError where e.code == 404 {}
            }
            try await removeFinalizer(DeletionFinalizers.orphan, from: owner, r)
            logger.debug(
                "dependents orphaned", metadata: ["owner": "\(r.plural)/\(name)", "dependents": "\(dependents.count)"])
            return
        }
        var blocking = 0
        for (dr, dep) in cachedDependents(uid: uid) {
            let ref = (dep["metadata"]["ownerReferences"].array ?? []).first { $0["uid"].string == uid }
            let blocks = ref?["blockOwnerDeletion"].bool == true
            if blocks { blocking += 1 }
            if Objects.isTerminating(dep) { continue }
            do {
                try await client.delete(
                    dr, namespace: dep["metadata"]["namespace"].string, name: dep["metadata"]["name"].string ?? "",
                    uid: dep["metadata"]["uid"].string, propagation: blocks ? "Foreground" : "Background")
            } catch let e as APIError where e.code == 404 || e.code == 409 {}
        }
        // Still waiting: each dependent that goes queues this owner again (and the sweep does, regardless).
        if blocking > 0 { return }
        try await removeFinalizer(DeletionFinalizers.foreground, from: owner, r)
        logger.debug("foreground deletion finished", metadata: ["owner": "\(r.plural)/\(name)"])
    }

    /// The objects (and their types) the caches know with an owner reference to `uid`. Enough for a
    /// foreground delete: a dependent the caches have not seen yet only lets the owner go a moment early,
    /// and is then collected as the dependent of a missing owner. Reading the store instead made a
    /// foreground delete quadratic (each of an owner's pods is itself deleted in foreground, and each
    /// sync listed the whole namespace).
    func cachedDependents(uid: String) -> [(ResourceType, JSON)] {
        var out: [(ResourceType, JSON)] = []
        for r in Registry.all {
            for dep in informers[Self.typeID(r)]?.byIndex(Self.ownerIndex, uid) ?? [] { out.append((r, dep)) }
        }
        return out
    }

    /// The objects (and their types) with an owner reference to `uid`, read from the store: a namespaced
    /// owner's dependents are in its namespace, a cluster-scoped owner's may be anywhere. For orphaning,
    /// where a dependent missed would be collected when it was meant to be kept.
    func storedDependents(of r: ResourceType, namespace ns: String?, uid: String) async throws -> [(ResourceType, JSON)]
    {
        var out: [(ResourceType, JSON)] = []
        for dr in Registry.all where !(r.namespaced && !dr.namespaced) {
            for obj in try await client.list(dr, namespace: r.namespaced ? ns : nil).items
            where (obj["metadata"]["ownerReferences"].array ?? []).contains(where: { $0["uid"].string == uid }) {
                out.append((dr, obj))
            }
        }
        return out
    }

    /// Removes `finalizer` from the owner; with none left (and no grace period running) the API server
    /// deletes it.
    func removeFinalizer(_ finalizer: String, from owner: JSON, _ r: ResourceType) async throws {
        var updated = owner
        let rest = (owner["metadata"]["finalizers"].array ?? []).filter { $0.string != finalizer }
        updated["metadata"]["finalizers"] = rest.isEmpty ? .null : .array(rest)
        do {
            try await client.update(r, updated)  // a conflict fails the sync, which the queue retries
        } catch let e as APIError where e.code == 404 {}
    }

    // MARK: keys

    /// The queue key of the owner an owner reference names, nil for a kind Berth does not serve.
    static func ownerKey(_ ref: JSON, namespace: String?) -> String? {
        guard let owner = resolve(ref, namespace: namespace), let r = owner.type else { return nil }
        return typeID(r) + "/" + (owner.namespace.map { $0 + "/" } ?? "") + owner.name
    }

    static func typeID(_ r: ResourceType) -> String { r.plural + "." + r.group }
    static func hasOwners(_ obj: JSON) -> Bool { !(obj["metadata"]["ownerReferences"].array ?? []).isEmpty }
    /// "<plural>.<group>/<namespace>/<name>" or "<plural>.<group>/<name>".
    static func itemKey(_ typeID: String, _ obj: JSON) -> String { typeID + "/" + UntypedInformer.key(obj) }
    static func parse(_ key: String) -> (ResourceType, String?, String)? {
        guard let slash = key.firstIndex(of: "/") else { return nil }
        let id = key[..<slash], rest = String(key[key.index(after: slash)...])
        guard let r = Registry.all.first(where: { typeID($0) == id }) else { return nil }
        if r.namespaced {
            let (ns, name) = Objects.split(rest)
            return (r, ns, name)
        }
        return (r, nil, rest)
    }
}

import BerthAPI
import BerthStore
import Foundation
import Logging

/// A change an informer observed.
public enum UntypedInformerEvent: Sendable {
    case added(JSON)
    case updated(old: JSON, new: JSON)
    case deleted(JSON)

    /// The object after the change (the last state for a delete).
    public var object: JSON {
        switch self {
        case .added(let o), .deleted(let o): return o
        case .updated(_, let n): return n
        }
    }
}

/// The JSON-tree informer the controllers used before the typed model (``Informer``), kept while they
/// move over. client-go's shared informer, in process: lists one resource, then watches it from the list's
/// revision, keeping a cache of every object that all controllers read (each object decoded once).
/// Handlers run on the informer's task, in revision order, and must only enqueue work. When the watch
/// fails (compaction, store outage) it lists again and reports the differences as events, so handlers
/// never miss a change.
public final class UntypedInformer: RunnableInformer, @unchecked Sendable {
    public let resource: ResourceType
    let client: LocalClient
    let logger: Logger
    private let lock = NSLock()
    private var cache: [String: JSON] = [:]
    private var handlers: [@Sendable (UntypedInformerEvent) -> Void] = []
    private var synced = false
    /// Tasks waiting for the first list, by a token so a cancelled waiter can be let go alone.
    private var syncWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter = 0
    private var lastRevision: Int64 = 0
    /// Secondary indexes: name → (value → keys), e.g. pods by controller owner UID or by node.
    private var indexers: [String: @Sendable (JSON) -> [String]] = [:]
    private var indexes: [String: [String: Set<String>]] = [:]

    public init(_ resource: ResourceType, client: LocalClient, logger: Logger) {
        self.resource = resource; self.client = client; self.logger = logger
    }

    /// Registers a handler; call before `run`.
    public func onChange(_ handler: @escaping @Sendable (UntypedInformerEvent) -> Void) {
        lock.withLock { handlers.append(handler) }
    }

    /// Adds a secondary index (call before `run`): `values` maps an object to the index values it is
    /// found under.
    public func addIndex(_ name: String, _ values: @escaping @Sendable (JSON) -> [String]) {
        lock.withLock {
            indexers[name] = values; indexes[name] = [:]
        }
    }
    /// Objects whose index `name` includes `value`.
    public func byIndex(_ name: String, _ value: String) -> [JSON] {
        lock.withLock { (indexes[name]?[value] ?? []).compactMap { cache[$0] } }
    }
    /// Number of objects under an index value.
    public func countIndex(_ name: String, _ value: String) -> Int {
        lock.withLock { indexes[name]?[value]?.count ?? 0 }
    }

    /// Called with the lock held: keeps the indexes in step with one cache change.
    private func reindex(_ key: String, old: JSON?, new: JSON?) {
        for (name, fn) in indexers {
            let before = old.map(fn) ?? []
            let after = new.map(fn) ?? []
            if before == after { continue }
            for v in before where !after.contains(v) {
                indexes[name]?[v]?.remove(key)
                if indexes[name]?[v]?.isEmpty == true { indexes[name]?[v] = nil }
            }
            for v in after { indexes[name, default: [:]][v, default: []].insert(key) }
        }
    }

    /// The cache key of an object: "namespace/name" for namespaced kinds, else "name".
    public static func key(_ obj: JSON) -> String {
        let name = obj["metadata"]["name"].string ?? ""
        if let ns = obj["metadata"]["namespace"].string, !ns.isEmpty { return ns + "/" + name }
        return name
    }

    public func get(_ key: String) -> JSON? { lock.withLock { cache[key] } }
    public func get(namespace: String?, name: String) -> JSON? {
        get(namespace.map { $0.isEmpty ? name : $0 + "/" + name } ?? name)
    }
    public func list() -> [JSON] { lock.withLock { Array(cache.values) } }
    public func list(namespace: String) -> [JSON] {
        let prefix = namespace + "/"
        return lock.withLock { cache.filter { $0.key.hasPrefix(prefix) }.map(\.value) }
    }
    public var count: Int { lock.withLock { cache.count } }
    public var hasSynced: Bool { lock.withLock { synced } }
    /// The revision of the last event applied to the cache.
    public var revision: Int64 { lock.withLock { lastRevision } }

    /// Returns once the first list is in the cache, or at once when the waiting task is cancelled (a
    /// leader that loses its Lease, or a server shutting down, before the first list arrived: an
    /// informer that can never list must not hold the shutdown up).
    public func waitForSync() async {
        let token = lock.withLock { () -> Int in
            nextWaiter += 1; return nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = lock.withLock { () -> Bool in
                    if synced || Task.isCancelled { return true }
                    syncWaiters[token] = c
                    return false
                }
                if ready { c.resume() }
            }
        } onCancel: {
            lock.withLock { syncWaiters.removeValue(forKey: token) }?.resume()
        }
    }

    private func emit(_ e: UntypedInformerEvent) {
        let hs = lock.withLock { handlers }
        for h in hs { h(e) }
    }

    /// Decodes a stored object for the cache without its managedFields (client-go's TransformFunc, as
    /// kube-scheduler and kube-controller-manager use it): no controller reads them, and they are a
    /// large share of every object's memory. Updates from the cache keep them: the API server carries
    /// managedFields over when a write leaves them out.
    func decode(_ kv: KeyValue) throws -> JSON {
        var obj = try client.decode(kv, resource)
        obj["metadata"]["managedFields"] = .null
        return obj
    }

    /// Lists and watches until cancelled.
    public func run() async {
        let prefixLength = resource.prefix(namespace: nil).utf8.count
        var backoff = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                let page = try await client.store.list(
                    prefix: resource.prefix(namespace: nil), startAfter: nil, limit: 0, revision: nil)
                var fresh: [String: JSON] = [:]
                fresh.reserveCapacity(page.items.count)
                for kv in page.items {
                    guard let obj = try? decode(kv) else { continue }
                    fresh[String(kv.key.utf8.dropFirst(prefixLength))!] = obj
                }
                let old = lock.withLock { () -> [String: JSON] in
                    let o = cache
                    cache = fresh
                    lastRevision = page.revision
                    for name in indexers.keys { indexes[name] = [:] }
                    for (k, v) in fresh { reindex(k, old: nil, new: v) }
                    return o
                }
                for (k, o) in old where fresh[k] == nil { emit(.deleted(o)) }
                for (k, n) in fresh {
                    if let o = old[k] {
                        if o["metadata"]["resourceVersion"] != n["metadata"]["resourceVersion"] {
                            emit(.updated(old: o, new: n))
                        }
                    } else {
                        emit(.added(n))
                    }
                }
                let waiters = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
                    synced = true
                    defer { syncWaiters = [:] }
                    return Array(syncWaiters.values)
                }
                for w in waiters { w.resume() }
                backoff = .milliseconds(100)
                let events = try await client.store.watch(
                    prefix: resource.prefix(namespace: nil), afterRevision: page.revision)
                for try await e in events {
                    let key = String(e.kv.key.utf8.dropFirst(prefixLength))!
                    guard var obj = try? decode(e.kv) else { continue }
                    obj["metadata"]["resourceVersion"] = .string(String(e.revision))
                    switch e.kind {
                    case .put:
                        let old = lock.withLock { () -> JSON? in
                            let o = cache[key]
                            cache[key] = obj
                            lastRevision = e.revision
                            reindex(key, old: o, new: obj)
                            return o
                        }
                        if let old { emit(.updated(old: old, new: obj)) } else { emit(.added(obj)) }
                    case .delete:
                        let old = lock.withLock { () -> JSON? in
                            lastRevision = e.revision
                            let o = cache.removeValue(forKey: key)
                            reindex(key, old: o, new: nil)
                            return o
                        }
                        emit(.deleted(old ?? obj))
                    }
                }
                if Task.isCancelled { return }
            } catch {
                if Task.isCancelled { return }
                logger.debug("informer restarting", metadata: ["resource": "\(resource.plural)", "error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }
}

import BerthAPI
import BerthKube
import Foundation
import Logging

/// A change an informer observed, in typed objects.
public enum InformerEvent<Object: Sendable>: Sendable {
    case added(Object)
    case updated(old: Object, new: Object)
    case deleted(Object)

    /// The object after the change (the last state for a delete).
    public var object: Object {
        switch self {
        case .added(let o), .deleted(let o): return o
        case .updated(_, let n): return n
        }
    }
}

/// What an ``InformerFactory`` runs and waits for, typed or not.
public protocol RunnableInformer: AnyObject, Sendable {
    func run() async
    func waitForSync() async
}

/// client-go's shared informer over typed objects: lists one resource from its ``ObjectSource``, then
/// watches it from the list's revision, keeping a cache that every controller reads (each object decoded
/// once, held once). Handlers run on the informer's task, in revision order, and must only enqueue work.
/// When the watch ends or fails (compaction, store outage, a dropped connection) it lists again and
/// reports the differences as events, so handlers never miss a change.
///
/// The cache is also the lister: `get`, `list` and secondary indexes (`addIndex`, `byIndex`).
public final class Informer<Object: HasObjectMeta>: RunnableInformer, @unchecked Sendable {
    public let source: any ObjectSource<Object>
    let logger: Logger
    let name: String
    private let lock = NSLock()
    private var cache: [String: Object] = [:]
    private var handlers: [@Sendable (InformerEvent<Object>) -> Void] = []
    private var synced = false
    /// Tasks waiting for the first list, by a token so a cancelled waiter can be let go alone.
    private var syncWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter = 0
    private var lastRevision: Int64 = 0
    /// Secondary indexes: name → (value → keys), e.g. pods by controller owner UID or by node.
    private var indexers: [String: @Sendable (Object) -> [String]] = [:]
    private var indexes: [String: [String: Set<String>]] = [:]

    /// `name` names the informer in logs (the resource's plural).
    public init(source: any ObjectSource<Object>, name: String, logger: Logger) {
        self.source = source
        self.name = name
        self.logger = logger
    }

    /// Registers a handler; call before `run`.
    public func onChange(_ handler: @escaping @Sendable (InformerEvent<Object>) -> Void) {
        lock.withLock { handlers.append(handler) }
    }

    /// Adds a secondary index (call before `run`): `values` maps an object to the index values it is
    /// found under.
    public func addIndex(_ name: String, _ values: @escaping @Sendable (Object) -> [String]) {
        lock.withLock {
            indexers[name] = values
            indexes[name] = [:]
        }
    }

    /// Objects whose index `name` includes `value`.
    public func byIndex(_ name: String, _ value: String) -> [Object] {
        lock.withLock { (indexes[name]?[value] ?? []).compactMap { cache[$0] } }
    }

    /// Number of objects under an index value.
    public func countIndex(_ name: String, _ value: String) -> Int {
        lock.withLock { indexes[name]?[value]?.count ?? 0 }
    }

    public func get(_ key: String) -> Object? { lock.withLock { cache[key] } }
    public func get(namespace: String?, name: String) -> Object? {
        get(namespace.map { $0.isEmpty ? name : $0 + "/" + name } ?? name)
    }
    public func list() -> [Object] { lock.withLock { Array(cache.values) } }
    public func list(namespace: String) -> [Object] {
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
            nextWaiter += 1
            return nextWaiter
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

    /// Lists and watches until cancelled.
    public func run() async {
        var backoff = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                let (items, listRevision) = try await source.list()
                relist(items, revision: listRevision)
                backoff = .milliseconds(100)
                for try await event in try await source.watch(afterRevision: listRevision) {
                    apply(event)
                }
                if Task.isCancelled { return }
            } catch {
                if Task.isCancelled { return }
                logger.debug("informer restarting", metadata: ["resource": "\(name)", "error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// Replaces the cache with a fresh list and reports what changed since the last one.
    private func relist(_ items: [Object], revision: Int64) {
        var fresh: [String: Object] = [:]
        fresh.reserveCapacity(items.count)
        for item in items { fresh[item.cacheKey] = item }
        let old = lock.withLock { () -> [String: Object] in
            let previous = cache
            cache = fresh
            lastRevision = revision
            for name in indexers.keys { indexes[name] = [:] }
            for (key, object) in fresh { reindex(key, old: nil, new: object) }
            return previous
        }
        for (key, object) in old where fresh[key] == nil { emit(.deleted(object)) }
        for (key, object) in fresh {
            if let previous = old[key] {
                if previous.metadata.resourceVersion != object.metadata.resourceVersion {
                    emit(.updated(old: previous, new: object))
                }
            } else {
                emit(.added(object))
            }
        }
        let waiters = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            synced = true
            defer { syncWaiters = [:] }
            return Array(syncWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    private func apply(_ event: SourceEvent<Object>) {
        switch event {
        case .put(let object, let revision):
            let key = object.cacheKey
            let old = lock.withLock { () -> Object? in
                let previous = cache.updateValue(object, forKey: key)
                lastRevision = revision
                reindex(key, old: previous, new: object)
                return previous
            }
            if let old { emit(.updated(old: old, new: object)) } else { emit(.added(object)) }
        case .delete(let object, let revision):
            let key = object.cacheKey
            let old = lock.withLock { () -> Object? in
                lastRevision = revision
                let previous = cache.removeValue(forKey: key)
                reindex(key, old: previous, new: nil)
                return previous
            }
            emit(.deleted(old ?? object))
        }
    }

    private func emit(_ event: InformerEvent<Object>) {
        let current = lock.withLock { handlers }
        for handler in current { handler(event) }
    }

    /// Called with the lock held: keeps the indexes in step with one cache change.
    private func reindex(_ key: String, old: Object?, new: Object?) {
        for (name, values) in indexers {
            let before = old.map(values) ?? []
            let after = new.map(values) ?? []
            if before == after { continue }
            for value in before where !after.contains(value) {
                indexes[name]?[value]?.remove(key)
                if indexes[name]?[value]?.isEmpty == true { indexes[name]?[value] = nil }
            }
            for value in after { indexes[name, default: [:]][value, default: []].insert(key) }
        }
    }
}

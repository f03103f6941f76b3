/// BerthStore: a revisioned key-value store with watch — the API server's only persistence.
///
/// Semantics follow etcd v3 (what Kubernetes assumes): one global, strictly increasing revision; every
/// mutation gets the next revision; a key remembers the revision that created it and the one that last
/// modified it; history before the compacted revision is gone and asking for it fails with `.compacted`.

/// One stored key at one revision.
public struct KeyValue: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    /// Revision of the mutation that created the key (0 if it does not exist).
    public var createRevision: Int64
    /// Revision of the last mutation of the key.
    public var modRevision: Int64
    public init(key: String, value: [UInt8], createRevision: Int64, modRevision: Int64) {
        self.key = key; self.value = value; self.createRevision = createRevision; self.modRevision = modRevision
    }
}

/// A change observed by a watch.
public struct StoreEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case put, delete }
    public var kind: Kind
    /// For `.put` the new value; for `.delete` the last value before the delete, with
    /// `modRevision` set to the delete's revision.
    public var kv: KeyValue
    /// The previous value of the key, when known (nil for a create or when compacted away).
    public var prev: KeyValue?
    public var revision: Int64 { kv.modRevision }
    public init(kind: Kind, kv: KeyValue, prev: KeyValue?) { self.kind = kind; self.kv = kv; self.prev = prev }
}

/// A page of a list.
public struct ListResult: Sendable {
    public var items: [KeyValue]
    /// The revision the list was read at.
    public var revision: Int64
    /// True when more keys follow the last returned one.
    public var more: Bool
    public init(items: [KeyValue], revision: Int64, more: Bool) {
        self.items = items; self.revision = revision; self.more = more
    }
}

/// Errors with a cause the API layer can map to Kubernetes status codes.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// create on an existing key.
    case alreadyExists(key: String)
    /// update/delete of a missing key.
    case notFound(key: String)
    /// expected revision did not match the key's modRevision (actual).
    case conflict(key: String, actual: Int64)
    /// the requested revision was compacted; `compacted` is the oldest revision still available.
    case compacted(requested: Int64, compacted: Int64)
    /// a revision in the future.
    case futureRevision(requested: Int64, current: Int64)
    /// the backend failed (I/O, network, protocol); message names what failed.
    case backend(String)
    /// the watch could not keep up and was closed; the client must re-list or re-watch.
    case watchOverflow

    public var description: String {
        switch self {
        case .alreadyExists(let k): return "key \(k) already exists"
        case .notFound(let k): return "key \(k) not found"
        case .conflict(let k, let a): return "key \(k) was modified (now at revision \(a))"
        case .compacted(let r, let c): return "revision \(r) has been compacted (oldest available \(c))"
        case .futureRevision(let r, let c): return "revision \(r) is in the future (current \(c))"
        case .backend(let m): return "store backend: \(m)"
        case .watchOverflow: return "watch buffer overflow"
        }
    }
}

/// The store contract. Implementations: `SQLiteStore` (embedded, default) and `EtcdStore` (etcd v3).
public protocol KVStore: Sendable {
    /// Current value of `key`, or nil.
    func get(_ key: String) async throws -> KeyValue?
    /// Keys with `prefix`, in key order, strictly after `startAfter`, at most `limit` (0 = no limit),
    /// read at `revision` (nil = current).
    func list(prefix: String, startAfter: String?, limit: Int, revision: Int64?) async throws -> ListResult
    /// How many keys have `prefix` now (etcd's count-only range): priority and fairness weighs lists by it.
    func count(prefix: String) async throws -> Int
    /// Creates `key`; throws `.alreadyExists`. Returns the new revision.
    func create(_ key: String, value: [UInt8]) async throws -> Int64
    /// Replaces `key` if its modRevision equals `expectedRevision`; throws `.conflict` / `.notFound`.
    func update(_ key: String, value: [UInt8], expectedRevision: Int64) async throws -> Int64
    /// Many compare-and-swap updates at once, each succeeding or failing on its own (not one
    /// transaction): a scheduler binding thousands of pods hands them over together instead of as
    /// thousands of separate waits. Results are in the order of `updates`.
    func updateEach(_ updates: [KeyUpdate]) async -> [Result<Int64, StoreError>]
    /// Deletes `key` (if `expectedRevision` is given, only at that modRevision). Returns the deleted
    /// value with `modRevision` set to the delete's revision.
    func delete(_ key: String, expectedRevision: Int64?) async throws -> KeyValue
    /// Events for keys under `prefix` with revision > `afterRevision`, in revision order, forever.
    /// Throws `.compacted` when that history is gone.
    func watch(prefix: String, afterRevision: Int64) async throws -> AsyncThrowingStream<StoreEvent, any Error>
    /// The latest revision.
    func currentRevision() async throws -> Int64
    /// Discards history before `revision`.
    func compact(revision: Int64) async throws
    /// The oldest revision that can still be read or watched from.
    func compactedRevision() async throws -> Int64
    /// Releases resources; watches end.
    func close() async
}

/// One compare-and-swap update for `KVStore.updateEach`.
public struct KeyUpdate: Sendable {
    public var key: String
    public var value: [UInt8]
    public var expectedRevision: Int64
    public init(key: String, value: [UInt8], expectedRevision: Int64) {
        self.key = key; self.value = value; self.expectedRevision = expectedRevision
    }
}

extension KVStore {
    /// Default: the updates as single updates, 64 in flight (a backend without a cheaper batch path;
    /// etcd gets one transaction per update, and thousands at once would only queue in the client).
    public func updateEach(_ updates: [KeyUpdate]) async -> [Result<Int64, StoreError>] {
        await withTaskGroup(of: (Int, Result<Int64, StoreError>).self) { g in
            var out = [Result<Int64, StoreError>](repeating: .failure(.backend("not applied")), count: updates.count)
            for (i, u) in updates.enumerated() {
                if i >= 64, let (j, r) = await g.next() { out[j] = r }
                g.addTask {
                    do {
                        return (
                            i, .success(try await update(u.key, value: u.value, expectedRevision: u.expectedRevision))
                        )
                    } catch let e as StoreError { return (i, .failure(e)) } catch {
                        return (i, .failure(.backend("\(error)")))
                    }
                }
            }
            for await (j, r) in g { out[j] = r }
            return out
        }
    }
}

/// The end of the key range with this prefix (etcd's range_end for a prefix).
public func prefixEnd(_ prefix: String) -> String {
    var bytes = Array(prefix.utf8)
    while let last = bytes.last {
        if last < 0xff { bytes[bytes.count - 1] = last + 1; return String(decoding: bytes, as: UTF8.self) }
        bytes.removeLast()
    }
    return "\u{0}"
}

import Foundation
import GRDB
import Logging
import Synchronization

/// The embedded store: one SQLite file in WAL mode (kine's idea, without polling).
///
/// Tables:
/// - `log(rev, key, create_rev, prev_rev, deleted, value)`: every mutation, the history watches and
///   past-revision lists read. A delete row carries the value it deleted.
/// - `current(key, rev, create_rev, value)`: the latest live value of every key, for fast gets and lists.
/// - `meta(name, value)`: `rev` (latest revision) and `compacted`.
///
/// Writes are queued and committed in batches: whoever arrives while a transaction is running joins the
/// next one, so the fsync cost is shared (`synchronous=FULL`: an acknowledged write survives a crash).
/// Watchers live in this process; events are fanned out after each commit, in revision order.
public final class SQLiteStore: KVStore {
    private let pool: DatabasePool
    private let logger: Logger
    private let state = Mutex(State())

    private enum Op: Sendable {
        case create(String, [UInt8])
        case update(String, [UInt8], Int64)
        case delete(String, Int64?)
    }
    private struct Pending: Sendable {
        var op: Op
        var continuation: CheckedContinuation<KeyValue, any Error>
    }
    private final class Watcher: @unchecked Sendable {
        let prefix: String
        let continuation: AsyncThrowingStream<StoreEvent, any Error>.Continuation
        var catchingUp = true
        var buffer: [StoreEvent] = []
        init(prefix: String, continuation: AsyncThrowingStream<StoreEvent, any Error>.Continuation) {
            self.prefix = prefix; self.continuation = continuation
        }
    }
    private struct State {
        var pending: [Pending] = []
        var flushing = false
        var watchers: [Int: Watcher] = [:]
        var nextWatcherID = 0
        var closed = false
    }
    /// Events a watcher may have queued before it is closed as too slow.
    public static let watchBufferLimit = 100_000

    /// Opens (creating if needed) the database at `path`.
    public init(path: String, logger: Logger = Logger(label: "berth.store.sqlite")) throws {
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        self.logger = logger
        do {
            pool = try DatabasePool(path: path, configuration: config)
            try pool.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS log(
                      rev INTEGER PRIMARY KEY, key TEXT NOT NULL, create_rev INTEGER NOT NULL,
                      prev_rev INTEGER NOT NULL, deleted INTEGER NOT NULL, value BLOB NOT NULL);
                    CREATE INDEX IF NOT EXISTS log_key_rev ON log(key, rev);
                    CREATE TABLE IF NOT EXISTS current(
                      key TEXT PRIMARY KEY, rev INTEGER NOT NULL, create_rev INTEGER NOT NULL,
                      value BLOB NOT NULL) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                    INSERT OR IGNORE INTO meta(name, value) VALUES ('rev', 1), ('compacted', 0);
                    """)
            }
        } catch {
            throw StoreError.backend("open \(path): \(error)")
        }
    }

    // MARK: reads

    public func get(_ key: String) async throws -> KeyValue? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT key, rev, create_rev, value FROM current WHERE key = ?", arguments: [key])
                .map(Self.kv)
        }
    }

    public func list(prefix: String, startAfter: String?, limit: Int, revision: Int64?) async throws -> ListResult {
        let end = prefixEnd(prefix)
        let start = startAfter ?? ""
        return try await read { db in
            let current = try Self.meta(db, "rev")
            let lim = limit > 0 ? limit + 1 : -1
            var rows: [Row]
            var rev = current
            if let revision, revision > 0, revision < current {
                let compacted = try Self.meta(db, "compacted")
                if revision < compacted { throw StoreError.compacted(requested: revision, compacted: compacted) }
                rev = revision
                rows = try Row.fetchAll(db, sql: """
                    SELECT key, rev, create_rev, value FROM log l
                    WHERE key >= ? AND key < ? AND key > ? AND rev <= ? AND deleted = 0
                      AND NOT EXISTS (SELECT 1 FROM log l2 WHERE l2.key = l.key AND l2.rev > l.rev AND l2.rev <= ?)
                    ORDER BY key LIMIT ?
                    """, arguments: [prefix, end, start, rev, rev, lim])
            } else {
                if let revision, revision > current {
                    throw StoreError.futureRevision(requested: revision, current: current)
                }
                rows = try Row.fetchAll(db, sql: """
                    SELECT key, rev, create_rev, value FROM current
                    WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?
                    """, arguments: [prefix, end, start, lim])
            }
            var more = false
            if limit > 0 && rows.count > limit { rows.removeLast(); more = true }
            return ListResult(items: rows.map(Self.kv), revision: rev, more: more)
        }
    }

    public func currentRevision() async throws -> Int64 { try await read { try Self.meta($0, "rev") } }
    public func compactedRevision() async throws -> Int64 { try await read { try Self.meta($0, "compacted") } }

    // MARK: writes (batched)

    public func create(_ key: String, value: [UInt8]) async throws -> Int64 {
        try await submit(.create(key, value)).modRevision
    }
    public func update(_ key: String, value: [UInt8], expectedRevision: Int64) async throws -> Int64 {
        try await submit(.update(key, value, expectedRevision)).modRevision
    }
    public func delete(_ key: String, expectedRevision: Int64?) async throws -> KeyValue {
        try await submit(.delete(key, expectedRevision))
    }

    private func submit(_ op: Op) async throws -> KeyValue {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<KeyValue, any Error>) in
            let start = state.withLock { s -> Bool? in
                if s.closed { return nil }
                s.pending.append(Pending(op: op, continuation: c))
                if s.flushing { return false }
                s.flushing = true
                return true
            }
            guard let start else { c.resume(throwing: StoreError.backend("store closed")); return }
            if start { Task { await self.flushLoop() } }
        }
    }

    private struct Outcome: Sendable {
        var results: [Result<KeyValue, StoreError>]
        var events: [StoreEvent]
    }

    private func flushLoop() async {
        while true {
            let batch = state.withLock { s -> [Pending] in
                let b = s.pending
                s.pending = []
                if b.isEmpty { s.flushing = false }
                return b
            }
            if batch.isEmpty { return }
            let ops = batch.map(\.op)
            do {
                let outcome = try await pool.write { db in try Self.apply(ops, db) }
                // Fan out before acknowledging, so a client that writes then watches sees its own write.
                fanOut(outcome.events)
                for (p, r) in zip(batch, outcome.results) { p.continuation.resume(with: r.mapError { $0 as any Error }) }
            } catch {
                logger.error("sqlite commit failed", metadata: ["error": "\(error)"])
                for p in batch { p.continuation.resume(throwing: StoreError.backend("commit: \(error)")) }
            }
        }
    }

    /// Applies a batch in one transaction. Statements are cached per connection: preparing (and
    /// authorizing) the same SQL for every write was a visible share of write cost.
    private static func apply(_ ops: [Op], _ db: Database) throws -> Outcome {
        var rev = try meta(db, "rev")
        var results: [Result<KeyValue, StoreError>] = []
        var events: [StoreEvent] = []
        for op in ops {
            switch op {
            case .create(let key, let value):
                if try Row.fetchOne(try db.cachedStatement(sql: "SELECT 1 FROM current WHERE key = ?"), arguments: [key]) != nil {
                    results.append(.failure(.alreadyExists(key: key))); continue
                }
                rev += 1
                try db.cachedStatement(sql: "INSERT INTO current(key, rev, create_rev, value) VALUES (?, ?, ?, ?)").execute(arguments: [key, rev, rev, Data(value)])
                try db.cachedStatement(sql: "INSERT INTO log(rev, key, create_rev, prev_rev, deleted, value) VALUES (?, ?, ?, 0, 0, ?)").execute(arguments: [rev, key, rev, Data(value)])
                let kv = KeyValue(key: key, value: value, createRevision: rev, modRevision: rev)
                results.append(.success(kv)); events.append(StoreEvent(kind: .put, kv: kv, prev: nil))
            case .update(let key, let value, let expected):
                guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT key, rev, create_rev, value FROM current WHERE key = ?"), arguments: [key]) else {
                    results.append(.failure(.notFound(key: key))); continue
                }
                let prev = kv(row)
                if prev.modRevision != expected { results.append(.failure(.conflict(key: key, actual: prev.modRevision))); continue }
                rev += 1
                try db.cachedStatement(sql: "UPDATE current SET rev = ?, value = ? WHERE key = ?").execute(arguments: [rev, Data(value), key])
                try db.cachedStatement(sql: "INSERT INTO log(rev, key, create_rev, prev_rev, deleted, value) VALUES (?, ?, ?, ?, 0, ?)").execute(arguments: [rev, key, prev.createRevision, prev.modRevision, Data(value)])
                let kv = KeyValue(key: key, value: value, createRevision: prev.createRevision, modRevision: rev)
                results.append(.success(kv)); events.append(StoreEvent(kind: .put, kv: kv, prev: prev))
            case .delete(let key, let expected):
                guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT key, rev, create_rev, value FROM current WHERE key = ?"), arguments: [key]) else {
                    results.append(.failure(.notFound(key: key))); continue
                }
                let prev = kv(row)
                if let expected, prev.modRevision != expected {
                    results.append(.failure(.conflict(key: key, actual: prev.modRevision))); continue
                }
                rev += 1
                try db.cachedStatement(sql: "DELETE FROM current WHERE key = ?").execute(arguments: [key])
                try db.cachedStatement(sql: "INSERT INTO log(rev, key, create_rev, prev_rev, deleted, value) VALUES (?, ?, ?, ?, 1, ?)").execute(arguments: [rev, key, prev.createRevision, prev.modRevision, Data(prev.value)])
                var gone = prev
                gone.modRevision = rev
                results.append(.success(gone)); events.append(StoreEvent(kind: .delete, kv: gone, prev: prev))
            }
        }
        try db.cachedStatement(sql: "UPDATE meta SET value = ? WHERE name = 'rev'").execute(arguments: [rev])
        return Outcome(results: results, events: events)
    }

    // MARK: watch

    public func watch(prefix: String, afterRevision: Int64) async throws -> AsyncThrowingStream<StoreEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<StoreEvent, any Error>.makeStream(
            bufferingPolicy: .bufferingOldest(Self.watchBufferLimit))
        let watcher = Watcher(prefix: prefix, continuation: continuation)
        let id = state.withLock { s -> Int in
            let id = s.nextWatcherID
            s.nextWatcherID += 1
            s.watchers[id] = watcher
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        // History first (rev > afterRevision), then whatever arrived meanwhile.
        let end = prefixEnd(prefix)
        let history: [StoreEvent]
        do {
            history = try await read { db in
                let compacted = try Self.meta(db, "compacted")
                let current = try Self.meta(db, "rev")
                if afterRevision + 1 < compacted && afterRevision < current {
                    throw StoreError.compacted(requested: afterRevision, compacted: compacted)
                }
                let rows = try Row.fetchAll(db, sql: """
                    SELECT l.key, l.rev, l.create_rev, l.deleted, l.value, p.rev AS prev_rev, p.value AS prev_value
                    FROM log l LEFT JOIN log p ON p.rev = l.prev_rev AND l.prev_rev > 0
                    WHERE l.rev > ? AND l.key >= ? AND l.key < ? ORDER BY l.rev
                    """, arguments: [afterRevision, prefix, end])
                return rows.map { row in
                    let key: String = row["key"]
                    let createRev: Int64 = row["create_rev"]
                    let value: Data = row["value"]
                    let kv = KeyValue(key: key, value: [UInt8](value), createRevision: createRev, modRevision: row["rev"])
                    var prev: KeyValue?
                    if let pr: Int64 = row["prev_rev"], let pv: Data = row["prev_value"] {
                        prev = KeyValue(key: key, value: [UInt8](pv), createRevision: createRev, modRevision: pr)
                    }
                    let deleted: Int64 = row["deleted"]
                    return StoreEvent(kind: deleted != 0 ? .delete : .put, kv: kv, prev: prev)
                }
            }
        } catch {
            _ = state.withLock { $0.watchers.removeValue(forKey: id) }
            throw error
        }
        var last = afterRevision
        for e in history {
            if case .dropped = continuation.yield(e) { continuation.finish(throwing: StoreError.watchOverflow); return stream }
            last = e.revision
        }
        state.withLock { _ in
            for e in watcher.buffer where e.revision > last {
                if case .dropped = continuation.yield(e) { continuation.finish(throwing: StoreError.watchOverflow); break }
            }
            watcher.buffer = []
            watcher.catchingUp = false
        }
        return stream
    }

    private func fanOut(_ events: [StoreEvent]) {
        if events.isEmpty { return }
        state.withLock { s in
            for (_, w) in s.watchers {
                for e in events where e.kv.key.hasPrefix(w.prefix) {
                    if w.catchingUp {
                        w.buffer.append(e)
                    } else if case .dropped = w.continuation.yield(e) {
                        w.continuation.finish(throwing: StoreError.watchOverflow)
                        break
                    }
                }
            }
        }
    }

    // MARK: compaction

    public func compact(revision: Int64) async throws {
        try await pool.write { db in
            let current = try Self.meta(db, "rev")
            let c = min(revision, current)
            guard c > (try Self.meta(db, "compacted")) else { return }
            // Keep, for each key, its latest row at or before c (so lists at c still work) unless that is a delete.
            try db.execute(sql: """
                DELETE FROM log WHERE rev < ? AND (deleted = 1 OR EXISTS
                  (SELECT 1 FROM log l2 WHERE l2.key = log.key AND l2.rev > log.rev AND l2.rev <= ?))
                """, arguments: [c, c])
            try db.execute(sql: "UPDATE meta SET value = ? WHERE name = 'compacted'", arguments: [c])
        }
    }

    public func close() async {
        let ws = state.withLock { s -> [Watcher] in
            s.closed = true
            let w = Array(s.watchers.values)
            s.watchers = [:]
            return w
        }
        for w in ws { w.continuation.finish() }
        try? pool.close()
    }

    // MARK: helpers

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch let e as StoreError { throw e } catch {
            throw StoreError.backend("read: \(error)")
        }
    }
    private static func meta(_ db: Database, _ name: String) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE name = ?", arguments: [name]) ?? 0
    }
    private static func kv(_ row: Row) -> KeyValue {
        let data: Data = row["value"]
        return KeyValue(key: row["key"], value: [UInt8](data), createRevision: row["create_rev"], modRevision: row["rev"])
    }
}

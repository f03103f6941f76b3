import Foundation
import GRDB
import Logging
import Synchronization

/// The embedded store: one SQLite file in WAL mode (kine's idea, without polling).
///
/// Tables:
/// - `log(rev, key, create_rev, prev_rev, deleted, value)`: every mutation, the history watches and
///   past-revision lists read. A delete row carries the value it deleted. `prev_rev` links a key's rows
///   (no index by key: it cost a third of every write; see `listAt` and `compact`).
/// - `current(key, rev, create_rev)`: every live key and the log row holding its value, for gets and
///   lists. The value stays only in the log: a value in `current` too meant each update rewrote a
///   page-sized share of a large-row B-tree (measured: 45 of 60 µs per update at 50,000 pods); small
///   rows pack ~60 keys a page, and the value is one rowid lookup away.
/// - `meta(name, value)`: `rev` (latest revision) and `compacted`.
///
/// Writes are queued and committed in batches: whoever arrives while a transaction is running joins the
/// next one, so the fsync cost is shared (`synchronous=FULL`: an acknowledged write survives a crash).
/// Watchers live in this process; events are fanned out after each commit, in revision order.
public final class SQLiteStore: KVStore {
    private let pool: DatabasePool
    /// A second connection that copies the write-ahead log into the database while the writer goes on
    /// (a checkpoint in the writer held every write behind it: 0.3–0.5 s every few thousand writes).
    private let checkpointer: DatabaseQueue
    private let checkpoint = Mutex((running: false, writesSince: 0))
    private let logger: Logger
    private let state = Mutex(State())

    private enum Op: Sendable {
        case create(String, [UInt8])
        case update(String, [UInt8], Int64)
        case delete(String, Int64?)
    }
    /// Who waits for an op: its own caller, or one caller of `updateEach` waiting for a whole group.
    private enum Waiter: Sendable {
        case one(CheckedContinuation<KeyValue, any Error>)
        case group(GroupWait, Int)
    }
    private final class GroupWait: @unchecked Sendable {
        var results: [Result<Int64, StoreError>]
        var remaining: Int
        let continuation: CheckedContinuation<[Result<Int64, StoreError>], Never>
        init(count: Int, continuation: CheckedContinuation<[Result<Int64, StoreError>], Never>) {
            results = Array(repeating: .failure(.backend("not applied")), count: count)
            remaining = count
            self.continuation = continuation
        }
        /// Called from the flush loop only (one at a time).
        func set(_ i: Int, _ r: Result<Int64, StoreError>) {
            results[i] = r
            remaining -= 1
            if remaining == 0 { continuation.resume(returning: results) }
        }
    }
    private struct Pending: Sendable {
        var op: Op
        var waiter: Waiter
        func resume(_ r: Result<KeyValue, StoreError>) {
            switch waiter {
            case .one(let c): c.resume(with: r.mapError { $0 as any Error })
            case .group(let g, let i): g.set(i, r.map(\.modRevision))
            }
        }
    }
    private final class Watcher: @unchecked Sendable {
        let prefix: String
        let continuation: AsyncThrowingStream<StoreEvent, any Error>.Continuation
        /// Set when the stream ends (its reader cancelled or gone); the watcher leaves at the next fan-out.
        /// Not a removal under the store's lock: a stream ends inside its reader's cancellation, which
        /// holds that task's status lock, while a fan-out yielding to the same reader holds the store's
        /// lock and needs the task's — each waited for the other, and a server stopping hung for good.
        let ended = Atomic<Bool>(false)
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
            // 64 MiB of page cache (default 2 MiB): with tens of thousands of objects every write read
            // its pages back through pread and the WAL index.
            try db.execute(sql: "PRAGMA cache_size = -65536")
            // Checkpoints run beside the writer (`checkpointSoon`); the writer checkpoints itself only if
            // the log grows past 256 MiB anyway.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 65536")
        }
        self.logger = logger
        do {
            pool = try DatabasePool(path: path, configuration: config)
            var cpConfig = Configuration()
            cpConfig.busyMode = .timeout(10)
            checkpointer = try DatabaseQueue(path: path, configuration: cpConfig)
            try pool.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE IF NOT EXISTS log(
                          rev INTEGER PRIMARY KEY, key TEXT NOT NULL, create_rev INTEGER NOT NULL,
                          prev_rev INTEGER NOT NULL, deleted INTEGER NOT NULL, value BLOB NOT NULL);
                        DROP INDEX IF EXISTS log_key_rev;
                        CREATE TABLE IF NOT EXISTS current(
                          key TEXT PRIMARY KEY, rev INTEGER NOT NULL, create_rev INTEGER NOT NULL) WITHOUT ROWID;
                        CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                        INSERT OR IGNORE INTO meta(name, value) VALUES ('rev', 1), ('compacted', 0);
                        """)
                try Self.migrateCurrentWithoutValues(db)
            }
        } catch {
            throw StoreError.backend("open \(path): \(error)")
        }
    }

    /// Stores made before the value left `current` keep working: the key table is rebuilt without
    /// values (the log holds every live key's latest row — compaction never removes it).
    private static func migrateCurrentWithoutValues(_ db: Database) throws {
        let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(current)").map { $0["name"] as String }
        guard columns.contains("value") else { return }
        try db.execute(
            sql: """
                CREATE TABLE current_keys(key TEXT PRIMARY KEY, rev INTEGER NOT NULL, create_rev INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO current_keys(key, rev, create_rev) SELECT key, rev, create_rev FROM current;
                DROP TABLE current;
                ALTER TABLE current_keys RENAME TO current;
                """)
    }

    /// A live key with its value: the key table joined to the log row it names.
    private static let selectCurrent =
        "SELECT c.key, c.rev, c.create_rev, l.value FROM current c JOIN log l ON l.rev = c.rev"

    // MARK: reads

    public func get(_ key: String) async throws -> KeyValue? {
        try await read { db in
            try Row.fetchOne(try db.cachedStatement(sql: Self.selectCurrent + " WHERE c.key = ?"), arguments: [key])
                .map(Self.kv)
        }
    }

    public func count(prefix: String) async throws -> Int {
        let end = prefixEnd(prefix)
        return try await read { db in
            try Int.fetchOne(
                try db.cachedStatement(sql: "SELECT COUNT(*) FROM current WHERE key >= ? AND key < ?"),
                arguments: [prefix, end]) ?? 0
        }
    }

    public func list(prefix: String, startAfter: String?, limit: Int, revision: Int64?) async throws -> ListResult {
        let end = prefixEnd(prefix)
        let start = startAfter ?? ""
        return try await read { db in
            let current = try Self.meta(db, "rev")
            let lim = limit > 0 ? limit + 1 : -1
            var rows: [Row]
            if let revision, revision > 0, revision < current {
                let compacted = try Self.meta(db, "compacted")
                if revision < compacted { throw StoreError.compacted(requested: revision, compacted: compacted) }
                let past = try Self.listAt(
                    db, revision: revision, prefix: prefix, end: end, startAfter: start, limit: limit)
                return ListResult(items: past.items, revision: revision, more: past.more)
            } else {
                if let revision, revision > current {
                    throw StoreError.futureRevision(requested: revision, current: current)
                }
                rows = try Row.fetchAll(
                    try db.cachedStatement(
                        sql: Self.selectCurrent + """
                             WHERE c.key >= ? AND c.key < ? AND c.key > ? ORDER BY c.key LIMIT ?
                            """), arguments: [prefix, end, start, lim])
            }
            var more = false
            if limit > 0 && rows.count > limit { rows.removeLast(); more = true }
            return ListResult(items: rows.map(Self.kv), revision: current, more: more)
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

    public func updateEach(_ updates: [KeyUpdate]) async -> [Result<Int64, StoreError>] {
        if updates.isEmpty { return [] }
        return await withCheckedContinuation { (c: CheckedContinuation<[Result<Int64, StoreError>], Never>) in
            let group = GroupWait(count: updates.count, continuation: c)
            let start = state.withLock { s -> Bool? in
                if s.closed { return nil }
                for (i, u) in updates.enumerated() {
                    s.pending.append(Pending(op: .update(u.key, u.value, u.expectedRevision), waiter: .group(group, i)))
                }
                if s.flushing { return false }
                s.flushing = true
                return true
            }
            guard let start else {
                c.resume(returning: updates.map { _ in .failure(.backend("store closed")) }); return
            }
            if start { Task { await self.flushLoop() } }
        }
    }

    private func submit(_ op: Op) async throws -> KeyValue {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<KeyValue, any Error>) in
            let start = state.withLock { s -> Bool? in
                if s.closed { return nil }
                s.pending.append(Pending(op: op, waiter: .one(c)))
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

    /// Writes per transaction at most: larger batches share one fsync but hold every writer in them
    /// until the last is applied; at this size writers get answers back while later ones still queue,
    /// so preparing the next writes overlaps committing these.
    static let maxBatch = 2048

    private func flushLoop() async {
        while true {
            let batch = state.withLock { s -> [Pending] in
                if s.pending.count <= Self.maxBatch {
                    let b = s.pending
                    s.pending = []
                    if b.isEmpty { s.flushing = false }
                    return b
                }
                let b = Array(s.pending.prefix(Self.maxBatch))
                s.pending.removeFirst(Self.maxBatch)
                return b
            }
            if batch.isEmpty { return }
            let ops = batch.map(\.op)
            do {
                let outcome = try await pool.write { db in try Self.apply(ops, db) }
                // Fan out before acknowledging, so a client that writes then watches sees its own write.
                fanOut(outcome.events)
                checkpointSoon(after: ops.count)
                for (p, r) in zip(batch, outcome.results) { p.resume(r) }
            } catch {
                logger.error("sqlite commit failed", metadata: ["error": "\(error)"])
                for p in batch { p.resume(.failure(.backend("commit: \(error)"))) }
            }
        }
    }

    /// Applies a batch in one transaction, through `SQLiteWriteStatements`.
    private static func apply(_ ops: [Op], _ db: Database) throws -> Outcome {
        var rev = try meta(db, "rev")
        let sql = try SQLiteWriteStatements(db, selectCurrentSQL: selectCurrent)
        var results: [Result<KeyValue, StoreError>] = []
        var events: [StoreEvent] = []
        results.reserveCapacity(ops.count)
        events.reserveCapacity(ops.count)
        for op in ops {
            switch op {
            case .create(let key, let value):
                if try sql.exists(key) { results.append(.failure(.alreadyExists(key: key))); continue }
                rev += 1
                try sql.insertCurrent(key, rev: rev)
                try sql.insertLog(
                    rev: rev, key: key, createRevision: rev, prevRevision: 0, deleted: false, value: value)
                let kv = KeyValue(key: key, value: value, createRevision: rev, modRevision: rev)
                results.append(.success(kv)); events.append(StoreEvent(kind: .put, kv: kv, prev: nil))
            case .update(let key, let value, let expected):
                guard let cur = try sql.current(key) else { results.append(.failure(.notFound(key: key))); continue }
                let prev = KeyValue(
                    key: key, value: cur.value, createRevision: cur.createRevision, modRevision: cur.modRevision)
                if prev.modRevision != expected {
                    results.append(.failure(.conflict(key: key, actual: prev.modRevision))); continue
                }
                rev += 1
                try sql.updateCurrent(key, rev: rev)
                try sql.insertLog(
                    rev: rev, key: key, createRevision: prev.createRevision, prevRevision: prev.modRevision,
                    deleted: false, value: value)
                let kv = KeyValue(key: key, value: value, createRevision: prev.createRevision, modRevision: rev)
                results.append(.success(kv)); events.append(StoreEvent(kind: .put, kv: kv, prev: prev))
            case .delete(let key, let expected):
                guard let cur = try sql.current(key) else { results.append(.failure(.notFound(key: key))); continue }
                let prev = KeyValue(
                    key: key, value: cur.value, createRevision: cur.createRevision, modRevision: cur.modRevision)
                if let expected, prev.modRevision != expected {
                    results.append(.failure(.conflict(key: key, actual: prev.modRevision))); continue
                }
                rev += 1
                try sql.deleteCurrent(key)
                try sql.insertLog(
                    rev: rev, key: key, createRevision: prev.createRevision, prevRevision: prev.modRevision,
                    deleted: true, value: prev.value)
                var gone = prev
                gone.modRevision = rev
                results.append(.success(gone)); events.append(StoreEvent(kind: .delete, kv: gone, prev: prev))
            }
        }
        try db.cachedStatement(sql: "UPDATE meta SET value = ? WHERE name = 'rev'").execute(arguments: [rev])
        return Outcome(results: results, events: events)
    }

    /// Starts a passive checkpoint on the second connection after every few thousand writes (about
    /// 16 MiB of log at API objects' size), unless one is running.
    private func checkpointSoon(after writes: Int) {
        let start = checkpoint.withLock { c -> Bool in
            c.writesSince += writes
            guard !c.running, c.writesSince >= 4096 else { return false }
            c.running = true
            c.writesSince = 0
            return true
        }
        guard start else { return }
        let checkpointer = self.checkpointer, logger = self.logger
        Task {
            do { try await checkpointer.writeWithoutTransaction { db in _ = try db.checkpoint(.passive) } } catch {
                logger.warning("sqlite checkpoint failed", metadata: ["error": "\(error)"])
            }
            self.checkpoint.withLock { $0.running = false }
        }
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
        continuation.onTermination = { [weak watcher] _ in watcher?.ended.store(true, ordering: .releasing) }
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
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT l.key, l.rev, l.create_rev, l.deleted, l.value, p.rev AS prev_rev, p.value AS prev_value
                        FROM log l LEFT JOIN log p ON p.rev = l.prev_rev AND l.prev_rev > 0
                        WHERE l.rev > ? AND l.key >= ? AND l.key < ? ORDER BY l.rev
                        """, arguments: [afterRevision, prefix, end])
                return rows.map { row in
                    let key: String = row["key"]
                    let createRev: Int64 = row["create_rev"]
                    let value: Data = row["value"]
                    let kv = KeyValue(
                        key: key, value: [UInt8](value), createRevision: createRev, modRevision: row["rev"])
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
            if case .dropped = continuation.yield(e) {
                continuation.finish(throwing: StoreError.watchOverflow); return stream
            }
            last = e.revision
        }
        state.withLock { _ in
            for e in watcher.buffer where e.revision > last {
                if case .dropped = continuation.yield(e) {
                    continuation.finish(throwing: StoreError.watchOverflow); break
                }
            }
            watcher.buffer = []
            watcher.catchingUp = false
        }
        return stream
    }

    private func fanOut(_ events: [StoreEvent]) {
        if events.isEmpty { return }
        state.withLock { s in
            for (id, w) in s.watchers {
                if w.ended.load(ordering: .acquiring) {
                    s.watchers.removeValue(forKey: id)
                    continue
                }
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
            // Keep, for each key, its latest row at or before c (so lists at c still work) unless that is a
            // delete: a row is superseded when a later row at or before c names it as its previous one.
            try db.execute(
                sql: """
                    DELETE FROM log WHERE rev < ? AND (deleted = 1 OR rev IN
                      (SELECT prev_rev FROM log WHERE rev <= ? AND prev_rev > 0))
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
        try? checkpointer.close()
        try? pool.close()
    }

    // MARK: helpers

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch let e as StoreError { throw e } catch {
            throw StoreError.backend("read: \(error)")
        }
    }
    static func meta(_ db: Database, _ name: String) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE name = ?", arguments: [name]) ?? 0
    }
    private static func kv(_ row: Row) -> KeyValue {
        let data: Data = row["value"]
        return KeyValue(
            key: row["key"], value: [UInt8](data), createRevision: row["create_rev"], modRevision: row["rev"])
    }
}

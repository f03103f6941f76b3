import GRDB
import GRDBSQLite

/// The statements a write batch runs for every op, driven through SQLite's C interface on the handles
/// GRDB prepared and caches. Going through GRDB's `StatementArguments` and `Row` boxed every key and
/// copied every value into `Data` and back, and looked each statement up by its SQL text: about half of
/// the store's CPU per write at 10,000 writes a second. Only the write batch uses these, inside the
/// writer's transaction.
struct SQLiteWriteStatements {
    private let selectCurrent: OpaquePointer
    private let existsCurrent: OpaquePointer
    private let insertCurrent: OpaquePointer
    private let updateCurrent: OpaquePointer
    private let deleteCurrent: OpaquePointer
    private let insertLog: OpaquePointer
    private let db: Database

    /// The live row of a key: its revisions and value.
    struct Current { var modRevision: Int64; var createRevision: Int64; var value: [UInt8] }

    init(_ db: Database, selectCurrentSQL: String) throws {
        self.db = db
        selectCurrent = try db.cachedStatement(sql: selectCurrentSQL + " WHERE c.key = ?").sqliteStatement
        existsCurrent = try db.cachedStatement(sql: "SELECT 1 FROM current WHERE key = ?").sqliteStatement
        insertCurrent = try db.cachedStatement(sql: "INSERT INTO current(key, rev, create_rev) VALUES (?, ?, ?)")
            .sqliteStatement
        updateCurrent = try db.cachedStatement(sql: "UPDATE current SET rev = ? WHERE key = ?").sqliteStatement
        deleteCurrent = try db.cachedStatement(sql: "DELETE FROM current WHERE key = ?").sqliteStatement
        insertLog = try db.cachedStatement(
            sql: "INSERT INTO log(rev, key, create_rev, prev_rev, deleted, value) VALUES (?, ?, ?, ?, ?, ?)"
        ).sqliteStatement
    }

    func current(_ key: String) throws -> Current? {
        let s = selectCurrent
        defer { sqlite3_reset(s) }
        try bind(key, s, 1)
        switch sqlite3_step(s) {
        case SQLITE_ROW:
            let n = Int(sqlite3_column_bytes(s, 3))
            let value = n == 0 ? [] : [UInt8](UnsafeRawBufferPointer(start: sqlite3_column_blob(s, 3), count: n))
            return Current(
                modRevision: sqlite3_column_int64(s, 1), createRevision: sqlite3_column_int64(s, 2), value: value)
        case SQLITE_DONE: return nil
        case let rc: throw failure(rc, "select current")
        }
    }

    func exists(_ key: String) throws -> Bool {
        let s = existsCurrent
        defer { sqlite3_reset(s) }
        try bind(key, s, 1)
        switch sqlite3_step(s) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc: throw failure(rc, "select current")
        }
    }

    func insertCurrent(_ key: String, rev: Int64) throws {
        let s = insertCurrent
        defer { sqlite3_reset(s) }
        try bind(key, s, 1)
        sqlite3_bind_int64(s, 2, rev)
        sqlite3_bind_int64(s, 3, rev)
        try done(s, "insert current")
    }

    func updateCurrent(_ key: String, rev: Int64) throws {
        let s = updateCurrent
        defer { sqlite3_reset(s) }
        sqlite3_bind_int64(s, 1, rev)
        try bind(key, s, 2)
        try done(s, "update current")
    }

    func deleteCurrent(_ key: String) throws {
        let s = deleteCurrent
        defer { sqlite3_reset(s) }
        try bind(key, s, 1)
        try done(s, "delete current")
    }

    func insertLog(rev: Int64, key: String, createRevision: Int64, prevRevision: Int64, deleted: Bool, value: [UInt8])
        throws
    {
        let s = insertLog
        defer { sqlite3_reset(s) }
        sqlite3_bind_int64(s, 1, rev)
        try bind(key, s, 2)
        sqlite3_bind_int64(s, 3, createRevision)
        sqlite3_bind_int64(s, 4, prevRevision)
        sqlite3_bind_int64(s, 5, deleted ? 1 : 0)
        // Bound without a copy: the step below runs while the buffer is pinned.
        try value.withUnsafeBytes { b in
            // A zero-length blob still needs a non-null pointer to be a blob rather than NULL.
            var empty: UInt8 = 0
            let rc = withUnsafePointer(to: &empty) { e in
                sqlite3_bind_blob(s, 6, b.baseAddress ?? UnsafeRawPointer(e), Int32(b.count), nil)
            }
            guard rc == SQLITE_OK else { throw failure(rc, "bind value") }
            try done(s, "insert log")
        }
    }

    private func bind(_ text: String, _ s: OpaquePointer, _ i: Int32) throws {
        var t = text
        let rc = t.withUTF8 { u in
            sqlite3_bind_text(
                s, i, UnsafeRawPointer(u.baseAddress!).assumingMemoryBound(to: CChar.self), Int32(u.count),
                Self.transient)
        }
        guard rc == SQLITE_OK else { throw failure(rc, "bind key") }
    }

    private func done(_ s: OpaquePointer, _ what: String) throws {
        let rc = sqlite3_step(s)
        guard rc == SQLITE_DONE else { throw failure(rc, what) }
    }

    private func failure(_ rc: Int32, _ what: String) -> StoreError {
        .backend("\(what): \(String(cString: sqlite3_errmsg(db.sqliteConnection))) (code \(rc))")
    }

    /// SQLITE_TRANSIENT: SQLite copies the bytes (a String's UTF-8 buffer may be temporary).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

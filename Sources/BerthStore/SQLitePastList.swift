import Foundation
import GRDB

/// Lists at a past revision without an index on the log by key (that index cost a third of every
/// write). A key's state at revision R is found from its newest row by walking `prev_rev` back to
/// the last row at or before R. The chain breaks where a key was deleted and created again (the
/// create has no previous row); the walk then continues from the tombstone that ended the previous
/// life, and all tombstones after R in the range are read first (they are as many as the deletes since
/// R — few for the short-lived revisions clients page at).
extension SQLiteStore {
    private struct LogRow {
        var rev: Int64; var createRevision: Int64; var prevRevision: Int64; var deleted: Bool; var value: [UInt8]
    }

    static func listAt(_ db: Database, revision r: Int64, prefix: String, end: String, startAfter: String, limit: Int)
        throws -> (items: [KeyValue], more: Bool)
    {
        // Tombstones after R, per key, oldest first.
        var tombstones: [String: [LogRow]] = [:]
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT key, rev, create_rev, prev_rev, value FROM log
                WHERE rev > ? AND deleted = 1 AND key >= ? AND key < ? AND key > ? ORDER BY rev
                """, arguments: [r, prefix, end, startAfter])
        {
            tombstones[row["key"], default: []].append(logRow(row, deleted: true))
        }
        let tombstoneKeys = tombstones.keys.sorted()
        var items: [KeyValue] = []
        let want = limit > 0 ? limit + 1 : Int.max
        var ti = 0
        var after = startAfter
        // Live keys in key order, a page at a time, merged with the keys only tombstones name.
        pages: while items.count < want {
            let page = try Row.fetchAll(
                db,
                sql: """
                    SELECT key, rev FROM current WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT 512
                    """, arguments: [prefix, end, after])
            let liveKeys = page.map { ($0["key"] as String, $0["rev"] as Int64) }
            var li = 0
            while items.count < want {
                let nextLive = li < liveKeys.count ? liveKeys[li].0 : nil
                let nextTomb = ti < tombstoneKeys.count ? tombstoneKeys[ti] : nil
                let key: String
                var newest: LogRow?
                if let l = nextLive, nextTomb == nil || l <= nextTomb! {
                    key = l
                    newest = try logRow(db, liveKeys[li].1)
                    li += 1
                    if nextTomb == l { ti += 1 }
                } else if let t = nextTomb, page.count < 512 || t < liveKeys.last!.0 {
                    key = t
                    newest = tombstones[t]!.last
                    ti += 1
                } else if page.count == 512 {
                    after = liveKeys.last!.0
                    continue pages
                } else {
                    break pages
                }
                if let kv = try stateAt(db, r, key: key, from: newest, tombstones: tombstones[key] ?? []) {
                    items.append(kv)
                }
            }
        }
        let more = limit > 0 && items.count > limit
        if more { items.removeLast() }
        return (items, more)
    }

    /// The key's value at revision `r`, walking back from its newest row; nil if it did not exist then.
    private static func stateAt(_ db: Database, _ r: Int64, key: String, from newest: LogRow?, tombstones: [LogRow])
        throws -> KeyValue?
    {
        var row = newest
        while let cur = row {
            if cur.rev <= r {
                return cur.deleted
                    ? nil
                    : KeyValue(key: key, value: cur.value, createRevision: cur.createRevision, modRevision: cur.rev)
            }
            if cur.prevRevision > 0 {
                guard let prev = try logRow(db, cur.prevRevision) else {
                    throw StoreError.compacted(requested: r, compacted: try meta(db, "compacted"))
                }
                row = prev
            } else {
                // Created after r: its previous life (if any) ended in a tombstone after r.
                row = tombstones.last { $0.rev < cur.rev }
            }
        }
        return nil
    }

    private static func logRow(_ db: Database, _ rev: Int64) throws -> LogRow? {
        try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT rev, create_rev, prev_rev, deleted, value FROM log WHERE rev = ?"),
            arguments: [rev]
        )
        .map { logRow($0, deleted: ($0["deleted"] as Int64) != 0) }
    }
    private static func logRow(_ row: Row, deleted: Bool) -> LogRow {
        let value: Data = row["value"]
        return LogRow(
            rev: row["rev"], createRevision: row["create_rev"], prevRevision: row["prev_rev"], deleted: deleted,
            value: [UInt8](value))
    }
}

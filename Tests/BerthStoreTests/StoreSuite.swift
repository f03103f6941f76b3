import BerthStore
import Foundation
import GRDB
import Testing

/// One behavioural suite, run against every backend.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, etcd
    var testDescription: String { rawValue }
}

/// A store plus whatever must be torn down with it.
final class Harness: @unchecked Sendable {
    let store: any KVStore
    let etcd: LocalEtcd?
    let dir: String
    init(_ backend: Backend) async throws {
        dir = NSTemporaryDirectory() + "berth-store-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        switch backend {
        case .sqlite:
            store = try SQLiteStore(path: dir + "/state.db"); etcd = nil
        case .etcd:
            let e = try LocalEtcd()
            try await e.start()
            etcd = e
            store = EtcdStore(endpoints: e.endpoints)
        }
    }
    func close() async {
        await store.close()
        etcd?.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

extension StoreTests {
    @Suite("KV store contract", .serialized)
    struct StoreContractTests {
        @Test(arguments: Backend.allCases)
        func createGetUpdateDelete(_ backend: Backend) async throws {
            let h = try await Harness(backend)
            defer { Task { await h.close() } }
            let s = h.store
            let r1 = try await s.create("/a/x", value: bytes("1"))
            await #expect(throws: StoreError.alreadyExists(key: "/a/x")) {
                try await s.create("/a/x", value: bytes("2"))
            }
            let got = try #require(try await s.get("/a/x"))
            #expect(got.value == bytes("1") && got.modRevision == r1 && got.createRevision == r1)
            let r2 = try await s.update("/a/x", value: bytes("2"), expectedRevision: r1)
            #expect(r2 > r1)
            await #expect(throws: StoreError.conflict(key: "/a/x", actual: r2)) {
                try await s.update("/a/x", value: bytes("3"), expectedRevision: r1)
            }
            await #expect(throws: StoreError.notFound(key: "/a/nope")) {
                try await s.update("/a/nope", value: bytes("3"), expectedRevision: 1)
            }
            await #expect(throws: StoreError.conflict(key: "/a/x", actual: r2)) {
                try await s.delete("/a/x", expectedRevision: r1)
            }
            let gone = try await s.delete("/a/x", expectedRevision: r2)
            #expect(gone.value == bytes("2") && gone.modRevision > r2)
            #expect(try await s.get("/a/x") == nil)
            await #expect(throws: StoreError.notFound(key: "/a/x")) {
                try await s.delete("/a/x", expectedRevision: nil)
            }
            await h.close()
        }

        @Test(arguments: Backend.allCases)
        func listPagesAtARevision(_ backend: Backend) async throws {
            let h = try await Harness(backend)
            let s = h.store
            for i in 0..<10 { _ = try await s.create("/p/k\(i)", value: bytes("v\(i)")) }
            _ = try await s.create("/q/other", value: bytes("x"))
            let first = try await s.list(prefix: "/p/", startAfter: nil, limit: 4, revision: nil)
            #expect(first.items.map(\.key) == ["/p/k0", "/p/k1", "/p/k2", "/p/k3"] && first.more)
            // Changes after the first page must not show in later pages read at the same revision.
            _ = try await s.delete("/p/k5", expectedRevision: nil)
            _ = try await s.create("/p/k55", value: bytes("new"))
            let second = try await s.list(prefix: "/p/", startAfter: "/p/k3", limit: 4, revision: first.revision)
            #expect(second.items.map(\.key) == ["/p/k4", "/p/k5", "/p/k6", "/p/k7"] && second.more)
            let third = try await s.list(prefix: "/p/", startAfter: "/p/k7", limit: 4, revision: first.revision)
            #expect(third.items.map(\.key) == ["/p/k8", "/p/k9"] && !third.more)
            let now = try await s.list(prefix: "/p/", startAfter: nil, limit: 0, revision: nil)
            #expect(now.items.count == 10 && now.items.contains { $0.key == "/p/k55" })
            // Counting sees the current keys under the prefix only (deleted ones gone, others' not counted).
            #expect(try await s.count(prefix: "/p/") == 10)
            #expect(try await s.count(prefix: "/q/") == 1)
            #expect(try await s.count(prefix: "/none/") == 0)
            await h.close()
        }

        /// Lists at past revisions against a model of the history: keys updated, deleted, created again
        /// and deleted again after the revision listed at, read in pages, before and after a compaction.
        @Test(arguments: Backend.allCases)
        func listAtPastRevisionsMatchesTheHistory(_ backend: Backend) async throws {
            let h = try await Harness(backend)
            let s = h.store
            var live: [String: (rev: Int64, value: String)] = [:]
            var snapshots: [(rev: Int64, state: [String: String])] = []
            var rng = SystemRandomNumberGenerator()
            for step in 0..<240 {
                let key = "/h/k\(Int.random(in: 0..<12, using: &rng))"
                let value = "v\(step)"
                if let cur = live[key] {
                    if Bool.random(using: &rng) {
                        live[key] = (try await s.update(key, value: bytes(value), expectedRevision: cur.rev), value)
                    } else {
                        _ = try await s.delete(key, expectedRevision: cur.rev)
                        live[key] = nil
                    }
                } else {
                    live[key] = (try await s.create(key, value: bytes(value)), value)
                }
                snapshots.append((try await s.currentRevision(), live.mapValues(\.value)))
            }
            func check(_ snap: (rev: Int64, state: [String: String])) async throws {
                var got: [String: String] = [:]
                var after: String?
                while true {
                    let page = try await s.list(prefix: "/h/", startAfter: after, limit: 3, revision: snap.rev)
                    #expect(page.revision == snap.rev)
                    for kv in page.items { got[kv.key] = String(decoding: kv.value, as: UTF8.self) }
                    #expect(page.items.map(\.key) == page.items.map(\.key).sorted())
                    guard page.more, let last = page.items.last else { break }
                    after = last.key
                }
                #expect(got == snap.state, "list at revision \(snap.rev)")
            }
            for snap in snapshots.enumerated().filter({ $0.offset % 17 == 0 }).map(\.element) { try await check(snap) }
            let mid = snapshots[snapshots.count / 2]
            try await s.compact(revision: mid.rev)
            for snap in snapshots.suffix(snapshots.count / 2).enumerated().filter({ $0.offset % 13 == 0 }).map(
                \.element)
            { try await check(snap) }
            await h.close()
        }

        /// Many compare-and-swaps handed over at once: each succeeds or fails on its own, in order.
        @Test(arguments: Backend.allCases)
        func updateEachAppliesEachOnItsOwn(_ backend: Backend) async throws {
            let h = try await Harness(backend)
            let s = h.store
            var revs: [Int64] = []
            for i in 0..<100 { revs.append(try await s.create("/u/k\(i)", value: bytes("v\(i)"))) }
            var updates = (0..<100).map {
                KeyUpdate(key: "/u/k\($0)", value: bytes("w\($0)"), expectedRevision: revs[$0])
            }
            updates[7].expectedRevision -= 1  // stale: conflict
            updates.append(KeyUpdate(key: "/u/missing", value: bytes("x"), expectedRevision: 1))  // not found
            let results = await s.updateEach(updates)
            #expect(results.count == 101)
            for (i, r) in results.enumerated() {
                switch (i, r) {
                case (7, .failure(.conflict)), (100, .failure(.notFound)): continue
                case (_, .success(let rev)) where i != 7 && i != 100:
                    #expect(try await s.get("/u/k\(i)")?.modRevision == rev)
                default: Issue.record("update \(i): \(r)")
                }
            }
            #expect(try await s.get("/u/k7")?.value == bytes("v7"))
            #expect(try await s.get("/u/k8")?.value == bytes("w8"))
            await h.close()
        }

        @Test(arguments: Backend.allCases)
        func watchFromARevisionThenLive(_ backend: Backend) async throws {
            let h = try await Harness(backend)
            let s = h.store
            let r0 = try await s.currentRevision()
            let r1 = try await s.create("/w/a", value: bytes("1"))
            _ = try await s.create("/other/b", value: bytes("1"))
            let stream = try await s.watch(prefix: "/w/", afterRevision: r0)
            var it = stream.makeAsyncIterator()
            let e1 = try #require(try await it.next())
            #expect(e1.kind == .put && e1.kv.key == "/w/a" && e1.revision == r1 && e1.prev == nil)
            let r2 = try await s.update("/w/a", value: bytes("2"), expectedRevision: r1)
            let e2 = try #require(try await it.next())
            #expect(e2.kind == .put && e2.revision == r2 && e2.prev?.value == bytes("1"))
            let gone = try await s.delete("/w/a", expectedRevision: nil)
            let e3 = try #require(try await it.next())
            #expect(e3.kind == .delete && e3.revision == gone.modRevision && e3.kv.value == bytes("2"))
            await h.close()
        }

        @Test(arguments: Backend.allCases)
        func compactionMakesOldRevisionsTooOld(_ backend: Backend) async throws {
            let h = try await Harness(backend)
            let s = h.store
            let r1 = try await s.create("/c/a", value: bytes("1"))
            var rev = r1
            for i in 0..<5 { rev = try await s.update("/c/a", value: bytes("\(i)"), expectedRevision: rev) }
            _ = try await s.create("/c/b", value: bytes("b"))
            try await s.compact(revision: rev)
            await #expect {
                _ = try await s.watch(prefix: "/c/", afterRevision: r1 - 1)
            } throws: { if case StoreError.compacted = $0 { true } else { false } }
            await #expect {
                _ = try await s.list(prefix: "/c/", startAfter: nil, limit: 1, revision: r1)
            } throws: { if case StoreError.compacted = $0 { true } else { false } }
            // Still readable at the compaction revision, and current state intact.
            let atC = try await s.list(prefix: "/c/", startAfter: nil, limit: 0, revision: rev)
            #expect(atC.items.map(\.key) == ["/c/a"] && atC.items[0].value == bytes("4"))
            let now = try await s.list(prefix: "/c/", startAfter: nil, limit: 0, revision: nil)
            #expect(now.items.map(\.key) == ["/c/a", "/c/b"])
            let w = try await s.watch(prefix: "/c/", afterRevision: rev)
            var it = w.makeAsyncIterator()
            #expect(try await it.next()?.kv.key == "/c/b")
            await h.close()
        }

        @Test(arguments: Backend.allCases)
        func concurrentWritersAllAcknowledgedWritesPersist(_ backend: Backend) async throws {
            let h = try await Harness(backend)
            let s = h.store
            let watch = try await s.watch(prefix: "/n/", afterRevision: try await s.currentRevision())
            try await withThrowingTaskGroup(of: Void.self) { g in
                for w in 0..<8 {
                    g.addTask { for i in 0..<25 { _ = try await s.create("/n/\(w)-\(i)", value: bytes("v")) } }
                }
                try await g.waitForAll()
            }
            let all = try await s.list(prefix: "/n/", startAfter: nil, limit: 0, revision: nil)
            #expect(all.items.count == 200)
            var seen = 0
            var last: Int64 = 0
            for try await e in watch {
                #expect(e.revision > last)
                last = e.revision
                seen += 1
                if seen == 200 { break }
            }
            #expect(seen == 200)
            await h.close()
        }
    }

    @Suite("SQLite durability")
    struct SQLiteDurabilityTests {
        /// A store written before values left the key table (and before the log lost its key index) opens
        /// with its data: the key table is rebuilt from the log.
        @Test func opensAStoreWithTheEarlierSchema() async throws {
            let dir = NSTemporaryDirectory() + "berth-sq-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = dir + "/state.db"
            let old = try DatabaseQueue(path: path)
            try await old.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE log(rev INTEGER PRIMARY KEY, key TEXT NOT NULL, create_rev INTEGER NOT NULL,
                          prev_rev INTEGER NOT NULL, deleted INTEGER NOT NULL, value BLOB NOT NULL);
                        CREATE INDEX log_key_rev ON log(key, rev);
                        CREATE TABLE current(key TEXT PRIMARY KEY, rev INTEGER NOT NULL, create_rev INTEGER NOT NULL,
                          value BLOB NOT NULL) WITHOUT ROWID;
                        CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                        INSERT INTO log VALUES (2, '/o/a', 2, 0, 0, x'31'), (3, '/o/b', 3, 0, 0, x'62'), (4, '/o/a', 2, 2, 0, x'32');
                        INSERT INTO current VALUES ('/o/a', 4, 2, x'32'), ('/o/b', 3, 3, x'62');
                        INSERT INTO meta VALUES ('rev', 4), ('compacted', 0);
                        """)
            }
            try old.close()
            let s = try SQLiteStore(path: path)
            let a = try #require(try await s.get("/o/a"))
            #expect(a.value == bytes("2") && a.modRevision == 4 && a.createRevision == 2)
            #expect(
                try await s.list(prefix: "/o/", startAfter: nil, limit: 0, revision: nil).items.map(\.key) == [
                    "/o/a", "/o/b",
                ])
            #expect(
                try await s.list(prefix: "/o/", startAfter: nil, limit: 0, revision: 3).items.map(\.value) == [
                    bytes("1"), bytes("b"),
                ])
            let r = try await s.update("/o/a", value: bytes("3"), expectedRevision: 4)
            #expect(r == 5)
            await s.close()
            let columns = try await DatabaseQueue(path: path).read { db in
                try Row.fetchAll(db, sql: "PRAGMA table_info(current)").map { $0["name"] as String }
            }
            #expect(columns == ["key", "rev", "create_rev"])
        }

        @Test func reopenKeepsDataAndRevision() async throws {
            let dir = NSTemporaryDirectory() + "berth-sq-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            var rev: Int64 = 0
            do {
                let s = try SQLiteStore(path: dir + "/db")
                rev = try await s.create("/k", value: bytes("v"))
                await s.close()
            }
            let s = try SQLiteStore(path: dir + "/db")
            #expect(try await s.get("/k")?.modRevision == rev)
            #expect(try await s.create("/k2", value: bytes("v")) > rev)
            await s.close()
        }
    }
}

/// The store suites run one at a time (each may start its own etcd).
@Suite("BerthStore", .serialized) struct StoreTests {}

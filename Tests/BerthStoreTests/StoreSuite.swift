import BerthStore
import Foundation
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
        await #expect(throws: StoreError.alreadyExists(key: "/a/x")) { try await s.create("/a/x", value: bytes("2")) }
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
        await #expect(throws: StoreError.conflict(key: "/a/x", actual: r2)) { try await s.delete("/a/x", expectedRevision: r1) }
        let gone = try await s.delete("/a/x", expectedRevision: r2)
        #expect(gone.value == bytes("2") && gone.modRevision > r2)
        #expect(try await s.get("/a/x") == nil)
        await #expect(throws: StoreError.notFound(key: "/a/x")) { try await s.delete("/a/x", expectedRevision: nil) }
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
            for w in 0..<8 { g.addTask { for i in 0..<25 { _ = try await s.create("/n/\(w)-\(i)", value: bytes("v")) } } }
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

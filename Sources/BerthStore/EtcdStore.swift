import AsyncHTTPClient
import BerthJSON
import Foundation
import Logging
import NIOCore

/// etcd v3 through its gRPC-gateway JSON API (`/v3/kv/*`, `/v3/watch`), which etcd serves on its client
/// port. This avoids generated protobuf code; the semantics (revisions, compare-and-swap transactions,
/// watch with prev_kv, compaction) are etcd's own.
///
/// Several endpoints may be given; a request that fails at the transport level moves on to the next one.
public final class EtcdStore: KVStore {
    private let endpoints: [String]
    private let client: HTTPClient
    /// Watches hold their HTTP/1 connection open for as long as they run, so they get their own client
    /// whose pool never makes a watch (or a write) wait for another watch to finish.
    private let watchClient: HTTPClient
    private let logger: Logger
    private let compactedCache = CompactedCache()

    private final class CompactedCache: @unchecked Sendable {
        let lock = NSLock()
        var value: Int64 = 0
        func set(_ v: Int64) { lock.lock(); value = max(value, v); lock.unlock() }
        func get() -> Int64 { lock.lock(); defer { lock.unlock() }; return value }
    }

    /// `endpoints` like `http://127.0.0.1:2379`.
    public init(endpoints: [String], logger: Logger = Logger(label: "berth.store.etcd")) {
        self.endpoints = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(2), read: nil)
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 100_000)
        self.watchClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        self.logger = logger
    }

    // MARK: JSON helpers

    // Requests and replies are BerthJSON trees (the gateway's int64s are strings, bytes base64).
    private static func b64(_ s: String) -> JSON { .string(Data(s.utf8).base64EncodedString()) }
    private static func b64(_ b: [UInt8]) -> JSON { .string(Data(b).base64EncodedString()) }
    private static func unb64(_ j: JSON) -> [UInt8] {
        guard let s = j.string, let d = Data(base64Encoded: s) else { return [] }
        return [UInt8](d)
    }
    private static func int(_ j: JSON) -> Int64 {
        if let s = j.string { return Int64(s) ?? 0 }
        return j.int ?? 0
    }
    private static func kv(_ j: JSON) -> KeyValue? {
        guard case .object = j else { return nil }
        return KeyValue(
            key: String(decoding: unb64(j["key"]), as: UTF8.self), value: unb64(j["value"]),
            createRevision: int(j["create_revision"]), modRevision: int(j["mod_revision"]))
    }

    private func call(_ path: String, _ body: JSON) async throws -> JSON {
        let data = body.serialized()
        var lastError: any Error = StoreError.backend("no etcd endpoints")
        for endpoint in endpoints {
            var req = HTTPClientRequest(url: endpoint + path)
            req.method = .POST
            req.headers.add(name: "content-type", value: "application/json")
            req.body = .bytes(ByteBuffer(bytes: data))
            let response: HTTPClientResponse
            do {
                response = try await client.execute(req, timeout: .seconds(10))
            } catch {
                lastError = StoreError.backend("etcd \(endpoint)\(path): \(error)")
                continue
            }
            let buf = try await response.body.collect(upTo: 1 << 30)
            let obj = (try? JSON.parse(Array(buf.readableBytesView))) ?? [:]
            if response.status.code != 200 {
                let message = obj["message"].string ?? obj["error"].string ?? "HTTP \(response.status.code)"
                if message.contains("compacted") {
                    throw StoreError.compacted(requested: 0, compacted: compactedCache.get())
                }
                if message.contains("future rev") { throw StoreError.futureRevision(requested: 0, current: 0) }
                // Leader changes and unavailable members: try the next endpoint.
                lastError = StoreError.backend("etcd \(path): \(message)")
                if message.contains("leader") || message.contains("unavailable") || message.contains("timed out") {
                    continue
                }
                throw lastError
            }
            return obj
        }
        throw lastError
    }

    private static func revision(_ obj: JSON) -> Int64 { int(obj["header"]["revision"]) }

    // MARK: KVStore

    public func get(_ key: String) async throws -> KeyValue? {
        let r = try await call("/v3/kv/range", ["key": Self.b64(key)])
        return Self.kv(r["kvs"][0])
    }

    public func list(prefix: String, startAfter: String?, limit: Int, revision: Int64?) async throws -> ListResult {
        let start = startAfter.map { $0 + "\u{0}" } ?? prefix
        var body: JSON = ["key": Self.b64(start), "range_end": Self.b64(prefixEnd(prefix))]
        if limit > 0 { body["limit"] = .int(Int64(limit)) }
        if let revision, revision > 0 { body["revision"] = .string(String(revision)) }
        let r = try await call("/v3/kv/range", body)
        let items = (r["kvs"].array ?? []).compactMap(Self.kv)
        return ListResult(
            items: items, revision: revision.flatMap { $0 > 0 ? $0 : nil } ?? Self.revision(r),
            more: r["more"].bool ?? false)
    }

    public func count(prefix: String) async throws -> Int {
        let r = try await call(
            "/v3/kv/range", ["key": Self.b64(prefix), "range_end": Self.b64(prefixEnd(prefix)), "count_only": true])
        return Int(r["count"].string ?? "") ?? Int(r["count"].int ?? 0)
    }

    public func create(_ key: String, value: [UInt8]) async throws -> Int64 {
        let r = try await call(
            "/v3/kv/txn",
            [
                "compare": [["target": "CREATE", "key": Self.b64(key), "create_revision": "0", "result": "EQUAL"]],
                "success": [["request_put": ["key": Self.b64(key), "value": Self.b64(value)]]],
            ])
        guard r["succeeded"].bool == true else { throw StoreError.alreadyExists(key: key) }
        return Self.revision(r)
    }

    public func update(_ key: String, value: [UInt8], expectedRevision: Int64) async throws -> Int64 {
        let r = try await call(
            "/v3/kv/txn",
            [
                "compare": [
                    [
                        "target": "MOD", "key": Self.b64(key), "mod_revision": .string(String(expectedRevision)),
                        "result": "EQUAL",
                    ]
                ],
                "success": [["request_put": ["key": Self.b64(key), "value": Self.b64(value)]]],
                "failure": [["request_range": ["key": Self.b64(key)]]],
            ])
        if r["succeeded"].bool == true { return Self.revision(r) }
        throw failure(key, r)
    }

    private func failure(_ key: String, _ r: JSON) -> StoreError {
        if let current = Self.kv(r["responses"][0]["response_range"]["kvs"][0]) {
            return .conflict(key: key, actual: current.modRevision)
        }
        return .notFound(key: key)
    }

    public func delete(_ key: String, expectedRevision: Int64?) async throws -> KeyValue {
        var compare: [JSON] = [["target": "CREATE", "key": Self.b64(key), "create_revision": "0", "result": "GREATER"]]
        if let expectedRevision {
            compare.append([
                "target": "MOD", "key": Self.b64(key), "mod_revision": .string(String(expectedRevision)),
                "result": "EQUAL",
            ])
        }
        let r = try await call(
            "/v3/kv/txn",
            [
                "compare": .array(compare),
                "success": [["request_delete_range": ["key": Self.b64(key), "prev_kv": true]]],
                "failure": [["request_range": ["key": Self.b64(key)]]],
            ])
        guard r["succeeded"].bool == true else { throw failure(key, r) }
        guard var prev = Self.kv(r["responses"][0]["response_delete_range"]["prev_kvs"][0]) else {
            throw StoreError.notFound(key: key)
        }
        prev.modRevision = Self.revision(r)
        return prev
    }

    public func currentRevision() async throws -> Int64 {
        Self.revision(try await call("/v3/kv/range", ["key": Self.b64("\u{0}")]))
    }

    public func compact(revision: Int64) async throws {
        do {
            _ = try await call("/v3/kv/compaction", ["revision": .string(String(revision)), "physical": true])
        } catch StoreError.compacted {}
        compactedCache.set(revision)
    }

    public func compactedRevision() async throws -> Int64 { compactedCache.get() }

    public func watch(prefix: String, afterRevision: Int64) async throws -> AsyncThrowingStream<StoreEvent, any Error> {
        let body: JSON = [
            "create_request": [
                "key": Self.b64(prefix), "range_end": Self.b64(prefixEnd(prefix)),
                "start_revision": .string(String(afterRevision + 1)), "prev_kv": true,
            ]
        ]
        // etcd reports a compacted start only after "created"; a range at that revision tells us up front.
        do {
            _ = try await call(
                "/v3/kv/range", ["key": Self.b64(prefix), "limit": 1, "revision": .string(String(afterRevision + 1))])
        } catch StoreError.futureRevision {}
        let data = body.serialized()
        var response: HTTPClientResponse?
        var lastError: any Error = StoreError.backend("no etcd endpoints")
        for endpoint in endpoints {
            var req = HTTPClientRequest(url: endpoint + "/v3/watch")
            req.method = .POST
            req.headers.add(name: "content-type", value: "application/json")
            req.body = .bytes(ByteBuffer(bytes: data))
            do { response = try await watchClient.execute(req, timeout: .hours(24 * 365)); break } catch {
                lastError = StoreError.backend("etcd watch \(endpoint): \(error)")
            }
        }
        guard let response else { throw lastError }
        var iterator = LineIterator(body: response.body)
        // The first message confirms creation or reports compaction.
        guard let first = try await iterator.next() else { throw StoreError.backend("etcd watch closed") }
        if let err = Self.watchError(first) { throw err }
        let firstEvents = Self.events(first)
        let compactedCache = self.compactedCache
        let (stream, continuation) = AsyncThrowingStream<StoreEvent, any Error>.makeStream()
        let task = Task {
            var it = iterator
            do {
                for e in firstEvents { continuation.yield(e) }
                while let msg = try await it.next() {
                    if let err = Self.watchError(msg) {
                        if case .compacted(_, let c) = err { compactedCache.set(c) }
                        throw err
                    }
                    for e in Self.events(msg) { continuation.yield(e) }
                }
                continuation.finish(throwing: StoreError.backend("etcd watch stream ended"))
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private static func watchError(_ msg: JSON) -> StoreError? {
        let error = msg["error"]
        if case .object = error {
            return .backend("etcd watch: \(error["message"].string ?? error.text)")
        }
        let result = msg["result"]
        let compact = int(result["compact_revision"])
        if compact > 0 { return .compacted(requested: 0, compacted: compact) }
        if result["canceled"].bool == true {
            return .backend("etcd watch canceled: \(result["cancel_reason"].string ?? "")")
        }
        return nil
    }

    private static func events(_ msg: JSON) -> [StoreEvent] {
        return (msg["result"]["events"].array ?? []).compactMap { e -> StoreEvent? in
            guard var kv = Self.kv(e["kv"]) else { return nil }
            let prev = Self.kv(e["prev_kv"])
            if e["type"].string == "DELETE" {
                let rev = kv.modRevision
                kv = prev ?? kv
                kv.modRevision = rev
                return StoreEvent(kind: .delete, kv: kv, prev: prev)
            }
            return StoreEvent(kind: .put, kv: kv, prev: prev)
        }
    }

    /// Splits the gateway's stream into JSON objects, one per line.
    private struct LineIterator: @unchecked Sendable {
        var inner: HTTPClientResponse.Body.AsyncIterator
        var buffer: [UInt8] = []
        init(body: HTTPClientResponse.Body) { inner = body.makeAsyncIterator() }
        mutating func next() async throws -> JSON? {
            while true {
                if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(buffer[..<nl])
                    buffer.removeSubrange(...nl)
                    if line.allSatisfy({ $0 == 32 || $0 == 13 }) { continue }
                    guard let obj = try? JSON.parse(line), case .object = obj else {
                        throw StoreError.backend("etcd watch: bad message")
                    }
                    return obj
                }
                guard var chunk = try await inner.next() else {
                    if buffer.isEmpty { return nil }
                    buffer.append(UInt8(ascii: "\n"))
                    continue
                }
                buffer.append(contentsOf: chunk.readBytes(length: chunk.readableBytes) ?? [])
            }
        }
    }

    public func close() async {
        try? await client.shutdown()
        try? await watchClient.shutdown()
    }
}

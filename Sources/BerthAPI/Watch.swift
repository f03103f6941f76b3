import BerthStore
import Foundation
import Hummingbird
import NIOCore

extension Handler {
    enum WatchItem: Sendable {
        case event(StoreEvent)
        case failed(any Error)
        case tick
        case timeout
    }

    /// `GET …?watch=1`: newline-delimited `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": …}`,
    /// or in protobuf length-delimited WatchEvents (`Protobuf.watchFrame`).
    func watch(_ call: Call, _ r: ResourceType, namespace: String?) async throws -> Response {
        let labels = try LabelSelector(call.query["labelSelector"] ?? "")
        let fields = try FieldSelector(call.query["fieldSelector"] ?? "", for: r)
        let bookmarks = call.query["allowWatchBookmarks"] == "true"
        let prefix = r.prefix(namespace: namespace)
        let timeout =
            Int(call.query["timeoutSeconds"] ?? "").map { Duration.seconds($0) }
            ?? .seconds(Int.random(in: 1800...3600))
        let table = call.wantsTable
        // The form of each event's object: protobuf or JSON, and as PartialObjectMetadata or whole.
        let (protobuf, partialVersion): (Bool, String?) =
            switch call.render {
            case .protobuf: (true, nil)
            case .partialMetadata(let version, let inProtobuf): (inProtobuf, version)
            default: (false, nil)
            }
        let include = call.query["includeObject"] ?? "Metadata"
        let rvParam = call.query["resourceVersion"] ?? ""
        var initial: [JSON] = []
        let from: Int64
        let sendInitial = call.query["sendInitialEvents"] == "true"
        if rvParam.isEmpty || rvParam == "0" || sendInitial {
            // Start with the current state as ADDED events (upstream semantics for rv "" / "0").
            let page = try await store.list(prefix: prefix, startAfter: nil, limit: 0, revision: nil)
            for kv in page.items { initial.append(try decodeStored(kv, r)) }
            from = page.revision
        } else {
            guard let v = Int64(rvParam) else { throw APIError.badRequest("invalid resource version \"\(rvParam)\"") }
            from = v
        }
        let store = self.store
        let handler = self
        let interval = server.config.bookmarkInterval
        let metrics = server.metrics
        @Sendable func matches(_ o: JSON) -> Bool {
            (labels.isEmpty || labels.matches(o["metadata"]["labels"].stringMap))
                && (fields.isEmpty || fields.matches(o))
        }
        @Sendable func frame(_ type: String, _ obj: JSON) -> ByteBuffer {
            var o = obj
            if table && type != "ERROR" && type != "BOOKMARK" {
                var t = Tables.table(
                    [], r, resourceVersion: obj["metadata"]["resourceVersion"].string ?? "", continueToken: nil,
                    includeObject: include)
                t["rows"] = [Tables.row(obj, r, includeObject: include)]
                o = t
            }
            if let partialVersion { o = PartialObjectMetadata.convert(o, version: partialVersion) }
            if protobuf {
                // Every object here is of a kind with a message (negotiated so) or a Status; were one
                // not, the client would rather read an error than a frame it cannot parse.
                let frame =
                    Protobuf.watchFrame(type: type, object: o)
                    ?? Protobuf.watchFrame(
                        type: "ERROR", object: APIError.internalError("no protobuf form for \(type) event").status)
                return ByteBuffer(bytes: frame ?? [])
            }
            var bytes = JSON.object(["type": .string(type), "object": o]).serialized()
            bytes.append(0x0a)
            return ByteBuffer(bytes: bytes)
        }
        let initialObjects = initial.filter(matches)
        let inFlight = server.inFlight
        let described = "watch body \(r.plural) from \(from)"
        let watchCounts = server.watchCounts
        let watched = WatchCounts.Index(
            group: r.group, resource: r.plural, namespace: namespace ?? "",
            name: Handler.singleName(call.query["fieldSelector"]) ?? "")
        let body = ResponseBody { writer in
            metrics.watchDelta(1)
            let token = inFlight.started(described)
            watchCounts.started(watched)
            defer {
                metrics.watchDelta(-1)
                inFlight.ended(token)
                watchCounts.ended(watched)
            }
            for o in initialObjects { try await writer.write(frame("ADDED", o)) }
            if sendInitial {
                try await writer.write(
                    frame(
                        "BOOKMARK",
                        [
                            "kind": .string(r.kind), "apiVersion": .string(r.apiVersion),
                            "metadata": [
                                "resourceVersion": .string(String(from)),
                                "annotations": ["k8s.io/initial-events-end": "true"],
                            ],
                        ]))
            }
            let (items, cont) = AsyncStream<WatchItem>.makeStream()
            let feeder = Task {
                do {
                    let events = try await store.watch(prefix: prefix, afterRevision: from)
                    for try await e in events { cont.yield(.event(e)) }
                    cont.yield(.failed(StoreError.backend("watch ended")))
                } catch { cont.yield(.failed(error)) }
                cont.finish()
            }
            let ticker = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    cont.yield(.tick)
                }
            }
            // The watch ends at its timeout, or as soon as the server begins a graceful shutdown.
            let ender = Task {
                try? await gracefulShutdownAwareSleep(for: timeout)
                cont.yield(.timeout)
            }
            defer { feeder.cancel(); ticker.cancel(); ender.cancel(); cont.finish() }
            var last = from
            loop: for await item in items {
                switch item {
                case .event(let e):
                    last = e.revision
                    guard
                        var obj = try? handler.decodeStored(
                            e.kind == .delete
                                ? KeyValue(
                                    key: e.kv.key, value: e.kv.value, createRevision: e.kv.createRevision,
                                    modRevision: e.kv.modRevision) : e.kv, r)
                    else { continue }
                    obj["metadata"]["resourceVersion"] = .string(String(e.revision))
                    let now = matches(obj)
                    let before = e.prev.flatMap { try? handler.decodeStored($0, r) }.map(matches) ?? false
                    switch e.kind {
                    case .delete: if now { try await writer.write(frame("DELETED", obj)) }
                    case .put:
                        if e.prev == nil || e.kv.createRevision == e.kv.modRevision {
                            if now { try await writer.write(frame("ADDED", obj)) }
                        } else if now {
                            try await writer.write(
                                frame(before || labels.isEmpty && fields.isEmpty ? "MODIFIED" : "ADDED", obj))
                        } else if before {
                            try await writer.write(frame("DELETED", obj))
                        }
                    }
                case .tick:
                    if bookmarks {
                        try await writer.write(
                            frame(
                                "BOOKMARK",
                                [
                                    "kind": .string(r.kind), "apiVersion": .string(r.apiVersion),
                                    "metadata": ["resourceVersion": .string(String(last))],
                                ]))
                    }
                case .failed(let error):
                    let api: APIError
                    if case StoreError.compacted = error {
                        api = APIError.gone(
                            "too old resource version: \(from) (\(try await store.compactedRevision()))")
                    } else if let s = error as? StoreError {
                        api = Handler.map(s, r, "")
                    } else {
                        api = .internalError("\(error)")
                    }
                    try await writer.write(frame("ERROR", api.status))
                    break loop
                case .timeout:
                    break loop
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: protobuf ? Protobuf.watchMediaType : "application/json", .transferEncoding: "chunked",
            ],
            body: body)
    }
}

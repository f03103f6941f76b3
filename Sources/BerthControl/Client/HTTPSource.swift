import AsyncHTTPClient
import BerthAPI
import BerthKube
import NIOCore
import ServiceLifecycle

/// Which objects of a resource a source lists and watches (the API's `labelSelector` and
/// `fieldSelector`), e.g. a node agent's pods: `fieldSelector: "spec.nodeName=node-1"`.
public struct ObjectSelectors: Sendable, Equatable {
    public var labelSelector: String?
    public var fieldSelector: String?

    public init(labelSelector: String? = nil, fieldSelector: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
    }

    public static let everything = ObjectSelectors()
}

/// Sources that read an API server on another machine over HTTPS, so a node agent there runs the same
/// informers the control plane runs in process. Every source shares one HTTP client (a connection per
/// watch): call ``shutdown()`` once the informers have stopped, or run the provider in a ServiceGroup,
/// which shuts it down on graceful shutdown.
public final class HTTPSourceProvider: ObjectSourceProvider, ServiceLifecycle.Service, Sendable {
    let transport: RemoteTransport
    let selectors: @Sendable (ResourceType) -> ObjectSelectors
    /// Objects per LIST request (client-go's pager uses 500).
    public let pageSize: Int
    /// How long the server keeps one watch request open; each asks for this to twice this (at random, as
    /// client-go does, so that many agents do not reconnect together). It then resumes from the last
    /// revision it saw.
    public let watchTimeout: Duration
    /// Where decoded objects share their strings.
    let strings: StringPool

    /// `selectors` restricts what each resource's source sees (everything unless told); `strings`: the
    /// pool decoded objects share strings through (a node agent caching one node's pods needs a small one).
    public init(
        server: RemoteAPIServer, pageSize: Int = 500, watchTimeout: Duration = .seconds(300),
        strings: StringPool = .shared,
        selectors: @escaping @Sendable (ResourceType) -> ObjectSelectors = { _ in .everything }
    ) throws(HTTPSourceError) {
        transport = try RemoteTransport(server: server)
        self.strings = strings
        self.selectors = selectors
        self.pageSize = max(1, pageSize)
        self.watchTimeout = watchTimeout
    }

    public func source<T: HasObjectMeta>(_ type: T.Type, resource: ResourceType) -> any ObjectSource<T> {
        HTTPSource<T>(
            transport: transport, resource: resource, selectors: selectors(resource), pageSize: pageSize,
            watchTimeout: watchTimeout, strings: strings)
    }

    /// The same connection's sources without the selectors: a node agent's own pods informer sees only
    /// its node's pods, while its NetworkPolicy enforcer must match peers on every node.
    public var unselected: any ObjectSourceProvider { UnselectedSources(provider: self) }

    struct UnselectedSources: ObjectSourceProvider {
        let provider: HTTPSourceProvider
        func source<T: HasObjectMeta>(_ type: T.Type, resource: ResourceType) -> any ObjectSource<T> {
            HTTPSource<T>(
                transport: provider.transport, resource: resource, selectors: .everything,
                pageSize: provider.pageSize, watchTimeout: provider.watchTimeout, strings: provider.strings)
        }
    }

    /// Closes the HTTP client's connections; open watches end with an error. Call it once.
    public func shutdown() async throws { try await transport.shutdown() }

    /// Waits for the service group's graceful shutdown (or cancellation), then shuts the client down.
    public func run() async throws {
        try? await gracefulShutdown()
        try await shutdown()
    }
}

/// Lists and watches one resource of a remote API server (client-go's ListWatch over its REST client):
/// paged LIST (`limit`/`continue`, falling back to one whole list when a continue token expired), then
/// WATCH from the list's revision with bookmarks, resuming after the server ends a watch at its timeout
/// from the last revision an event or bookmark carried. A revision the server no longer has (410 Gone,
/// as a status or an ERROR event) ends the watch with an ``HTTPSourceError`` of code `.expired`, on which
/// the informer lists again.
public struct HTTPSource<Object: HasObjectMeta>: ObjectSource {
    let transport: RemoteTransport
    public let resource: ResourceType
    public let selectors: ObjectSelectors
    public let pageSize: Int
    public let watchTimeout: Duration
    let strings: StringPool
    /// A single watch event larger than this is not an API server's.
    static var maxFrame: Int { 64 << 20 }
    /// A single list page larger than this is not an API server's.
    static var maxPage: Int { 512 << 20 }

    public func list() async throws -> (items: [Object], revision: Int64) {
        do {
            return try await list(pageSize: pageSize)
        } catch let error as HTTPSourceError where error.code == .expired {
            // The snapshot the pages were read from was compacted between two pages: read it whole.
            return try await list(pageSize: nil)
        }
    }

    private func list(pageSize: Int?) async throws -> (items: [Object], revision: Int64) {
        var items: [Object] = []
        var revision: Int64 = 0
        var token: String?
        repeat {
            var query = selectorQuery
            if let pageSize { query.append(("limit", String(pageSize))) }
            if let token { query.append(("continue", token)) }
            let path = Self.path(resource) + Self.encode(query)
            let response = try await transport.get(path, accept: Self.listAccept, timeout: .seconds(120))
            let body: ByteBuffer
            do { body = try await response.body.collect(upTo: Self.maxPage) } catch {
                throw RemoteTransport.transportError(error, url: path)
            }
            let page: JSON
            do { page = try JSON.parse(Array(body.readableBytesView)) } catch {
                throw HTTPSourceError(.malformedResponse, "\(path): a list that is not JSON", cause: error)
            }
            guard let listed = page["metadata"]["resourceVersion"].string.flatMap({ Int64($0) }) else {
                throw HTTPSourceError(.malformedResponse, "\(path): a list without a resourceVersion")
            }
            revision = listed
            // An object that does not decode is skipped, as the in-process source skips it: one bad value
            // must not stop every informer.
            for item in page["items"].array ?? [] {
                if let object = try? decode(item) { items.append(object) }
            }
            token = page["metadata"]["continue"].string.flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return (items, revision)
    }

    public func watch(afterRevision revision: Int64) async throws -> AsyncThrowingStream<SourceEvent<Object>, any Error>
    {
        let (stream, continuation) = AsyncThrowingStream<SourceEvent<Object>, any Error>.makeStream()
        let task = Task {
            var from = revision
            do {
                // One request after another: the server ends each at its timeout.
                while !Task.isCancelled {
                    let delivered = try await watchOnce(from: &from, continuation)
                    // A watch that ended before it said anything is not a timeout: let the informer list
                    // again, with its backoff, rather than reconnect at once.
                    if !delivered {
                        throw HTTPSourceError(
                            .unreachable, "\(Self.path(resource)): the server ended the watch before any event")
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// One WATCH request from `from`, its events yielded as they come; `from` follows every event and
    /// bookmark. Returns whether the server sent anything before it ended the watch.
    private func watchOnce(
        from: inout Int64, _ continuation: AsyncThrowingStream<SourceEvent<Object>, any Error>.Continuation
    )
        async throws -> Bool
    {
        let seconds = Int64.random(in: watchTimeout.components.seconds...(2 * watchTimeout.components.seconds))
        var query: [(String, String)] = [
            ("watch", "1"), ("allowWatchBookmarks", "true"), ("resourceVersion", String(from)),
            ("timeoutSeconds", String(seconds)),
        ]
        query += selectorQuery
        let path = Self.path(resource) + Self.encode(query)
        let response = try await transport.get(path, accept: Self.watchAccept, timeout: .seconds(seconds + 30))
        var buffer: [UInt8] = []
        var delivered = false
        do {
            for try await chunk in response.body {
                buffer.append(contentsOf: chunk.readableBytesView)
                var start = 0
                while let newline = buffer[start...].firstIndex(of: 0x0a) {
                    let line = buffer[start..<newline]
                    start = newline + 1
                    if line.isEmpty { continue }
                    delivered = true
                    if let event = try frame(line, path: path, from: &from) { continuation.yield(event) }
                }
                buffer.removeFirst(start)
                if buffer.count > Self.maxFrame {
                    throw HTTPSourceError(.malformedResponse, "\(path): a watch event over \(Self.maxFrame) bytes")
                }
            }
        } catch {
            throw RemoteTransport.transportError(error, url: path)
        }
        return delivered
    }

    /// One line of a watch: an event to pass on, nil for a bookmark (which only moves `from`), or the
    /// error an ERROR event carries.
    private func frame(_ line: ArraySlice<UInt8>, path: String, from: inout Int64) throws -> SourceEvent<Object>? {
        let event: JSON
        do { event = try JSON.parse(line) } catch {
            throw HTTPSourceError(.malformedResponse, "\(path): a watch event that is not JSON", cause: error)
        }
        let type = event["type"].string ?? ""
        if type == "ERROR" { throw RemoteTransport.statusError(event["object"], httpStatus: 500, url: path) }
        guard let revision = event["object"]["metadata"]["resourceVersion"].string.flatMap({ Int64($0) }) else {
            throw HTTPSourceError(.malformedResponse, "\(path): a \(type) event without a resourceVersion")
        }
        from = max(from, revision)
        let object: Object
        switch type {
        case "BOOKMARK":
            return nil
        case "ADDED", "MODIFIED", "DELETED":
            do { object = try decode(event["object"]) } catch {
                throw HTTPSourceError(
                    .malformedResponse, "\(path): a \(type) object that does not decode", cause: error)
            }
        default:
            throw HTTPSourceError(.malformedResponse, "\(path): an event of unknown type \"\(type)\"")
        }
        return type == "DELETED" ? .delete(object, revision: revision) : .put(object, revision: revision)
    }

    /// An object as the cache holds it: without its managedFields, which no informer reader uses (the
    /// in-process source drops them too).
    func decode(_ json: JSON) throws -> Object {
        var object = try Object(kubeJSON: json, strings: strings)
        object.metadata.managedFields = []
        return object
    }

    private var selectorQuery: [(String, String)] {
        var query: [(String, String)] = []
        if let label = selectors.labelSelector, !label.isEmpty { query.append(("labelSelector", label)) }
        if let field = selectors.fieldSelector, !field.isEmpty { query.append(("fieldSelector", field)) }
        return query
    }

    /// Metadata informers ask for metadata only, as client-go's metadata informers do (a server that
    /// does not convert answers the full objects, which decode as metadata just the same).
    static var listAccept: String {
        Object.self == MetaV1.PartialObjectMetadata.self
            ? "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json" : "application/json"
    }

    static var watchAccept: String {
        Object.self == MetaV1.PartialObjectMetadata.self
            ? "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json" : "application/json"
    }

    /// The collection's path across all namespaces: /api/v1/pods, /apis/apps/v1/deployments.
    static func path(_ resource: ResourceType) -> String {
        (resource.group.isEmpty ? "/api/" : "/apis/" + resource.group + "/") + resource.version + "/"
            + resource.plural
    }

    /// "?k=v&…" with every byte outside RFC 3986's unreserved set percent-encoded (selectors hold `=`,
    /// `,`, `!` and spaces).
    static func encode(_ query: [(String, String)]) -> String {
        func escape(_ text: String) -> String {
            var out = ""
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                    UInt8(ascii: "~"):
                    out.unicodeScalars.append(Unicode.Scalar(byte))
                default:
                    let hex = Array("0123456789ABCDEF".unicodeScalars)
                    out.unicodeScalars.append("%")
                    out.unicodeScalars.append(hex[Int(byte >> 4)])
                    out.unicodeScalars.append(hex[Int(byte & 0xf)])
                }
            }
            return out
        }
        if query.isEmpty { return "" }
        return "?" + query.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }
}

import BerthAPI
import BerthKube
import BerthStore

/// Lists and watches one resource straight from the API server's store, in the server's own process:
/// the path the built-in controllers and scheduler take (no HTTP, no re-encoding; the stored JSON is
/// decoded once, into the typed object the cache keeps).
public struct StoreSource<Object: HasObjectMeta>: ObjectSource {
    public let store: any KVStore
    public let resource: ResourceType

    public init(store: any KVStore, resource: ResourceType) {
        self.store = store
        self.resource = resource
    }

    /// A stored value as the cache holds it: resourceVersion from the store revision, and without its
    /// managedFields (client-go's TransformFunc, as kube-scheduler and kube-controller-manager use it: no
    /// controller reads them, and they are a large share of every object). Writes from the cache keep
    /// them: the API server carries managedFields over when a write leaves them out.
    func decode(_ kv: KeyValue) throws -> Object {
        var object = try Object(json: kv.value, strings: .shared)
        object.metadata.resourceVersion = String(kv.modRevision)
        object.metadata.managedFields = []
        return object
    }

    public func list() async throws -> (items: [Object], revision: Int64) {
        let page = try await store.list(
            prefix: resource.prefix(namespace: nil), startAfter: nil, limit: 0, revision: nil)
        var items: [Object] = []
        items.reserveCapacity(page.items.count)
        // A stored object that no longer decodes is skipped, as the untyped informer skipped it: one bad
        // value must not stop every controller.
        for kv in page.items { if let object = try? decode(kv) { items.append(object) } }
        return (items, page.revision)
    }

    public func watch(afterRevision revision: Int64) async throws
        -> AsyncThrowingStream<SourceEvent<Object>, any Error>
    {
        let events = try await store.watch(prefix: resource.prefix(namespace: nil), afterRevision: revision)
        let (stream, continuation) = AsyncThrowingStream<SourceEvent<Object>, any Error>.makeStream()
        let task = Task {
            do {
                for try await event in events {
                    // decode sets resourceVersion from kv.modRevision, which is the event's revision.
                    guard let object = try? decode(event.kv) else { continue }
                    switch event.kind {
                    case .put: continuation.yield(.put(object, revision: event.revision))
                    case .delete: continuation.yield(.delete(object, revision: event.revision))
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
}

/// Sources over the API server's store in this process.
public struct StoreSourceProvider: ObjectSourceProvider {
    public let store: any KVStore

    public init(client: LocalClient) { store = client.store }

    public func source<T: HasObjectMeta>(_ type: T.Type, resource: ResourceType) -> any ObjectSource<T> {
        StoreSource<T>(store: store, resource: resource)
    }
}

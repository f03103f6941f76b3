import BerthAPI
import BerthKube

/// One change a watch reports: the object after a create or update, or its last state for a delete,
/// with the store revision of the change.
public enum SourceEvent<Object: Sendable>: Sendable {
    case put(Object, revision: Int64)
    case delete(Object, revision: Int64)
}

/// Where an informer lists and watches the objects of one resource: the API server's store in process,
/// an API server over HTTPS (a node agent on another machine), or a fake cluster in tests — client-go's
/// ListerWatcher. The informer above it does not know which.
public protocol ObjectSource<Object>: Sendable {
    associatedtype Object: HasObjectMeta
    /// Every object, and the revision the list was read at (the revision a watch resumes after).
    func list() async throws -> (items: [Object], revision: Int64)
    /// Changes after `revision`, in order, until the stream ends (the informer then lists again). A
    /// revision that was compacted away ends the stream with an error.
    func watch(afterRevision revision: Int64) async throws -> AsyncThrowingStream<SourceEvent<Object>, any Error>
}

/// Makes sources for an ``InformerFactory``: one per resource, decoding objects as `type`.
public protocol ObjectSourceProvider: Sendable {
    func source<T: HasObjectMeta>(_ type: T.Type, resource: ResourceType) -> any ObjectSource<T>
}

extension ResourceType {
    /// The resource a typed kind is served as (`CoreV1.Pod` → pods). Every generated kind the control
    /// plane serves is in the registry; one that is not is a programming error.
    public static func of<T: KubeObject>(_ type: T.Type) -> ResourceType {
        guard let r = Registry.find(apiVersion: T.servedAPIVersion, kind: T.servedKind) else {
            preconditionFailure("\(T.servedAPIVersion) \(T.servedKind) is not a served resource")
        }
        return r
    }
}

extension HasObjectMeta {
    /// The cache key: "namespace/name" for namespaced objects, else "name" (client-go's
    /// MetaNamespaceKeyFunc).
    public var cacheKey: String {
        let namespace = metadata.namespace ?? ""
        let name = metadata.name ?? ""
        return namespace.isEmpty ? name : namespace + "/" + name
    }
}

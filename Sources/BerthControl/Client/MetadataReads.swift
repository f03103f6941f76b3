import BerthAPI
import BerthKube
import BerthStore

/// Uncached reads of any kind's metadata (names, uid, owners, finalizers, deletionTimestamp), for the
/// few decisions a cache may not make: the garbage collector confirming that an owner really is gone
/// before it deletes anything, and the namespace controller listing what is left in a namespace of
/// every kind. client-go's metadata client; every ``KubeClient`` offers it.
public protocol MetadataReads: Sendable {
    /// The object's metadata as stored now, nil when there is no such object.
    func getMetadata(_ resource: ResourceType, namespace: String?, name: String) async throws
        -> MetaV1.PartialObjectMetadata?
    /// The metadata of every object of a resource (in `namespace`, or all) as stored now.
    func listMetadata(_ resource: ResourceType, namespace: String?) async throws -> [MetaV1.PartialObjectMetadata]
    /// The custom resources served now (CustomResourceDefinitions'), whose objects these reads reach too.
    func customResourceTypes() async throws -> [ResourceType]
}

extension LocalClient: MetadataReads {
    public func getMetadata(_ resource: ResourceType, namespace: String?, name: String) async throws
        -> MetaV1.PartialObjectMetadata?
    {
        guard let kv = try await store.get(resource.key(namespace: namespace, name: name)) else { return nil }
        return try Self.metadata(kv, resource)
    }

    public func listMetadata(_ resource: ResourceType, namespace: String?) async throws
        -> [MetaV1.PartialObjectMetadata]
    {
        let page = try await store.list(
            prefix: resource.prefix(namespace: namespace), startAfter: nil, limit: 0, revision: nil)
        return try page.items.map { try Self.metadata($0, resource) }
    }

    /// A stored value's metadata, decoded straight from the stored bytes (the rest of the object is
    /// skipped, not built), with resourceVersion from the store revision as every read reports it.
    /// managedFields are left out as the informers leave them out: nothing that reads metadata uses them.
    static func metadata(_ kv: KeyValue, _ resource: ResourceType) throws -> MetaV1.PartialObjectMetadata {
        var object = try MetaV1.PartialObjectMetadata(json: kv.value)
        object.apiVersion = resource.apiVersion
        object.kind = resource.kind
        object.metadata.resourceVersion = String(kv.modRevision)
        object.metadata.managedFields = []
        return object
    }
}

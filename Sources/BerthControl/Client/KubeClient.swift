import BerthAPI
import BerthKube

/// The writes (and the few uncached reads) controllers, the scheduler and the node agent make, on typed
/// objects: client-go's clientset, with its metadata client (``MetadataReads``) for reads of any kind.
/// ``LocalClient`` implements it in the API server's process, ``FakeCluster`` in memory for unit tests
/// (client-go's fake clientset). Errors are ``APIError``s with Kubernetes' codes and reasons (404
/// NotFound, 409 Conflict/AlreadyExists, 422 Invalid).
public protocol KubeClient: MetadataReads {
    /// The field manager and user-agent the writes are made as, e.g. "berth-scheduler".
    var manager: String { get }

    func get<T: KubeObject & HasObjectMeta>(_ type: T.Type, namespace: String?, name: String) async throws -> T?
    /// Every object of the kind (in `namespace`, or all).
    func list<T: KubeObject & HasObjectMeta>(_ type: T.Type, namespace: String?) async throws -> [T]
    /// Creates the object (namespace from its metadata; generateName honoured) and returns it as stored.
    func create<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T
    /// Replaces the object; metadata.resourceVersion is the precondition (409 Conflict when stale).
    func update<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T
    /// Replaces the object's status (the status subresource); resourceVersion is the precondition.
    func updateStatus<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T
    /// Deletes an object. `gracePeriod` 0 removes a pod at once; `uid` guards against deleting a newer
    /// object of the same name; `propagation` is Background (default), Foreground or Orphan.
    func delete(
        _ resource: ResourceType, namespace: String?, name: String, gracePeriod: Int64?, uid: String?,
        propagation: String?
    ) async throws
    /// Applies a JSON merge patch (RFC 7386) to any resource, e.g. to drop a finalizer or an owner. A
    /// metadata.resourceVersion in the patch is a precondition (409 Conflict when the object changed).
    @discardableResult
    func mergePatch(_ resource: ResourceType, namespace: String?, name: String, _ patch: JSON, subresource: String?)
        async throws -> JSON
    /// Removes the "kubernetes" finalizer from a terminating Namespace (namespaces/NAME/finalize).
    @discardableResult
    func finalizeNamespace(name: String) async throws -> JSON?
    /// Binds pods to nodes, each a compare-and-swap against the revision its pod was cached at.
    func bind(_ bindings: [PodNodeBinding]) async -> [Result<Void, APIError>]
    /// Records an Event about an object (core/v1 Event; repeats bump `count`).
    func event(about object: JSON, type: String, reason: String, message: String, component: String?) async
    /// The autoscaling/v1 Scale of an object (its `/scale` subresource), nil when there is no such object.
    func scale(_ resource: ResourceType, namespace: String?, name: String) async throws -> JSON?
    /// PodMetrics (metrics.k8s.io/v1beta1) of the pods `selector` picks in `namespace`; a pod without a
    /// measurement yet is left out.
    func podMetrics(namespace: String, selector: String) async throws -> [JSON]
    /// Asks for a bound token of a ServiceAccount (serviceaccounts/NAME/token, a TokenRequest).
    func requestToken(namespace: String, serviceAccount: String, _ request: AuthenticationV1.TokenRequest)
        async throws -> AuthenticationV1.TokenRequest
    /// Asks whether someone may do something (a SubjectAccessReview, answered with its status filled in).
    func subjectAccessReview(_ review: AuthorizationV1.SubjectAccessReview) async throws
        -> AuthorizationV1.SubjectAccessReview
}

/// One scheduling decision: the pod as the scheduler's cache held it, and the node it goes to.
public struct PodNodeBinding: Sendable {
    public var pod: CoreV1.Pod
    public var node: String

    public init(pod: CoreV1.Pod, node: String) {
        self.pod = pod
        self.node = node
    }

    /// The store revision the pod was cached at (its resourceVersion).
    public var expectedRevision: Int64 { Int64(pod.metadata.resourceVersion ?? "") ?? 0 }
}

extension KubeClient {
    public func list<T: KubeObject & HasObjectMeta>(_ type: T.Type) async throws -> [T] {
        try await list(type, namespace: nil)
    }

    /// Deletes a typed object by name (Background propagation unless told).
    public func delete<T: KubeObject & HasObjectMeta>(
        _ type: T.Type, namespace: String?, name: String, gracePeriod: Int64? = nil, uid: String? = nil,
        propagation: String? = nil
    ) async throws {
        try await delete(
            ResourceType.of(type), namespace: namespace, name: name, gracePeriod: gracePeriod, uid: uid,
            propagation: propagation)
    }

    public func event(about object: JSON, type: String = "Normal", reason: String, message: String) async {
        await event(about: object, type: type, reason: reason, message: message, component: nil)
    }
}

extension KubeObject where Self: HasObjectMeta {
    /// The object as a JSON tree with its apiVersion and kind set (what the API expects in a body and
    /// what an Event's involvedObject is made from).
    public func servedJSON() -> JSON {
        var object = self.kubeJSON()
        object["apiVersion"] = .string(Self.servedAPIVersion)
        object["kind"] = .string(Self.servedKind)
        return object
    }

    /// Decodes an API response (a JSON tree) as this kind, naming the field that did not fit.
    public static func decodeResponse(_ json: JSON) throws -> Self {
        try Self(kubeJSON: json)
    }
}

// delete, mergePatch, finalizeNamespace and event are LocalClient's own.
extension LocalClient: KubeClient {
    public func get<T: KubeObject & HasObjectMeta>(_ type: T.Type, namespace: String?, name: String) async throws
        -> T?
    {
        try await get(ResourceType.of(type), namespace: namespace, name: name).map(T.decodeResponse)
    }

    public func list<T: KubeObject & HasObjectMeta>(_ type: T.Type, namespace: String?) async throws -> [T] {
        try await list(ResourceType.of(type), namespace: namespace).items.map(T.decodeResponse)
    }

    public func create<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T {
        try T.decodeResponse(try await create(ResourceType.of(T.self), object.servedJSON()))
    }

    public func update<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T {
        try T.decodeResponse(try await update(ResourceType.of(T.self), object.servedJSON()))
    }

    public func updateStatus<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T {
        try T.decodeResponse(try await updateStatus(ResourceType.of(T.self), object.servedJSON()))
    }

    public func requestToken(namespace: String, serviceAccount: String, _ request: AuthenticationV1.TokenRequest)
        async throws -> AuthenticationV1.TokenRequest
    {
        try AuthenticationV1.TokenRequest.decodeResponse(
            try await requestToken(namespace: namespace, serviceAccount: serviceAccount, request.servedJSON()))
    }

    public func subjectAccessReview(_ review: AuthorizationV1.SubjectAccessReview) async throws
        -> AuthorizationV1.SubjectAccessReview
    {
        try AuthorizationV1.SubjectAccessReview.decodeResponse(try await subjectAccessReview(review.kubeJSON()))
    }

    public func bind(_ bindings: [PodNodeBinding]) async -> [Result<Void, APIError>] {
        await bindEach(
            bindings.map {
                PodBinding(
                    namespace: $0.pod.metadata.namespace ?? "default", name: $0.pod.metadata.name ?? "",
                    node: $0.node, pod: $0.pod.servedJSON(), expectedRevision: $0.expectedRevision)
            })
    }
}

import BerthAPI
import BerthKube
import Foundation

/// An API server in memory for unit tests: client-go's fake clientset and object tracker in one. It is a
/// ``KubeClient`` (writes land in memory, are recorded in `actions`, and bump one revision counter) and
/// an ``ObjectSourceProvider`` (informers list it and watch its changes), so a controller runs against
/// it exactly as against `berth server`, without a store, a server or root.
///
/// It keeps the API server's bookkeeping a controller can observe: generateName, uid,
/// creationTimestamp, resourceVersion preconditions (409, on updates and on merge patches that carry
/// one), AlreadyExists and NotFound, the status split of update and updateStatus, finalizers holding a
/// delete as a deletionTimestamp, the finalizers a Foreground or Orphan delete adds for the garbage
/// collector, and binding. It does no validation, defaulting, admission or garbage collection (the
/// collector is a controller, tested against it like the others).
public final class FakeCluster: KubeClient, ObjectSourceProvider, @unchecked Sendable {
    /// One write, as client-go's fake records `Actions()`.
    public struct Action: Sendable, Equatable, CustomStringConvertible {
        public var verb: String
        public var resource: String
        public var namespace: String
        public var name: String
        public var subresource: String

        public var description: String {
            "\(verb) \(resource)\(subresource.isEmpty ? "" : "/" + subresource) \(namespace.isEmpty ? "" : namespace + "/")\(name)"
        }
    }

    private struct Change {
        var prefix: String
        var deleted: Bool
        var object: JSON
        var revision: Int64
    }

    public let manager: String
    private let lock = NSLock()
    /// Objects by resource key prefix, then by cache key.
    private var objects: [String: [String: JSON]] = [:]
    private var podUsage: [String: [String: String]] = [:]
    private var revision: Int64 = 0
    private var history: [Change] = []
    private var watchers: [UUID: (prefix: String, continuation: AsyncThrowingStream<Change, any Error>.Continuation)] =
        [:]
    private var recorded: [Action] = []
    private var recordedEvents: [JSON] = []
    private var reviewAnswer: @Sendable (AuthorizationV1.SubjectAccessReview) -> Bool = { _ in false }

    public init(manager: String = "fake") { self.manager = manager }

    /// Writes made through the client so far (not `seed`s).
    public var actions: [Action] { lock.withLock { recorded } }
    /// Events recorded through the client.
    public var events: [JSON] { lock.withLock { recordedEvents } }
    public func clearActions() { lock.withLock { recorded = [] } }

    /// Puts objects in place as if created earlier (uid, resourceVersion and creationTimestamp filled in
    /// when missing), without recording an action: the cluster a test starts from.
    public func seed<T: KubeObject & HasObjectMeta>(_ items: T...) {
        let resource = ResourceType.of(T.self)
        for item in items {
            var object = item.servedJSON()
            fillIn(&object, resource)
            _ = lock.withLock { commit(resource, key: Self.key(object), object: object, deleted: false) }
        }
    }

    /// Puts an object of a kind without a generated type in place (a CustomResourceDefinition), as `seed`.
    public func seed(_ resource: ResourceType, json: JSON) {
        var object = json
        fillIn(&object, resource)
        _ = lock.withLock { commit(resource, key: Self.key(object), object: object, deleted: false) }
    }

    /// The stored object of a kind, as a test asserts on it.
    public func object<T: KubeObject & HasObjectMeta>(_ type: T.Type, namespace: String? = nil, name: String) -> T? {
        let resource = ResourceType.of(type)
        let stored = lock.withLock { objects[resource.keyPrefix]?[Self.key(namespace: namespace, name: name)] }
        return stored.flatMap { try? T(kubeJSON: $0) }
    }

    /// Every stored object of a kind.
    public func objects<T: KubeObject & HasObjectMeta>(_ type: T.Type) -> [T] {
        let resource = ResourceType.of(type)
        let stored = lock.withLock { Array((objects[resource.keyPrefix] ?? [:]).values) }
        return stored.compactMap { try? T(kubeJSON: $0) }
    }

    /// What ``waitUntil(_:timeout:_:)`` throws when the condition did not come true in time.
    public struct TimedOut: Error, CustomStringConvertible {
        public var description: String
    }

    /// Returns once `condition` holds, checking it now and after every change the cluster records (no
    /// polling): how a test waits for what a controller writes. Throws ``TimedOut`` after `timeout`.
    public func waitUntil(
        _ what: String, timeout: Duration = .seconds(20), _ condition: @escaping @Sendable () -> Bool
    ) async throws {
        // Subscribed before the first check, so a change between the check and the wait is not missed.
        let changes = subscribe(prefix: "", afterRevision: lock.withLock { revision })
        let met = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                if condition() { return true }
                for try await _ in changes where condition() { return true }
                return false
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            let met = try await group.next() ?? false
            group.cancelAll()
            return met
        }
        if !met { throw TimedOut(description: "timed out after \(timeout) waiting for \(what)") }
    }

    // MARK: KubeClient

    public func get<T: KubeObject & HasObjectMeta>(_ type: T.Type, namespace: String?, name: String) async throws -> T?
    {
        let resource = ResourceType.of(type)
        let stored = lock.withLock { objects[resource.keyPrefix]?[Self.key(namespace: namespace, name: name)] }
        return try stored.map { try T(kubeJSON: $0) }
    }

    public func list<T: KubeObject & HasObjectMeta>(_ type: T.Type, namespace: String?) async throws -> [T] {
        let resource = ResourceType.of(type)
        let stored = lock.withLock { Array((objects[resource.keyPrefix] ?? [:]).values) }
        return try stored.filter { namespace == nil || $0["metadata"]["namespace"].string == namespace }
            .map { try T(kubeJSON: $0) }
    }

    public func create<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T {
        let resource = ResourceType.of(T.self)
        var json = object.servedJSON()
        if json["metadata"]["name"].string?.isEmpty ?? true {
            guard let prefix = json["metadata"]["generateName"].string, !prefix.isEmpty else {
                throw APIError.invalid(
                    resource, "", [.init("metadata.name", "FieldValueRequired", "name or generateName is required")])
            }
            json["metadata"]["name"] = .string(prefix + Self.randomSuffix())
        }
        if resource.namespaced, json["metadata"]["namespace"].string?.isEmpty ?? true {
            json["metadata"]["namespace"] = "default"
        }
        json["metadata"]["uid"] = .null
        json["metadata"]["resourceVersion"] = .null
        fillIn(&json, resource)
        let key = Self.key(json)
        let stored = try lock.withLock { () throws -> JSON in
            if objects[resource.keyPrefix]?[key] != nil {
                throw APIError.alreadyExists(resource, json["metadata"]["name"].string ?? "")
            }
            record("create", resource, json, subresource: "")
            return commit(resource, key: key, object: json, deleted: false)
        }
        return try T(kubeJSON: stored)
    }

    public func update<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T {
        try T(kubeJSON: try replace(ResourceType.of(T.self), object.servedJSON(), subresource: ""))
    }

    public func updateStatus<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T {
        try T(kubeJSON: try replace(ResourceType.of(T.self), object.servedJSON(), subresource: "status"))
    }

    public func delete(
        _ resource: ResourceType, namespace: String?, name: String, gracePeriod: Int64?, uid: String?,
        propagation: String?
    ) async throws {
        let key = Self.key(namespace: namespace, name: name)
        try lock.withLock { () throws -> Void in
            guard var current = objects[resource.keyPrefix]?[key] else { throw APIError.notFound(resource, name) }
            if let uid, current["metadata"]["uid"].string != uid {
                throw APIError(
                    code: 409, reason: "Conflict",
                    message: "Precondition failed: UID in precondition: \(uid), UID in object meta: "
                        + (current["metadata"]["uid"].string ?? ""))
            }
            record("delete", resource, current, subresource: "")
            // The propagation policy's finalizer, as the registry adds it: the collector finishes the
            // delete once it has deleted (Foreground) or orphaned (Orphan; not pods) the dependents.
            let had = (current["metadata"]["finalizers"].array ?? []).compactMap(\.string)
            var finalizers = had
            if propagation == "Foreground" && !finalizers.contains(DeletionFinalizers.foreground) {
                finalizers.append(DeletionFinalizers.foreground)
            }
            if propagation == "Orphan" && resource.plural != "pods" && !finalizers.contains(DeletionFinalizers.orphan) {
                finalizers.append(DeletionFinalizers.orphan)
            }
            if finalizers != had { current["metadata"]["finalizers"] = .array(finalizers.map { .string($0) }) }
            if Self.hasFinalizers(current) {
                if current["metadata"]["deletionTimestamp"].isNull || finalizers != had {
                    if current["metadata"]["deletionTimestamp"].isNull {
                        current["metadata"]["deletionTimestamp"] = .string(APITime.string())
                    }
                    if resource.plural == "namespaces" { current["status"]["phase"] = "Terminating" }
                    commit(resource, key: key, object: current, deleted: false)
                }
                return
            }
            commit(resource, key: key, object: current, deleted: true)
        }
    }

    @discardableResult
    public func mergePatch(
        _ resource: ResourceType, namespace: String?, name: String, _ patch: JSON, subresource: String?
    ) async throws -> JSON {
        let key = Self.key(namespace: namespace, name: name)
        return try lock.withLock { () throws -> JSON in
            guard let current = objects[resource.keyPrefix]?[key] else { throw APIError.notFound(resource, name) }
            // A resourceVersion in the patch is a precondition, as the API server's PATCH treats it.
            if let expected = patch["metadata"]["resourceVersion"].string,
                expected != current["metadata"]["resourceVersion"].string
            {
                throw APIError.conflict(resource, name)
            }
            var patched = Patch.merge(current, patch)
            patched["metadata"]["uid"] = current["metadata"]["uid"]
            patched["metadata"]["name"] = current["metadata"]["name"]
            patched["metadata"]["namespace"] = current["metadata"]["namespace"]
            record("patch", resource, current, subresource: subresource ?? "")
            let finished = !patched["metadata"]["deletionTimestamp"].isNull && !Self.hasFinalizers(patched)
            return commit(resource, key: key, object: patched, deleted: finished)
        }
    }

    @discardableResult
    public func finalizeNamespace(name: String) async throws -> JSON? {
        let resource = ResourceType.of(CoreV1.Namespace.self)
        return lock.withLock { () -> JSON? in
            guard var namespace = objects[resource.keyPrefix]?[name] else { return nil }
            let finalizers = namespace["spec"]["finalizers"].array ?? []
            guard finalizers.contains("kubernetes") else { return namespace }
            namespace["spec"]["finalizers"] = .array(finalizers.filter { $0 != "kubernetes" })
            record("update", resource, namespace, subresource: "finalize")
            let finished = !namespace["metadata"]["deletionTimestamp"].isNull && !Self.hasFinalizers(namespace)
            return commit(resource, key: name, object: namespace, deleted: finished)
        }
    }

    public func bind(_ bindings: [PodNodeBinding]) async -> [Result<Void, APIError>] {
        let resource = ResourceType.of(CoreV1.Pod.self)
        return lock.withLock {
            bindings.map { binding -> Result<Void, APIError> in
                let key = binding.pod.cacheKey
                guard var pod = objects[resource.keyPrefix]?[key] else {
                    return .failure(APIError.notFound(resource, binding.pod.metadata.name ?? ""))
                }
                if let node = pod["spec"]["nodeName"].string, !node.isEmpty {
                    return .failure(
                        APIError(
                            code: 409, reason: "Conflict",
                            message: "pod \(binding.pod.metadata.name ?? "") is already assigned to node \"\(node)\""))
                }
                pod["spec"]["nodeName"] = .string(binding.node)
                var conditions = (pod["status"]["conditions"].array ?? []).filter {
                    $0["type"].string != "PodScheduled"
                }
                conditions.append([
                    "type": "PodScheduled", "status": "True", "lastTransitionTime": .string(APITime.string()),
                ])
                pod["status"]["conditions"] = .array(conditions)
                record("create", resource, pod, subresource: "binding")
                commit(resource, key: key, object: pod, deleted: false)
                return .success(())
            }
        }
    }

    /// A token that is only a name (nothing verifies it here), valid for the asked expiry.
    /// How SubjectAccessReviews are answered (every one is denied until a test says otherwise).
    public func answerAccessReviews(_ answer: @escaping @Sendable (AuthorizationV1.SubjectAccessReview) -> Bool) {
        lock.withLock { reviewAnswer = answer }
    }

    public func subjectAccessReview(_ review: AuthorizationV1.SubjectAccessReview) async throws
        -> AuthorizationV1.SubjectAccessReview
    {
        var answered = review
        answered.status.allowed = lock.withLock { reviewAnswer }(review)
        return answered
    }

    public func requestToken(namespace: String, serviceAccount: String, _ request: AuthenticationV1.TokenRequest)
        async throws -> AuthenticationV1.TokenRequest
    {
        var answer = request
        let seconds = request.spec.expirationSeconds ?? 3600
        answer.status.token =
            "fake-token:\(namespace):\(serviceAccount):\(request.spec.audiences.joined(separator: ","))"
        answer.status.expirationTimestamp = MetaV1.Time(secondsSince1970: Int64(Date().timeIntervalSince1970) + seconds)
        return answer
    }

    public func event(about object: JSON, type: String, reason: String, message: String, component: String?) async {
        let event: JSON = [
            "involvedObject": [
                "kind": object["kind"], "namespace": object["metadata"]["namespace"],
                "name": object["metadata"]["name"], "uid": object["metadata"]["uid"],
            ],
            "type": .string(type), "reason": .string(reason), "message": .string(message),
            "source": ["component": .string(component ?? manager)],
        ]
        lock.withLock { recordedEvents.append(event) }
    }

    // MARK: MetadataReads

    public func getMetadata(_ resource: ResourceType, namespace: String?, name: String) async throws
        -> MetaV1.PartialObjectMetadata?
    {
        let stored = lock.withLock { objects[resource.keyPrefix]?[Self.key(namespace: namespace, name: name)] }
        return try stored.map { try MetaV1.PartialObjectMetadata(kubeJSON: $0) }
    }

    public func listMetadata(_ resource: ResourceType, namespace: String?) async throws
        -> [MetaV1.PartialObjectMetadata]
    {
        let stored = lock.withLock { Array((objects[resource.keyPrefix] ?? [:]).values) }
        return try stored.filter { namespace == nil || $0["metadata"]["namespace"].string == namespace }
            .map { try MetaV1.PartialObjectMetadata(kubeJSON: $0) }
    }

    /// Synthetic usage for `podMetrics`, by "namespace/name": what a node agent would have measured
    /// (`["cpu": "250m", "memory": "64Mi"]`). Pods without an entry have no metrics.
    public func setPodUsage(namespace: String, name: String, _ usage: [String: String]?) {
        lock.withLock { podUsage[namespace + "/" + name] = usage }
    }

    public func podMetrics(namespace: String, selector: String) async throws -> [JSON] {
        let labels = try LabelSelector(selector)
        let pods = lock.withLock { Array((objects[Registry.pods.keyPrefix] ?? [:]).values) }
        return pods.compactMap { pod in
            guard pod["metadata"]["namespace"].string == namespace,
                labels.matches(pod["metadata"]["labels"].stringMap),
                let name = pod["metadata"]["name"].string,
                let usage = lock.withLock({ podUsage[namespace + "/" + name] })
            else { return nil }
            return [
                "metadata": ["name": .string(name), "namespace": .string(namespace)],
                "timestamp": .string(APITime.string()), "window": "10s",
                "containers": .array(
                    (pod["spec"]["containers"].array ?? []).prefix(1).map { c in
                        ["name": c["name"], "usage": .strings(usage)]
                    }),
            ]
        }
    }

    /// A Scale as the API server computes it for the built-in scalable kinds (spec.replicas,
    /// status.replicas, the selector).
    public func scale(_ resource: ResourceType, namespace: String?, name: String) async throws -> JSON? {
        let stored = lock.withLock { objects[resource.keyPrefix]?[Self.key(namespace: namespace, name: name)] }
        guard let obj = stored else { return nil }
        return [
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": ["name": .string(name), "namespace": namespace.map { .string($0) } ?? .null],
            "spec": ["replicas": .int(obj["spec"]["replicas"].int ?? 0)],
            "status": [
                "replicas": .int(obj["status"]["replicas"].int ?? 0),
                "selector": .string(LabelSelector(object: obj["spec"]["selector"]).text),
            ],
        ]
    }

    public func customResourceTypes() async throws -> [ResourceType] {
        let stored = lock.withLock { Array((objects[CustomResourceTypes.definitions.keyPrefix] ?? [:]).values) }
        return CustomResourceTypes.served(byDefinitions: stored)
    }

    // MARK: ObjectSourceProvider

    public func source<T: HasObjectMeta>(_ type: T.Type, resource: ResourceType) -> any ObjectSource<T> {
        FakeSource<T>(cluster: self, prefix: resource.keyPrefix)
    }

    struct FakeSource<Object: HasObjectMeta>: ObjectSource {
        let cluster: FakeCluster
        let prefix: String

        func list() async throws -> (items: [Object], revision: Int64) {
            let (stored, revision) = cluster.lock.withLock {
                (Array((cluster.objects[prefix] ?? [:]).values), cluster.revision)
            }
            return (try stored.map { try Object(kubeJSON: $0) }, revision)
        }

        func watch(afterRevision revision: Int64) async throws -> AsyncThrowingStream<SourceEvent<Object>, any Error> {
            let changes = cluster.subscribe(prefix: prefix, afterRevision: revision)
            return AsyncThrowingStream { () async throws -> SourceEvent<Object>? in
                for try await change in changes {
                    let object = try Object(kubeJSON: change.object)
                    return change.deleted
                        ? .delete(object, revision: change.revision) : .put(object, revision: change.revision)
                }
                return nil
            }
        }
    }

    /// How many watches of `resource` are open now (a test proves an informer stopped).
    public func watchCount(_ resource: ResourceType) -> Int {
        lock.withLock { watchers.values.filter { $0.prefix == resource.keyPrefix }.count }
    }

    // MARK: internals

    /// Changes to one resource (every resource for the prefix "") after `revision`: the recorded ones at
    /// once, then live ones.
    private func subscribe(prefix: String, afterRevision revision: Int64) -> AsyncThrowingStream<Change, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Change, any Error>.makeStream()
        let id = UUID()
        lock.withLock {
            for change in history where (prefix.isEmpty || change.prefix == prefix) && change.revision > revision {
                continuation.yield(change)
            }
            watchers[id] = (prefix, continuation)
        }
        // Removed later, not here: a stream ends inside its reader's cancellation (holding that task's
        // status lock) while a commit may be yielding to it under `lock` (needing the task's lock).
        continuation.onTermination = { [weak self] _ in
            Task { [weak self] in
                guard let self else { return }
                _ = self.lock.withLock { self.watchers.removeValue(forKey: id) }
            }
        }
        return stream
    }

    /// Stores (or removes) an object at the next revision and tells the watchers. Call with the lock held.
    @discardableResult
    private func commit(_ resource: ResourceType, key: String, object: JSON, deleted: Bool) -> JSON {
        revision += 1
        var stored = object
        stored["metadata"]["resourceVersion"] = .string(String(revision))
        if deleted {
            objects[resource.keyPrefix]?[key] = nil
        } else {
            objects[resource.keyPrefix, default: [:]][key] = stored
        }
        let change = Change(prefix: resource.keyPrefix, deleted: deleted, object: stored, revision: revision)
        history.append(change)
        for (_, watcher) in watchers where watcher.prefix.isEmpty || watcher.prefix == resource.keyPrefix {
            watcher.continuation.yield(change)
        }
        return stored
    }

    /// Update or status update: resourceVersion precondition, bookkeeping kept, the other half kept.
    private func replace(_ resource: ResourceType, _ object: JSON, subresource: String) throws -> JSON {
        let key = Self.key(object)
        let name = object["metadata"]["name"].string ?? ""
        return try lock.withLock { () throws -> JSON in
            guard let current = objects[resource.keyPrefix]?[key] else { throw APIError.notFound(resource, name) }
            if let expected = object["metadata"]["resourceVersion"].string, !expected.isEmpty,
                expected != current["metadata"]["resourceVersion"].string
            {
                throw APIError.conflict(resource, name)
            }
            var next: JSON
            if subresource == "status" {
                next = current
                next["status"] = object["status"]
            } else {
                next = object
                for field in ["uid", "creationTimestamp", "deletionTimestamp"] {
                    next["metadata"][field] = current["metadata"][field]
                }
                if resource.subresources.contains("status") { next["status"] = current["status"] }
            }
            record("update", resource, current, subresource: subresource)
            let finished = !next["metadata"]["deletionTimestamp"].isNull && !Self.hasFinalizers(next)
            return commit(resource, key: key, object: next, deleted: finished)
        }
    }

    private func record(_ verb: String, _ resource: ResourceType, _ object: JSON, subresource: String) {
        recorded.append(
            Action(
                verb: verb, resource: resource.plural, namespace: object["metadata"]["namespace"].string ?? "",
                name: object["metadata"]["name"].string ?? "", subresource: subresource))
    }

    private func fillIn(_ object: inout JSON, _ resource: ResourceType) {
        if object["metadata"]["uid"].string?.isEmpty ?? true {
            object["metadata"]["uid"] = .string(UUID().uuidString.lowercased())
        }
        if object["metadata"]["creationTimestamp"].isNull {
            object["metadata"]["creationTimestamp"] = .string(APITime.string())
        }
        if resource.namespaced, object["metadata"]["namespace"].string?.isEmpty ?? true {
            object["metadata"]["namespace"] = "default"
        }
    }

    /// Whether something still holds a terminating object back: metadata finalizers, or for a Namespace
    /// also spec.finalizers (the "kubernetes" finalizer the namespace controller removes through
    /// namespaces/NAME/finalize), as the API server's registry decides.
    private static func hasFinalizers(_ object: JSON) -> Bool {
        !(object["metadata"]["finalizers"].array ?? []).isEmpty || !(object["spec"]["finalizers"].array ?? []).isEmpty
    }

    private static func key(_ object: JSON) -> String {
        key(namespace: object["metadata"]["namespace"].string, name: object["metadata"]["name"].string ?? "")
    }

    private static func key(namespace: String?, name: String) -> String {
        guard let namespace, !namespace.isEmpty else { return name }
        return namespace + "/" + name
    }

    private static func randomSuffix() -> String {
        String((0..<5).map { _ in Array("bcdfghjklmnpqrstvwxz2456789").randomElement()! })
    }
}

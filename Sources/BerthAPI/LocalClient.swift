import BerthStore
import Foundation
import HTTPTypes

/// The control plane's view of the API, in process: the scheduler, controllers and hollow nodes call the
/// same create/update/delete code paths as HTTPS clients (defaulting, validation, generation, garbage
/// collection, finalizers), without TLS and HTTP in between. Like k3s, which embeds its controllers in
/// the server process; the data still flows only through the store, so several servers stay consistent.
public struct LocalClient: Sendable {
    let handler: Handler
    /// The field manager recorded in managedFields, e.g. "berth-scheduler".
    public let manager: String
    let user: UserInfo

    public init(server: APIServer, manager: String) {
        handler = Handler(server: server)
        self.manager = manager
        user = UserInfo(name: "system:\(manager)", groups: ["system:masters", "system:authenticated"])
    }
    /// The store underneath, for watches and revision reads.
    public var store: any KVStore { handler.store }

    private func call(_ method: HTTPRequest.Method, query: [String: String] = [:], body: [UInt8] = []) -> Call {
        var headers = HTTPFields()
        headers[.userAgent] = manager + "/v1.32.0"
        headers[.contentType] = "application/json"
        return Call(method: method, path: "", query: query, headers: headers, body: body, user: user)
    }

    /// Decodes a stored value of type `r` (resourceVersion from the store).
    public func decode(_ kv: KeyValue, _ r: ResourceType) throws -> JSON { try handler.decodeStored(kv, r) }

    public func get(_ r: ResourceType, namespace: String?, name: String) async throws -> JSON? {
        guard let kv = try await store.get(r.key(namespace: namespace, name: name)) else { return nil }
        return try decode(kv, r)
    }

    /// Every object of type `r` (in `namespace`, or all), and the revision the list was read at.
    public func list(_ r: ResourceType, namespace: String? = nil) async throws -> (items: [JSON], revision: Int64) {
        let page = try await store.list(
            prefix: r.prefix(namespace: namespace), startAfter: nil, limit: 0, revision: nil)
        return (try page.items.map { try decode($0, r) }, page.revision)
    }

    /// Creates `obj` (namespace taken from its metadata).
    @discardableResult
    public func create(_ r: ResourceType, _ obj: JSON) async throws -> JSON {
        var o = obj
        o["metadata"]["resourceVersion"] = .null
        return try await handler.createObject(
            r, namespace: r.namespaced ? (obj["metadata"]["namespace"].string ?? "default") : nil,
            obj: o, dryRun: false, manager: manager)
    }

    /// Replaces `obj`; its metadata.resourceVersion is the precondition (409 Conflict when stale).
    @discardableResult
    public func update(_ r: ResourceType, _ obj: JSON) async throws -> JSON {
        try await handler.updateObject(
            r, namespace: obj["metadata"]["namespace"].string, name: obj["metadata"]["name"].string ?? "",
            new: obj, subresource: nil, call: call(.put), manager: manager)
    }

    /// Replaces the status of `obj` (the status subresource); resourceVersion is the precondition.
    @discardableResult
    public func updateStatus(_ r: ResourceType, _ obj: JSON) async throws -> JSON {
        try await handler.updateObject(
            r, namespace: obj["metadata"]["namespace"].string, name: obj["metadata"]["name"].string ?? "",
            new: obj, subresource: "status", call: call(.put), manager: manager)
    }

    /// Deletes an object. `gracePeriod` 0 removes a pod at once; `uid` guards against deleting a newer
    /// object of the same name; `propagation` is Background (default), Foreground or Orphan.
    public func delete(
        _ r: ResourceType, namespace: String?, name: String, gracePeriod: Int64? = nil, uid: String? = nil,
        propagation: String? = nil
    ) async throws {
        var opts: JSON = ["kind": "DeleteOptions", "apiVersion": "v1"]
        if let gracePeriod { opts["gracePeriodSeconds"] = .int(gracePeriod) }
        if let uid { opts["preconditions"] = ["uid": .string(uid)] }
        if let propagation { opts["propagationPolicy"] = .string(propagation) }
        let response = try await handler.deleteObject(
            call(.delete, body: opts.serialized()), r, namespace: namespace, name: name)
        _ = response
    }

    /// Removes the "kubernetes" finalizer from a Namespace's spec.finalizers (PUT namespaces/<name>/finalize,
    /// what the namespace controller does once the namespace is empty). A terminating namespace with no
    /// other finalizers is deleted by it. Returns the namespace (its last state if this deleted it), nil if
    /// it was gone already.
    @discardableResult
    public func finalizeNamespace(name: String) async throws -> JSON? {
        let r = Registry.namespaces
        for _ in 0..<Handler.conflictRetries {
            guard var ns = try await get(r, namespace: nil, name: name) else { return nil }
            let finalizers = ns["spec"]["finalizers"].array ?? []
            if !finalizers.contains("kubernetes") { return ns }
            ns["spec"]["finalizers"] = .array(finalizers.filter { $0 != "kubernetes" })
            do {
                return try await handler.updateObject(
                    r, namespace: nil, name: name, new: ns, subresource: "finalize",
                    call: call(.put), manager: manager)
            } catch let e as APIError where e.reason == "Conflict" {
                continue
            } catch let e as APIError where e.code == 404 {
                return nil
            }
        }
        throw APIError.conflict(r, name)
    }

    /// A bound token of a ServiceAccount (serviceaccounts/NAME/token), as the TokenRequest answer.
    public func requestToken(namespace: String, serviceAccount: String, _ request: JSON) async throws -> JSON {
        try await handler.issueToken(namespace: namespace, serviceAccount: serviceAccount, request: request, user: user)
    }

    /// Merge-patches an object (retrying on conflicts, like the PATCH verb).
    @discardableResult
    public func mergePatch(
        _ r: ResourceType, namespace: String?, name: String, _ patch: JSON, subresource: String? = nil
    ) async throws -> JSON {
        var c = call(.patch, body: patch.serialized())
        c.headers[.contentType] = "application/merge-patch+json"
        return try await handler.patchObject(c, r, namespace: namespace, name: name, subresource: subresource).0
    }

    /// Binds a pod to a node (pods/binding). With `expectedRevision` the pod must still be at that store
    /// revision, which saves a read; a pod already bound is a 409 Conflict, so nothing is bound twice.
    public func bind(
        namespace: String, name: String, node: String, pod cached: JSON? = nil, expectedRevision: Int64? = nil
    ) async throws {
        if let cached, let expectedRevision {
            let r = await bindEach([
                PodBinding(
                    namespace: namespace, name: name, node: node, pod: cached, expectedRevision: expectedRevision)
            ])
            if case .failure(let e) = r[0] { throw e }
            return
        }
        let body: JSON = [
            "apiVersion": "v1", "kind": "Binding",
            "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "target": ["apiVersion": "v1", "kind": "Node", "name": .string(node)],
        ]
        _ = try await PodStrategy.bind(
            call(.post, body: body.serialized()), namespace: namespace, name: name, handler: handler)
    }

    /// One binding for `bindEach`: the pod as cached and the store revision it was cached at.
    public struct PodBinding: Sendable {
        public var namespace: String, name: String, node: String
        public var pod: JSON
        public var expectedRevision: Int64
        public init(namespace: String, name: String, node: String, pod: JSON, expectedRevision: Int64) {
            self.namespace = namespace; self.name = name; self.node = node; self.pod = pod;
            self.expectedRevision = expectedRevision
        }
    }

    /// Binds many pods, each a compare-and-swap against the revision it was cached at, handed to the
    /// store together (one wait, one batch) — what the scheduler's binders use. A pod changed since it
    /// was cached is bound through the read-check-write path instead; one already bound is a 409.
    public func bindEach(_ bindings: [PodBinding]) async -> [Result<Void, APIError>] {
        let pods = Registry.pods
        let now = Handler.now()
        var out = [Result<Void, APIError>](repeating: .success(()), count: bindings.count)
        var updates: [KeyUpdate] = []
        var slots: [Int] = []
        updates.reserveCapacity(bindings.count)
        for (i, b) in bindings.enumerated() {
            var pod = b.pod
            if let existing = pod["spec"]["nodeName"].string, !existing.isEmpty {
                out[i] = .failure(
                    APIError(
                        code: 409, reason: "Conflict",
                        message: "pod \(b.name) is already assigned to node \"\(existing)\""))
                continue
            }
            pod["spec"]["nodeName"] = .string(b.node)
            var conds = (pod["status"]["conditions"].array ?? []).filter { $0["type"].string != "PodScheduled" }
            conds.append([
                "type": "PodScheduled", "status": "True", "lastProbeTime": .null, "lastTransitionTime": .string(now),
            ])
            pod["status"]["conditions"] = .array(conds)
            updates.append(
                KeyUpdate(
                    key: pods.key(namespace: b.namespace, name: b.name), value: handler.encodeForStore(pod),
                    expectedRevision: b.expectedRevision))
            slots.append(i)
        }
        let results = await store.updateEach(updates)
        var retry: [Int] = []
        for (slot, r) in zip(slots, results) {
            switch r {
            case .success: continue
            case .failure(.conflict): retry.append(slot)  // changed since cached: read, check, write
            case .failure(.notFound): out[slot] = .failure(APIError.notFound(pods, bindings[slot].name))
            case .failure(let e):
                out[slot] = .failure(
                    APIError(code: 500, reason: "InternalError", message: "binding \(bindings[slot].name): \(e)"))
            }
        }
        for slot in retry {
            let b = bindings[slot]
            do { try await bind(namespace: b.namespace, name: b.name, node: b.node) } catch let e as APIError {
                out[slot] = .failure(e)
            } catch {
                out[slot] = .failure(
                    APIError(code: 500, reason: "InternalError", message: "binding \(b.name): \(error)"))
            }
        }
        return out
    }

    /// Records an Event about `object` (core/v1 Event, as `kubectl describe` shows them). Repeats of the
    /// same reason and message on the same object bump `count` instead of adding events.
    public func event(
        about object: JSON, type: String = "Normal", reason: String, message: String, component: String? = nil
    ) async {
        let r = Registry.events
        let event = CoreEvent(
            about: object, type: type, reason: reason, message: message, component: component ?? manager)
        for _ in 0..<3 {
            if var existing = try? await get(r, namespace: event.namespace, name: event.name) {
                event.repeated(&existing)
                if (try? await update(r, existing)) != nil { return }
                continue
            }
            if (try? await create(r, event.object)) != nil { return }
        }
    }
}

/// A core/v1 Event about an object, named per (object, reason, message) so that repeats aggregate into
/// one Event's `count`, as client-go's correlator does; what LocalClient and HTTPKubeClient write.
public struct CoreEvent: Sendable {
    public let name: String
    public let namespace: String
    public let object: JSON
    let now: String

    public init(about involved: JSON, type: String, reason: String, message: String, component: String) {
        namespace = involved["metadata"]["namespace"].string ?? "default"
        let involvedName = involved["metadata"]["name"].string ?? ""
        var hasher = StableHasher()
        hasher.add(involved["metadata"]["uid"].string ?? involvedName)
        hasher.add(reason)
        hasher.add(message)
        name = "\(involvedName).\(hasher.hex)"
        now = Handler.now()
        object = [
            "apiVersion": "v1", "kind": "Event",
            "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "involvedObject": [
                "kind": involved["kind"], "namespace": involved["metadata"]["namespace"], "name": .string(involvedName),
                "uid": involved["metadata"]["uid"], "apiVersion": involved["apiVersion"],
                "resourceVersion": involved["metadata"]["resourceVersion"],
            ],
            "reason": .string(reason), "message": .string(message), "type": .string(type),
            "source": ["component": .string(component)], "firstTimestamp": .string(now),
            "lastTimestamp": .string(now),
            "count": 1, "reportingComponent": .string(component), "reportingInstance": .string(component),
        ]
    }

    /// The stored Event seen once more.
    public func repeated(_ existing: inout JSON) {
        existing["count"] = .int((existing["count"].int ?? 1) + 1)
        existing["lastTimestamp"] = .string(now)
    }
}

/// FNV-1a: a hash that is the same in every process (Swift's Hasher is seeded per process).
public struct StableHasher {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    public mutating func add(_ s: String) {
        for b in s.utf8 { value = (value ^ UInt64(b)) &* 0x100_0000_01b3 }
        value = (value ^ 0xff) &* 0x100_0000_01b3
    }
    public var hex: String { String(value, radix: 16) }
}

extension Registry {
    public static let pods = find(group: "", version: "v1", plural: "pods")!
    public static let nodes = find(group: "", version: "v1", plural: "nodes")!
    public static let namespaces = find(group: "", version: "v1", plural: "namespaces")!
    public static let services = find(group: "", version: "v1", plural: "services")!
    public static let endpoints = find(group: "", version: "v1", plural: "endpoints")!
    public static let events = find(group: "", version: "v1", plural: "events")!
    public static let secrets = find(group: "", version: "v1", plural: "secrets")!
    public static let serviceAccounts = find(group: "", version: "v1", plural: "serviceaccounts")!
    public static let podDisruptionBudgets = find(group: "policy", version: "v1", plural: "poddisruptionbudgets")!
    public static let persistentVolumeClaims = find(group: "", version: "v1", plural: "persistentvolumeclaims")!
    public static let persistentVolumes = find(group: "", version: "v1", plural: "persistentvolumes")!
    public static let storageClasses = find(group: "storage.k8s.io", version: "v1", plural: "storageclasses")!
    public static let limitRanges = find(group: "", version: "v1", plural: "limitranges")!
    public static let resourceQuotas = find(group: "", version: "v1", plural: "resourcequotas")!
    public static let priorityClasses = find(group: "scheduling.k8s.io", version: "v1", plural: "priorityclasses")!
    public static let ingressClasses = find(group: "networking.k8s.io", version: "v1", plural: "ingressclasses")!
    public static let runtimeClasses = find(group: "node.k8s.io", version: "v1", plural: "runtimeclasses")!
    public static let deployments = find(group: "apps", version: "v1", plural: "deployments")!
    public static let replicaSets = find(group: "apps", version: "v1", plural: "replicasets")!
    public static let daemonSets = find(group: "apps", version: "v1", plural: "daemonsets")!
    public static let statefulSets = find(group: "apps", version: "v1", plural: "statefulsets")!
    public static let controllerRevisions = find(group: "apps", version: "v1", plural: "controllerrevisions")!
    public static let endpointSlices = find(group: "discovery.k8s.io", version: "v1", plural: "endpointslices")!
    public static let leases = find(group: "coordination.k8s.io", version: "v1", plural: "leases")!
    static let flowSchemas = find(group: "flowcontrol.apiserver.k8s.io", version: "v1", plural: "flowschemas")!
    static let priorityLevelConfigurations = find(
        group: "flowcontrol.apiserver.k8s.io", version: "v1", plural: "prioritylevelconfigurations")!
    static let mutatingWebhookConfigurations = find(
        group: "admissionregistration.k8s.io", version: "v1", plural: "mutatingwebhookconfigurations")!
    static let validatingWebhookConfigurations = find(
        group: "admissionregistration.k8s.io", version: "v1", plural: "validatingwebhookconfigurations")!
    static let validatingAdmissionPolicies = find(
        group: "admissionregistration.k8s.io", version: "v1", plural: "validatingadmissionpolicies")!
    static let validatingAdmissionPolicyBindings = find(
        group: "admissionregistration.k8s.io", version: "v1", plural: "validatingadmissionpolicybindings")!
}

extension LocalClient {
    /// The autoscaling/v1 Scale of an object of `r`, nil when there is no such object.
    public func scale(_ r: ResourceType, namespace: String?, name: String) async throws -> JSON? {
        do { return try await handler.scale(r, namespace: namespace, name: name) } catch let e as APIError
            where e.code == 404
        { return nil }
    }

    /// The PodMetrics (metrics.k8s.io) of the pods a selector picks in a namespace, from the node agents.
    public func podMetrics(namespace: String, selector: String) async throws -> [JSON] {
        try await handler.podMetrics(namespace: namespace, selector: try LabelSelector(selector))
    }
}

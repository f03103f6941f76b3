import BerthKube
import BerthStore
import Hummingbird

/// core/v1 Pod (upstream pkg/registry/core/pod/strategy.go, its binding and eviction storage, and the
/// DefaultTolerationSeconds admission plugin).
///
/// Unlike upstream's PrepareForCreate, a new pod's status is kept rather than reset to Pending: Berth's
/// hollow nodes and tests create pods already bound and running, as a node agent's mirror pods are.
struct PodStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        var spec = obj["spec"]
        PodTemplate.applyDefaults(&spec)
        Self.defaultRequestsFromLimits(&spec)
        obj["spec"] = spec
        if obj["status"]["phase"].isNull { obj["status"]["phase"] = "Pending" }
        if obj["status"]["qosClass"].isNull { obj["status"]["qosClass"] = .string(Self.qosClass(spec)) }
    }

    /// Upstream's SetDefaults_Pod: a container with a limit but no request for a resource requests its
    /// limit (so `limits: {cpu: 1}` alone is scheduled as a request of 1 CPU, and is Guaranteed).
    static func defaultRequestsFromLimits(_ spec: inout JSON) {
        for field in ["containers", "initContainers"] {
            guard var containers = spec[field].array else { continue }
            var changed = false
            for i in containers.indices {
                guard let limits = containers[i]["resources"]["limits"].object, !limits.isEmpty else { continue }
                var requests = containers[i]["resources"]["requests"].object ?? [:]
                for (name, limit) in limits where requests[name] == nil {
                    requests[name] = limit
                    changed = true
                }
                containers[i]["resources"]["requests"] = .object(requests)
            }
            if changed { spec[field] = .array(containers) }
        }
    }

    /// Upstream's qos.GetPodQOS: BestEffort without any CPU or memory request or limit; Guaranteed when
    /// every container limits both and the requests sum to the limits; Burstable otherwise.
    static func qosClass(_ spec: JSON) -> String {
        func amount(_ q: JSON) -> Double? {
            guard let text = q.string ?? q.int.map(String.init) ?? q.double.map({ String($0) }) else { return nil }
            let quantity = Quantity(text)
            if let milli = quantity.milliValue { return Double(milli) }
            return quantity.value.map { Double($0) * 1000 }
        }
        var requests: [String: Double] = [:], limits: [String: Double] = [:]
        var guaranteed = true
        for container in (spec["containers"].array ?? []) + (spec["initContainers"].array ?? []) {
            for (name, q) in container["resources"]["requests"].object ?? [:] where name == "cpu" || name == "memory" {
                if let v = amount(q), v > 0 { requests[name, default: 0] += v }
            }
            var limited = Set<String>()
            for (name, q) in container["resources"]["limits"].object ?? [:] where name == "cpu" || name == "memory" {
                if let v = amount(q), v > 0 {
                    limited.insert(name)
                    limits[name, default: 0] += v
                }
            }
            if limited.count < 2 { guaranteed = false }
        }
        if requests.isEmpty && limits.isEmpty { return "BestEffort" }
        if guaranteed && requests.contains(where: { limits[$0.key] != $0.value }) { guaranteed = false }
        return guaranteed && requests.count == limits.count ? "Guaranteed" : "Burstable"
    }

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        // Upstream computes the class on create whatever the client sent.
        obj["status"]["qosClass"] = .string(Self.qosClass(obj["spec"]))
        Self.addDefaultTolerations(&obj, seconds: ctx.config.defaultTolerationSeconds)
        if !obj["spec"]["nodeName"].isNull && obj["status"]["phase"].string == "Pending" {
            // Bound at creation (e.g. static or DaemonSet pods): mark scheduled.
            obj["status"]["conditions"] = [
                ["type": "PodScheduled", "status": "True", "lastTransitionTime": .string(Handler.now())]
            ]
        }
    }

    func admitCreate(_ obj: inout JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        try await LimitRangerAdmission.admit(&obj, handler: handler)
        try await ServiceAccountAdmission.admit(&obj, handler: handler)
        try await PriorityAdmission.admit(&obj, handler: handler)
        try await RuntimeClassAdmission.admit(&obj, handler: handler)
    }

    /// Upstream's DefaultTolerationSeconds admission: a pod that does not already tolerate the
    /// node.kubernetes.io/not-ready or /unreachable NoExecute taint tolerates it for `seconds`, after
    /// which the node lifecycle controller evicts it from a dead node.
    static func addDefaultTolerations(_ pod: inout JSON, seconds: Int64) {
        var tolerations = pod["spec"]["tolerations"].array ?? []
        func tolerated(_ key: String) -> Bool {
            tolerations.contains { t in
                let k = t["key"].string ?? "", effect = t["effect"].string ?? ""
                return (k == key || k.isEmpty) && (effect == "NoExecute" || effect.isEmpty)
            }
        }
        var added = false
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] where !tolerated(key) {
            tolerations.append([
                "key": .string(key), "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": .int(seconds),
            ])
            added = true
        }
        if added { pod["spec"]["tolerations"] = .array(tolerations) }
    }

    /// A node writes the status of the pods bound to it only.
    func prepareForUpdate(_ obj: inout JSON, old: JSON, _ ctx: StrategyContext) throws {
        if ctx.subresource == "status", let node = ctx.user?.nodeName, old["spec"]["nodeName"].string != node {
            throw APIError.forbidden(
                "pods \"\(old["metadata"]["name"].string ?? "")\" is forbidden: node \"\(node)\" can only update pods bound to it"
            )
        }
        splitSpecAndStatus(&obj, old: old, ctx)
    }
    func prepareForStatusUpdate(_ obj: inout JSON, old: JSON) {
        obj["spec"] = old["spec"]
        // Old kubelets corrupted owner references through pods/status; upstream ignores them there.
        obj["metadata"]["ownerReferences"] = old["metadata"]["ownerReferences"]
    }

    func validate(_ obj: JSON) -> [APIError.Cause] { PodTemplate.validate(obj["spec"], path: "spec") }

    /// Pod spec is mostly immutable: only images, activeDeadlineSeconds and tolerations may change (and
    /// nodeName while the pod is unbound).
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        guard ctx.subresource == nil else { return [] }
        func mutable(_ spec: JSON) -> JSON {
            var x = spec
            x["containers"] = .array(
                (x["containers"].array ?? []).map {
                    var c = $0; c["image"] = .null; return c
                })
            x["activeDeadlineSeconds"] = .null; x["tolerations"] = .null
            PodTemplate.applyDefaults(&x)
            return x
        }
        let a = mutable(obj["spec"]), b = mutable(old["spec"])
        if a != b && !(old["spec"]["nodeName"].isNull && a["nodeName"] != b["nodeName"]) {
            return [
                .init(
                    "spec", "FieldValueForbidden",
                    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
                )
            ]
        }
        return []
    }

    /// Graceful deletion: a pod running on a node is marked and its node agent stops it and finishes the
    /// delete (with grace 0); an unbound or finished pod goes at once.
    func planDeletion(_ obj: inout JSON, gracePeriod: Int64?, _ ctx: StrategyContext) throws -> DeletionPlan {
        let running =
            !(obj["spec"]["nodeName"].string ?? "").isEmpty
            && !["Succeeded", "Failed"].contains(obj["status"]["phase"].string ?? "")
        return .proceed(
            gracePeriod: running ? (gracePeriod ?? obj["spec"]["terminationGracePeriodSeconds"].int ?? 30) : 0)
    }
    /// Pods own nothing Berth serves; an orphan finalizer would only hold a finished pod until the garbage
    /// collector got to it.
    var orphansDependents: Bool { false }

    func post(_ call: Call, subresource: String, namespace: String?, name: String, handler: Handler) async throws
        -> Response?
    {
        switch subresource {
        case "binding": return try await Self.bind(call, namespace: namespace ?? "", name: name, handler: handler)
        case "eviction": return try await Self.evict(call, namespace: namespace ?? "", name: name, handler: handler)
        default: return nil
        }
    }

    /// pods/binding (and the namespace's bindings collection, `name` nil): sets spec.nodeName once and
    /// marks the pod scheduled. Written straight to the store: a Binding is not a pod update, so the pod
    /// update rules (an immutable spec) do not apply to it.
    static func bind(_ call: Call, namespace: String, name: String?, handler: Handler) async throws -> Response {
        let b = try handler.bodyJSON(call, kind: "Binding")
        let podName = name ?? b["metadata"]["name"].string ?? ""
        guard let node = b["target"]["name"].string, !node.isEmpty else {
            throw APIError(
                code: 422, reason: "Invalid", message: "Binding \"\(podName)\" is invalid: target.name: Required value")
        }
        let pods = Registry.pods
        for _ in 0..<Handler.conflictRetries {
            guard let kv = try await handler.store.get(pods.key(namespace: namespace, name: podName)) else {
                throw APIError.notFound(pods, podName)
            }
            var pod = try handler.decodeStored(kv, pods)
            if let existing = pod["spec"]["nodeName"].string, !existing.isEmpty {
                throw APIError(
                    code: 409, reason: "Conflict",
                    message:
                        "Operation cannot be fulfilled on pods/binding \"\(podName)\": pod \(podName) is already assigned to node \"\(existing)\""
                )
            }
            pod["spec"]["nodeName"] = .string(node)
            var conds = (pod["status"]["conditions"].array ?? []).filter { $0["type"].string != "PodScheduled" }
            conds.append(["type": "PodScheduled", "status": "True", "lastTransitionTime": .string(Handler.now())])
            pod["status"]["conditions"] = .array(conds)
            pod["metadata"]["resourceVersion"] = .null
            do {
                _ = try await handler.store.update(
                    kv.key, value: handler.encodeForStore(pod), expectedRevision: kv.modRevision)
                return handler.reply(
                    call, ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success", "code": 201],
                    status: 201)
            } catch StoreError.conflict { continue }
        }
        throw APIError.conflict(pods, podName)
    }

    /// policy/v1 Eviction (pods/eviction, what `kubectl drain` posts): the pod is deleted with the
    /// eviction's deleteOptions unless its PodDisruptionBudget has no disruption left to give
    /// (``DisruptionBudgets``), which answers 429 for the client to retry.
    static func evict(_ call: Call, namespace: String, name: String, handler: Handler) async throws -> Response {
        let eviction = try handler.bodyJSON(call, kind: "Eviction")
        if let named = eviction["metadata"]["name"].string, !named.isEmpty, named != name {
            throw APIError.badRequest("name in URL does not match name in Eviction object")
        }
        let pod = try await handler.getObject(Registry.pods, namespace: namespace, name: name)
        try await DisruptionBudgets.admitEviction(of: pod, handler: handler)
        _ = try await handler.deleteObject(
            call, Registry.pods, namespace: namespace, name: name,
            options: eviction["deleteOptions"].object.map { .object($0) } ?? [:])
        return handler.reply(
            call, ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success", "code": 201],
            status: 201)
    }

    var fieldLabels: FieldLabelSet {
        .init(
            getters: [
                "spec.nodeName": FieldLabels.string("spec.nodeName"),
                "spec.host": FieldLabels.string("spec.nodeName"),  // what v1 clients of old sent; upstream converts it
                "spec.restartPolicy": FieldLabels.string("spec.restartPolicy", default: "Always"),
                "spec.schedulerName": FieldLabels.string("spec.schedulerName", default: "default-scheduler"),
                "spec.serviceAccountName": FieldLabels.string("spec.serviceAccountName"),
                "spec.hostNetwork": FieldLabels.bool("spec.hostNetwork"),
                "status.phase": FieldLabels.string("status.phase", default: "Pending"),
                // Upstream reads the first of status.podIPs; an agent may have written only status.podIP.
                "status.podIP": { pod in
                    pod["status"]["podIPs"][0]["ip"].string ?? pod["status"]["podIP"].string ?? ""
                },
                // Accepted by upstream's conversion but absent from its field set, so it always reads "".
                "status.podIPs": { _ in "" },
                "status.nominatedNodeName": FieldLabels.string("status.nominatedNodeName"),
            ], ownConversion: true)
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Ready"), .init(name: "Status"), .init(name: "Restarts", type: "string"),
            Tables.ageColumn,
            .init(name: "IP", priority: 1), .init(name: "Node", priority: 1),
            .init(name: "Nominated Node", priority: 1),
            .init(name: "Readiness Gates", priority: 1),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"], status = obj["status"]
        let cs = spec["containers"].array ?? []
        let statuses = status["containerStatuses"].array ?? []
        let ready = statuses.filter { $0["ready"].bool == true }.count
        let restarts = statuses.reduce(Int64(0)) { $0 + ($1["restartCount"].int ?? 0) }
        var phase = status["reason"].string ?? status["phase"].string ?? "Pending"
        for s in statuses { if let w = s["state"]["waiting"]["reason"].string { phase = w } }
        if !obj["metadata"]["deletionTimestamp"].isNull { phase = "Terminating" }
        return [
            Tables.nameCell(obj), .string("\(ready)/\(cs.count)"), .string(phase), .string(String(restarts)),
            Tables.ageCell(obj),
            .string(status["podIP"].string ?? "<none>"), .string(spec["nodeName"].string ?? "<none>"),
            .string(status["nominatedNodeName"].string ?? "<none>"), .string("<none>"),
        ]
    }
}

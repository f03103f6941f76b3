import BerthAPI
import Foundation
import Logging

/// Rolls Deployments out through ReplicaSets, as kube-controller-manager does: one ReplicaSet per pod
/// template (named by its pod-template-hash), RollingUpdate bounded by maxSurge/maxUnavailable or
/// Recreate, revisions in `deployment.kubernetes.io/revision` (what `kubectl rollout history|undo`
/// read), pause/resume, progressDeadlineSeconds, and old ReplicaSets pruned past revisionHistoryLimit.
struct DeploymentController: ControlLoop {
    let name = "deployment-controller"
    static let revisionKey = "deployment.kubernetes.io/revision"
    static let hashLabel = "pod-template-hash"
    let client: LocalClient
    let deployments: UntypedInformer
    let sets: UntypedInformer
    let pods: UntypedInformer
    let queue = WorkQueue(name: "deployment")
    let events: ComponentRecorder
    let logger: Logger
    let workers: Int

    init(_ ctx: ControllerContext) {
        client = ctx.localClient("deployment-controller")
        deployments = ctx.informers.informer(Registry.deployments)
        sets = ctx.informers.informer(Registry.replicaSets)
        pods = ctx.informers.informer(Registry.pods)
        events = ctx.events.component("deployment-controller")
        logger = ctx.logger
        workers = ctx.config.workers
        sets.addIndex("controller", Objects.controllerUID)
        sets.addIndex(Self.orphanIndex, Self.orphanNamespace)
        pods.addIndex("controller", Objects.controllerUID)
        let queue = self.queue
        deployments.onChange { e in
            let k = UntypedInformer.key(e.object); Task { await queue.add(k) }
        }
        let controller = self
        sets.onChange { e in
            if Objects.controllerRef(e.object) == nil {
                if case .deleted = e { return }
                // An orphan: the Deployments that select it may adopt it.
                let keys = controller.deploymentsSelecting(e.object).map(UntypedInformer.key)
                Task { for k in keys { await queue.add(k) } }
                return
            }
            guard let ref = Objects.controllerRef(e.object), ref["kind"].string == "Deployment",
                let owner = ref["name"].string, let ns = e.object["metadata"]["namespace"].string
            else { return }
            let k = Objects.key(namespace: ns, name: owner)
            Task { await queue.add(k) }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: workers, sync: sync,
            onError: { key, error in
                logger.debug("deployment sync failed", metadata: ["deployment": "\(key)", "error": "\(error)"])
            })
    }

    // MARK: helpers

    static func revision(_ rs: JSON) -> Int64 { Int64(rs["metadata"]["annotations"][revisionKey].string ?? "") ?? 0 }
    static func replicas(_ rs: JSON) -> Int64 { rs["spec"]["replicas"].int ?? 0 }

    /// The template without the hash label, for comparing a ReplicaSet's template with the Deployment's.
    static func comparable(_ template: JSON) -> JSON {
        var t = template
        t["metadata"]["labels"][hashLabel] = .null
        if t["metadata"]["labels"].object?.isEmpty == true { t["metadata"]["labels"] = .null }
        t["metadata"]["creationTimestamp"] = .null
        if t["metadata"].object?.isEmpty == true { t["metadata"] = .null }
        return t
    }

    struct Plan {
        var d: JSON
        var replicas: Int64
        var newRS: JSON?
        var old: [JSON]
        var all: [JSON] { (newRS.map { [$0] } ?? []) + old }
        var maxSurge: Int64
        var maxUnavailable: Int64
    }

    func plan(_ d: JSON) -> Plan {
        let uid = d["metadata"]["uid"].string ?? ""
        let owned = sets.byIndex("controller", uid).filter { !Objects.isTerminating($0) }
        let want = Self.comparable(d["spec"]["template"])
        let matching = owned.filter { Self.comparable($0["spec"]["template"]) == want }
        // Several identical templates (should not happen): the oldest one is the new ReplicaSet.
        let newRS = matching.min {
            ($0["metadata"]["creationTimestamp"].string ?? "") < ($1["metadata"]["creationTimestamp"].string ?? "")
        }
        let old = owned.filter { $0["metadata"]["uid"] != newRS?["metadata"]["uid"] }
        let replicas = d["spec"]["replicas"].int ?? 1
        var surge: Int64 = 0, unavailable: Int64 = 0
        if d["spec"]["strategy"]["type"].string != "Recreate" {
            let ru = d["spec"]["strategy"]["rollingUpdate"]
            surge = Objects.intOrPercent(ru["maxSurge"].isNull ? "25%" : ru["maxSurge"], total: replicas, roundUp: true)
            unavailable = Objects.intOrPercent(
                ru["maxUnavailable"].isNull ? "25%" : ru["maxUnavailable"], total: replicas, roundUp: false)
            if surge == 0 && unavailable == 0 { unavailable = 1 }
        }
        return Plan(d: d, replicas: replicas, newRS: newRS, old: old, maxSurge: surge, maxUnavailable: unavailable)
    }

    // MARK: sync

    func sync(_ key: String) async throws {
        guard let d = deployments.get(key), !Objects.isTerminating(d) else { return }
        // Adopted sets come back through the informer, which queues this Deployment again.
        if try await adoptOrphans(d) { return }
        var p = plan(d)
        let selector = LabelSelector(object: d["spec"]["selector"])
        if d["spec"]["selector"].object?.isEmpty ?? true || selector.isEmpty {
            // Validation refuses this on create; an old object could still carry it. Nothing is selected.
            try await writeStatus(p, reason: nil)
            return
        }
        if d["spec"]["paused"].bool == true {
            // Paused: only scaling is honoured, no rollout.
            if let n = p.newRS, p.old.allSatisfy({ Self.replicas($0) == 0 }), Self.replicas(n) != p.replicas {
                p.newRS = try await scale(n, to: p.replicas, p)
            }
            try await writeStatus(p, reason: nil)
            return
        }
        let recreate = d["spec"]["strategy"]["type"].string == "Recreate"
        if recreate {
            try await syncRecreate(&p)
        } else {
            try await syncRolling(&p)
        }
    }

    /// Recreate: all old pods go first; the new ReplicaSet is scaled up only once none is left.
    func syncRecreate(_ p: inout Plan) async throws {
        var changed = false
        for (i, rs) in p.old.enumerated() where Self.replicas(rs) > 0 {
            p.old[i] = try await scale(rs, to: 0, p); changed = true
        }
        if changed { try await writeStatus(p, reason: "ReplicaSetUpdated"); return }
        let oldPodsLeft = p.old.contains { rs in
            pods.byIndex("controller", rs["metadata"]["uid"].string ?? "").contains { !Objects.isFinished($0) }
        }
        if oldPodsLeft { try await writeStatus(p, reason: nil); return }
        if p.newRS == nil {
            p.newRS = try await createNewRS(&p, replicas: p.replicas);
            try await writeStatus(p, reason: "NewReplicaSetCreated"); return
        }
        if let n = p.newRS, Self.replicas(n) != p.replicas {
            p.newRS = try await scale(n, to: p.replicas, p)
            try await writeStatus(p, reason: "ReplicaSetUpdated")
            return
        }
        try await finish(p)
    }

    func syncRolling(_ p: inout Plan) async throws {
        if p.newRS == nil {
            let current = p.old.reduce(Int64(0)) { $0 + Self.replicas($1) }
            let start = current == 0 ? p.replicas : max(0, min(p.replicas + p.maxSurge - current, p.replicas))
            p.newRS = try await createNewRS(&p, replicas: start)
            try await writeStatus(p, reason: "NewReplicaSetCreated")
            return
        }
        // Scale the new ReplicaSet up (within maxSurge) or down to the desired count.
        if let n = p.newRS {
            let cur = Self.replicas(n)
            var target = cur
            if cur > p.replicas {
                target = p.replicas
            } else if cur < p.replicas {
                let total = p.all.reduce(Int64(0)) { $0 + Self.replicas($1) }
                let room = p.replicas + p.maxSurge - total
                if room > 0 { target = cur + min(room, p.replicas - cur) }
            }
            if target != cur {
                p.newRS = try await scale(n, to: target, p)
                try await writeStatus(p, reason: "ReplicaSetUpdated")
                return
            }
        }
        // Scale old ReplicaSets down without dropping below replicas - maxUnavailable available pods.
        if try await reconcileOld(&p) {
            try await writeStatus(p, reason: "ReplicaSetUpdated")
            return
        }
        try await finish(p)
    }

    /// Upstream's reconcileOldReplicaSets: first unhealthy old replicas, then healthy ones as far as
    /// availability allows. Returns whether anything was scaled.
    func reconcileOld(_ p: inout Plan) async throws -> Bool {
        let oldCount = p.old.reduce(Int64(0)) { $0 + Self.replicas($1) }
        if oldCount == 0 { return false }
        let all = p.all.reduce(Int64(0)) { $0 + Self.replicas($1) }
        let minAvailable = p.replicas - p.maxUnavailable
        let newUnavailable = (p.newRS.map(Self.replicas) ?? 0) - (p.newRS?["status"]["availableReplicas"].int ?? 0)
        var maxScaleDown = all - minAvailable - newUnavailable
        if maxScaleDown <= 0 { return false }
        var scaled = false
        // Old replicas that are not available cost nothing to remove.
        let oldest = p.old.indices.sorted {
            (p.old[$0]["metadata"]["creationTimestamp"].string ?? "")
                < (p.old[$1]["metadata"]["creationTimestamp"].string ?? "")
        }
        for i in oldest where maxScaleDown > 0 {
            let rs = p.old[i]
            let unhealthy = Self.replicas(rs) - (rs["status"]["availableReplicas"].int ?? 0)
            if unhealthy <= 0 || Self.replicas(rs) == 0 { continue }
            let down = min(unhealthy, maxScaleDown)
            p.old[i] = try await scale(rs, to: Self.replicas(rs) - down, p)
            maxScaleDown -= down
            scaled = true
        }
        // Then available ones, as far as availability allows.
        let available = p.all.reduce(Int64(0)) { $0 + ($1["status"]["availableReplicas"].int ?? 0) }
        if available > minAvailable {
            var budget = min(available - minAvailable, maxScaleDown)
            for i in oldest where budget > 0 {
                let rs = p.old[i]
                let r = Self.replicas(rs)
                if r == 0 { continue }
                let down = min(r, budget)
                p.old[i] = try await scale(rs, to: r - down, p)
                budget -= down
                scaled = true
            }
        }
        return scaled
    }

    /// Rollout steps are done: prune history and report.
    func finish(_ p: Plan) async throws {
        let complete = isComplete(p)
        if complete {
            let limit = p.d["spec"]["revisionHistoryLimit"].int ?? 10
            let prunable = p.old.filter { Self.replicas($0) == 0 && ($0["status"]["replicas"].int ?? 0) == 0 }
                .sorted { Self.revision($0) < Self.revision($1) }
            if prunable.count > Int(limit) {
                for rs in prunable.prefix(prunable.count - Int(limit)) {
                    try? await client.delete(
                        Registry.replicaSets, namespace: rs["metadata"]["namespace"].string,
                        name: rs["metadata"]["name"].string ?? "", uid: rs["metadata"]["uid"].string)
                }
            }
        }
        try await writeStatus(p, reason: nil)
    }

    func isComplete(_ p: Plan) -> Bool {
        guard let n = p.newRS else { return false }
        let total = p.all.reduce(Int64(0)) { $0 + ($1["status"]["replicas"].int ?? 0) }
        return Self.replicas(n) == p.replicas && (n["status"]["replicas"].int ?? 0) == p.replicas
            && (n["status"]["availableReplicas"].int ?? 0) >= p.replicas && total == p.replicas
            && p.old.allSatisfy { Self.replicas($0) == 0 }
    }

    // MARK: writes

    func createNewRS(_ p: inout Plan, replicas: Int64) async throws -> JSON {
        let d = p.d
        let maxRevision = p.old.map(Self.revision).max() ?? 0
        var collisions = d["status"]["collisionCount"].int ?? 0
        for _ in 0..<5 {
            let hash = Objects.shortHash(Self.comparable(d["spec"]["template"]).serialized(), salt: collisions)
            var template = d["spec"]["template"]
            template["metadata"]["labels"][Self.hashLabel] = .string(hash)
            var selector = d["spec"]["selector"]
            selector["matchLabels"][Self.hashLabel] = .string(hash)
            var annotations = Self.copiedAnnotations(d)
            annotations[Self.revisionKey] = .string(String(maxRevision + 1))
            annotations["deployment.kubernetes.io/desired-replicas"] = .string(String(p.replicas))
            annotations["deployment.kubernetes.io/max-replicas"] = .string(String(p.replicas + p.maxSurge))
            var labels = template["metadata"]["labels"]
            labels[Self.hashLabel] = .string(hash)
            let rs: JSON = [
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": [
                    "name": .string("\(d["metadata"]["name"].string ?? "")-\(hash)"),
                    "namespace": d["metadata"]["namespace"],
                    "labels": labels, "annotations": annotations,
                    "ownerReferences": [Objects.ownerReference(to: d, kind: "Deployment", apiVersion: "apps/v1")],
                ],
                "spec": [
                    "replicas": .int(replicas), "minReadySeconds": .int(d["spec"]["minReadySeconds"].int ?? 0),
                    "selector": selector, "template": template,
                ],
            ]
            do {
                let created = try await client.create(Registry.replicaSets, rs)
                events.record(
                    d, reason: "ScalingReplicaSet",
                    message: "Scaled up replica set \(created["metadata"]["name"].string ?? "") from 0 to \(replicas)")
                return created
            } catch let e as APIError where e.reason == "AlreadyExists" {
                // Same name, different template (a hash collision) or not ours: salt the hash.
                if let existing = try await client.get(
                    Registry.replicaSets, namespace: d["metadata"]["namespace"].string,
                    name: "\(d["metadata"]["name"].string ?? "")-\(hash)"),
                    Objects.controllerRef(existing)?["uid"] == d["metadata"]["uid"],
                    Self.comparable(existing["spec"]["template"]) == Self.comparable(d["spec"]["template"])
                {
                    return existing
                }
                collisions += 1
                var st = d
                st["status"]["collisionCount"] = .int(collisions)
                _ = try? await client.updateStatus(Registry.deployments, st)
            }
        }
        throw APIError(
            code: 409, reason: "Conflict",
            message: "could not find a free ReplicaSet name for deployment \(d["metadata"]["name"].string ?? "")")
    }

    /// Annotations a Deployment passes on to its ReplicaSets (change-cause and the user's own).
    static func copiedAnnotations(_ d: JSON) -> JSON {
        var out: JSON = [:]
        for (k, v) in d["metadata"]["annotations"].object ?? [:] {
            if k == "kubectl.kubernetes.io/last-applied-configuration" || k.hasPrefix("deployment.kubernetes.io/") {
                continue
            }
            out[k] = v
        }
        return out
    }

    /// Sets a ReplicaSet's replicas (and, when it is the new one, its revision and annotations).
    func scale(_ rs: JSON, to n: Int64, _ p: Plan) async throws -> JSON {
        var u = rs
        u["spec"]["replicas"] = .int(n)
        u["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = .string(String(p.replicas))
        u["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] = .string(String(p.replicas + p.maxSurge))
        let out = try await client.update(Registry.replicaSets, u)
        let from = Self.replicas(rs)
        if from != n {
            events.record(
                p.d, reason: "ScalingReplicaSet",
                message:
                    "Scaled \(n > from ? "up" : "down") replica set \(rs["metadata"]["name"].string ?? "") from \(from) to \(n)"
            )
        }
        return out
    }

    /// Makes the new ReplicaSet's revision the highest (a rollback re-uses an old ReplicaSet) and copies
    /// the Deployment's annotations and minReadySeconds to it.
    func promote(_ p: inout Plan) async throws {
        guard let n = p.newRS else { return }
        let maxOld = p.old.map(Self.revision).max() ?? 0
        var u = n
        var changed = false
        if Self.revision(n) <= maxOld {
            var history = (n["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"].string ?? "")
                .split(separator: ",").map(String.init)
            history.append(String(Self.revision(n)))
            u["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] = .string(
                history.filter { $0 != "0" }.joined(separator: ","))
            u["metadata"]["annotations"][Self.revisionKey] = .string(String(maxOld + 1))
            changed = true
        }
        for (k, v) in Self.copiedAnnotations(p.d).object ?? [:] where u["metadata"]["annotations"][k] != v {
            u["metadata"]["annotations"][k] = v; changed = true
        }
        // The new set counts its pods available after the Deployment's minReadySeconds, as it is now
        // (upstream's getNewReplicaSet): a change of it alone starts no new ReplicaSet.
        let minReady = p.d["spec"]["minReadySeconds"].int ?? 0
        if (n["spec"]["minReadySeconds"].int ?? 0) != minReady {
            u["spec"]["minReadySeconds"] = .int(minReady); changed = true
        }
        if changed { p.newRS = try await client.update(Registry.replicaSets, u) }
    }

    // MARK: status

    func writeStatus(_ plan: Plan, reason: String?) async throws {
        var p = plan
        if p.d["spec"]["paused"].bool != true { try await promote(&p) }
        let d = p.d
        let all = p.all
        func sum(_ f: String) -> Int64 { all.reduce(0) { $0 + ($1["status"][f].int ?? 0) } }
        var st = d["status"]
        st["observedGeneration"] = d["metadata"]["generation"]
        st["replicas"] = .int(sum("replicas"))
        st["updatedReplicas"] = .int(p.newRS?["status"]["replicas"].int ?? 0)
        st["readyReplicas"] = .int(sum("readyReplicas"))
        st["availableReplicas"] = .int(sum("availableReplicas"))
        st["unavailableReplicas"] = .int(max(0, p.replicas - sum("availableReplicas")))
        for f in ["updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas", "replicas"]
        where st[f].int == 0 { st[f] = .null }
        let now = APITime.string()
        var conds = st["conditions"].array ?? []
        func setCondition(_ type: String, _ status: String, _ reason: String, _ message: String, touch: Bool = true) {
            if let i = conds.firstIndex(where: { $0["type"].string == type }) {
                var c = conds[i]
                if c["status"].string != status { c["lastTransitionTime"] = .string(now) }
                if c["reason"].string != reason || c["message"].string != message || touch {
                    c["lastUpdateTime"] = .string(now)
                }
                c["status"] = .string(status); c["reason"] = .string(reason); c["message"] = .string(message)
                conds[i] = c
            } else {
                conds.append([
                    "type": .string(type), "status": .string(status), "reason": .string(reason),
                    "message": .string(message),
                    "lastUpdateTime": .string(now), "lastTransitionTime": .string(now),
                ])
            }
        }
        let available = sum("availableReplicas") >= p.replicas - p.maxUnavailable
        let availCond = conds.first { $0["type"].string == "Available" }
        if availCond?["status"].string != (available ? "True" : "False") || availCond == nil {
            setCondition(
                "Available", available ? "True" : "False",
                available ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                available ? "Deployment has minimum availability." : "Deployment does not have minimum availability.")
        }
        let newName = p.newRS?["metadata"]["name"].string ?? ""
        let progressing = conds.first { $0["type"].string == "Progressing" }
        let deadline = d["spec"]["progressDeadlineSeconds"].int
        if d["spec"]["paused"].bool == true {
            if progressing?["reason"].string != "DeploymentPaused" {
                setCondition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
            }
        } else if isComplete(p) {
            if progressing?["reason"].string != "NewReplicaSetAvailable" {
                setCondition(
                    "Progressing", "True", "NewReplicaSetAvailable",
                    "ReplicaSet \"\(newName)\" has successfully progressed.")
            }
        } else if progressing?["reason"].string == "DeploymentPaused" {
            setCondition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")
        } else if let reason {
            let msg =
                reason == "NewReplicaSetCreated"
                ? "Created new replica set \"\(newName)\"" : "ReplicaSet \"\(newName)\" is progressing."
            setCondition("Progressing", "True", reason, msg)
        } else if madeProgress(old: d["status"], new: st) || progressing == nil {
            setCondition(
                "Progressing", "True", progressing == nil ? "FoundNewReplicaSet" : "ReplicaSetUpdated",
                progressing == nil
                    ? "Found new replica set \"\(newName)\"" : "ReplicaSet \"\(newName)\" is progressing.")
        } else if let deadline, let c = progressing, c["reason"].string != "ProgressDeadlineExceeded",
            let last = APITime.parse(c["lastUpdateTime"].string)
        {
            let elapsed = Date().timeIntervalSince(last)
            if elapsed >= Double(deadline) {
                setCondition(
                    "Progressing", "False", "ProgressDeadlineExceeded",
                    "ReplicaSet \"\(newName)\" has timed out progressing.")
                events.record(
                    d, type: "Warning", reason: "ProgressDeadlineExceeded",
                    message: "Deployment \"\(d["metadata"]["name"].string ?? "")\" has timed out progressing.")
            } else {
                queue.add(UntypedInformer.key(d), after: .milliseconds(Int((Double(deadline) - elapsed) * 1000) + 100))
            }
        }
        st["conditions"] = .array(conds)
        // Keep the Deployment's revision annotation in step with its new ReplicaSet.
        var u = d
        if let n = p.newRS, d["spec"]["paused"].bool != true,
            u["metadata"]["annotations"][Self.revisionKey].string != String(Self.revision(n))
        {
            u["metadata"]["annotations"][Self.revisionKey] = .string(String(Self.revision(n)))
            u = (try? await client.update(Registry.deployments, u)) ?? u
            if u["metadata"]["resourceVersion"] == d["metadata"]["resourceVersion"] { return }
        }
        if st == u["status"] { return }
        u["status"] = st
        do { try await client.updateStatus(Registry.deployments, u) } catch let e as APIError
            where e.code == 409 || e.code == 404
        {}
    }

    func madeProgress(old: JSON, new: JSON) -> Bool {
        (new["updatedReplicas"].int ?? 0) > (old["updatedReplicas"].int ?? 0)
            || (new["readyReplicas"].int ?? 0) > (old["readyReplicas"].int ?? 0)
            || (new["availableReplicas"].int ?? 0) > (old["availableReplicas"].int ?? 0)
            || (new["replicas"].int ?? 0) < (old["replicas"].int ?? 0) && (new["updatedReplicas"].int ?? 0) > 0
    }
}

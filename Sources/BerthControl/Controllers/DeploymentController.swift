import BerthAPI
import BerthKube
import Foundation
import Logging

/// Rolls Deployments out through ReplicaSets, as kube-controller-manager does: one ReplicaSet per pod
/// template (named by its pod-template-hash), RollingUpdate bounded by maxSurge/maxUnavailable or
/// Recreate, revisions in `deployment.kubernetes.io/revision` (what `kubectl rollout history|undo`
/// read), pause/resume, progressDeadlineSeconds, and old ReplicaSets pruned past revisionHistoryLimit.
struct DeploymentController: ControlLoop {
    typealias Deployment = AppsV1.Deployment
    typealias ReplicaSet = AppsV1.ReplicaSet
    typealias Pod = CoreV1.Pod

    let name = "deployment-controller"
    static let revisionKey = "deployment.kubernetes.io/revision"
    static let revisionHistoryKey = "deployment.kubernetes.io/revision-history"
    static let desiredReplicasKey = "deployment.kubernetes.io/desired-replicas"
    static let maxReplicasKey = "deployment.kubernetes.io/max-replicas"
    static let hashLabel = "pod-template-hash"
    /// ReplicaSets and pods by the UID of their controller (the ReplicaSet controller's pod index too).
    static let ownerIndex = ReplicaSetController.ownerIndex
    /// Pods not yet Succeeded or Failed, by the UID of their controller: what Recreate waits on, counted
    /// without walking a large set's pods on every deletion.
    static let unfinishedIndex = "unfinished-by-controller"

    let client: any KubeClient
    let deployments: Informer<Deployment>
    let sets: Informer<ReplicaSet>
    let pods: Informer<Pod>
    let queue = WorkQueue(name: "deployment")
    let events: ComponentRecorder
    let logger: Logger
    let workers: Int

    init(_ ctx: ControllerContext) {
        client = ctx.client("deployment-controller")
        deployments = ctx.informers.informer(Deployment.self)
        sets = ctx.informers.informer(ReplicaSet.self)
        pods = ctx.informers.informer(Pod.self)
        events = ctx.events.component("deployment-controller")
        logger = ctx.logger
        workers = ctx.config.workers
        sets.addIndex(Self.ownerIndex) { $0.controllerUIDs }
        sets.addIndex(Self.orphanIndex, Self.orphanNamespace)
        pods.addIndex(Self.ownerIndex) { $0.controllerUIDs }
        pods.addIndex(Self.unfinishedIndex) { $0.isFinished ? [] : $0.controllerUIDs }
        let queue = self.queue
        deployments.onChange { e in
            let k = e.object.cacheKey
            Task { await queue.add(k) }
        }
        let controller = self
        sets.onChange { e in
            guard let ref = e.object.controllerRef else {
                if case .deleted = e { return }
                // An orphan: the Deployments that select it may adopt it.
                let keys = controller.deploymentsSelecting(e.object).map(\.cacheKey)
                Task { for k in keys { await queue.add(k) } }
                return
            }
            guard ref.kind == "Deployment", let ns = e.object.metadata.namespace else { return }
            let k = Objects.key(namespace: ns, name: ref.name)
            Task { await queue.add(k) }
        }
        pods.onChange { e in
            guard case .deleted(let pod) = e, let k = controller.recreateWaitingOn(pod) else { return }
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

    /// Upstream's deletePod: a Recreate Deployment starts its new pods only once its old ones are gone,
    /// and nothing else says when the last one went (its ReplicaSet's status stopped counting it when it
    /// began terminating, so that set does not change again). Returns the key of the Deployment to sync
    /// when `pod`, just deleted, was the last unfinished pod of a ReplicaSet of a Recreate Deployment.
    func recreateWaitingOn(_ pod: Pod) -> String? {
        guard let ns = pod.metadata.namespace, let setRef = pod.controllerRef(kind: "ReplicaSet"),
            pods.countIndex(Self.unfinishedIndex, setRef.uid) == 0,
            let rs = sets.get(namespace: ns, name: setRef.name), rs.metadata.uid == setRef.uid,
            let ref = rs.controllerRef(kind: "Deployment"),
            let d = deployments.get(namespace: ns, name: ref.name), d.metadata.uid == ref.uid,
            d.spec.strategy.type == .recreateDeploymentStrategyType
        else { return nil }
        return d.cacheKey
    }

    // MARK: helpers

    static func revision(_ rs: ReplicaSet) -> Int64 { Int64(rs.metadata.annotations[revisionKey] ?? "") ?? 0 }
    static func replicas(_ rs: ReplicaSet) -> Int64 { Int64(rs.spec.replicas ?? 0) }

    /// Older first, by creation time and then name (upstream's ReplicaSetsByCreationTimestamp).
    static func olderFirst(_ a: ReplicaSet, _ b: ReplicaSet) -> Bool {
        let ta = a.metadata.creationTimestamp?.secondsSince1970 ?? .min
        let tb = b.metadata.creationTimestamp?.secondsSince1970 ?? .min
        if ta != tb { return ta < tb }
        return (a.metadata.name ?? "") < (b.metadata.name ?? "")
    }

    /// Whether a ReplicaSet's template is the Deployment's, its hash label aside.
    static func runsTemplate(of d: Deployment, _ rs: ReplicaSet) -> Bool {
        rs.spec.template.ignoringLabel(hashLabel) == d.spec.template.ignoringLabel(hashLabel)
    }

    struct Plan {
        var d: Deployment
        var replicas: Int64
        var newRS: ReplicaSet?
        var old: [ReplicaSet]
        var all: [ReplicaSet] { (newRS.map { [$0] } ?? []) + old }
        var maxSurge: Int64
        var maxUnavailable: Int64
    }

    func plan(_ d: Deployment) -> Plan {
        let owned = sets.byIndex(Self.ownerIndex, d.metadata.uid ?? "").filter { !$0.isTerminating }
        // Several identical templates (should not happen): the oldest one is the new ReplicaSet.
        let newRS = owned.filter { Self.runsTemplate(of: d, $0) }.min(by: Self.olderFirst)
        let old = owned.filter { $0.metadata.uid != newRS?.metadata.uid }
        let replicas = Int64(d.spec.replicas ?? 1)
        var surge: Int64 = 0
        var unavailable: Int64 = 0
        if d.spec.strategy.type != .recreateDeploymentStrategyType {
            let rollingUpdate = d.spec.strategy.rollingUpdate
            surge = (rollingUpdate?.maxSurge ?? "25%").scaled(total: replicas, roundUp: true)
            unavailable = (rollingUpdate?.maxUnavailable ?? "25%").scaled(total: replicas, roundUp: false)
            if surge == 0 && unavailable == 0 { unavailable = 1 }
        }
        return Plan(d: d, replicas: replicas, newRS: newRS, old: old, maxSurge: surge, maxUnavailable: unavailable)
    }

    // MARK: sync

    func sync(_ key: String) async throws {
        guard let d = deployments.get(key), !d.isTerminating else { return }
        // Adopted sets come back through the informer, which queues this Deployment again.
        if try await adoptOrphans(d) { return }
        var p = plan(d)
        if LabelSelector(d.spec.selector).isEmpty {
            // Validation refuses this on create; an old object could still carry it. Nothing is selected.
            try await writeStatus(p, reason: nil)
            return
        }
        if d.spec.paused == true {
            // Paused: only scaling is honoured, no rollout.
            if let n = p.newRS, p.old.allSatisfy({ Self.replicas($0) == 0 }), Self.replicas(n) != p.replicas {
                p.newRS = try await scale(n, to: p.replicas, p)
            }
            try await writeStatus(p, reason: nil)
            return
        }
        if d.spec.strategy.type == .recreateDeploymentStrategyType {
            try await syncRecreate(&p)
        } else {
            try await syncRolling(&p)
        }
    }

    /// Recreate: all old pods go first; the new ReplicaSet is scaled up only once none is left.
    func syncRecreate(_ p: inout Plan) async throws {
        var changed = false
        for (i, rs) in p.old.enumerated() where Self.replicas(rs) > 0 {
            p.old[i] = try await scale(rs, to: 0, p)
            changed = true
        }
        if changed {
            try await writeStatus(p, reason: "ReplicaSetUpdated")
            return
        }
        // Finished pods do not hold the new ones back; every other pod does, terminating or not.
        let oldPodsLeft = p.old.contains { pods.countIndex(Self.unfinishedIndex, $0.metadata.uid ?? "") > 0 }
        if oldPodsLeft {
            try await writeStatus(p, reason: nil)
            return
        }
        guard let n = p.newRS else {
            p.newRS = try await createNewRS(p, replicas: p.replicas)
            try await writeStatus(p, reason: "NewReplicaSetCreated")
            return
        }
        if Self.replicas(n) != p.replicas {
            p.newRS = try await scale(n, to: p.replicas, p)
            try await writeStatus(p, reason: "ReplicaSetUpdated")
            return
        }
        try await finish(p)
    }

    func syncRolling(_ p: inout Plan) async throws {
        guard let n = p.newRS else {
            let current = p.old.reduce(Int64(0)) { $0 + Self.replicas($1) }
            let start = current == 0 ? p.replicas : max(0, min(p.replicas + p.maxSurge - current, p.replicas))
            p.newRS = try await createNewRS(p, replicas: start)
            try await writeStatus(p, reason: "NewReplicaSetCreated")
            return
        }
        // Scale the new ReplicaSet up (within maxSurge) or down to the desired count.
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
        let newUnavailable = (p.newRS.map(Self.replicas) ?? 0) - Int64(p.newRS?.status.availableReplicas ?? 0)
        var maxScaleDown = all - minAvailable - newUnavailable
        if maxScaleDown <= 0 { return false }
        var scaled = false
        // Old replicas that are not available cost nothing to remove.
        let oldest = p.old.indices.sorted { Self.olderFirst(p.old[$0], p.old[$1]) }
        for i in oldest where maxScaleDown > 0 {
            let rs = p.old[i]
            let unhealthy = Self.replicas(rs) - Int64(rs.status.availableReplicas ?? 0)
            if unhealthy <= 0 || Self.replicas(rs) == 0 { continue }
            let down = min(unhealthy, maxScaleDown)
            p.old[i] = try await scale(rs, to: Self.replicas(rs) - down, p)
            maxScaleDown -= down
            scaled = true
        }
        // Then available ones, as far as availability allows.
        let available = p.all.reduce(Int64(0)) { $0 + Int64($1.status.availableReplicas ?? 0) }
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
        if isComplete(p) {
            let limit = Int(p.d.spec.revisionHistoryLimit ?? 10)
            let prunable = p.old.filter { Self.replicas($0) == 0 && $0.status.replicas == 0 }
                .sorted { Self.revision($0) < Self.revision($1) }
            if prunable.count > limit {
                for rs in prunable.prefix(prunable.count - limit) {
                    // A set that is gone already, or changed meanwhile, is looked at again on its event.
                    try? await client.delete(
                        ReplicaSet.self, namespace: rs.metadata.namespace, name: rs.metadata.name ?? "",
                        uid: rs.metadata.uid)
                }
            }
        }
        try await writeStatus(p, reason: nil)
    }

    func isComplete(_ p: Plan) -> Bool {
        guard let n = p.newRS else { return false }
        let total = p.all.reduce(Int64(0)) { $0 + Int64($1.status.replicas) }
        return Self.replicas(n) == p.replicas && Int64(n.status.replicas) == p.replicas
            && Int64(n.status.availableReplicas ?? 0) >= p.replicas && total == p.replicas
            && p.old.allSatisfy { Self.replicas($0) == 0 }
    }

    // MARK: writes

    /// Creates the ReplicaSet for the Deployment's template, named by the template's hash. A name that
    /// is taken by another template (or not by this Deployment) bumps status.collisionCount, which salts
    /// the hash, as upstream does.
    func createNewRS(_ p: Plan, replicas: Int64) async throws -> ReplicaSet {
        let d = p.d
        let maxRevision = p.old.map(Self.revision).max() ?? 0
        var collisions = d.status.collisionCount ?? 0
        for _ in 0..<5 {
            let hash = d.spec.template.podTemplateHash(label: Self.hashLabel, collisionCount: collisions)
            var rs = ReplicaSet()
            rs.metadata.name = "\(d.metadata.name ?? "")-\(hash)"
            rs.metadata.namespace = d.metadata.namespace
            rs.spec.template = d.spec.template
            rs.spec.template.metadata.labels[Self.hashLabel] = hash
            rs.metadata.labels = rs.spec.template.metadata.labels
            var annotations = Self.copiedAnnotations(d)
            annotations[Self.revisionKey] = String(maxRevision + 1)
            annotations[Self.desiredReplicasKey] = String(p.replicas)
            annotations[Self.maxReplicasKey] = String(p.replicas + p.maxSurge)
            rs.metadata.annotations = annotations
            rs.metadata.ownerReferences = [d.controllerOwnerReference]
            var selector = d.spec.selector ?? MetaV1.LabelSelector()
            selector.matchLabels[Self.hashLabel] = hash
            rs.spec.selector = selector
            rs.spec.replicas = Int32(clamping: replicas)
            rs.spec.minReadySeconds = d.spec.minReadySeconds ?? 0
            do {
                let created = try await client.create(rs)
                events.record(
                    d, reason: "ScalingReplicaSet",
                    message: "Scaled up replica set \(created.metadata.name ?? "") from 0 to \(replicas)")
                return created
            } catch let e as APIError where e.reason == "AlreadyExists" {
                // Same name, different template (a hash collision) or not ours: salt the hash.
                if let existing = try await client.get(
                    ReplicaSet.self, namespace: d.metadata.namespace, name: rs.metadata.name ?? ""),
                    existing.controllerRef?.uid == d.metadata.uid, Self.runsTemplate(of: d, existing)
                {
                    return existing
                }
                collisions += 1
                var counted = d
                counted.status.collisionCount = collisions
                _ = try? await client.updateStatus(counted)
            }
        }
        throw APIError(
            code: 409, reason: "Conflict",
            message: "could not find a free ReplicaSet name for deployment \(d.metadata.name ?? "")")
    }

    /// Annotations a Deployment passes on to its ReplicaSets (change-cause and the user's own).
    static func copiedAnnotations(_ d: Deployment) -> [String: String] {
        d.metadata.annotations.filter { key, _ in
            key != "kubectl.kubernetes.io/last-applied-configuration" && !key.hasPrefix("deployment.kubernetes.io/")
        }
    }

    /// Sets a ReplicaSet's replicas (and, when it is the new one, its revision and annotations).
    func scale(_ rs: ReplicaSet, to n: Int64, _ p: Plan) async throws -> ReplicaSet {
        var u = rs
        u.spec.replicas = Int32(clamping: n)
        u.metadata.annotations[Self.desiredReplicasKey] = String(p.replicas)
        u.metadata.annotations[Self.maxReplicasKey] = String(p.replicas + p.maxSurge)
        let out = try await client.update(u)
        let from = Self.replicas(rs)
        if from != n {
            events.record(
                p.d, reason: "ScalingReplicaSet",
                message: "Scaled \(n > from ? "up" : "down") replica set \(rs.metadata.name ?? "") from \(from) to \(n)"
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
        if Self.revision(n) <= maxOld {
            var history = (n.metadata.annotations[Self.revisionHistoryKey] ?? "").split(separator: ",").map(
                String.init)
            history.append(String(Self.revision(n)))
            u.metadata.annotations[Self.revisionHistoryKey] = history.filter { $0 != "0" }.joined(separator: ",")
            u.metadata.annotations[Self.revisionKey] = String(maxOld + 1)
        }
        for (k, v) in Self.copiedAnnotations(p.d) { u.metadata.annotations[k] = v }
        // The new set counts its pods available after the Deployment's minReadySeconds, as it is now
        // (upstream's getNewReplicaSet): a change of it alone starts no new ReplicaSet.
        let minReady = p.d.spec.minReadySeconds ?? 0
        if (n.spec.minReadySeconds ?? 0) != minReady { u.spec.minReadySeconds = minReady }
        if u != n { p.newRS = try await client.update(u) }
    }
}

import BerthKube
import Foundation
import Logging
import Testing

@testable import BerthAPI
@testable import BerthControl

/// The ReplicaSet and Deployment controllers on a ``FakeCluster``, with the test standing in for the
/// kubelet (pods turn ready, terminating pods go, only when the test says). No server, no store, no root.
private struct WorkloadRig {
    let cluster = FakeCluster()
    let context: ControllerContext

    init() {
        let logger = Logger(label: "workload-fake-test")
        let cluster = self.cluster
        context = ControllerContext(
            client: { _ in cluster }, informers: InformerFactory(provider: cluster, logger: logger),
            events: EventRecorder(), logger: logger, config: ControlPlaneConfig())
    }

    /// Runs the informers and `loops` until the returned task is cancelled.
    func start(_ loops: [any ControlLoop]) async -> Task<Void, Never> {
        let (informers, events, cluster) = (context.informers, context.events, self.cluster)
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await informers.run() }
                group.addTask { await events.run(client: cluster) }
                // As ControlPlane.runLeading: loops start once every informer has listed, so a first
                // sync never works from a half-filled cache.
                await informers.waitForSync()
                for loop in loops { group.addTask { await loop.run() } }
            }
        }
        await informers.waitForSync()
        return task
    }

    func sets() -> [AppsV1.ReplicaSet] {
        cluster.objects(AppsV1.ReplicaSet.self).sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
    }

    func deployment(_ name: String = "web") -> AppsV1.Deployment? {
        cluster.object(AppsV1.Deployment.self, namespace: "default", name: name)
    }

    /// Pods whose controller is the ReplicaSet named `set`.
    func pods(of set: String) -> [CoreV1.Pod] {
        cluster.objects(CoreV1.Pod.self).filter { $0.controllerRef?.name == set }
    }

    /// What a kubelet reports once a pod's containers run and pass their readiness probe.
    func markReady(_ pods: [CoreV1.Pod], since: MetaV1.Time = .now()) async throws {
        for pod in pods where !pod.isReady {
            var running = pod
            running.spec.nodeName = running.spec.nodeName ?? "node-1"
            running.status.phase = .running
            running.status.conditions = [CoreV1.PodCondition(type: .ready, status: .true, lastTransitionTime: since)]
            let bound = try await cluster.update(running)
            running.metadata.resourceVersion = bound.metadata.resourceVersion
            _ = try await cluster.updateStatus(running)
        }
    }

    /// What a kubelet does once a terminating pod's containers stopped: the held deletion completes.
    func finishTerminating(_ pods: [CoreV1.Pod]) async throws {
        for pod in pods {
            try await cluster.mergePatch(
                ResourceType.of(CoreV1.Pod.self), namespace: pod.metadata.namespace, name: pod.metadata.name ?? "",
                ["metadata": ["finalizers": .null]], subresource: nil)
        }
    }
}

/// Polls until `condition` holds, failing the test after `seconds`.
private func eventually(_ what: String, seconds: Int = 20, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        if ContinuousClock.now > deadline {
            Issue.record("timed out waiting for \(what)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// Something a test records from informer events, in the order they happened.
private final class Recorded<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func update(_ change: (inout Value) -> Void) { lock.withLock { change(&value) } }
    var current: Value { lock.withLock { value } }
}

private func template(image: String, labels: [String: String] = ["app": "web"]) -> CoreV1.PodTemplateSpec {
    var t = CoreV1.PodTemplateSpec()
    t.metadata.labels = labels
    t.spec.containers = [CoreV1.Container(name: "web", image: image)]
    return t
}

private func replicaSet(_ name: String, replicas: Int32, uid: String = UUID().uuidString.lowercased())
    -> AppsV1.ReplicaSet
{
    var rs = AppsV1.ReplicaSet()
    rs.metadata.name = name
    rs.metadata.namespace = "default"
    rs.metadata.uid = uid
    rs.metadata.generation = 1
    rs.metadata.labels = ["app": "web"]
    rs.spec.replicas = replicas
    rs.spec.selector = MetaV1.LabelSelector(matchLabels: ["app": "web"])
    rs.spec.template = template(image: "web:1")
    return rs
}

private func deployment(
    _ name: String = "web", replicas: Int32, image: String = "web:1",
    strategy: AppsV1.DeploymentStrategy = AppsV1.DeploymentStrategy()
) -> AppsV1.Deployment {
    var d = AppsV1.Deployment()
    d.metadata.name = name
    d.metadata.namespace = "default"
    d.metadata.generation = 1
    d.spec.replicas = replicas
    d.spec.selector = MetaV1.LabelSelector(matchLabels: ["app": "web"])
    d.spec.template = template(image: image)
    d.spec.strategy = strategy
    return d
}

/// A pod the ReplicaSet `owner` controls, in a state the deletion order ranks.
private func ownedPod(
    _ name: String, owner: AppsV1.ReplicaSet, node: String? = "node-1", phase: CoreV1.PodPhase = .running,
    readySince: Int64? = nil, restarts: Int32 = 0, created: Int64
) -> CoreV1.Pod {
    var pod = CoreV1.Pod()
    pod.metadata.name = name
    pod.metadata.namespace = "default"
    pod.metadata.labels = ["app": "web"]
    pod.metadata.ownerReferences = [owner.controllerOwnerReference]
    pod.metadata.creationTimestamp = MetaV1.Time(secondsSince1970: created)
    pod.spec.nodeName = node
    pod.spec.containers = [CoreV1.Container(name: "web", image: "web:1")]
    pod.status.phase = phase
    pod.status.conditions = [
        CoreV1.PodCondition(
            type: .ready, status: readySince == nil ? .false : .true,
            lastTransitionTime: readySince.map(MetaV1.Time.init(secondsSince1970:)))
    ]
    pod.status.containerStatuses = [CoreV1.ContainerStatus(name: "web", restartCount: restarts)]
    return pod
}

@Suite("ReplicaSet and Deployment controllers on a fake cluster")
struct WorkloadControllerFakeTests {
    // MARK: ReplicaSet

    @Test(.timeLimit(.minutes(1)))
    func aReplicaSetCreatesItsPodsFromTheTemplateAndCountsThemInStatus() async throws {
        let rig = WorkloadRig()
        let rs = replicaSet("web-1", replicas: 3)
        rig.cluster.seed(rs)
        let run = await rig.start([ReplicaSetController(rig.context)])
        defer { run.cancel() }
        try await eventually("3 pods and their count in status") {
            rig.pods(of: "web-1").count == 3
                && rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "web-1")?.status.replicas == 3
        }
        let pods = rig.pods(of: "web-1")
        #expect(
            pods.allSatisfy { $0.metadata.generateName == "web-1-" && $0.metadata.name?.hasPrefix("web-1-") == true })
        #expect(pods.allSatisfy { $0.metadata.labels == ["app": "web"] && $0.spec.containers.first?.image == "web:1" })
        #expect(pods.allSatisfy { $0.controllerRef?.uid == rs.metadata.uid && $0.controllerRef?.kind == "ReplicaSet" })
        var status = try #require(rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "web-1"))
            .status
        #expect(status.fullyLabeledReplicas == 3 && status.readyReplicas == 0 && status.availableReplicas == 0)
        #expect(status.observedGeneration == 1 && status.conditions.isEmpty)

        // Two turn ready: ready and available (no minReadySeconds) count them; no pod is made or removed.
        rig.cluster.clearActions()
        try await rig.markReady(Array(pods.prefix(2)))
        try await eventually("2 ready in status") {
            rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "web-1")?.status.availableReplicas
                == 2
        }
        status = try #require(rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "web-1")).status
        #expect(status.replicas == 3 && status.readyReplicas == 2)
        #expect(!rig.cluster.actions.contains { $0.resource == "pods" && ($0.verb == "create" || $0.verb == "delete") })
        try await eventually("the SuccessfulCreate event") {
            rig.cluster.events.contains { $0["reason"].string == "SuccessfulCreate" }
        }
        let created = rig.cluster.events.filter { $0["reason"].string == "SuccessfulCreate" }
        #expect(created.map { $0["message"].string } == ["Created 3 pods"])
        #expect(created.first?["involvedObject"]["kind"].string == "ReplicaSet")
        #expect(created.first?["involvedObject"]["name"].string == "web-1")
    }

    /// Upstream's ActivePods order: unscheduled, pending before running, not ready, ready for less
    /// time, more restarts, newer.
    @Test func surplusPodsAreRankedAsUpstreamRanksThem() {
        let rs = replicaSet("web-1", replicas: 1)
        let ranked = [
            ownedPod("unscheduled", owner: rs, node: nil, phase: .pending, created: 10),
            ownedPod("pending", owner: rs, phase: .pending, created: 10),
            ownedPod("unknown", owner: rs, phase: .unknown, created: 10),
            ownedPod("not-ready", owner: rs, created: 10),
            ownedPod("ready-lately", owner: rs, readySince: 500, created: 10),
            ownedPod("restarted", owner: rs, readySince: 100, restarts: 3, created: 10),
            ownedPod("newer", owner: rs, readySince: 100, created: 20),
            ownedPod("oldest", owner: rs, readySince: 100, created: 10),
        ]
        for order in [ranked.reversed(), ranked.shuffled(), ranked] {
            #expect(ReplicaSetController.rank(Array(order)).map(\.metadata.name) == ranked.map(\.metadata.name))
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func scalingDownDeletesTheLeastUsefulPodsFirst() async throws {
        let rig = WorkloadRig()
        var rs = replicaSet("web-1", replicas: 5)
        rig.cluster.seed(rs)
        rig.cluster.seed(
            ownedPod("ready-a", owner: rs, readySince: 100, created: 10),
            ownedPod("ready-b", owner: rs, readySince: 100, created: 11),
            ownedPod("ready-lately", owner: rs, readySince: 900, created: 12),
            ownedPod("not-ready", owner: rs, created: 13),
            ownedPod("unscheduled", owner: rs, node: nil, phase: .pending, created: 14))
        let run = await rig.start([ReplicaSetController(rig.context)])
        defer { run.cancel() }
        try await eventually("the status of 5 pods, 3 of them ready") {
            rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "web-1")?.status.readyReplicas == 3
        }
        #expect(!rig.cluster.actions.contains { $0.resource == "pods" })

        rs = try #require(rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "web-1"))
        rs.spec.replicas = 2
        _ = try await rig.cluster.update(rs)
        try await eventually("3 pods deleted") { rig.pods(of: "web-1").count == 2 }
        #expect(Set(rig.pods(of: "web-1").compactMap(\.metadata.name)) == ["ready-a", "ready-b"])
        let deletes = rig.cluster.actions.filter { $0.resource == "pods" && $0.verb == "delete" }
        #expect(Set(deletes.map(\.name)) == ["unscheduled", "not-ready", "ready-lately"] && deletes.count == 3)
        try await eventually("replicas 2 in status") {
            rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "web-1")?.status.replicas == 2
        }
        try await eventually("the SuccessfulDelete event") {
            rig.cluster.events.contains {
                $0["reason"].string == "SuccessfulDelete" && $0["message"].string?.hasPrefix("Deleted pod: ") == true
            }
        }
    }

    // MARK: Deployment

    /// The first ReplicaSet of a Deployment: named by the pinned hash, revision 1, the hash label in its
    /// selector and template, owned by the Deployment; then the status once every pod is ready.
    @Test(.timeLimit(.minutes(1)))
    func aDeploymentRollsOutItsFirstReplicaSetAndReportsItComplete() async throws {
        let rig = WorkloadRig()
        var d = try AppsV1.Deployment(kubeJSON: PinnedHashes.storedDeployment(PinnedHashes.webTemplate))
        d.metadata.uid = "d-uid"
        d.metadata.generation = 1
        d.metadata.annotations = ["kubernetes.io/change-cause": "first"]
        d.spec.replicas = 6
        d.spec.progressDeadlineSeconds = nil
        rig.cluster.seed(d)
        let run = await rig.start([ReplicaSetController(rig.context), DeploymentController(rig.context)])
        defer { run.cancel() }
        let name = "web-" + PinnedHashes.web
        try await eventually("6 pods of \(name)") { rig.pods(of: name).count == 6 }

        let rs = try #require(rig.sets().first)
        #expect(rig.sets().count == 1 && rs.metadata.name == name)
        #expect(rs.metadata.labels == ["app": "web", "pod-template-hash": PinnedHashes.web])
        #expect(rs.spec.selector?.matchLabels == ["app": "web", "pod-template-hash": PinnedHashes.web])
        #expect(rs.spec.template.metadata.labels["pod-template-hash"] == PinnedHashes.web)
        #expect(rs.controllerRef?.uid == "d-uid" && rs.controllerRef?.kind == "Deployment")
        #expect(rs.spec.replicas == 6 && rs.spec.minReadySeconds == 0)
        #expect(
            rs.metadata.annotations == [
                DeploymentController.revisionKey: "1", "kubernetes.io/change-cause": "first",
                DeploymentController.desiredReplicasKey: "6", DeploymentController.maxReplicasKey: "8",
            ])

        try await rig.markReady(rig.pods(of: name))
        try await eventually("the Deployment complete") {
            rig.deployment()?.status.conditions.first { $0.type == .progressing }?.reason == "NewReplicaSetAvailable"
        }
        let done = try #require(rig.deployment())
        #expect(done.metadata.annotations[DeploymentController.revisionKey] == "1")
        #expect(done.status.observedGeneration == 1)
        #expect(done.status.replicas == 6 && done.status.updatedReplicas == 6)
        #expect(done.status.readyReplicas == 6 && done.status.availableReplicas == 6)
        #expect(done.status.unavailableReplicas == nil)
        let available = try #require(done.status.conditions.first { $0.type == .available })
        #expect(available.status == .true && available.reason == "MinimumReplicasAvailable")
        #expect(
            done.status.conditions.first { $0.type == .progressing }?.message
                == "ReplicaSet \"\(name)\" has successfully progressed.")
        try await eventually("the ScalingReplicaSet event") {
            rig.cluster.events.contains {
                $0["reason"].string == "ScalingReplicaSet"
                    && $0["message"].string == "Scaled up replica set \(name) from 0 to 6"
            }
        }
    }

    /// RollingUpdate with maxSurge 1 and maxUnavailable 1 over 4 replicas: never more than 5 pods
    /// wanted, never fewer than 3 ready; the new set grows only as its pods turn ready. A second
    /// template is revision 2; going back to the first re-uses its ReplicaSet as revision 3.
    @Test(.timeLimit(.minutes(1)))
    func aRollingUpdateStaysWithinSurgeAndUnavailabilityAndRevisionsCount() async throws {
        let rig = WorkloadRig()
        var strategy = AppsV1.DeploymentStrategy()
        strategy.type = .rollingUpdateDeploymentStrategyType
        strategy.rollingUpdate = AppsV1.RollingUpdateDeployment(maxUnavailable: 1, maxSurge: 1)
        rig.cluster.seed(deployment(replicas: 4, strategy: strategy))
        // Every change of a ReplicaSet's replicas, in order: the sum wanted after each.
        let wanted = Recorded<(current: [String: Int32], peak: Int32)>(([:], 0))
        let sets = rig.context.informers.informer(AppsV1.ReplicaSet.self)
        sets.onChange { e in
            wanted.update { w in
                if case .deleted = e {
                    w.current[e.object.metadata.name ?? ""] = nil
                } else {
                    w.current[e.object.metadata.name ?? ""] = e.object.spec.replicas ?? 0
                }
                w.peak = max(w.peak, w.current.values.reduce(0, +))
            }
        }
        // Ready, live pods after every pod change, lowest seen once the first rollout is done.
        let ready = Recorded<(ready: Set<String>, low: Int?)>(([], nil))
        rig.context.informers.informer(CoreV1.Pod.self).onChange { e in
            ready.update { r in
                let pod = e.object
                if case .deleted = e {
                    r.ready.remove(pod.cacheKey)
                } else if pod.isReady && !pod.isTerminating {
                    r.ready.insert(pod.cacheKey)
                } else {
                    r.ready.remove(pod.cacheKey)
                }
                if let low = r.low { r.low = min(low, r.ready.count) }
            }
        }
        let run = await rig.start([ReplicaSetController(rig.context), DeploymentController(rig.context)])
        defer { run.cancel() }

        let v1 = try #require(await firstSet(rig))
        try await eventually("4 pods of v1") { rig.pods(of: v1).count == 4 }
        try await rig.markReady(rig.pods(of: v1))
        try await eventually("v1 rolled out") { rig.deployment()?.status.availableReplicas == 4 }
        ready.update { $0.low = $0.ready.count }
        wanted.update { $0.peak = 0 }

        var d = try #require(rig.deployment())
        d.spec.template = template(image: "web:2")
        _ = try await rig.cluster.update(d)
        // Without ready new pods: the new set gets the surge and the unavailable one, no more.
        try await eventually("new 2, old 3") {
            let s = rig.sets()
            return s.count == 2 && s.first { $0.metadata.name != v1 }?.spec.replicas == 2
                && s.first { $0.metadata.name == v1 }?.spec.replicas == 3
        }
        let v2 = try #require(rig.sets().first { $0.metadata.name != v1 }?.metadata.name)
        try await eventually("2 pods of v2") { rig.pods(of: v2).count == 2 }
        try await rig.markReady(rig.pods(of: v2))
        try await eventually("new 4, old 1") {
            rig.sets().map { $0.spec.replicas } == (v1 < v2 ? [1, 4] : [4, 1])
        }
        try await eventually("4 pods of v2") { rig.pods(of: v2).count == 4 }
        try await rig.markReady(rig.pods(of: v2))
        try await eventually("v2 complete") {
            rig.deployment()?.status.conditions.first { $0.type == .progressing }?.reason == "NewReplicaSetAvailable"
        }
        #expect(rig.pods(of: v1).isEmpty && rig.pods(of: v2).count == 4)
        #expect(wanted.current.peak == 5, "at most replicas + maxSurge wanted at once")
        #expect(ready.current.low == 3, "at least replicas - maxUnavailable ready throughout")
        let revisions = Dictionary(
            uniqueKeysWithValues: rig.sets().map {
                ($0.metadata.name ?? "", $0.metadata.annotations[DeploymentController.revisionKey])
            })
        #expect(revisions == [v1: "1", v2: "2"])
        #expect(rig.deployment()?.metadata.annotations[DeploymentController.revisionKey] == "2")
        #expect(rig.deployment()?.status.updatedReplicas == 4 && rig.deployment()?.status.replicas == 4)

        // Back to the first template (kubectl rollout undo): its ReplicaSet comes back as revision 3.
        d = try #require(rig.deployment())
        d.spec.template = template(image: "web:1")
        _ = try await rig.cluster.update(d)
        try await eventually("v1 again at revision 3") {
            rig.sets().first { $0.metadata.name == v1 }?.metadata.annotations[DeploymentController.revisionKey]
                == "3"
        }
        let back = try #require(rig.sets().first { $0.metadata.name == v1 })
        #expect(back.metadata.annotations[DeploymentController.revisionHistoryKey] == "1")
        #expect(rig.sets().count == 2, "no third ReplicaSet for a template seen before")
        try await eventually("the Deployment at revision 3") {
            rig.deployment()?.metadata.annotations[DeploymentController.revisionKey] == "3"
        }
    }

    /// Recreate: every old pod is gone before the first new one is made. The old pods hold a finalizer,
    /// so they linger terminating until the test (the kubelet) lets them go; only the deletion of the
    /// last one can tell the Deployment to go on.
    @Test(.timeLimit(.minutes(1)))
    func recreateStartsNewPodsOnlyOnceTheLastOldPodIsGone() async throws {
        let rig = WorkloadRig()
        var strategy = AppsV1.DeploymentStrategy()
        strategy.type = .recreateDeploymentStrategyType
        var d = deployment(replicas: 3, strategy: strategy)
        d.spec.template.metadata.finalizers = ["test.berth.dev/kubelet"]
        rig.cluster.seed(d)
        // Whether a new pod ever existed beside an old one, from pod events in order.
        let overlap = Recorded<(live: [String: String], mixed: Bool)>(([:], false))
        rig.context.informers.informer(CoreV1.Pod.self).onChange { e in
            overlap.update { o in
                let pod = e.object
                if case .deleted = e {
                    o.live[pod.cacheKey] = nil
                } else {
                    o.live[pod.cacheKey] = pod.spec.containers.first?.image ?? ""
                }
                if Set(o.live.values).count > 1 { o.mixed = true }
            }
        }
        let run = await rig.start([ReplicaSetController(rig.context), DeploymentController(rig.context)])
        defer { run.cancel() }
        let v1 = try #require(await firstSet(rig))
        try await eventually("3 pods of v1") { rig.pods(of: v1).count == 3 }
        try await rig.markReady(rig.pods(of: v1))
        try await eventually("v1 available") { rig.deployment()?.status.availableReplicas == 3 }

        d = try #require(rig.deployment())
        d.spec.template = template(image: "web:2")
        d.spec.template.metadata.finalizers = ["test.berth.dev/kubelet"]
        _ = try await rig.cluster.update(d)
        // The old set is scaled to 0, its pods terminate and stop counting; the Deployment has looked
        // again since (its status says no replicas) and waits.
        try await eventually("old pods terminating and the Deployment waiting") {
            rig.pods(of: v1).count == 3 && rig.pods(of: v1).allSatisfy(\.isTerminating)
                && rig.deployment()?.status.replicas == nil
        }
        #expect(rig.sets().map(\.metadata.name) == [v1], "no new ReplicaSet while old pods remain")
        try await rig.finishTerminating(Array(rig.pods(of: v1).prefix(2)))
        try await eventually("two old pods gone") { rig.pods(of: v1).count == 1 }
        #expect(rig.sets().count == 1)

        try await rig.finishTerminating(rig.pods(of: v1))
        try await eventually("3 new pods") {
            rig.sets().count == 2 && rig.cluster.objects(CoreV1.Pod.self).count == 3
                && rig.cluster.objects(CoreV1.Pod.self).allSatisfy { $0.spec.containers.first?.image == "web:2" }
        }
        #expect(!overlap.current.mixed, "old and new pods never existed together")
        let v2 = try #require(rig.sets().first { $0.metadata.name != v1 })
        #expect(v2.spec.replicas == 3 && v2.metadata.annotations[DeploymentController.revisionKey] == "2")
    }

    /// An orphaned ReplicaSet (its Deployment deleted with --cascade=orphan) whose labels a Deployment
    /// selects becomes that Deployment's old set and is scaled down; one in another namespace, one with
    /// labels it does not select and one another controller owns are left alone.
    @Test(.timeLimit(.minutes(1)))
    func aDeploymentAdoptsOrphanedReplicaSetsItSelectsAndNoOthers() async throws {
        let rig = WorkloadRig()
        let orphan = replicaSet("orphan", replicas: 2)
        var elsewhere = replicaSet("elsewhere", replicas: 1)
        elsewhere.metadata.namespace = "other"
        var unselected = replicaSet("unselected", replicas: 1)
        unselected.metadata.labels = ["app": "db"]
        var owned = replicaSet("owned", replicas: 1)
        owned.metadata.ownerReferences = [
            MetaV1.OwnerReference(apiVersion: "apps/v1", kind: "Deployment", name: "x", uid: "x-uid", controller: true)
        ]
        rig.cluster.seed(orphan, elsewhere, unselected, owned)
        var recreate = AppsV1.DeploymentStrategy()
        recreate.type = .recreateDeploymentStrategyType
        var d = deployment(replicas: 2, image: "web:2", strategy: recreate)
        d.metadata.uid = "d-uid"
        rig.cluster.seed(d)
        let run = await rig.start([DeploymentController(rig.context)])
        defer { run.cancel() }
        try await eventually("the orphan adopted") {
            rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "orphan")?.controllerRef?.uid
                == "d-uid"
        }
        try await eventually("the Adopted event") {
            rig.cluster.events.contains {
                $0["reason"].string == "Adopted" && $0["message"].string == "Adopted ReplicaSet orphan"
            }
        }
        // Adopted as an old set: Recreate scales it to 0 and starts a new one for the Deployment's template.
        try await eventually("the orphan scaled to 0 and a new set") {
            rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "orphan")?.spec.replicas == 0
                && rig.sets().contains { $0.spec.template.spec.containers.first?.image == "web:2" }
        }
        #expect(rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "other", name: "elsewhere")?.controllerRef == nil)
        #expect(
            rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "unselected")?.controllerRef == nil)
        #expect(
            rig.cluster.object(AppsV1.ReplicaSet.self, namespace: "default", name: "owned")?.controllerRef?.uid
                == "x-uid")
        #expect(
            rig.cluster.actions.filter {
                $0.resource == "replicasets" && $0.verb == "update" && $0.name != "orphan" && !$0.name.hasPrefix("web-")
            }.isEmpty)
    }

    /// Percentages: maxSurge rounds up, maxUnavailable down; both zero would stall, so one is unavailable.
    @Test func maxSurgeRoundsUpAndMaxUnavailableDown() async throws {
        let rig = WorkloadRig()
        let controller = DeploymentController(rig.context)
        var strategy = AppsV1.DeploymentStrategy()
        strategy.rollingUpdate = AppsV1.RollingUpdateDeployment(maxUnavailable: "25%", maxSurge: "25%")
        var p = controller.plan(deployment(replicas: 10, strategy: strategy))
        #expect(p.maxSurge == 3 && p.maxUnavailable == 2)
        p = controller.plan(deployment(replicas: 10))
        #expect(p.maxSurge == 3 && p.maxUnavailable == 2, "25% each when unset")
        strategy.rollingUpdate = AppsV1.RollingUpdateDeployment(maxUnavailable: 0, maxSurge: "10%")
        p = controller.plan(deployment(replicas: 3, strategy: strategy))
        #expect(p.maxSurge == 1 && p.maxUnavailable == 0)
        strategy.rollingUpdate = AppsV1.RollingUpdateDeployment(maxUnavailable: 0, maxSurge: 0)
        p = controller.plan(deployment(replicas: 3, strategy: strategy))
        #expect(p.maxSurge == 0 && p.maxUnavailable == 1)
        strategy.type = .recreateDeploymentStrategyType
        p = controller.plan(deployment(replicas: 3, strategy: strategy))
        #expect(p.maxSurge == 0 && p.maxUnavailable == 0)
    }

    // MARK: pinned hashes

    /// The pod-template-hash names a Deployment's ReplicaSets: the typed template must give exactly what
    /// the stored JSON gave the controller before, or an upgraded controller would start a new
    /// ReplicaSet (and roll every pod) for an unchanged template. The values were computed by the JSON
    /// controller (before it read typed objects) from these templates as the API server stores them.
    @Test func theTemplateHashIsTheOneTheStoredJSONGave() throws {
        for (sent, pinned) in [
            (PinnedHashes.webTemplate, PinnedHashes.web), (PinnedHashes.apiTemplate, PinnedHashes.api),
        ] {
            let stored = try PinnedHashes.storedDeployment(sent)
            #expect(PinnedHashes.legacyHash(stored["spec"]["template"], salt: 0) == pinned)
            let typed = try AppsV1.Deployment(kubeJSON: stored)
            #expect(
                typed.spec.template.podTemplateHash(label: DeploymentController.hashLabel, collisionCount: nil)
                    == pinned)
            #expect(
                typed.spec.template.podTemplateHash(label: DeploymentController.hashLabel, collisionCount: 0) == pinned)
            // The hash label a ReplicaSet's template carries is not part of it.
            var labelled = typed.spec.template
            labelled.metadata.labels[DeploymentController.hashLabel] = pinned
            #expect(labelled.podTemplateHash(label: DeploymentController.hashLabel, collisionCount: nil) == pinned)
        }
        // A collision count salts it, as before.
        let stored = try PinnedHashes.storedDeployment(PinnedHashes.webTemplate)
        let typed = try AppsV1.Deployment(kubeJSON: stored)
        #expect(PinnedHashes.legacyHash(stored["spec"]["template"], salt: 2) == PinnedHashes.webSalted2)
        #expect(
            typed.spec.template.podTemplateHash(label: DeploymentController.hashLabel, collisionCount: 2)
                == PinnedHashes.webSalted2)
    }
}

/// The first ReplicaSet to appear, once one does.
private func firstSet(_ rig: WorkloadRig) async throws -> String? {
    try await eventually("a ReplicaSet") { !rig.sets().isEmpty }
    return rig.sets().first?.metadata.name
}

/// Templates as clients send them, and the hashes the JSON-tree controller gave them.
private enum PinnedHashes {
    // Moved once, when the API server began to store kube-apiserver's remaining pod-spec defaults
    // (enableServiceLinks, probe timings …): a stored Deployment keeps its hash until its spec is next
    // written, and upstream's templates carry those defaults too.
    static let web = "d8wd9bd"
    static let api = "bvsbfwf"
    static let webSalted2 = "nskwfgm"

    /// RolloutTests' web Deployment, as kubectl apply sends it.
    static let webTemplate = #"""
        {"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"registry.local/web:1",
         "resources":{"requests":{"cpu":"100m","memory":"64Mi"}}}]}}
        """#

    /// A fuller template, as client-go sends it (an unset creationTimestamp as null).
    static let apiTemplate = #"""
        {"metadata":{"creationTimestamp":null,"labels":{"app":"api","tier":"backend"},"annotations":{"prometheus.io/scrape":"true"}},
         "spec":{"serviceAccountName":"api","terminationGracePeriodSeconds":10,"nodeSelector":{"kubernetes.io/os":"linux"},
          "tolerations":[{"key":"dedicated","operator":"Equal","value":"api","effect":"NoSchedule"}],
          "initContainers":[{"name":"migrate","image":"example.com/api:2.1","command":["/bin/migrate","--up"],"resources":{}}],
          "containers":[{"name":"api","image":"example.com/api:2.1","args":["--port=8080","--log=json"],
            "env":[{"name":"POD_IP","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}},{"name":"MODE","value":"prod"}],
            "ports":[{"name":"http","containerPort":8080}],
            "resources":{"limits":{"cpu":"1","memory":"256Mi"},"requests":{"cpu":"250m","memory":"128Mi"}},
            "readinessProbe":{"httpGet":{"path":"/ready","port":"http"},"initialDelaySeconds":2,"periodSeconds":5},
            "livenessProbe":{"tcpSocket":{"port":8080},"failureThreshold":3},
            "volumeMounts":[{"name":"config","mountPath":"/etc/api","readOnly":true},{"name":"scratch","mountPath":"/tmp"}]}],
          "volumes":[{"name":"config","configMap":{"name":"api-config"}},{"name":"scratch","emptyDir":{}}]}}
        """#

    /// A Deployment named web over `template`, as the API server's defaulting stores it.
    static func storedDeployment(_ template: String) throws -> JSON {
        let labels = try JSON.parse(template)["metadata"]["labels"]
        var d: JSON = [
            "metadata": ["name": "web", "namespace": "default"],
            "spec": ["selector": ["matchLabels": labels], "template": try JSON.parse(template)],
        ]
        DeploymentStrategy().applyDefaults(&d, creating: true)
        return d
    }

    /// How the JSON-tree controller hashed a stored template: the hash label, an empty label map, the
    /// creationTimestamp and an empty metadata removed, then FNV-1a over the sorted-key JSON, salted.
    static func legacyHash(_ template: JSON, salt: Int64) -> String {
        var t = template
        t["metadata"]["labels"][DeploymentController.hashLabel] = .null
        if t["metadata"]["labels"].object?.isEmpty == true { t["metadata"]["labels"] = .null }
        t["metadata"]["creationTimestamp"] = .null
        if t["metadata"].object?.isEmpty == true { t["metadata"] = .null }
        return Objects.shortHash(t.serialized(), salt: salt)
    }
}

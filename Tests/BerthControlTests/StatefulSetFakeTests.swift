import BerthKube
import Foundation
import Logging
import Testing

@testable import BerthAPI
@testable import BerthControl

/// The StatefulSet controller (and the DaemonSet controller's revisions) on a ``FakeCluster``: adoption,
/// release and repair of pods, minReadySeconds, claims, revision collisions, with the test standing in
/// for the kubelet. No server, no store, no root.
@Suite("StatefulSet controller on a fake cluster")
struct StatefulSetFakeTests {
    let plane = FakeControlPlane(label: "statefulset-fake-test")
    var cluster: FakeCluster { plane.cluster }
    var context: ControllerContext { plane.context }

    func start(_ make: (ControllerContext) -> any ControlLoop = StatefulSetController.init) async -> Task<Void, Never> {
        await plane.start(make)
    }

    func eventually(_ what: String, _ condition: () -> Bool) async throws {
        try await plane.eventually(what, condition)
    }

    static func set() -> AppsV1.StatefulSet {
        var set = AppsV1.StatefulSet()
        set.metadata.name = "web"
        set.metadata.namespace = "default"
        set.metadata.uid = UUID().uuidString.lowercased()
        set.metadata.generation = 1
        set.spec.replicas = 2
        set.spec.podManagementPolicy = .parallelPodManagement
        set.spec.selector = MetaV1.LabelSelector(matchLabels: ["app": "web"])
        set.spec.template.metadata.labels = ["app": "web"]
        set.spec.template.spec.containers = [CoreV1.Container(name: "web", image: "web:1")]
        set.spec.updateStrategy = AppsV1.StatefulSetUpdateStrategy(type: .onDeleteStatefulSetStrategyType)
        return set
    }

    static func pod(_ name: String, labels: [String: String], owner: AppsV1.StatefulSet? = nil) -> CoreV1.Pod {
        var pod = CoreV1.Pod()
        pod.metadata.name = name
        pod.metadata.namespace = "default"
        pod.metadata.uid = UUID().uuidString.lowercased()
        pod.metadata.labels = labels
        if let owner { pod.metadata.ownerReferences = [owner.controllerOwnerReference] }
        pod.spec.containers = [CoreV1.Container(name: "web", image: "web:1")]
        return pod
    }

    @Test(.timeLimit(.minutes(1)))
    func orphansNamedAsMembersAreAdoptedAndPodsNoLongerSelectedAreReleased() async throws {
        let set = Self.set()
        cluster.seed(set)
        // web-0: an orphan member. web-1: ours, but relabelled out of the selector. web-x and other-0:
        // orphans whose names are not the set's.
        cluster.seed(
            Self.pod("web-0", labels: ["app": "web"]), Self.pod("web-1", labels: ["app": "gone"], owner: set),
            Self.pod("web-x", labels: ["app": "web"]), Self.pod("other-0", labels: ["app": "web"]))
        let run = await start()
        defer { run.cancel() }
        try await eventually("web-0 adopted and web-1 released") {
            cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-0")?.controllerRef?.uid == set.metadata.uid
                && cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-1")?.controllerRef == nil
        }
        // web-1 was released, so a new web-1 cannot be made under that name until it goes: the set counts
        // only web-0, and the other orphans keep no owner.
        #expect(cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-x")?.controllerRef == nil)
        #expect(cluster.object(CoreV1.Pod.self, namespace: "default", name: "other-0")?.controllerRef == nil)
        try await eventually("status counting the adopted pod") {
            cluster.object(AppsV1.StatefulSet.self, namespace: "default", name: "web")?.status.replicas == 1
        }
        let status = try #require(cluster.object(AppsV1.StatefulSet.self, namespace: "default", name: "web")).status
        #expect(status.observedGeneration == 1 && status.updateRevision?.hasPrefix("web-") == true)
        // The revision the status names exists, owned by the set, numbered 1.
        let revision = try #require(
            cluster.object(AppsV1.ControllerRevision.self, namespace: "default", name: status.updateRevision ?? ""))
        #expect(revision.revision == 1 && revision.controllerRef?.uid == set.metadata.uid)
        #expect(revision.metadata.labels["app"] == "web")
        #expect(revision.metadata.labels["controller-revision-hash"].map { "web-" + $0 } == status.updateRevision)
    }

    @Test(.timeLimit(.minutes(1)))
    func aMemberThatLostItsIdentityLabelsGetsThemBack() async throws {
        let set = Self.set()
        cluster.seed(set)
        var pod = Self.pod("web-1", labels: ["app": "web", "statefulset.kubernetes.io/pod-name": "web-9"], owner: set)
        pod.spec.hostname = "web-1"
        cluster.seed(pod)
        let run = await start()
        defer { run.cancel() }
        try await eventually("web-1's identity labels restored") {
            let labels = cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-1")?.metadata.labels ?? [:]
            return labels["statefulset.kubernetes.io/pod-name"] == "web-1"
                && labels["apps.kubernetes.io/pod-index"] == "1"
        }
        // The missing member is made with its identity from the start.
        try await eventually("web-0 created") {
            cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-0") != nil
        }
        let created = try #require(cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-0"))
        #expect(created.metadata.labels["statefulset.kubernetes.io/pod-name"] == "web-0")
        #expect(created.metadata.labels["apps.kubernetes.io/pod-index"] == "0")
        #expect(created.spec.hostname == "web-0" && created.spec.subdomain == nil)
        #expect(created.controllerRef?.uid == set.metadata.uid)
    }

    /// What a kubelet reports once a pod runs and passes its readiness probe, ready since `since`.
    func markReady(_ name: String, since: MetaV1.Time) async throws {
        var pod = try #require(cluster.object(CoreV1.Pod.self, namespace: "default", name: name))
        pod.status.phase = .running
        pod.status.conditions = [CoreV1.PodCondition(type: .ready, status: .true, lastTransitionTime: since)]
        _ = try await cluster.updateStatus(pod)
    }

    @Test(.timeLimit(.minutes(1)))
    func orderedReadyWaitsForMinReadySecondsBeforeTheNextPod() async throws {
        var set = Self.set()
        set.spec.podManagementPolicy = .orderedReadyPodManagement
        set.spec.minReadySeconds = 600
        cluster.seed(set)
        let run = await start()
        defer { run.cancel() }
        try await eventually("web-0 created") {
            cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-0") != nil
        }
        try await markReady("web-0", since: .now())
        // A sync has seen web-0 ready (status counts it), not yet available: web-1 waits.
        try await eventually("web-0 counted ready") {
            cluster.object(AppsV1.StatefulSet.self, namespace: "default", name: "web")?.status.readyReplicas == 1
        }
        let status = try #require(cluster.object(AppsV1.StatefulSet.self, namespace: "default", name: "web")).status
        #expect(status.availableReplicas == 0)
        #expect(cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-1") == nil)
        // Ready for longer than minReadySeconds: available, and web-1 follows.
        try await markReady("web-0", since: MetaV1.Time(secondsSince1970: Int64(Date().timeIntervalSince1970) - 700))
        try await eventually("web-1 created") {
            cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-1") != nil
        }
        try await eventually("web-0 counted available") {
            cluster.object(AppsV1.StatefulSet.self, namespace: "default", name: "web")?.status.availableReplicas == 1
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aPendingPodsDeletedClaimIsMadeAgain() async throws {
        var set = Self.set()
        var template = CoreV1.PersistentVolumeClaim()
        template.metadata.name = "www"
        template.spec.accessModes = [.readWriteOnce]
        set.spec.volumeClaimTemplates = [template]
        set.spec.replicas = 1
        cluster.seed(set)
        let run = await start()
        defer { run.cancel() }
        try await eventually("claim and pod") {
            cluster.object(CoreV1.PersistentVolumeClaim.self, namespace: "default", name: "www-web-0") != nil
                && cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-0") != nil
        }
        let pod = try #require(cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-0"))
        #expect(pod.spec.volumes.first { $0.name == "www" }?.persistentVolumeClaim?.claimName == "www-web-0")
        let claim = try #require(
            cluster.object(CoreV1.PersistentVolumeClaim.self, namespace: "default", name: "www-web-0"))
        #expect(claim.metadata.labels["app"] == "web" && claim.metadata.ownerReferences.isEmpty)
        var pending = pod
        pending.status.phase = .pending
        _ = try await cluster.updateStatus(pending)
        try await cluster.delete(CoreV1.PersistentVolumeClaim.self, namespace: "default", name: "www-web-0")
        try await eventually("www-web-0 made again") {
            cluster.object(CoreV1.PersistentVolumeClaim.self, namespace: "default", name: "www-web-0") != nil
        }
    }

    /// A revision of the DaemonSet's name that is someone else's: the collision count goes up and the
    /// revision is made under the salted hash (upstream's collision handling).
    @Test(.timeLimit(.minutes(1)))
    func aDaemonSetRevisionNameTakenBySomeoneElseBumpsTheCollisionCount() async throws {
        var ds = AppsV1.DaemonSet()
        ds.metadata.name = "agent"
        ds.metadata.namespace = "default"
        ds.metadata.uid = UUID().uuidString.lowercased()
        ds.spec.selector = MetaV1.LabelSelector(matchLabels: ["app": "agent"])
        ds.spec.template.metadata.labels = ["app": "agent"]
        ds.spec.template.spec.containers = [CoreV1.Container(name: "agent", image: "busybox:1")]
        cluster.seed(ds)
        let first = DaemonSetController.templateHash(ds)
        var squatter = AppsV1.ControllerRevision()
        squatter.metadata.name = "agent-" + first
        squatter.metadata.namespace = "default"
        squatter.metadata.ownerReferences = [
            MetaV1.OwnerReference(
                apiVersion: "apps/v1", kind: "DaemonSet", name: "other", uid: "other", controller: true)
        ]
        squatter.data = RawExtension(["other": "data"])
        squatter.revision = 7
        cluster.seed(squatter)
        let run = await start(DaemonSetController.init)
        defer { run.cancel() }
        try await eventually("collisionCount 1") {
            cluster.object(AppsV1.DaemonSet.self, namespace: "default", name: "agent")?.status.collisionCount == 1
        }
        let bumped = try #require(cluster.object(AppsV1.DaemonSet.self, namespace: "default", name: "agent"))
        let second = DaemonSetController.templateHash(bumped)
        #expect(second != first)
        try await eventually("the revision under the salted hash") {
            cluster.object(AppsV1.ControllerRevision.self, namespace: "default", name: "agent-" + second) != nil
        }
        let revision = try #require(
            cluster.object(AppsV1.ControllerRevision.self, namespace: "default", name: "agent-" + second))
        #expect(revision.revision == 1 && revision.controllerRef?.uid == ds.metadata.uid)
        // The other's revision is left alone.
        #expect(
            cluster.object(AppsV1.ControllerRevision.self, namespace: "default", name: "agent-" + first)?.revision == 7)
    }

    @Test(.timeLimit(.minutes(1)))
    func aStatefulSetRevisionNameTakenBySomeoneElseBumpsTheCollisionCount() async throws {
        let set = Self.set()
        cluster.seed(set)
        let data = ControllerHistory.patch(set.spec.template)
        let first = "web-" + ControllerHistory.hash(data, collisionCount: nil)
        var squatter = AppsV1.ControllerRevision()
        squatter.metadata.name = first
        squatter.metadata.namespace = "default"
        squatter.data = RawExtension(["other": "data"])
        cluster.seed(squatter)
        let run = await start()
        defer { run.cancel() }
        let second = "web-" + ControllerHistory.hash(data, collisionCount: 1)
        try await eventually("the update revision under the salted hash") {
            let status = cluster.object(AppsV1.StatefulSet.self, namespace: "default", name: "web")?.status
            return status?.collisionCount == 1 && status?.updateRevision == second
        }
        #expect(cluster.object(AppsV1.ControllerRevision.self, namespace: "default", name: second)?.revision == 1)
        let pod = try #require(cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-0"))
        #expect(pod.metadata.labels["controller-revision-hash"] == second)
    }
}

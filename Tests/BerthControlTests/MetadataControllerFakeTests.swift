import BerthKube
import Foundation
import Logging
import Testing

@testable import BerthAPI
@testable import BerthControl

/// Controllers running against a ``FakeCluster``: informers synced, loops running until the test
/// ends. Tests wait on the cluster's own change feed (`waitUntil`), never on a clock.
private struct MetadataRig {
    let cluster = FakeCluster()
    let context: ControllerContext

    init(facts: ServerFacts = ServerFacts()) {
        let logger = Logger(label: "metadata-controller-test")
        let cluster = self.cluster
        context = ControllerContext(
            client: { _ in cluster }, informers: InformerFactory(provider: cluster, logger: logger),
            events: EventRecorder(), logger: logger, config: ControlPlaneConfig(), facts: facts)
    }

    /// Runs the informers and `loops` until the returned task is cancelled.
    func start(_ loops: [any ControlLoop]) async -> Task<Void, Never> {
        let informers = context.informers
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await informers.run() }
                // As ControlPlane.runLeading: loops start once every informer has listed, so a first
                // sync never works from a half-filled cache.
                await informers.waitForSync()
                for loop in loops { group.addTask { await loop.run() } }
            }
        }
        await informers.waitForSync()
        return task
    }
}

private let configMaps = ResourceType.of(CoreV1.ConfigMap.self)

private func ownedConfigMap(
    _ name: String, namespace: String = "gc", uid: String? = nil, owners: [MetaV1.OwnerReference] = [],
    finalizers: [String] = []
) -> CoreV1.ConfigMap {
    var object = CoreV1.ConfigMap()
    object.metadata = MetaV1.ObjectMeta(
        name: name, namespace: namespace, uid: uid, ownerReferences: owners, finalizers: finalizers)
    return object
}

private func ownedPod(_ name: String, namespace: String = "gc", owners: [MetaV1.OwnerReference] = []) -> CoreV1.Pod {
    var object = CoreV1.Pod()
    object.metadata = MetaV1.ObjectMeta(name: name, namespace: namespace, ownerReferences: owners)
    object.spec.containers = [CoreV1.Container(name: "c", image: "busybox:1")]
    return object
}

private func ownerReference(
    _ kind: String, _ name: String, uid: String, apiVersion: String = "v1", blocking: Bool? = nil
) -> MetaV1.OwnerReference {
    MetaV1.OwnerReference(apiVersion: apiVersion, kind: kind, name: name, uid: uid, blockOwnerDeletion: blocking)
}

@Suite("garbage collector, namespace and service-account controllers on a fake cluster")
struct MetadataControllerFakeTests {
    // MARK: garbage collector

    @Test(.timeLimit(.minutes(1)))
    func aBackgroundDeleteOfTheOwnerTakesItsDependentsOfEveryKind() async throws {
        let rig = MetadataRig()
        let cluster = rig.cluster
        let owner = ownerReference("ConfigMap", "owner", uid: "owner-uid")
        cluster.seed(
            ownedConfigMap("owner", uid: "owner-uid"), ownedConfigMap("child", owners: [owner]),
            ownedConfigMap("bystander"))
        cluster.seed(ownedPod("child-pod", owners: [owner]))
        let run = await rig.start([GarbageCollector(rig.context)])
        defer { run.cancel() }

        try await cluster.delete(CoreV1.ConfigMap.self, namespace: "gc", name: "owner")
        try await cluster.waitUntil("the dependents collected") {
            cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "child") == nil
                && cluster.object(CoreV1.Pod.self, namespace: "gc", name: "child-pod") == nil
        }
        #expect(cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "bystander") != nil)
        let deletes = Set(cluster.actions.filter { $0.verb == "delete" }.map(\.description))
        #expect(deletes == ["delete configmaps gc/owner", "delete configmaps gc/child", "delete pods gc/child-pod"])
    }

    @Test(.timeLimit(.minutes(1)))
    func danglingOwnersAreCollectedOrDroppedAndLiveOrUnknownOnesKept() async throws {
        let rig = MetadataRig()
        let cluster = rig.cluster
        let live = ownerReference("ConfigMap", "owner", uid: "owner-uid")
        let ghost = ownerReference("ConfigMap", "ghost", uid: "ghost-uid")
        let widget = ownerReference("Widget", "w", uid: "widget-uid", apiVersion: "example.com/v1")
        cluster.seed(
            ownedConfigMap("owner", uid: "owner-uid"), ownedConfigMap("kept", owners: [live]),
            ownedConfigMap("orphan", owners: [ghost]),
            ownedConfigMap("stale-uid", owners: [ownerReference("ConfigMap", "owner", uid: "an-older-owner-uid")]),
            ownedConfigMap("mixed", owners: [live, ghost]), ownedConfigMap("unknown-kind", owners: [widget]))
        cluster.seed(
            ownedPod("rs-gone", owners: [ownerReference("ReplicaSet", "rs", uid: "rs-uid", apiVersion: "apps/v1")]))
        let collector = GarbageCollector(rig.context)
        let run = await rig.start([collector])
        defer { run.cancel() }

        try await cluster.waitUntil("dangling dependents collected, the mixed one trimmed") {
            cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "orphan") == nil
                && cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "stale-uid") == nil
                && cluster.object(CoreV1.Pod.self, namespace: "gc", name: "rs-gone") == nil
                && cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "mixed")?.metadata.ownerReferences
                    == [live]
        }
        // The trim was a metadata patch, not a whole-object update.
        #expect(cluster.actions.filter { $0.name == "mixed" }.map(\.verb) == ["patch"])
        #expect(
            cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "kept")?.metadata.ownerReferences == [live])
        #expect(cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "unknown-kind") != nil)

        // Looked at again, an object with a live owner, or one of a kind Berth does not serve, is left alone.
        cluster.clearActions()
        for name in ["kept", "unknown-kind", "owner"] {
            let metadata = try #require(try await cluster.getMetadata(configMaps, namespace: "gc", name: name))
            try await collector.sync(GarbageCollector.itemKey(GarbageCollector.typeID(configMaps), metadata))
        }
        #expect(cluster.actions.isEmpty)
    }

    /// The collector's informer of a custom kind stops when the kind is no longer served (its definition
    /// deleted): its watch would otherwise outlive it, one per definition ever made.
    @Test(.timeLimit(.minutes(1)))
    func aCustomKindsInformerStopsWithItsDefinition() async throws {
        let rig = MetadataRig()
        let definition: JSON = [
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": ["name": "widgets.gc.example.com"],
            "spec": [
                "group": "gc.example.com", "scope": "Namespaced",
                "names": ["plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"],
                "versions": [
                    [
                        "name": "v1", "served": true, "storage": true,
                        "schema": [
                            "openAPIV3Schema": ["type": "object", "x-kubernetes-preserve-unknown-fields": true]
                        ],
                    ]
                ],
            ],
            "status": ["conditions": [["type": "NamesAccepted", "status": "True"]]],
        ]
        rig.cluster.seed(CustomResourceTypes.definitions, json: definition)
        let kinds = CustomKinds(factory: rig.context.informers)
        let running = Task { await kinds.runInformers() }
        defer { running.cancel() }
        #expect(await kinds.refresh(rig.cluster).map(\.plural) == ["widgets"])
        let widgets = try #require(kinds.current.first)
        let informer = try #require(kinds.informers.values.first)
        await informer.waitForSync()
        // No change in the cluster marks a watch opening or closing: looked at until it holds.
        func eventually(_ condition: () -> Bool) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(20)
            while !condition() {
                if ContinuousClock.now > deadline { return false }
                try await Task.sleep(for: .milliseconds(10))
            }
            return true
        }
        #expect(try await eventually { rig.cluster.watchCount(widgets) == 1 })
        try await rig.cluster.delete(
            CustomResourceTypes.definitions, namespace: nil, name: "widgets.gc.example.com", gracePeriod: nil, uid: nil,
            propagation: nil)
        #expect(await kinds.refresh(rig.cluster).isEmpty)
        #expect(kinds.informers.isEmpty)
        #expect(try await eventually { rig.cluster.watchCount(widgets) == 0 })
    }

    @Test func aPatchDecidedOnAStaleViewConflictsInsteadOfOverwriting() async throws {
        let rig = MetadataRig()
        let cluster = rig.cluster
        let live = ownerReference("ConfigMap", "owner", uid: "owner-uid")
        let ghost = ownerReference("ConfigMap", "ghost", uid: "ghost-uid")
        cluster.seed(ownedConfigMap("owner", uid: "owner-uid"), ownedConfigMap("dependent", owners: [live, ghost]))
        let collector = GarbageCollector(rig.context)
        let seen = try #require(try await cluster.getMetadata(configMaps, namespace: "gc", name: "dependent"))

        // Someone else changes the object after the collector read it: a new owner.
        var changed = try #require(cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "dependent"))
        let newcomer = ownerReference("ConfigMap", "newcomer", uid: "newcomer-uid")
        changed.metadata.ownerReferences.append(newcomer)
        _ = try await cluster.update(changed)

        await #expect(throws: APIError.self) {
            try await collector.patchMetadata(configMaps, seen, ["ownerReferences": GarbageCollector.list([live])])
        }
        let stored = try #require(cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "dependent"))
        #expect(stored.metadata.ownerReferences == [live, ghost, newcomer])

        // Decided again on what is stored now, the same trim applies.
        let fresh = try #require(try await cluster.getMetadata(configMaps, namespace: "gc", name: "dependent"))
        try await collector.patchMetadata(
            configMaps, fresh, ["ownerReferences": GarbageCollector.list([live, newcomer])])
        #expect(
            cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "dependent")?.metadata.ownerReferences
                == [live, newcomer])
    }

    @Test(.timeLimit(.minutes(1)))
    func aForegroundDeleteKeepsTheOwnerUntilItsBlockingDependentsAreGone() async throws {
        let rig = MetadataRig()
        let cluster = rig.cluster
        cluster.seed(
            ownedConfigMap("owner", uid: "owner-uid"),
            ownedConfigMap(
                "blocking", owners: [ownerReference("ConfigMap", "owner", uid: "owner-uid", blocking: true)],
                finalizers: ["example.com/hold"]),
            ownedConfigMap("plain", owners: [ownerReference("ConfigMap", "owner", uid: "owner-uid")]))
        let run = await rig.start([GarbageCollector(rig.context)])
        defer { run.cancel() }

        try await cluster.delete(CoreV1.ConfigMap.self, namespace: "gc", name: "owner", propagation: "Foreground")
        // The plain dependent goes; the blocking one is deleted in foreground too, and (having no
        // dependents of its own) keeps only the finalizer that is not the collector's.
        try await cluster.waitUntil("the dependents deleted") {
            let blocking = cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "blocking")
            return cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "plain") == nil
                && blocking?.isTerminating == true && blocking?.metadata.finalizers == ["example.com/hold"]
        }
        let waiting = try #require(cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "owner"))
        #expect(waiting.isTerminating && waiting.metadata.finalizers == [DeletionFinalizers.foreground])

        // The blocking dependent finishes: then the owner goes.
        try await cluster.mergePatch(
            configMaps, namespace: "gc", name: "blocking", ["metadata": ["finalizers": nil]], subresource: nil)
        try await cluster.waitUntil("the owner deleted") {
            cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "owner") == nil
        }
        #expect(cluster.objects(CoreV1.ConfigMap.self).isEmpty)
    }

    @Test(.timeLimit(.minutes(1)))
    func anOrphanDeleteRemovesOnlyTheOwnersReferenceAndThenTheOwner() async throws {
        let rig = MetadataRig()
        let cluster = rig.cluster
        let owner = ownerReference("ConfigMap", "owner", uid: "owner-uid")
        let other = ownerReference("ConfigMap", "other", uid: "other-uid")
        cluster.seed(
            ownedConfigMap("owner", uid: "owner-uid"), ownedConfigMap("other", uid: "other-uid"),
            ownedConfigMap("only-child", owners: [owner]), ownedConfigMap("shared-child", owners: [owner, other]))
        cluster.seed(ownedPod("child-pod", owners: [owner]))
        let run = await rig.start([GarbageCollector(rig.context)])
        defer { run.cancel() }

        try await cluster.delete(CoreV1.ConfigMap.self, namespace: "gc", name: "owner", propagation: "Orphan")
        try await cluster.waitUntil("the owner deleted") {
            cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "owner") == nil
        }
        // Orphaned before the finalizer went: all three stay, without the reference.
        let onlyChild = try #require(cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "only-child"))
        let sharedChild = try #require(cluster.object(CoreV1.ConfigMap.self, namespace: "gc", name: "shared-child"))
        let childPod = try #require(cluster.object(CoreV1.Pod.self, namespace: "gc", name: "child-pod"))
        #expect(onlyChild.metadata.ownerReferences.isEmpty && childPod.metadata.ownerReferences.isEmpty)
        #expect(sharedChild.metadata.ownerReferences == [other])
        #expect(!cluster.actions.contains { $0.verb == "delete" && $0.name != "owner" })
    }

    // MARK: namespace controller

    @Test(.timeLimit(.minutes(1)))
    func aDeletedNamespaceIsEmptiedReportsWhatIsLeftAndGoesOnceNothingIs() async throws {
        let rig = MetadataRig()
        let cluster = rig.cluster
        var doomed = CoreV1.Namespace()
        doomed.metadata.name = "doomed"
        doomed.spec.finalizers = [.kubernetes]
        doomed.status.phase = .active
        cluster.seed(doomed)
        cluster.seed(ownedConfigMap("one", namespace: "doomed"), ownedConfigMap("two", namespace: "doomed"))
        cluster.seed(ownedConfigMap("elsewhere", namespace: "other"))
        var secret = CoreV1.Secret()
        secret.metadata = MetaV1.ObjectMeta(name: "s", namespace: "doomed")
        cluster.seed(secret)
        // A pod whose node agent is still stopping it: held by a finalizer of its own.
        var held = ownedPod("bound", namespace: "doomed")
        held.metadata.finalizers = ["example.com/agent"]
        cluster.seed(held)
        let run = await rig.start([NamespaceController(rig.context)])
        defer { run.cancel() }

        try await cluster.delete(CoreV1.Namespace.self, namespace: nil, name: "doomed")
        try await cluster.waitUntil("the content deleted and the pod reported") {
            guard let namespace = cluster.object(CoreV1.Namespace.self, name: "doomed") else { return false }
            let conditions = namespace.status.conditions
            return cluster.objects(CoreV1.ConfigMap.self).map(\.cacheKey) == ["other/elsewhere"]
                && cluster.objects(CoreV1.Secret.self).isEmpty
                && conditions.contains {
                    $0.type == .contentRemaining && $0.status == .true
                        && $0.message == "Some resources are remaining: pods. has 1 resource instances"
                }
                && conditions.contains {
                    $0.type == .finalizersRemaining && $0.status == .true
                        && $0.message
                            == "Some content in the namespace has finalizers remaining: example.com/agent in 1 resource instances"
                }
        }
        let waiting = try #require(cluster.object(CoreV1.Namespace.self, name: "doomed"))
        #expect(waiting.status.phase == .terminating && waiting.spec.finalizers == [.kubernetes])
        #expect(cluster.object(CoreV1.Pod.self, namespace: "doomed", name: "bound")?.isTerminating == true)

        // The agent finishes the pod: the controller removes the namespace's finalizer and it goes.
        try await cluster.mergePatch(
            .of(CoreV1.Pod.self), namespace: "doomed", name: "bound", ["metadata": ["finalizers": nil]],
            subresource: nil)
        try await cluster.waitUntil("the namespace deleted") {
            cluster.object(CoreV1.Namespace.self, name: "doomed") == nil
        }
        #expect(
            cluster.actions.contains(
                FakeCluster.Action(
                    verb: "update", resource: "namespaces", namespace: "", name: "doomed", subresource: "finalize")))
        #expect(cluster.object(CoreV1.ConfigMap.self, namespace: "other", name: "elsewhere") != nil)
    }

    // MARK: service accounts and their tokens

    @Test(.timeLimit(.minutes(1)))
    func everyActiveNamespaceGetsItsDefaultServiceAccountBackAndATerminatingOneDoesNot() async throws {
        let rig = MetadataRig()
        let cluster = rig.cluster
        var team = CoreV1.Namespace()
        team.metadata.name = "team"
        var going = CoreV1.Namespace()
        going.metadata.name = "going"
        going.metadata.deletionTimestamp = MetaV1.Time.now()
        going.status.phase = .terminating
        cluster.seed(team, going)
        let controller = ServiceAccountController(rig.context)
        let run = await rig.start([controller])
        defer { run.cancel() }

        try await cluster.waitUntil("team's default account") {
            cluster.object(CoreV1.ServiceAccount.self, namespace: "team", name: "default") != nil
        }
        let first = try #require(cluster.object(CoreV1.ServiceAccount.self, namespace: "team", name: "default"))
        try await cluster.delete(CoreV1.ServiceAccount.self, namespace: "team", name: "default")
        try await cluster.waitUntil("team's default account made again") {
            let again = cluster.object(CoreV1.ServiceAccount.self, namespace: "team", name: "default")
            return again != nil && again?.metadata.uid != first.metadata.uid
        }

        cluster.clearActions()
        try await controller.sync("going")
        #expect(cluster.actions.isEmpty)
        #expect(cluster.object(CoreV1.ServiceAccount.self, namespace: "going", name: "default") == nil)
    }

    @Test(.timeLimit(.minutes(1)))
    func tokenSecretsAreFilledForTheirAccountAndGoWithIt() async throws {
        let dir = NSTemporaryDirectory() + "berth-token-test-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try PKI.loadOrCreate(dataDir: dir, sans: ["127.0.0.1"])
        let rig = MetadataRig(facts: ServerFacts(caPEM: pki.caPEM, serviceAccountSigner: pki.serviceAccountSigner))
        let cluster = rig.cluster
        var robot = CoreV1.ServiceAccount()
        robot.metadata = MetaV1.ObjectMeta(name: "robot", namespace: "apps", uid: "robot-uid")
        cluster.seed(robot)
        func tokenSecret(_ name: String, account: String) -> CoreV1.Secret {
            var secret = CoreV1.Secret()
            secret.metadata = MetaV1.ObjectMeta(
                name: name, namespace: "apps", annotations: [TokenController.nameAnnotation: account])
            secret.type = .serviceAccountToken
            return secret
        }
        var opaque = CoreV1.Secret()
        opaque.metadata = MetaV1.ObjectMeta(name: "settings", namespace: "apps")
        cluster.seed(tokenSecret("robot-token", account: "robot"), tokenSecret("ghost-token", account: "ghost"), opaque)
        let run = await rig.start([TokenController(rig.context)])
        defer { run.cancel() }

        try await cluster.waitUntil("robot's token filled, the ghost's deleted") {
            cluster.object(CoreV1.Secret.self, namespace: "apps", name: "robot-token")?.data["token"]?.isEmpty == false
                && cluster.object(CoreV1.Secret.self, namespace: "apps", name: "ghost-token") == nil
        }
        let filled = try #require(cluster.object(CoreV1.Secret.self, namespace: "apps", name: "robot-token"))
        #expect(filled.data["ca.crt"] == Array(pki.caPEM.utf8))
        #expect(filled.data["namespace"] == Array("apps".utf8))
        #expect(filled.metadata.annotations[TokenController.uidAnnotation] == "robot-uid")
        let claims = pki.serviceAccountSigner.verify(String(decoding: filled.data["token"] ?? [], as: UTF8.self))
        #expect(claims?.serviceAccountUID == "robot-uid" && claims?.secretName == "robot-token")
        #expect(claims?.username == "system:serviceaccount:apps:robot")
        #expect(!cluster.actions.contains { $0.name == "settings" })

        try await cluster.delete(CoreV1.ServiceAccount.self, namespace: "apps", name: "robot")
        try await cluster.waitUntil("robot's token deleted with it") {
            cluster.object(CoreV1.Secret.self, namespace: "apps", name: "robot-token") == nil
        }
        #expect(cluster.object(CoreV1.Secret.self, namespace: "apps", name: "settings") != nil)
    }
}

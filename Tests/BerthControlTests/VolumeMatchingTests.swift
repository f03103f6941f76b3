import BerthKube
import Foundation
import Testing

@testable import BerthAPI
@testable import BerthControl

/// The binding decisions without a cluster: which volume a claim gets (VolumeMatching), what the
/// scheduler's VolumeBinding refuses, and the volume the local-path provisioner makes.
@Suite("volume matching and binding decisions")
struct VolumeMatchingTests {
    typealias Claim = CoreV1.PersistentVolumeClaim
    typealias Volume = CoreV1.PersistentVolume

    static func claim(
        _ name: String = "data", storage: String = "1Gi", modes: [String] = ["ReadWriteOnce"], className: String? = nil,
        uid: String = "u-1", selector: [String: String]? = nil, mode: String? = nil
    ) -> Claim {
        var c = Claim()
        c.metadata.name = name
        c.metadata.namespace = "default"
        c.metadata.uid = uid
        c.spec.accessModes = modes.map(CoreV1.PersistentVolumeAccessMode.init(rawValue:))
        c.spec.resources.requests["storage"] = Quantity(storage)
        c.spec.storageClassName = className
        c.spec.volumeMode = mode.map(CoreV1.PersistentVolumeMode.init(rawValue:))
        if let selector {
            var s = MetaV1.LabelSelector()
            s.matchLabels = selector
            c.spec.selector = s
        }
        return c
    }

    static func volume(
        _ name: String, storage: String, modes: [String] = ["ReadWriteOnce"], className: String? = nil,
        phase: CoreV1.PersistentVolumePhase? = .volumeAvailable, labels: [String: String] = [:],
        node: String? = nil
    ) -> Volume {
        var v = Volume()
        v.metadata.name = name
        v.metadata.labels = labels
        v.spec.capacity["storage"] = Quantity(storage)
        v.spec.accessModes = modes.map(CoreV1.PersistentVolumeAccessMode.init(rawValue:))
        v.spec.storageClassName = className
        v.spec.hostPath = CoreV1.HostPathVolumeSource()
        v.status.phase = phase
        if let node {
            var requirement = CoreV1.NodeSelectorRequirement()
            requirement.key = "kubernetes.io/hostname"
            requirement.operator = .opIn
            requirement.values = [node]
            var term = CoreV1.NodeSelectorTerm()
            term.matchExpressions = [requirement]
            var selector = CoreV1.NodeSelector()
            selector.nodeSelectorTerms = [term]
            var affinity = CoreV1.VolumeNodeAffinity()
            affinity.required = selector
            v.spec.nodeAffinity = affinity
        }
        return v
    }

    static func names(_ v: Volume?) -> String? { v?.metadata.name }

    @Test func theSmallestAvailableVolumeThatFitsIsChosen() {
        let volumes = [
            Self.volume("big", storage: "10Gi"), Self.volume("small", storage: "500Mi"),
            Self.volume("right", storage: "2Gi"), Self.volume("also", storage: "5Gi"),
        ]
        #expect(Self.names(VolumeMatching.bestVolume(for: Self.claim(storage: "1Gi"), among: volumes)) == "right")
        #expect(VolumeMatching.bestVolume(for: Self.claim(storage: "20Gi"), among: volumes) == nil)
    }

    @Test func classAccessModesVolumeModeAndSelectorMustAllFit() {
        let volumes = [
            Self.volume("fast", storage: "1Gi", className: "fast"),
            Self.volume("rox", storage: "1Gi", modes: ["ReadOnlyMany"]),
            Self.volume("both", storage: "3Gi", modes: ["ReadWriteOnce", "ReadOnlyMany"]),
            Self.volume("labelled", storage: "4Gi", labels: ["tier": "gold"]),
        ]
        // No class asks for volumes without one: "fast" is not a candidate, "both" is the smallest RWO.
        #expect(Self.names(VolumeMatching.bestVolume(for: Self.claim(), among: volumes)) == "both")
        #expect(Self.names(VolumeMatching.bestVolume(for: Self.claim(className: "fast"), among: volumes)) == "fast")
        #expect(
            Self.names(VolumeMatching.bestVolume(for: Self.claim(modes: ["ReadOnlyMany"]), among: volumes)) == "rox")
        #expect(
            VolumeMatching.bestVolume(for: Self.claim(modes: ["ReadWriteMany"]), among: volumes) == nil,
            "no volume offers ReadWriteMany")
        #expect(
            Self.names(VolumeMatching.bestVolume(for: Self.claim(selector: ["tier": "gold"]), among: volumes))
                == "labelled")
        #expect(VolumeMatching.bestVolume(for: Self.claim(mode: "Block"), among: volumes) == nil)
    }

    @Test func volumesNotAvailableOrClaimedElsewhereAreSkipped() {
        var taken = Self.volume("taken", storage: "1Gi")
        var ref = CoreV1.ObjectReference()
        ref.namespace = "default"
        ref.name = "other"
        ref.uid = "u-2"
        taken.spec.claimRef = ref
        let released = Self.volume("released", storage: "1Gi", phase: .volumeReleased)
        #expect(VolumeMatching.bestVolume(for: Self.claim(), among: [taken, released]) == nil)
    }

    @Test func aVolumePreBoundToTheClaimWinsOverASmallerFreeOne() {
        var mine = Self.volume("mine", storage: "8Gi", className: "other", phase: .volumeAvailable)
        var ref = CoreV1.ObjectReference()
        ref.namespace = "default"
        ref.name = "data"
        mine.spec.claimRef = ref  // no uid: pre-bound by its author
        let free = Self.volume("free", storage: "1Gi")
        #expect(Self.names(VolumeMatching.bestVolume(for: Self.claim(), among: [free, mine])) == "mine")
        // Pre-bound but too small: not that one.
        #expect(Self.names(VolumeMatching.bestVolume(for: Self.claim(storage: "9Gi"), among: [mine])) == nil)
        // Pre-bound to another claim of the same name (a uid that is not this claim's): not ours.
        mine.spec.claimRef?.uid = "someone-else"
        #expect(Self.names(VolumeMatching.bestVolume(for: Self.claim(), among: [free, mine])) == "free")
    }

    @Test func delayedBindingChoosesOnlyForANodeAndOnlyVolumesItReaches() {
        let volumes = [
            Self.volume("on-a", storage: "1Gi", className: "local", node: "a"),
            Self.volume("on-b", storage: "2Gi", className: "local", node: "b"),
        ]
        let claim = Self.claim(className: "local")
        #expect(VolumeMatching.bestVolume(for: claim, among: volumes, delayBinding: true) == nil)
        let nodeB = VolumeMatching.Node(name: "b", labels: ["kubernetes.io/hostname": "b"])
        #expect(
            Self.names(VolumeMatching.bestVolume(for: claim, among: volumes, node: nodeB, delayBinding: true))
                == "on-b")
        let nodeC = VolumeMatching.Node(name: "c", labels: ["kubernetes.io/hostname": "c"])
        #expect(VolumeMatching.bestVolume(for: claim, among: volumes, node: nodeC, delayBinding: true) == nil)
    }

    @Test func theNewestDefaultClassIsTheDefault() {
        func storageClass(_ name: String, default isDefault: Bool, created: Int64) -> StorageV1.StorageClass {
            var c = StorageV1.StorageClass()
            c.metadata.name = name
            c.metadata.creationTimestamp = MetaV1.Time(secondsSince1970: created)
            if isDefault { c.metadata.annotations[VolumeMatching.Keys.defaultClass] = "true" }
            return c
        }
        let classes = [
            storageClass("old", default: true, created: 100), storageClass("new", default: true, created: 200),
            storageClass("newest-but-not-default", default: false, created: 300),
        ]
        #expect(VolumeMatching.defaultClass(classes)?.metadata.name == "new")
        #expect(VolumeMatching.defaultClass([classes[2]]) == nil)
    }

    @Test func volumeBindingRefusesMissingClaimsAndUnboundImmediateOnes() {
        var immediate = Self.claim("immediate", className: "manual")
        immediate.metadata.uid = "u-3"
        var waiting = Self.claim("waiting", className: "local-path")
        waiting.metadata.uid = "u-4"
        var manual = StorageV1.StorageClass()
        manual.metadata.name = "manual"
        manual.provisioner = "kubernetes.io/no-provisioner"
        var local = StorageV1.StorageClass()
        local.metadata.name = "local-path"
        local.provisioner = "rancher.io/local-path"
        local.volumeBindingMode = .waitForFirstConsumer
        let claims = ["immediate": immediate, "waiting": waiting]
        let classes = ["manual": manual, "local-path": local]
        let binding = VolumeBinding(
            claims: { _, name in claims[name] }, volume: { _ in nil }, volumes: { [] },
            storageClass: { classes[$0] })
        guard case .unresolvable(let missing) = binding.prefilter(namespace: "default", claimNames: ["nope"]) else {
            Issue.record("a missing claim must be refused")
            return
        }
        #expect(missing == "persistentvolumeclaim \"nope\" not found")
        guard case .unresolvable(let unbound) = binding.prefilter(namespace: "default", claimNames: ["immediate"])
        else {
            Issue.record("an unbound Immediate claim must be refused")
            return
        }
        #expect(unbound == "pod has unbound immediate PersistentVolumeClaims")
        guard case .fits(let needs) = binding.prefilter(namespace: "default", claimNames: ["waiting"]) else {
            Issue.record("a WaitForFirstConsumer claim waits for the scheduler")
            return
        }
        #expect(needs.delayed == ["waiting"] && needs.staticClaims.isEmpty)
    }

    @Test func volumeBindingKeepsPodsWhereTheirBoundVolumesAre() {
        var needs = VolumeBinding.Needs()
        needs.boundVolumes = [Self.volume("pv", storage: "1Gi", node: "a")]
        #expect(VolumeBinding.filter(needs, nodeName: "a", labels: ["kubernetes.io/hostname": "a"], volumes: []) == nil)
        #expect(
            VolumeBinding.filter(needs, nodeName: "b", labels: ["kubernetes.io/hostname": "b"], volumes: [])
                == "node(s) had volume node affinity conflict")
        // A claim of a class without a provisioner fits only where a free volume is.
        var staticNeeds = VolumeBinding.Needs()
        staticNeeds.staticClaims = [Self.claim(className: "manual")]
        let free = [Self.volume("on-a", storage: "1Gi", className: "manual", node: "a")]
        #expect(
            VolumeBinding.filter(staticNeeds, nodeName: "a", labels: ["kubernetes.io/hostname": "a"], volumes: free)
                == nil)
        #expect(
            VolumeBinding.filter(staticNeeds, nodeName: "b", labels: ["kubernetes.io/hostname": "b"], volumes: free)
                == "node(s) didn't find available persistent volumes to bind")
    }

    @Test func theLocalPathVolumeIsADirectoryOnTheChosenNodePreBoundToItsClaim() {
        var claim = Self.claim("www-web-0", storage: "2Gi", className: "local-path", uid: "abc")
        claim.metadata.resourceVersion = "7"
        var storageClass = StorageV1.StorageClass()
        storageClass.metadata.name = "local-path"
        storageClass.provisioner = "rancher.io/local-path"
        var node = CoreV1.Node()
        node.metadata.name = "node-1"
        node.metadata.labels["kubernetes.io/hostname"] = "node-1"
        let volume = LocalPathProvisioner.volume(
            for: claim, storageClass: storageClass, node: node, storageDirectory: "/srv/storage")
        #expect(volume.metadata.name == "pvc-abc")
        #expect(volume.spec.hostPath?.path == "/srv/storage/pvc-abc_default_www-web-0")
        #expect(volume.spec.persistentVolumeReclaimPolicy == .delete, "the class names none: Delete")
        #expect(volume.metadata.annotations["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path")
        #expect(volume.metadata.finalizers == [LocalPathProvisioner.cleanupFinalizer])
        #expect(volume.spec.claimRef?.uid == "abc" && volume.spec.capacity["storage"] == Quantity("2Gi"))
        #expect(VolumeMatching.reachable(volume, nodeName: "node-1", nodeLabels: ["kubernetes.io/hostname": "node-1"]))
        #expect(!VolumeMatching.reachable(volume, nodeName: "node-2", nodeLabels: ["kubernetes.io/hostname": "node-2"]))
        // The provisioned volume is the one the binder then picks for the claim (pre-bound, any phase).
        #expect(Self.names(VolumeMatching.bestVolume(for: claim, among: [volume])) == "pvc-abc")
        // A hollow node has no disk to clean: no finalizer waits for it.
        node.metadata.labels["berth.dev/hollow"] = "true"
        #expect(
            LocalPathProvisioner.volume(for: claim, storageClass: storageClass, node: node, storageDirectory: "/s")
                .metadata.finalizers.isEmpty)
    }
}

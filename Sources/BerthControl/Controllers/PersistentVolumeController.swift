import BerthAPI
import BerthKube
import Logging

/// kube-controller-manager's persistentvolume-binder with its pvc-protection and pv-protection
/// controllers, and k3s's local-path provisioner beside it (``LocalPathProvisioner``).
///
/// A Pending claim binds to the volume pre-bound to it or the smallest Available volume of its class
/// that fits (``VolumeMatching/bestVolume(for:among:node:delayBinding:)``): the volume's claimRef is
/// written first, then its phase, then the claim's volumeName and status — upstream's order, so a
/// crash between the steps is finished by the next sync from whichever side it left. A claim of a
/// WaitForFirstConsumer class waits for the scheduler's `volume.kubernetes.io/selected-node`; a claim
/// nothing fits is provisioned by its class. A volume whose claim is gone is Released, then deleted
/// with its data (reclaim Delete, provisioned) or kept (Retain). The protection finalizers go once no
/// scheduled, unfinished pod uses the claim, and once the volume is no longer Bound.
struct PersistentVolumeController: ControlLoop {
    typealias Claim = CoreV1.PersistentVolumeClaim
    typealias Volume = CoreV1.PersistentVolume
    typealias Keys = VolumeMatching.Keys

    let name = "persistentvolume-binder-controller"
    let client: any KubeClient
    let claims: Informer<Claim>
    let volumes: Informer<Volume>
    let classes: Informer<StorageV1.StorageClass>
    let nodes: Informer<CoreV1.Node>
    let claimQueue = WorkQueue(name: "claims")
    let volumeQueue = WorkQueue(name: "volumes")
    let events: ComponentRecorder
    let provisioner: LocalPathProvisioner
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("persistentvolume-binder-controller")
        claims = ctx.informers.informer(Claim.self)
        volumes = ctx.informers.informer(Volume.self)
        classes = ctx.informers.informer(StorageV1.StorageClass.self)
        nodes = ctx.informers.informer(CoreV1.Node.self)
        events = ctx.events.component("persistentvolume-controller")
        provisioner = LocalPathProvisioner(
            client: client, events: ctx.events.component(LocalPathProvisioner.provisionerName),
            storageDirectory: ctx.config.localPathStorageDirectory)
        logger = ctx.logger
        let (claims, claimQueue, volumeQueue) = (self.claims, self.claimQueue, self.volumeQueue)
        claims.onChange { event in
            let claim = event.object
            let key = claim.cacheKey
            let volume = claim.spec.volumeName ?? ""
            Task {
                await claimQueue.add(key)
                // A claim gone or rebound: its volume learns it is Released.
                if !volume.isEmpty { await volumeQueue.add(volume) }
            }
        }
        volumes.onChange { event in
            let volume = event.object
            let name = volume.metadata.name ?? ""
            let ref = volume.spec.claimRef
            // A volume free to bind: the claims of its class that wait may take it.
            let waiting =
                ref == nil && volume.status.phase == .volumeAvailable
                ? claims.list().filter {
                    ($0.spec.volumeName ?? "").isEmpty
                        && VolumeMatching.className($0) == VolumeMatching.className(volume)
                }.map(\.cacheKey) : []
            Task {
                await volumeQueue.add(name)
                if let ref, let namespace = ref.namespace, let claim = ref.name {
                    await claimQueue.add(Objects.key(namespace: namespace, name: claim))
                }
                for key in waiting { await claimQueue.add(key) }
            }
        }
        classes.onChange { _ in
            // A class made or marked default later: claims that waited for it try again.
            let pending = claims.list().filter { ($0.spec.volumeName ?? "").isEmpty }.map(\.cacheKey)
            Task { for key in pending { await claimQueue.add(key) } }
        }
        // pvc-protection: a pod that goes or finishes may free a claim being deleted.
        ctx.informers.informer(CoreV1.Pod.self).onChange { event in
            let pod = event.object
            let gone: Bool
            switch event {
            case .deleted: gone = true
            case .updated(let old, let new): gone = Self.isFinished(new) && !Self.isFinished(old)
            default: gone = false
            }
            guard gone, let namespace = pod.metadata.namespace else { return }
            let keys = VolumeMatching.claimNames(of: pod).map { Objects.key(namespace: namespace, name: $0) }
            let terminating = keys.filter { claims.get($0)?.metadata.deletionTimestamp != nil }
            if terminating.isEmpty { return }
            Task { for key in terminating { await claimQueue.add(key) } }
        }
    }

    static func isFinished(_ pod: CoreV1.Pod) -> Bool {
        pod.status.phase == .succeeded || pod.status.phase == .failed
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await runWorkers(claimQueue, count: 2, sync: syncClaim) { key, error in
                    logger.debug("claim sync failed", metadata: ["claim": "\(key)", "error": "\(error)"])
                }
            }
            group.addTask {
                await runWorkers(volumeQueue, count: 2, sync: syncVolume) { key, error in
                    logger.debug("volume sync failed", metadata: ["volume": "\(key)", "error": "\(error)"])
                }
            }
        }
    }

    // MARK: claims

    func syncClaim(_ key: String) async throws {
        guard let claim = claims.get(key) else { return }
        if claim.metadata.deletionTimestamp != nil {
            try await releaseClaimProtection(claim)
            return
        }
        if (claim.spec.volumeName ?? "").isEmpty {
            try await syncUnboundClaim(claim)
        } else {
            try await syncBoundClaim(claim)
        }
    }

    /// How often a claim that waits is looked at again even when nothing it watches changed (upstream's
    /// resync period), e.g. for a node whose labels now let a volume reach it.
    static let resync: Duration = .seconds(15)

    /// syncUnboundClaim, for a claim that names no volume.
    func syncUnboundClaim(_ claim: Claim) async throws {
        await claimQueue.addSoon(claim.cacheKey, after: Self.resync)
        let className = VolumeMatching.className(claim)
        let storageClass = className.isEmpty ? nil : classes.get(namespace: nil, name: className)
        let delayBinding = VolumeMatching.delaysBinding(storageClass)
        let node = claim.metadata.annotations[Keys.selectedNode].map { name in
            VolumeMatching.Node(name: name, labels: nodes.get(namespace: nil, name: name)?.metadata.labels ?? [:])
        }
        if let volume = VolumeMatching.bestVolume(
            for: claim, among: volumes.list(), node: delayBinding ? node : nil, delayBinding: delayBinding)
        {
            try await bind(volume, claim)
            return
        }
        if delayBinding && node == nil {
            events.record(
                claim, reason: "WaitForFirstConsumer",
                message: "waiting for first consumer to be created before binding")
        } else if !className.isEmpty {
            try await provision(claim, className: className, storageClass: storageClass, node: node?.name)
        } else {
            events.record(
                claim, reason: "FailedBinding",
                message: "no persistent volumes available for this claim and no storage class is set")
        }
        try await setPhase(claim, .claimPending)
    }

    /// provisionClaim: the built-in provisioner's class is provisioned here; any other provisioner is
    /// told about the claim by its annotation, as upstream does for external provisioners.
    func provision(
        _ claim: Claim, className: String, storageClass: StorageV1.StorageClass?, node: String?
    ) async throws {
        guard let storageClass else {
            events.record(
                claim, type: "Warning", reason: "ProvisioningFailed",
                message: "storageclass.storage.k8s.io \"\(className)\" not found")
            return
        }
        let provisionerName = storageClass.provisioner
        if claim.metadata.annotations[Keys.storageProvisioner] != provisionerName {
            var annotated = claim
            annotated.metadata.annotations[Keys.storageProvisioner] = provisionerName
            annotated.metadata.annotations[Keys.betaStorageProvisioner] = provisionerName
            // The update comes back through the informer and syncs the claim again.
            _ = try await client.update(annotated)
            return
        }
        events.record(
            claim, reason: "ExternalProvisioning",
            message:
                "Waiting for a volume to be created either by the external provisioner '\(provisionerName)' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
        )
        guard provisionerName == LocalPathProvisioner.provisionerName else { return }
        var chosen: CoreV1.Node?
        if let node {
            // A node the cache has not seen yet is still the scheduler's choice.
            chosen = nodes.get(namespace: nil, name: node) ?? CoreV1.Node(metadata: MetaV1.ObjectMeta(name: node))
        }
        try await provisioner.provision(claim, storageClass: storageClass, node: chosen)
    }

    /// syncBoundClaim, for a claim that names its volume (bound, or pre-bound by its author).
    func syncBoundClaim(_ claim: Claim) async throws {
        let volumeName = claim.spec.volumeName ?? ""
        let completed = claim.metadata.annotations[Keys.bindCompleted] != nil
        guard let volume = volumes.get(namespace: nil, name: volumeName) else {
            if completed {
                if claim.status.phase != .claimLost {
                    events.record(
                        claim, type: "Warning", reason: "ClaimLost",
                        message: "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
                }
                try await setPhase(claim, .claimLost)
            } else {
                try await setPhase(claim, .claimPending)
            }
            return
        }
        if volume.spec.claimRef == nil || VolumeMatching.isBound(volume, to: claim) {
            if let mismatch = Self.mismatch(claim, volume), volume.spec.claimRef == nil {
                events.record(
                    claim, type: "Warning", reason: "VolumeMismatch",
                    message: "Cannot bind to requested volume \"\(volumeName)\": \(mismatch)")
                try await setPhase(claim, .claimPending)
                return
            }
            try await bind(volume, claim)
        } else if completed {
            events.record(
                claim, type: "Warning", reason: "ClaimMisbound",
                message: "Two claims are bound to the same volume, this one is bound incorrectly")
            try await setPhase(claim, .claimLost)
        } else {
            try await setPhase(claim, .claimPending)
        }
    }

    /// checkVolumeSatisfyClaim's reasons, for a claim that names a volume.
    static func mismatch(_ claim: Claim, _ volume: Volume) -> String? {
        if VolumeMatching.capacity(volume) < VolumeMatching.requested(claim) { return "requested PV is too small" }
        if VolumeMatching.className(volume) != VolumeMatching.className(claim) {
            return "storageClassName does not match"
        }
        if !VolumeMatching.volumeModesFit(claim, volume) { return "incompatible volumeMode" }
        if !VolumeMatching.accessModesFit(claim, volume) { return "incompatible accessMode" }
        return nil
    }

    /// bind: the volume's claimRef and phase, then the claim's volumeName, annotations and status.
    func bind(_ found: Volume, _ claim: Claim) async throws {
        var volume = found
        if volume.spec.claimRef?.uid != claim.metadata.uid || volume.spec.claimRef?.name != claim.metadata.name {
            if volume.spec.claimRef == nil { volume.metadata.annotations[Keys.boundByController] = "yes" }
            volume.spec.claimRef = VolumeMatching.reference(to: claim)
            volume = try await client.update(volume)
        }
        if volume.status.phase != .volumeBound {
            volume.status.phase = .volumeBound
            volume.status.message = nil
            volume.status.reason = nil
            volume = try await client.updateStatus(volume)
        }
        var bound = claim
        let volumeName = volume.metadata.name ?? ""
        if bound.spec.volumeName != volumeName || bound.metadata.annotations[Keys.bindCompleted] == nil {
            if (bound.spec.volumeName ?? "").isEmpty { bound.metadata.annotations[Keys.boundByController] = "yes" }
            bound.spec.volumeName = volumeName
            bound.metadata.annotations[Keys.bindCompleted] = "yes"
            bound = try await client.update(bound)
        }
        if bound.status.phase != .claimBound || bound.status.capacity != volume.spec.capacity
            || bound.status.accessModes != volume.spec.accessModes
        {
            bound.status.phase = .claimBound
            bound.status.capacity = volume.spec.capacity
            bound.status.accessModes = volume.spec.accessModes
            _ = try await client.updateStatus(bound)
        }
    }

    func setPhase(_ claim: Claim, _ phase: CoreV1.PersistentVolumeClaimPhase) async throws {
        guard claim.status.phase != phase else { return }
        var updated = claim
        updated.status.phase = phase
        if phase != .claimBound {
            updated.status.capacity = [:]
            updated.status.accessModes = []
        }
        _ = try await client.updateStatus(updated)
    }

    /// pvc-protection: the finalizer goes once no scheduled pod that has not finished uses the claim.
    /// Pods are read from the API server, not the cache, so a pod created a moment ago still counts.
    func releaseClaimProtection(_ claim: Claim) async throws {
        guard claim.metadata.finalizers.contains(Keys.claimProtection), let namespace = claim.metadata.namespace
        else { return }
        let name = claim.metadata.name ?? ""
        for pod in try await client.list(CoreV1.Pod.self, namespace: namespace)
        where !(pod.spec.nodeName ?? "").isEmpty && !Self.isFinished(pod) {
            if VolumeMatching.claimNames(of: pod).contains(name) { return }
        }
        try await dropFinalizer(Keys.claimProtection, of: claim)
    }

    func dropFinalizer<T: KubeObject & HasObjectMeta>(_ finalizer: String, of object: T) async throws {
        let patch: JSON = [
            "metadata": [
                "finalizers": .array(object.metadata.finalizers.filter { $0 != finalizer }.map(JSON.string)),
                "resourceVersion": .string(object.metadata.resourceVersion ?? ""),
            ]
        ]
        do {
            try await client.mergePatch(
                ResourceType.of(T.self), namespace: object.metadata.namespace, name: object.metadata.name ?? "", patch,
                subresource: nil)
        } catch let error as APIError where error.code == 404 {}
    }

    // MARK: volumes

    func syncVolume(_ name: String) async throws {
        guard let volume = volumes.get(namespace: nil, name: name) else { return }
        // pv-protection: a volume being deleted goes once it is not Bound; until then it is synced as
        // any other, so that its claim's deletion releases it.
        if volume.metadata.deletionTimestamp != nil && volume.status.phase != .volumeBound
            && volume.metadata.finalizers.contains(Keys.volumeProtection)
        {
            try await dropFinalizer(Keys.volumeProtection, of: volume)
            return
        }
        guard let ref = volume.spec.claimRef else {
            try await setPhase(volume, .volumeAvailable)
            return
        }
        let key = Objects.key(namespace: ref.namespace ?? "", name: ref.name ?? "")
        if (ref.uid ?? "").isEmpty {
            // Pre-bound by its author to a claim that may not exist yet.
            try await setPhase(volume, .volumeAvailable)
            await claimQueue.add(key)
            return
        }
        var claim = claims.get(key)
        if claim?.metadata.uid != ref.uid {
            // The cache may not have seen a claim created a moment ago: ask the server before releasing.
            claim = try await client.get(Claim.self, namespace: ref.namespace, name: ref.name ?? "")
        }
        guard let claim, claim.metadata.uid == ref.uid else {
            try await reclaim(volume)
            return
        }
        if (claim.spec.volumeName ?? "").isEmpty {
            await claimQueue.add(key)
        } else if claim.spec.volumeName == name {
            try await setPhase(volume, .volumeBound)
        } else if volume.metadata.annotations[Keys.boundByController] != nil {
            // The claim bound elsewhere (two binders raced): this volume is free again.
            var unbound = volume
            unbound.spec.claimRef = nil
            unbound.metadata.annotations[Keys.boundByController] = nil
            _ = try await client.update(unbound)
        }
    }

    /// The claim is gone: Released, then what the reclaim policy says.
    func reclaim(_ volume: Volume) async throws {
        var volume = volume
        if volume.status.phase != .volumeReleased && volume.status.phase != .volumeFailed {
            volume = try await setPhase(volume, .volumeReleased)
        }
        switch volume.spec.persistentVolumeReclaimPolicy ?? .retain {
        case .retain:
            return
        case .delete where volume.metadata.annotations[Keys.provisionedBy] == LocalPathProvisioner.provisionerName:
            try await provisioner.delete(volume)
        case .delete:
            guard volume.status.phase != .volumeFailed else { return }
            let message =
                "error getting deleter volume plugin for volume \"\(volume.metadata.name ?? "")\": no deletable volume plugin matched"
            events.record(volume, type: "Warning", reason: "VolumeFailedDelete", message: message)
            _ = try await setPhase(volume, .volumeFailed, message: message)
        default:
            guard volume.status.phase != .volumeFailed else { return }
            let message = "No recycler plugin found for the volume!"
            events.record(volume, type: "Warning", reason: "VolumeFailedRecycle", message: message)
            _ = try await setPhase(volume, .volumeFailed, message: message)
        }
    }

    @discardableResult
    func setPhase(_ volume: Volume, _ phase: CoreV1.PersistentVolumePhase, message: String? = nil) async throws
        -> Volume
    {
        guard volume.status.phase != phase || volume.status.message != message else { return volume }
        var updated = volume
        updated.status.phase = phase
        updated.status.message = message
        updated.status.lastPhaseTransitionTime = .now()
        return try await client.updateStatus(updated)
    }
}

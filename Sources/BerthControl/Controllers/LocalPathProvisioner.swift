import BerthAPI
import BerthKube

/// k3s's local-path provisioner (rancher/local-path-provisioner), built in: a claim of a class whose
/// provisioner is `rancher.io/local-path` gets a volume `pvc-<claim uid>` that is a directory
/// `<storage directory>/pvc-<uid>_<namespace>_<name>` on the node the scheduler chose for the claim's
/// first pod, reachable only from that node (nodeAffinity on its hostname). The node's agent makes
/// the directory when a pod mounts it.
///
/// The server cannot reach a node's disk, so deleting the data is the node's work: a provisioned
/// volume carries the external provisioner's finalizer, and the agent of its node removes the
/// directory and then the finalizer once the volume is deleted (``NodeAgent``'s local volume cleanup).
/// Hollow nodes have no disk: their volumes carry no finalizer.
struct LocalPathProvisioner: Sendable {
    static let provisionerName = "rancher.io/local-path"
    /// What rancher's provisioner records of the node it chose.
    static let selectedNodeAnnotation = "local.path.provisioner/selected-node"
    /// The external provisioner's finalizer: the storage goes before the volume object does.
    static let cleanupFinalizer = "external-provisioner.volume.kubernetes.io/finalizer"

    let client: any KubeClient
    let events: ComponentRecorder
    let storageDirectory: String

    /// The directory a claim's volume is on its node.
    static func path(storageDirectory: String, claim: CoreV1.PersistentVolumeClaim) -> String {
        "\(storageDirectory)/pvc-\(claim.metadata.uid ?? "")_\(claim.metadata.namespace ?? "")_\(claim.metadata.name ?? "")"
    }

    /// The volume for `claim` on `node`, pre-bound to the claim (the binder then completes the binding).
    static func volume(
        for claim: CoreV1.PersistentVolumeClaim, storageClass: StorageV1.StorageClass, node: CoreV1.Node,
        storageDirectory: String
    ) -> CoreV1.PersistentVolume {
        let nodeName = node.metadata.name ?? ""
        var volume = CoreV1.PersistentVolume()
        volume.metadata.name = "pvc-\(claim.metadata.uid ?? "")"
        volume.metadata.annotations[VolumeMatching.Keys.provisionedBy] = provisionerName
        volume.metadata.annotations[selectedNodeAnnotation] = nodeName
        if node.metadata.labels["berth.dev/hollow"] != "true" { volume.metadata.finalizers = [cleanupFinalizer] }
        volume.spec.capacity = ["storage": claim.spec.resources.requests["storage"] ?? Quantity("0")]
        volume.spec.accessModes = claim.spec.accessModes
        volume.spec.persistentVolumeReclaimPolicy = storageClass.reclaimPolicy ?? .delete
        volume.spec.storageClassName = storageClass.metadata.name
        volume.spec.volumeMode = claim.spec.volumeMode ?? .filesystem
        volume.spec.mountOptions = storageClass.mountOptions
        volume.spec.claimRef = VolumeMatching.reference(to: claim)
        var hostPath = CoreV1.HostPathVolumeSource()
        hostPath.path = path(storageDirectory: storageDirectory, claim: claim)
        hostPath.type = .directoryOrCreate
        volume.spec.hostPath = hostPath
        var requirement = CoreV1.NodeSelectorRequirement()
        requirement.key = "kubernetes.io/hostname"
        requirement.operator = .opIn
        requirement.values = [node.metadata.labels["kubernetes.io/hostname"] ?? nodeName]
        var term = CoreV1.NodeSelectorTerm()
        term.matchExpressions = [requirement]
        var selector = CoreV1.NodeSelector()
        selector.nodeSelectorTerms = [term]
        var affinity = CoreV1.VolumeNodeAffinity()
        affinity.required = selector
        volume.spec.nodeAffinity = affinity
        return volume
    }

    /// Makes the claim's volume on `node` (the scheduler's choice; nil: not chosen yet, which this
    /// provisioner cannot serve, as rancher's answers).
    func provision(
        _ claim: CoreV1.PersistentVolumeClaim, storageClass: StorageV1.StorageClass, node: CoreV1.Node?
    ) async throws {
        let key = "\(claim.metadata.namespace ?? "")/\(claim.metadata.name ?? "")"
        guard let node else {
            events.record(
                claim, type: "Warning", reason: "ProvisioningFailed",
                message:
                    "failed to provision volume with StorageClass \"\(storageClass.metadata.name ?? "")\": configuration error, no node was specified"
            )
            return
        }
        let volume = Self.volume(
            for: claim, storageClass: storageClass, node: node, storageDirectory: storageDirectory)
        events.record(
            claim, reason: "Provisioning", message: "External provisioner is provisioning volume for claim \"\(key)\"")
        do {
            _ = try await client.create(volume)
        } catch let error as APIError where error.reason == "AlreadyExists" {
            return
        } catch {
            events.record(
                claim, type: "Warning", reason: "ProvisioningFailed",
                message:
                    "failed to provision volume with StorageClass \"\(storageClass.metadata.name ?? "")\": \(error)")
            throw error
        }
        events.record(
            claim, reason: "ProvisioningSucceeded",
            message: "Successfully provisioned volume \(volume.metadata.name ?? "")")
    }

    /// Deletes a released volume it made; its node's agent removes the directory (the finalizer).
    func delete(_ volume: CoreV1.PersistentVolume) async throws {
        guard volume.metadata.deletionTimestamp == nil else { return }
        do {
            try await client.delete(
                CoreV1.PersistentVolume.self, namespace: nil, name: volume.metadata.name ?? "", uid: volume.metadata.uid
            )
        } catch let error as APIError where error.code == 404 {}
    }
}

import BerthAPI
import BerthKube

/// The decisions of volume binding that need no API call (upstream pkg/controller/volume/persistentvolume
/// util.go and storage/helpers): which class a claim asks for, whether a volume can serve a claim, and
/// which of the free volumes is the best one (the smallest that fits). The binding controller and the
/// scheduler's volume filter both decide through these, so a pod is never placed where its claim could
/// not bind.
public enum VolumeMatching {
    public typealias Claim = CoreV1.PersistentVolumeClaim
    public typealias Volume = CoreV1.PersistentVolume
    public typealias Class = StorageV1.StorageClass

    /// The annotations and finalizers upstream's binder, provisioners and scheduler write.
    public enum Keys {
        public static let bindCompleted = "pv.kubernetes.io/bind-completed"
        public static let boundByController = "pv.kubernetes.io/bound-by-controller"
        public static let provisionedBy = "pv.kubernetes.io/provisioned-by"
        public static let selectedNode = "volume.kubernetes.io/selected-node"
        public static let storageProvisioner = "volume.kubernetes.io/storage-provisioner"
        public static let betaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
        public static let betaStorageClass = "volume.beta.kubernetes.io/storage-class"
        public static let defaultClass = "storageclass.kubernetes.io/is-default-class"
        public static let betaDefaultClass = "storageclass.beta.kubernetes.io/is-default-class"
        public static let claimProtection = "kubernetes.io/pvc-protection"
        public static let volumeProtection = "kubernetes.io/pv-protection"
    }

    /// GetPersistentVolumeClaimClass: the beta annotation first (it wins upstream), then the field; ""
    /// is "no class".
    public static func className(_ claim: Claim) -> String {
        claim.metadata.annotations[Keys.betaStorageClass] ?? claim.spec.storageClassName ?? ""
    }

    /// GetPersistentVolumeClass.
    public static func className(_ volume: Volume) -> String {
        volume.metadata.annotations[Keys.betaStorageClass] ?? volume.spec.storageClassName ?? ""
    }

    /// Whether the class is annotated as the cluster's default.
    public static func isDefault(_ storageClass: Class) -> Bool {
        storageClass.metadata.annotations[Keys.defaultClass] == "true"
            || storageClass.metadata.annotations[Keys.betaDefaultClass] == "true"
    }

    /// The default class when several are annotated: the newest, then by name (upstream's
    /// GetDefaultClass since 1.26).
    public static func defaultClass(_ classes: [Class]) -> Class? {
        classes.filter(isDefault).max { a, b in
            let (ta, tb) = (a.metadata.creationTimestamp ?? .zero, b.metadata.creationTimestamp ?? .zero)
            return ta != tb ? ta < tb : (a.metadata.name ?? "") > (b.metadata.name ?? "")
        }
    }

    /// Whether the claim's class delays binding until a pod using it is scheduled.
    public static func delaysBinding(_ storageClass: Class?) -> Bool {
        storageClass?.volumeBindingMode == .waitForFirstConsumer
    }

    /// The storage the claim requests, in milli-units (0 when it names none).
    public static func requested(_ claim: Claim) -> Int64 {
        claim.spec.resources.requests["storage"]?.milliValue ?? 0
    }

    /// The volume's capacity, in milli-units.
    public static func capacity(_ volume: Volume) -> Int64 {
        volume.spec.capacity["storage"]?.milliValue ?? 0
    }

    /// IsVolumeBoundToClaim: the volume's claimRef names the claim (and its uid, if it has one).
    public static func isBound(_ volume: Volume, to claim: Claim) -> Bool {
        guard let ref = volume.spec.claimRef, ref.name == claim.metadata.name,
            ref.namespace == claim.metadata.namespace
        else { return false }
        return (ref.uid ?? "").isEmpty || ref.uid == claim.metadata.uid
    }

    /// CheckAccessModes: the volume offers every mode the claim asks for.
    public static func accessModesFit(_ claim: Claim, _ volume: Volume) -> Bool {
        Set(claim.spec.accessModes.map(\.rawValue)).isSubset(of: Set(volume.spec.accessModes.map(\.rawValue)))
    }

    /// checkVolumeModeMismatches: an unset mode is Filesystem on either side.
    public static func volumeModesFit(_ claim: Claim, _ volume: Volume) -> Bool {
        (claim.spec.volumeMode ?? .filesystem) == (volume.spec.volumeMode ?? .filesystem)
    }

    /// Whether the volume's node affinity lets a pod on a node with these labels reach it (no affinity:
    /// every node).
    public static func reachable(_ volume: Volume, nodeName: String, nodeLabels: [String: String]) -> Bool {
        guard let terms = volume.spec.nodeAffinity?.required?.nodeSelectorTerms else { return true }
        return terms.contains { term in
            if term.matchExpressions.isEmpty && term.matchFields.isEmpty { return false }
            for e in term.matchExpressions where !matches(e, nodeLabels[e.key]) { return false }
            for f in term.matchFields where !matches(f, f.key == "metadata.name" ? nodeName : nil) { return false }
            return true
        }
    }

    private static func matches(_ requirement: CoreV1.NodeSelectorRequirement, _ value: String?) -> Bool {
        switch requirement.operator.rawValue {
        case "In": return value.map(requirement.values.contains) ?? false
        case "NotIn": return value.map { !requirement.values.contains($0) } ?? true
        case "Exists": return value != nil
        case "DoesNotExist": return value == nil
        case "Gt", "Lt":
            guard let v = value.flatMap({ Int64($0) }), let bound = requirement.values.first.flatMap({ Int64($0) })
            else { return false }
            return requirement.operator.rawValue == "Gt" ? v > bound : v < bound
        default: return false
        }
    }

    /// The node a claim may bind for: none (any node) unless the scheduler chose one.
    public struct Node: Sendable {
        public var name: String
        public var labels: [String: String]
        public init(name: String, labels: [String: String]) {
            self.name = name
            self.labels = labels
        }
    }

    /// FindMatchingVolume: the volume pre-bound to the claim if it fits, else the smallest Available
    /// volume of the claim's class that fits it (capacity, access modes, volume mode, the claim's label
    /// selector, and the node's reach when `node` is given). Volumes of a class that delays binding are
    /// only chosen for a node (`node` set by the scheduler's choice), as upstream's `delayBinding`.
    public static func bestVolume(
        for claim: Claim, among volumes: [Volume], node: Node? = nil, delayBinding: Bool = false
    ) -> Volume? {
        let wanted = requested(claim)
        let requestedClass = className(claim)
        let selector = claim.spec.selector.map { BerthAPI.LabelSelector(object: $0.kubeJSON()) }
        var smallest: Volume?
        for volume in volumes {
            if !volumeModesFit(claim, volume) || volume.metadata.deletionTimestamp != nil { continue }
            let nodeFits = node.map { reachable(volume, nodeName: $0.name, nodeLabels: $0.labels) } ?? true
            if isBound(volume, to: claim) {
                // Pre-bound: only its size is checked, and the node's reach when binding for a node.
                if capacity(volume) < wanted { continue }
                return nodeFits ? volume : nil
            }
            if node == nil && delayBinding { continue }
            if volume.spec.claimRef != nil { continue }
            if let selector, !selector.matches(volume.metadata.labels) { continue }
            if className(volume) != requestedClass { continue }
            if !nodeFits || !accessModesFit(claim, volume) { continue }
            // A volume not Available yet (just made, or just released) is left for its next sync.
            if let phase = volume.status.phase, phase != .volumeAvailable { continue }
            if capacity(volume) >= wanted && (smallest.map { capacity($0) > capacity(volume) } ?? true) {
                smallest = volume
            }
        }
        return smallest
    }

    /// The volume's reference to the claim, as the binder writes it in claimRef.
    public static func reference(to claim: Claim) -> CoreV1.ObjectReference {
        var ref = CoreV1.ObjectReference()
        ref.kind = "PersistentVolumeClaim"
        ref.apiVersion = "v1"
        ref.namespace = claim.metadata.namespace
        ref.name = claim.metadata.name
        ref.uid = claim.metadata.uid
        ref.resourceVersion = claim.metadata.resourceVersion
        return ref
    }

    /// The claims a pod uses, by name: its persistentVolumeClaim volumes and the claim each generic
    /// ephemeral volume makes (`<pod>-<volume>`).
    public static func claimNames(of pod: CoreV1.Pod) -> [String] {
        pod.spec.volumes.compactMap { volume in
            if let source = volume.persistentVolumeClaim { return source.claimName }
            if volume.ephemeral != nil { return "\(pod.metadata.name ?? "")-\(volume.name)" }
            return nil
        }
    }
}

import BerthAPI
import BerthKube

/// kube-scheduler's VolumeBinding plugin over the claims, volumes and classes the scheduler's informers
/// hold. PreFilter refuses a pod whose claim does not exist or is unbound with Immediate binding (the
/// binder has yet to bind it); Filter keeps the pod where its bound volumes are reachable (their
/// nodeAffinity) and where each unbound WaitForFirstConsumer claim can be served — by a free volume
/// reachable from the node, or by its class's provisioner. Once a node is chosen, those claims are
/// annotated with `volume.kubernetes.io/selected-node` and the pod is bound when they are (PreBind).
struct VolumeBinding: Sendable {
    typealias Claim = CoreV1.PersistentVolumeClaim

    static let unboundImmediate = "pod has unbound immediate PersistentVolumeClaims"
    static let affinityConflict = "node(s) had volume node affinity conflict"
    static let noVolumeToBind = "node(s) didn't find available persistent volumes to bind"
    /// A provisioner that provisions nothing: such a class's claims bind only to volumes made by hand.
    static let noProvisioner = "kubernetes.io/no-provisioner"

    let claims: @Sendable (_ namespace: String, _ name: String) -> Claim?
    let volume: @Sendable (_ name: String) -> CoreV1.PersistentVolume?
    let volumes: @Sendable () -> [CoreV1.PersistentVolume]
    let storageClass: @Sendable (_ name: String) -> StorageV1.StorageClass?

    /// What the pod's claims ask of a node: bound volumes it must reach, and unbound claims it must
    /// serve (with whether a provisioner can make them anywhere).
    struct Needs: Sendable {
        var boundVolumes: [CoreV1.PersistentVolume] = []
        var staticClaims: [Claim] = []
        /// Claims the scheduler annotates with the chosen node.
        var delayed: [String] = []
    }

    enum PreFilter: Sendable {
        case fits(Needs)
        case unresolvable(String)
    }

    /// PreFilter: the pod's claims looked up, and refused as upstream refuses them.
    func prefilter(namespace: String, claimNames: [String]) -> PreFilter {
        var needs = Needs()
        var unboundImmediate = false
        for name in claimNames {
            guard let claim = claims(namespace, name) else {
                return .unresolvable("persistentvolumeclaim \"\(name)\" not found")
            }
            if claim.metadata.deletionTimestamp != nil {
                return .unresolvable("persistentvolumeclaim \"\(name)\" is being deleted")
            }
            if let volumeName = claim.spec.volumeName, !volumeName.isEmpty {
                // Bound (or pre-bound): its volume's reach limits the nodes; one not there yet, none.
                if let bound = volume(volumeName) { needs.boundVolumes.append(bound) }
                continue
            }
            let className = VolumeMatching.className(claim)
            let storageClass = className.isEmpty ? nil : self.storageClass(className)
            guard VolumeMatching.delaysBinding(storageClass) else {
                unboundImmediate = true
                continue
            }
            needs.delayed.append(name)
            if storageClass?.provisioner == Self.noProvisioner { needs.staticClaims.append(claim) }
        }
        if unboundImmediate { return .unresolvable(Self.unboundImmediate) }
        return .fits(needs)
    }

    /// Filter: why the node cannot serve the pod's volumes, nil when it can.
    static func filter(_ needs: Needs, nodeName: String, labels: [String: String], volumes: [CoreV1.PersistentVolume])
        -> String?
    {
        for bound in needs.boundVolumes
        where !VolumeMatching.reachable(bound, nodeName: nodeName, nodeLabels: labels) {
            return affinityConflict
        }
        let node = VolumeMatching.Node(name: nodeName, labels: labels)
        var taken: Set<String> = []
        for claim in needs.staticClaims {
            let free = volumes.filter { !taken.contains($0.metadata.name ?? "") }
            guard let match = VolumeMatching.bestVolume(for: claim, among: free, node: node, delayBinding: true)
            else { return noVolumeToBind }
            taken.insert(match.metadata.name ?? "")
        }
        return nil
    }
}

/// Why VolumeBinding's PreBind failed (the text follows upstream's `running PreBind plugin` message).
struct VolumeBindingError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

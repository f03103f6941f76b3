import BerthAPI
import BerthKube
import Foundation

/// Upstream's ClaimReplicaSets, the adopting half: a ReplicaSet that no controller owns and whose labels
/// match a Deployment's selector becomes that Deployment's, and so one of its old ReplicaSets. Without
/// this, a Deployment created over an existing ReplicaSet (kubernetes' rollover test, or a ReplicaSet
/// whose Deployment was deleted with `--cascade=orphan`) never scales that set down: its pods keep
/// running beside the rolled-out ones and the rollover never finishes.
extension DeploymentController {
    /// Index of ReplicaSets without a controller, by namespace.
    static let orphanIndex = "orphan-by-namespace"

    static func orphanNamespace(_ rs: ReplicaSet) -> [String] {
        guard rs.controllerRef == nil, let ns = rs.metadata.namespace else { return [] }
        return [ns]
    }

    /// Deployments in the ReplicaSet's namespace whose selector matches its labels (who may adopt it).
    func deploymentsSelecting(_ rs: ReplicaSet) -> [Deployment] {
        guard let ns = rs.metadata.namespace else { return [] }
        return deployments.list(namespace: ns).filter { d in
            let selector = LabelSelector(d.spec.selector)
            return !selector.isEmpty && selector.matches(rs.metadata.labels)
        }
    }

    /// Takes every orphaned, live ReplicaSet that `d` selects. Returns whether any was adopted (the
    /// informer then brings them back as owned, and the sync that follows counts them).
    func adoptOrphans(_ d: Deployment) async throws -> Bool {
        guard let ns = d.metadata.namespace, !d.isTerminating else { return false }
        let selector = LabelSelector(d.spec.selector)
        if selector.isEmpty { return false }
        var adopted = false
        for rs in sets.byIndex(Self.orphanIndex, ns) where !rs.isTerminating && selector.matches(rs.metadata.labels) {
            var claimed = rs
            claimed.metadata.ownerReferences.append(d.controllerOwnerReference)
            do {
                // The cached resourceVersion is the precondition: a set changed (or claimed) meanwhile
                // is looked at again when its event arrives.
                _ = try await client.update(claimed)
                adopted = true
                events.record(d, reason: "Adopted", message: "Adopted ReplicaSet \(rs.metadata.name ?? "")")
            } catch let e as APIError where e.code == 409 || e.code == 404 {
                continue
            }
        }
        return adopted
    }
}

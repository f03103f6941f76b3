import BerthAPI
import Foundation

/// Upstream's ClaimReplicaSets, the adopting half: a ReplicaSet that no controller owns and whose labels
/// match a Deployment's selector becomes that Deployment's, and so one of its old ReplicaSets. Without
/// this, a Deployment created over an existing ReplicaSet (kubernetes' rollover test, or a ReplicaSet
/// whose Deployment was deleted with `--cascade=orphan`) never scales that set down: its pods keep
/// running beside the rolled-out ones and the rollover never finishes.
extension DeploymentController {
    /// Index of ReplicaSets without a controller, by namespace.
    static let orphanIndex = "orphan-by-namespace"

    static func orphanNamespace(_ rs: JSON) -> [String] {
        guard Objects.controllerRef(rs) == nil, let ns = rs["metadata"]["namespace"].string else { return [] }
        return [ns]
    }

    /// Deployments in the ReplicaSet's namespace whose selector matches its labels (who may adopt it).
    func deploymentsSelecting(_ rs: JSON) -> [JSON] {
        guard let ns = rs["metadata"]["namespace"].string else { return [] }
        let labels = rs["metadata"]["labels"].stringMap
        return deployments.list(namespace: ns).filter { d in
            let selector = LabelSelector(object: d["spec"]["selector"])
            return !selector.isEmpty && selector.matches(labels)
        }
    }

    /// Takes every orphaned, live ReplicaSet that `d` selects. Returns whether any was adopted (the
    /// informer then brings them back as owned, and the sync that follows counts them).
    func adoptOrphans(_ d: JSON) async throws -> Bool {
        guard let ns = d["metadata"]["namespace"].string, !Objects.isTerminating(d) else { return false }
        let selector = LabelSelector(object: d["spec"]["selector"])
        if selector.isEmpty { return false }
        var adopted = false
        for rs in sets.byIndex(Self.orphanIndex, ns)
        where !Objects.isTerminating(rs) && selector.matches(rs["metadata"]["labels"].stringMap) {
            var u = rs
            var refs = rs["metadata"]["ownerReferences"].array ?? []
            refs.append(Objects.ownerReference(to: d, kind: "Deployment", apiVersion: "apps/v1"))
            u["metadata"]["ownerReferences"] = .array(refs)
            do {
                // The cached resourceVersion is the precondition: a set changed (or claimed) meanwhile
                // is looked at again when its event arrives.
                try await client.update(Registry.replicaSets, u)
                adopted = true
                events.record(
                    d, reason: "Adopted", message: "Adopted ReplicaSet \(rs["metadata"]["name"].string ?? "")")
            } catch let e as APIError where e.code == 409 || e.code == 404 {
                continue
            }
        }
        return adopted
    }
}

import BerthAPI
import BerthKube

/// Upstream's ControllerRefManager, both halves: of `candidates`, those no controller owns that
/// `selector` matches (and `eligible` admits) become `owner`'s; those `owner` controls that the selector
/// no longer matches are released. Each write is conditional on the cached resourceVersion, so an
/// object changed meanwhile is skipped and looked at again when its event arrives. Returns whether
/// anything was written (the informer brings the objects back changed, and their events sync the
/// owner again). The StatefulSet controller claims pods with it, the workload controllers revisions.
enum ControllerRefManager {
    static func claim<Owner: KubeObject & HasObjectMeta, Object: KubeObject & HasObjectMeta>(
        _ candidates: [Object], for owner: Owner, selector: BerthAPI.LabelSelector, client: any KubeClient,
        eligible: (Object) -> Bool = { _ in true }
    ) async throws -> Bool {
        let uid = owner.metadata.uid ?? ""
        var wrote = false
        for object in candidates where !object.isTerminating {
            let matches = selector.matches(object.metadata.labels)
            var claimed = object
            if object.controllerRef == nil && matches && eligible(object) {
                claimed.metadata.ownerReferences.append(owner.controllerOwnerReference)
            } else if object.controllerRef?.uid == uid && !matches {
                claimed.metadata.ownerReferences.removeAll { $0.uid == uid }
            } else {
                continue
            }
            do {
                _ = try await client.update(claimed)
                wrote = true
            } catch let e as APIError where e.code == 409 || e.code == 404 {
                continue
            }
        }
        return wrote
    }
}

import BerthAPI
import BerthKube
import Foundation

/// The DaemonSet's history (upstream pkg/controller/daemon/update.go constructHistory and cleanupHistory):
/// one ControllerRevision per template the DaemonSet has had, named `<ds>-<hash>` after the hash its pods
/// are labelled with, numbered in the order the templates were current. A template that comes back (a
/// `kubectl rollout undo`) gets its old revision renumbered as the newest rather than a second copy.
extension DaemonSetController {
    /// Revisions by the UID of their controller.
    static let revisionOwnerIndex = "controller"

    /// Makes sure the current template has the newest revision. A write the cache has not shown yet
    /// fails the next one with a conflict, and the sync is retried.
    func constructHistory(_ ds: DaemonSet, hash: String) async throws {
        let owned = revisions.byIndex(Self.revisionOwnerIndex, ds.metadata.uid ?? "")
        let name = ControllerHistory.name(owner: ds.metadata.name ?? "", hash: hash)
        let next = ControllerHistory.nextRevision(owned)
        if let current = owned.first(where: { $0.metadata.name == name }) {
            // The newest already (or the only one holding the highest number): nothing to renumber.
            let highest = owned.map(\.revision).max() ?? 0
            if current.revision == highest && owned.filter({ $0.revision == highest }).count == 1 { return }
            var renumbered = current
            renumbered.revision = next
            _ = try await client.update(renumbered)
            return
        }
        let data = ControllerHistory.patch(ds.spec.template)
        let cr = ControllerHistory.make(
            owner: ds, templateLabels: ds.spec.template.metadata.labels, data: data, hash: hash, revision: next)
        do {
            _ = try await client.create(cr)
        } catch let e as APIError where e.code == 409 {
            // Ours, written by a sync the cache has not shown yet: fine. Anyone else's: the names
            // collide, and as upstream the collision count goes up, which salts the hash (and so the
            // revision's name and the pods' label) on the next sync.
            let existing = try await client.get(
                AppsV1.ControllerRevision.self, namespace: ds.metadata.namespace, name: name)
            guard let existing else { throw e }  // gone meanwhile: the retry creates it
            if existing.controllerRef?.uid == ds.metadata.uid { return }
            var bumped = ds
            bumped.status.collisionCount = (ds.status.collisionCount ?? 0) + 1
            _ = try await client.updateStatus(bumped)
            throw e
        }
    }

    /// Deletes the oldest revisions no pod runs beyond `revisionHistoryLimit` (10 by default).
    func cleanupHistory(_ ds: DaemonSet, hash: String, pods owned: [Pod]) async throws {
        let history = revisions.byIndex(Self.revisionOwnerIndex, ds.metadata.uid ?? "")
        let limit = Int(ds.spec.revisionHistoryLimit ?? 10)
        if history.count <= limit + 1 { return }
        let live = Set(owned.filter { !$0.isTerminating }.compactMap { $0.metadata.labels[Self.hashLabel] })
        let current = ControllerHistory.name(owner: ds.metadata.name ?? "", hash: hash)
        for cr in ControllerHistory.surplus(history, live: live, keep: [current], limit: limit) {
            do {
                try await client.delete(
                    AppsV1.ControllerRevision.self, namespace: cr.metadata.namespace, name: cr.metadata.name ?? "",
                    uid: cr.metadata.uid)
            } catch let e as APIError where e.code == 404 {}
        }
    }
}

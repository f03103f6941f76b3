import BerthAPI
import BerthKube
import Foundation

/// A Deployment's status as upstream's syncRolloutStatus writes it: replica counts summed over its
/// ReplicaSets, the Available and Progressing conditions (what `kubectl rollout status` waits on,
/// including ProgressDeadlineExceeded), and the revision annotation kept in step with the new set.
extension DeploymentController {
    func writeStatus(_ plan: Plan, reason: String?) async throws {
        var p = plan
        let paused = p.d.spec.paused == true
        if !paused { try await promote(&p) }
        let d = p.d
        let available = p.all.reduce(Int64(0)) { $0 + Int64($1.status.availableReplicas ?? 0) }
        var st = d.status
        st.observedGeneration = d.metadata.generation
        // Zero counts are left out, as Go's omitempty leaves them out.
        func count(_ n: Int64) -> Int32? { n == 0 ? nil : Int32(clamping: n) }
        st.replicas = count(p.all.reduce(0) { $0 + Int64($1.status.replicas) })
        st.updatedReplicas = count(Int64(p.newRS?.status.replicas ?? 0))
        st.readyReplicas = count(p.all.reduce(0) { $0 + Int64($1.status.readyReplicas ?? 0) })
        st.availableReplicas = count(available)
        st.unavailableReplicas = count(max(0, p.replicas - available))
        let now = MetaV1.Time.now()
        var conds = st.conditions
        func setCondition(
            _ type: AppsV1.DeploymentConditionType, _ status: CoreV1.ConditionStatus, _ reason: String,
            _ message: String
        ) {
            guard let i = conds.firstIndex(where: { $0.type == type }) else {
                conds.append(
                    AppsV1.DeploymentCondition(
                        type: type, status: status, lastUpdateTime: now, lastTransitionTime: now, reason: reason,
                        message: message))
                return
            }
            if conds[i].status != status { conds[i].lastTransitionTime = now }
            conds[i].lastUpdateTime = now
            conds[i].status = status
            conds[i].reason = reason
            conds[i].message = message
        }
        let isAvailable = available >= p.replicas - p.maxUnavailable
        if conds.first(where: { $0.type == .available })?.status != (isAvailable ? .true : .false) {
            setCondition(
                .available, isAvailable ? .true : .false,
                isAvailable ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                isAvailable ? "Deployment has minimum availability." : "Deployment does not have minimum availability.")
        }
        let newName = p.newRS?.metadata.name ?? ""
        let progressing = conds.first { $0.type == .progressing }
        if paused {
            if progressing?.reason != "DeploymentPaused" {
                setCondition(.progressing, .unknown, "DeploymentPaused", "Deployment is paused")
            }
        } else if isComplete(p) {
            if progressing?.reason != "NewReplicaSetAvailable" {
                setCondition(
                    .progressing, .true, "NewReplicaSetAvailable",
                    "ReplicaSet \"\(newName)\" has successfully progressed.")
            }
        } else if progressing?.reason == "DeploymentPaused" {
            setCondition(.progressing, .unknown, "DeploymentResumed", "Deployment is resumed")
        } else if let reason {
            let message =
                reason == "NewReplicaSetCreated"
                ? "Created new replica set \"\(newName)\"" : "ReplicaSet \"\(newName)\" is progressing."
            setCondition(.progressing, .true, reason, message)
        } else if progressing == nil {
            setCondition(.progressing, .true, "FoundNewReplicaSet", "Found new replica set \"\(newName)\"")
        } else if madeProgress(old: d.status, new: st) {
            setCondition(.progressing, .true, "ReplicaSetUpdated", "ReplicaSet \"\(newName)\" is progressing.")
        } else if let deadline = d.spec.progressDeadlineSeconds, let c = progressing,
            c.reason != "ProgressDeadlineExceeded", let last = c.lastUpdateTime
        {
            let elapsed = Date().timeIntervalSince(last.date)
            if elapsed >= Double(deadline) {
                setCondition(
                    .progressing, .false, "ProgressDeadlineExceeded",
                    "ReplicaSet \"\(newName)\" has timed out progressing.")
                events.record(
                    d, type: "Warning", reason: "ProgressDeadlineExceeded",
                    message: "Deployment \"\(d.metadata.name ?? "")\" has timed out progressing.")
            } else {
                queue.add(d.cacheKey, after: .milliseconds(Int((Double(deadline) - elapsed) * 1000) + 100))
            }
        }
        st.conditions = conds
        // Keep the Deployment's revision annotation in step with its new ReplicaSet.
        var u = d
        if let n = p.newRS, !paused, u.metadata.annotations[Self.revisionKey] != String(Self.revision(n)) {
            u.metadata.annotations[Self.revisionKey] = String(Self.revision(n))
            // A failed write leaves the resourceVersion as it was: the next sync tries again.
            u = (try? await client.update(u)) ?? u
            if u.metadata.resourceVersion == d.metadata.resourceVersion { return }
        }
        if st == u.status { return }
        u.status = st
        do {
            _ = try await client.updateStatus(u)
        } catch let e as APIError where e.code == 409 || e.code == 404 {
            // A newer version is on its way through the informer; it will be synced again.
        }
    }

    /// Upstream's DeploymentProgressing: more updated, ready or available replicas, or fewer old ones.
    func madeProgress(old: AppsV1.DeploymentStatus, new: AppsV1.DeploymentStatus) -> Bool {
        (new.updatedReplicas ?? 0) > (old.updatedReplicas ?? 0)
            || (new.readyReplicas ?? 0) > (old.readyReplicas ?? 0)
            || (new.availableReplicas ?? 0) > (old.availableReplicas ?? 0)
            || (new.replicas ?? 0) < (old.replicas ?? 0) && (new.updatedReplicas ?? 0) > 0
    }
}

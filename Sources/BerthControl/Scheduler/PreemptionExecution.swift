import BerthAPI
import BerthKube
import Logging

extension Scheduler {
    /// Carries out a preemption the cache decided, as kube-scheduler's preemption executor does: each
    /// victim first gets a DisruptionTarget condition (so its owner and `kubectl describe` can tell
    /// a preemption from a crash), then is deleted with its grace period, and a "Preempted" event says
    /// by whom; lower-priority pods nominated to the same node lose their nomination, since they may no
    /// longer fit there. The preemptor is retried when the victims' deletion reaches the cache.
    func evictVictims(_ preemption: Preemption) async {
        let preemptor = preemption.preemptor
        for pod in preemption.displaced {
            await withdrawNomination(pod)
        }
        await withTaskGroup(of: Void.self) { group in
            for victim in preemption.victims where !victim.terminating {
                group.addTask { await evict(victim, for: preemptor, node: preemption.node) }
            }
        }
    }

    private func evict(_ victim: PreemptionVictim, for preemptor: PodInfo, node: String) async {
        do {
            guard let pod = try await markDisruptionTarget(victim, preemptor: preemptor) else { return }
            try await client.delete(
                CoreV1.Pod.self, namespace: victim.namespace, name: victim.name, uid: victim.uid)
            events.record(
                pod, reason: "Preempted", message: "Preempted by pod \(preemptor.uid) on node \(node)")
        } catch let e as APIError where e.code == 404 || e.code == 409 {
            // Gone already, or replaced by a pod of the same name that was not chosen.
        } catch {
            logger.warning(
                "preempting a pod failed",
                metadata: ["victim": "\(victim.key)", "preemptor": "\(preemptor.key)", "error": "\(error)"])
        }
    }

    /// Adds DisruptionTarget=True (reason PreemptionByScheduler) unless it is there; nil when the
    /// pod is gone or is no longer the one chosen.
    private func markDisruptionTarget(_ victim: PreemptionVictim, preemptor: PodInfo) async throws -> CoreV1.Pod? {
        for attempt in 0..<3 {
            guard var pod = try await client.get(CoreV1.Pod.self, namespace: victim.namespace, name: victim.name),
                pod.metadata.uid == victim.uid
            else { return nil }
            if pod.status.conditions.contains(where: {
                $0.type == .disruptionTarget && $0.status == .true && $0.reason == "PreemptionByScheduler"
            }) {
                return pod
            }
            var condition = CoreV1.PodCondition()
            condition.type = .disruptionTarget
            condition.status = .true
            condition.reason = "PreemptionByScheduler"
            condition.message = "\(preemptor.schedulerName): preempting to accommodate a higher priority pod"
            condition.lastTransitionTime = .now()
            pod.status.conditions.removeAll { $0.type == .disruptionTarget }
            pod.status.conditions.append(condition)
            do {
                return try await client.updateStatus(pod)
            } catch let e as APIError where e.code == 409 && attempt < 2 {
                continue
            }
        }
        return nil
    }

    /// Clears status.nominatedNodeName of a pending pod (a higher-priority pod took its room).
    private func withdrawNomination(_ pending: PodInfo) async {
        for _ in 0..<3 {
            guard var pod = try? await client.get(CoreV1.Pod.self, namespace: pending.namespace, name: pending.name),
                pod.metadata.uid == pending.uid, !(pod.status.nominatedNodeName ?? "").isEmpty
            else { return }
            pod.status.nominatedNodeName = nil
            if (try? await client.updateStatus(pod)) != nil { return }
        }
    }
}

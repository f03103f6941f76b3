extension Scheduler.Cache {
    /// Records that the pod waits for room on `node` (called with `lock` held).
    func nominate(_ key: String, on node: String) {
        if let old = nominations[key] {
            if old == node { return }
            clearNomination(key)
        }
        nominations[key] = node
        nominatedOnNode[node, default: []].insert(key)
    }

    func clearNomination(_ key: String) {
        guard let node = nominations.removeValue(forKey: key) else { return }
        nominatedOnNode[node]?.remove(key)
        if nominatedOnNode[node]?.isEmpty == true { nominatedOnNode[node] = nil }
    }

    /// Per node, what the pods nominated there with at least `pod`'s priority ask for: the room they
    /// preempted is theirs, so a pod of lower priority must not take it while the victims terminate
    /// (kube-scheduler adds these pods to the node before filtering). A pod never counts itself.
    func nominatedRequests(for pod: PodInfo) -> [String: Resources] {
        if nominations.isEmpty { return [:] }
        var out: [String: Resources] = [:]
        for (node, keys) in nominatedOnNode {
            for key in keys where key != pod.key {
                guard let other = pending[key], other.priority >= pod.priority else { continue }
                out[node, default: Resources()] += other.requests
            }
        }
        return out
    }

    /// The pods nominated to `node` with a priority below `priority` (their nomination is withdrawn
    /// when a pod of higher priority preempts there: they may no longer fit).
    func nominatedBelow(_ priority: Int64, on node: String) -> [PodInfo] {
        (nominatedOnNode[node] ?? []).compactMap { pending[$0] }.filter { $0.priority < priority }
    }
}

/// What one sync of a StatefulSet does next, decided from its pods alone (upstream's
/// stateful_set_control.go updateStatefulSet, without the writes): kept apart from the controller so
/// the ordering rules are tested without a cluster.
///
/// Pods are numbered from `spec.ordinals.start`. OrderedReady ("monotonic") creates them one at a
/// time in order, each only once every lower one is Running and Ready (and available for
/// minReadySeconds), and removes them from the highest ordinal down, one at a time; Parallel creates and
/// removes them all at once. A RollingUpdate then replaces, from the highest ordinal down to
/// `partition`, one pod at a time the pods not at the update revision, each only once the ones above
/// are healthy again; OnDelete leaves them until someone deletes them.
enum StatefulSetPlan {
    /// One existing pod of the set, as the plan sees it.
    struct Member: Equatable, Sendable {
        var ordinal: Int
        /// Its `controller-revision-hash` label (a ControllerRevision's name).
        var revision: String
        var terminating = false
        /// Succeeded or Failed: replaced (deleted, then created again).
        var finished = false
        /// Running with the Ready condition true.
        var runningAndReady = false
        /// Ready for minReadySeconds.
        var available = false

        var healthy: Bool { runningAndReady && !terminating }
    }

    struct Input: Sendable {
        var replicas: Int
        var start: Int = 0
        var parallel = false
        var onDelete = false
        /// `rollingUpdate.partition` (RollingUpdate only); nil when rollingUpdate is absent.
        var partition: Int?
        var currentRevision: String
        var updateRevision: String
        /// status.currentReplicas, which decides new pods' revision when rollingUpdate is absent.
        var currentReplicas: Int = 0
    }

    enum Action: Equatable, Sendable {
        /// Create the pod with this ordinal at this revision (its claims first).
        case create(ordinal: Int, revision: String)
        /// Delete the pod with this ordinal (scale down, a finished pod, or an update).
        case delete(ordinal: Int)
    }

    /// The writes of this sync, in order. An OrderedReady set returns at most one.
    static func plan(_ input: Input, members: [Member]) -> [Action] {
        let monotonic = !input.parallel
        let range = input.start..<(input.start + max(0, input.replicas))
        var slots: [Int: Member] = [:]
        var condemned: [Member] = []
        for m in members {
            if range.contains(m.ordinal) { slots[m.ordinal] = m } else { condemned.append(m) }
        }
        condemned.sort { $0.ordinal > $1.ordinal }
        var actions: [Action] = []
        // The replicas, lowest first: missing ones created, finished ones replaced.
        for ordinal in range {
            guard let m = slots[ordinal] else {
                actions.append(.create(ordinal: ordinal, revision: revisionForNewPod(input, ordinal: ordinal)))
                if monotonic { return actions }
                continue
            }
            if m.finished {
                if !m.terminating { actions.append(.delete(ordinal: ordinal)) }
                if monotonic { return actions }
                continue
            }
            if monotonic && (m.terminating || !m.runningAndReady || !m.available) { return actions }
        }
        // Scale down, highest first; OrderedReady one at a time, after the one before is gone.
        for m in condemned {
            if m.terminating {
                if monotonic { return actions }
                continue
            }
            if monotonic && m.runningAndReady && !m.available { return actions }
            actions.append(.delete(ordinal: m.ordinal))
            if monotonic { return actions }
        }
        if input.onDelete { return actions }
        // Rolling update: from the highest ordinal down to the partition, one pod at a time.
        let floor = input.start + max(0, input.partition ?? 0)
        for ordinal in range.reversed() where ordinal >= floor {
            guard let m = slots[ordinal] else { return actions }  // being created (Parallel)
            if m.revision != input.updateRevision && !m.terminating {
                actions.append(.delete(ordinal: ordinal))
                return actions
            }
            if !m.healthy { return actions }
        }
        return actions
    }

    /// newVersionedStatefulSetPod: below the partition (or, without rollingUpdate, within the current
    /// replicas) a pod is made at the current revision, else at the update revision.
    static func revisionForNewPod(_ input: Input, ordinal: Int) -> String {
        guard !input.onDelete else { return input.updateRevision }
        if let partition = input.partition {
            return ordinal < input.start + partition ? input.currentRevision : input.updateRevision
        }
        return ordinal < input.start + input.currentReplicas ? input.currentRevision : input.updateRevision
    }

    /// The ordinal of a pod named `<set>-<n>` (nil for any other name: not one of the set's).
    static func ordinal(podName: String, setName: String) -> Int? {
        guard podName.hasPrefix(setName + "-") else { return nil }
        let suffix = podName.dropFirst(setName.count + 1)
        guard !suffix.isEmpty, suffix.allSatisfy(\.isNumber), let n = Int(suffix) else { return nil }
        return n
    }
}

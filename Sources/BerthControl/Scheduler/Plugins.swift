import BerthAPI
import BerthKube

/// kube-scheduler's default filter and score plugins over `NodeInfo`, in its order and with its reasons
/// (the texts `kubectl describe pod` shows in FailedScheduling events).
enum Reasons {
    static let unschedulable = "node(s) were unschedulable"
    static let affinity = "node(s) didn't match Pod's node affinity/selector"
    static let ports = "node(s) didn't have free ports for the requested pod ports"
    static let tooManyPods = "Too many pods"
    static let cpu = "Insufficient cpu"
    static let memory = "Insufficient memory"
    static let storage = "Insufficient ephemeral-storage"
    static let spread = "node(s) didn't match pod topology spread constraints"
    static let spreadLabel = "node(s) didn't match pod topology spread constraints (missing required label)"
    static let existingAnti = "node(s) didn't satisfy existing pods anti-affinity rules"
    static let podAffinity = "node(s) didn't match pod affinity rules"
    static let podAnti = "node(s) didn't match pod anti-affinity rules"
    /// VolumeRestrictions: a ReadWriteOncePod claim of the pod's is in use by another pod.
    static let readWriteOncePod =
        "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"
    static func taint(_ t: Taint) -> String { "node(s) had untolerated taint \(t.text)" }
}

/// NodeResourcesFit: what a node cannot hold of a pod's requests (one more pod counts against `pods`).
struct Shortfall {
    var pods = false, cpu = false, memory = false, storage = false
    var none: Bool { !(pods || cpu || memory || storage) }
    init(want: Resources, allocatable free: Resources, requested used: Resources) {
        pods = used.pods + 1 > free.pods
        cpu = want.milliCPU > 0 && want.milliCPU > free.milliCPU - used.milliCPU
        memory = want.memory > 0 && want.memory > free.memory - used.memory
        storage = want.ephemeralStorage > 0 && want.ephemeralStorage > free.ephemeralStorage - used.ephemeralStorage
    }
    /// Upstream's reasons, in its order.
    var reasons: [String] {
        [(pods, Reasons.tooManyPods), (cpu, Reasons.cpu), (memory, Reasons.memory), (storage, Reasons.storage)].filter(
            \.0
        ).map(\.1)
    }
}

/// Per-pod precomputation over the whole cluster, done once before the nodes are filtered
/// (kube-scheduler's PreFilter): topology domains of matching pods, spreading counts.
struct CycleState {
    /// Per required affinity term: domains (topology values) that hold a matching pod.
    var affinityDomains: [Set<String>] = []
    /// True when no pod anywhere matches the pod's affinity terms but the pod matches them itself
    /// (the first pod of a group may go anywhere, as upstream allows).
    var affinitySelfMatch = false
    var antiDomains: [Set<String>] = []
    /// "key=value" domains forbidden by existing pods' required anti-affinity.
    var forbidden: Set<String> = []
    /// Per hard spreading constraint: matching pods per domain, and the minimum over eligible domains.
    var spreadCounts: [[String: Int64]] = []
    var spreadMin: [Int64] = []
    /// Preferred pod (anti-)affinity: weight per "key=value" domain.
    var preferredDomainWeights: [String: Int64] = [:]
    /// The pod's nodeSelector as label symbols; nil when no node can match it.
    var selector: CompiledSelector?
    /// What the pod's claims ask of a node (VolumeBinding), nil for a pod without claims.
    var volumes: VolumeBinding.Needs?
    /// The volumes an unbound claim of a class without a provisioner may bind to.
    var freeVolumes: [CoreV1.PersistentVolume] = []
    /// What pods of at least this pod's priority, nominated to a node after preempting there, will
    /// take of it (by node name), and those nodes' table slots (they leave the filter's fast path).
    var nominated: [String: Resources] = [:]
    var nominatedSlots: Set<Int> = []
    /// VolumeRestrictions: the pods that hold a ReadWriteOncePod claim this pod uses, with their nodes
    /// (upstream counts them in PreFilter and fails every node in Filter while any remains — so
    /// preemption may remove a holder of lower priority where it runs).
    var readWriteOncePodHolders: [String: String] = [:]
    /// Nodes that pods of at least this pod's priority using such a claim are nominated to: theirs once
    /// their victims are gone (upstream adds nominated pods to the node before filtering).
    var readWriteOncePodNominated: Set<String> = []
}

extension Scheduler.Cache {
    /// Node affinity/selector match (NodeAffinity filter).
    static func nodeMatches(_ pod: PodInfo, _ node: NodeInfo, _ s: CycleState) -> Bool {
        if !pod.nodeSelector.isEmpty {
            guard let selector = s.selector, selector.matches(node) else { return false }
        }
        if let terms = pod.requiredTerms {
            if !terms.contains(where: { $0.matches(node) }) { return false }
        }
        return true
    }

    /// PreFilter: everything that needs a look at all placed pods.
    /// `excluding`: placed pods to count as gone (preemption asks how the cluster looks without its victims).
    func prepare(_ pod: PodInfo, excluding gone: Set<String> = []) -> CycleState {
        var s = CycleState()
        s.selector = CompiledSelector(pod.nodeSelector, symbols)
        // Only hard spreading counts pods here: soft (ScheduleAnyway) constraints are counted by the
        // spread score over the nodes it scores, so a pod with only those must not walk every placed pod.
        let hard = pod.spread.filter(\.hard)
        let needsPods =
            !pod.affinity.isEmpty || !pod.antiAffinity.isEmpty || !hard.isEmpty
            || !pod.preferredAffinity.isEmpty || !pod.preferredAntiAffinity.isEmpty
        if !antiAffinityPods.isEmpty {
            for (key, entry) in antiAffinityPods where gone.isEmpty || !gone.contains(key) {
                guard let node = nodes[entry.node] else { continue }
                for term in entry.pod.antiAffinity where term.matches(namespace: pod.namespace, labels: pod.labels) {
                    if let v = node.labels[term.topologyKey] { s.forbidden.insert(term.topologyKey + "=" + v) }
                }
            }
        }
        guard needsPods else { return s }
        s.affinityDomains = Array(repeating: [], count: pod.affinity.count)
        s.antiDomains = Array(repeating: [], count: pod.antiAffinity.count)
        s.spreadCounts = Array(repeating: [:], count: hard.count)
        var anyAffinityMatch = false
        for node in table.nodes {
            // Spreading counts domains of nodes the pod could go to (node affinity/selector).
            let eligible = Self.nodeMatches(pod, node, s)
            for (i, c) in hard.enumerated() where eligible {
                if let v = node.labels[c.topologyKey], s.spreadCounts[i][v] == nil { s.spreadCounts[i][v] = 0 }
            }
            for (key, p) in node.pods where gone.isEmpty || !gone.contains(key) {
                for (i, t) in pod.affinity.enumerated() where t.matches(namespace: p.namespace, labels: p.labels) {
                    anyAffinityMatch = true
                    if let v = node.labels[t.topologyKey] { s.affinityDomains[i].insert(v) }
                }
                for (i, t) in pod.antiAffinity.enumerated() where t.matches(namespace: p.namespace, labels: p.labels) {
                    if let v = node.labels[t.topologyKey] { s.antiDomains[i].insert(v) }
                }
                for t in pod.preferredAffinity where t.matches(namespace: p.namespace, labels: p.labels) {
                    if let v = node.labels[t.topologyKey] {
                        s.preferredDomainWeights[t.topologyKey + "=" + v, default: 0] += t.weight
                    }
                }
                for t in pod.preferredAntiAffinity where t.matches(namespace: p.namespace, labels: p.labels) {
                    if let v = node.labels[t.topologyKey] {
                        s.preferredDomainWeights[t.topologyKey + "=" + v, default: 0] -= t.weight
                    }
                }
                if eligible {
                    for (i, c) in hard.enumerated() where c.counts(p.namespace, p.labels, podNamespace: pod.namespace) {
                        if let v = node.labels[c.topologyKey] { s.spreadCounts[i][v, default: 0] += 1 }
                    }
                }
            }
        }
        s.spreadMin = s.spreadCounts.enumerated().map { i, counts in
            // Fewer domains than minDomains: the global minimum is treated as 0.
            counts.count < Int(hard[i].minDomains) ? 0 : (counts.values.min() ?? 0)
        }
        if !anyAffinityMatch && !pod.affinity.isEmpty {
            s.affinitySelfMatch = pod.affinity.allSatisfy { $0.matches(namespace: pod.namespace, labels: pod.labels) }
        }
        return s
    }

    /// Filter: nil when the pod fits the node, else the reasons it does not.
    func filter(_ pod: PodInfo, _ node: NodeInfo, _ s: CycleState) -> [String]? {
        if !node.plain {
            if node.unschedulable
                && !pod.tolerations.contains(where: {
                    $0.tolerates(Taint(key: "node.kubernetes.io/unschedulable", effect: "NoSchedule"))
                })
            {
                return [Reasons.unschedulable]
            }
            for t in node.taints where t.effect == "NoSchedule" || t.effect == "NoExecute" {
                if !pod.tolerations.contains(where: { $0.tolerates(t) }) { return [Reasons.taint(t)] }
            }
        }
        if !Self.nodeMatches(pod, node, s) { return [Reasons.affinity] }
        for hp in pod.hostPorts where node.usedPorts[hp] != nil { return [Reasons.ports] }
        var requested = node.requested
        if !s.nominated.isEmpty, let promised = s.nominated[node.name] { requested += promised }
        let short = Shortfall(want: pod.requests, allocatable: node.allocatable, requested: requested)
        if !short.none { return short.reasons }
        // A holder counts unless it is on this node and gone from it (a preemption trial removed it).
        if s.readWriteOncePodNominated.contains(node.name)
            || s.readWriteOncePodHolders.contains(where: { $0.value != node.name || node.pods[$0.key] != nil })
        {
            return [Reasons.readWriteOncePod]
        }
        if !s.spreadCounts.isEmpty {
            let hard = pod.spread.filter(\.hard)
            for (i, c) in hard.enumerated() {
                guard let v = node.labels[c.topologyKey] else { return [Reasons.spreadLabel] }
                let selfMatch: Int64 = c.counts(pod.namespace, pod.labels, podNamespace: pod.namespace) ? 1 : 0
                if (s.spreadCounts[i][v] ?? 0) + selfMatch - s.spreadMin[i] > c.maxSkew { return [Reasons.spread] }
            }
        }
        if !s.forbidden.isEmpty {
            for (k, v) in node.labels where s.forbidden.contains(k + "=" + v) { return [Reasons.existingAnti] }
        }
        for (i, t) in pod.affinity.enumerated() {
            guard let v = node.labels[t.topologyKey] else { return [Reasons.podAffinity] }
            if !s.affinityDomains[i].contains(v) && !s.affinitySelfMatch { return [Reasons.podAffinity] }
        }
        for (i, t) in pod.antiAffinity.enumerated() {
            if let v = node.labels[t.topologyKey], s.antiDomains[i].contains(v) { return [Reasons.podAnti] }
        }
        if let needs = s.volumes,
            let why = VolumeBinding.filter(needs, nodeName: node.name, labels: node.labels, volumes: s.freeVolumes)
        {
            return [why]
        }
        return nil
    }

    /// Scores the feasible nodes (table indexes; 0…100 per plugin, weighted as kube-scheduler's
    /// defaults) and returns the position of the best one in `feasible`; among equal scores one is
    /// drawn at random, as kube-scheduler's selectHost does.
    func pickBest(_ pod: PodInfo, _ feasible: [Int], _ s: CycleState) -> Int {
        if feasible.count == 1 { return 0 }
        let n = feasible.count
        var total = [Int64](repeating: 0, count: n)
        // NodeResourcesFit (LeastAllocated, weight 1) counts every pod, this one and those placed, with
        // upstream's defaults for containers without requests (100m, 200 MiB): a node holding ten pods
        // without requests is fuller than an empty one.
        let podCPU = pod.nonZero.milliCPU, podMem = pod.nonZero.memory
        // NodeResourcesBalancedAllocation (weight 1) looks at real requests, and skips a pod that asks
        // for no CPU and no memory (upstream since kubernetes#129138).
        let balanced = pod.requests.milliCPU > 0 || pod.requests.memory > 0
        var anyTainted = false
        table.facts.withUnsafeBufferPointer { facts in
            for i in 0..<n {
                let f = facts[feasible[i]]
                anyTainted = anyTainted || f.tainted
                total[i] = Self.leastAllocated(
                    cap: (f.allocatable.milliCPU, f.allocatable.memory),
                    used: (f.nonZeroRequested.milliCPU + podCPU, f.nonZeroRequested.memory + podMem))
                if balanced {
                    total[i] += Self.balancedAllocation(
                        cap: (f.allocatable.milliCPU, f.allocatable.memory),
                        used: (f.requested.milliCPU + pod.requests.milliCPU, f.requested.memory + pod.requests.memory))
                }
            }
        }
        // NodeAffinity preferred terms (weight 2), normalized to the best node.
        if !pod.preferredTerms.isEmpty {
            let raw = feasible.map { idx in
                let node = table.nodes[idx]
                return pod.preferredTerms.reduce(Int64(0)) { $0 + ($1.term.matches(node) ? $1.weight : 0) }
            }
            let top = raw.max() ?? 0
            if top > 0 { for i in 0..<n { total[i] += 2 * raw[i] * 100 / top } }
        }
        // TaintToleration (weight 3): fewer untolerated PreferNoSchedule taints is better. Most nodes
        // have no taints at all, so only tainted ones are looked at.
        if anyTainted {
            var counts = [Int64](repeating: 0, count: n)
            var worst: Int64 = 0
            for i in 0..<n where table.facts[feasible[i]].tainted {
                var c: Int64 = 0
                for t in table.nodes[feasible[i]].taints
                where t.effect == "PreferNoSchedule" && !pod.tolerations.contains(where: { $0.tolerates(t) }) { c += 1 }
                counts[i] = c
                worst = max(worst, c)
            }
            for i in 0..<n { total[i] += 3 * (worst == 0 ? 100 : (worst - counts[i]) * 100 / worst) }
        } else {
            for i in 0..<n { total[i] += 300 }
        }
        // InterPodAffinity preferred terms (weight 2), min-max normalized.
        if !s.preferredDomainWeights.isEmpty {
            let raw = feasible.map { idx in
                table.nodes[idx].labels.reduce(Int64(0)) {
                    $0 + (s.preferredDomainWeights[$1.key + "=" + $1.value] ?? 0)
                }
            }
            let lo = raw.min() ?? 0, hi = raw.max() ?? 0
            if hi > lo { for i in 0..<n { total[i] += 2 * (raw[i] - lo) * 100 / (hi - lo) } }
        }
        // PodTopologySpread (weight 2): the pod's ScheduleAnyway constraints, or the system defaults.
        if let spread = softSpread(for: pod) {
            let scores = spreadScores(pod, spread, feasible, s)
            for i in 0..<n { total[i] += 2 * scores[i] }
        }
        var best = 0, ties = 1
        for i in 1..<n {
            if total[i] > total[best] {
                best = i; ties = 1
            } else if total[i] == total[best] {
                ties += 1
                if UInt64.random(in: 0..<UInt64(ties), using: &rng) == 0 { best = i }
            }
        }
        return best
    }

    /// LeastAllocated over CPU and memory (weight 1 each): the free share after placing, 0…100; a
    /// resource the node does not report is left out.
    static func leastAllocated(cap: (Int64, Int64), used: (Int64, Int64)) -> Int64 {
        var score: Int64 = 0, weights: Int64 = 0
        if cap.0 > 0 { score += used.0 > cap.0 ? 0 : (cap.0 - used.0) * 100 / cap.0; weights += 1 }
        if cap.1 > 0 { score += used.1 > cap.1 ? 0 : (cap.1 - used.1) * 100 / cap.1; weights += 1 }
        return weights == 0 ? 0 : score / weights
    }

    /// BalancedAllocation: 100 × (1 − the standard deviation of the CPU and memory fractions).
    static func balancedAllocation(cap: (Int64, Int64), used: (Int64, Int64)) -> Int64 {
        guard cap.0 > 0, cap.1 > 0 else { return 100 }
        let cpu = min(Double(used.0) / Double(cap.0), 1), memory = min(Double(used.1) / Double(cap.1), 1)
        return Int64((1 - abs(cpu - memory) / 2) * 100)
    }
}

import BerthAPI
import Foundation

/// kube-scheduler's PodTopologySpread score: a pod's own ScheduleAnyway constraints, or — for a pod with
/// no constraints at all — the system defaults (hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway) over
/// the selector of whatever selects it (its controlling ReplicaSet, the Services that match it). Without
/// the defaults, the pods of a Deployment without resource requests all went to the first node.

/// Where the default spreading selector comes from: the scheduler's informers.
struct DefaultSpreadSources: Sendable {
    /// The selector of a pod's controller (namespace, kind, API group, name); nil when it is not a kind
    /// with a selector or is not (yet) known. ReplicationControllers and StatefulSets, which upstream
    /// also asks, are not served by Berth.
    var controllerSelector:
        @Sendable (_ namespace: String, _ kind: String, _ group: String, _ name: String) -> LabelSelector?
    /// The selectors of the Services in a namespace (Services without a selector select nothing).
    var serviceSelectors: @Sendable (_ namespace: String) -> [[String: String]]

    static let none = DefaultSpreadSources(controllerSelector: { _, _, _, _ in nil }, serviceSelectors: { _ in [] })
}

/// Which placed pods a spreading constraint counts.
struct SpreadMatcher {
    var namespace: String
    /// Merged Service selectors (key = value each).
    var equal: [String: String] = [:]
    var selectors: [LabelSelector] = []
    /// An explicit constraint without a labelSelector counts nothing.
    var nothing = false

    var isEmpty: Bool { equal.isEmpty && selectors.allSatisfy(\.isEmpty) }

    func matches(_ p: PlacedPod) -> Bool {
        guard !nothing, p.namespace == namespace else { return false }
        for (k, v) in equal where p.labels[k] != v { return false }
        return selectors.allSatisfy { $0.matches(p.labels) }
    }
}

/// The soft spreading one pod is scored by.
struct SoftSpread {
    struct Constraint {
        var topologyKey: String
        var maxSkew: Int64
        var matcher: SpreadMatcher
    }
    var constraints: [Constraint]
    /// Explicit constraints leave nodes lacking any of their keys unscored (0); the defaults do not, so
    /// nodes without a zone label still spread by hostname.
    var requireAllTopologies: Bool
    /// For the defaults: pods are counted by the owner's UID (kept per node as pods are placed) instead
    /// of by matching every placed pod's labels, as kube-scheduler counts them.
    var ownerUID: String?

    static let hostnameKey = "kubernetes.io/hostname"
    static let zoneKey = "topology.kubernetes.io/zone"
    /// kube-scheduler's system-default constraints.
    static let systemDefaults: [(key: String, maxSkew: Int64)] = [(hostnameKey, 3), (zoneKey, 5)]
}

extension Scheduler.Cache {
    /// The soft spreading for `pod`, or nil when it has none (no ScheduleAnyway constraints of its own;
    /// or no constraints and nothing that selects it).
    func softSpread(for pod: PodInfo) -> SoftSpread? {
        if !pod.spread.isEmpty {
            let soft = pod.spread.filter { !$0.hard }
            if soft.isEmpty { return nil }
            return SoftSpread(
                constraints: soft.map { c in
                    SoftSpread.Constraint(
                        topologyKey: c.topologyKey, maxSkew: c.maxSkew,
                        matcher: SpreadMatcher(
                            namespace: pod.namespace, selectors: c.selector.map { [$0] } ?? [],
                            nothing: c.selector == nil))
                }, requireAllTopologies: true, ownerUID: nil)
        }
        // upstream's DefaultSelector: the Services matching the pod, merged, then its controller's selector.
        var matcher = SpreadMatcher(namespace: pod.namespace)
        for selector in spreadSources.serviceSelectors(pod.namespace)
        where selector.allSatisfy({ pod.labels[$0.key] == $0.value }) {
            matcher.equal.merge(selector) { a, _ in a }
        }
        if let c = pod.controller,
            let selector = spreadSources.controllerSelector(pod.namespace, c.kind, c.group, c.name)
        {
            matcher.selectors.append(selector)
        }
        if matcher.isEmpty { return nil }
        return SoftSpread(
            constraints: SoftSpread.systemDefaults.map {
                .init(topologyKey: $0.key, maxSkew: $0.maxSkew, matcher: matcher)
            },
            requireAllTopologies: false, ownerUID: pod.ownerUID.isEmpty ? nil : pod.ownerUID)
    }

    /// PodTopologySpread's normalized score (0…100) for each feasible node (table indexes), as
    /// kube-scheduler computes it: per constraint, the matching pods in the node's domain times
    /// log(domains + 2) plus maxSkew − 1; then the fewest get 100.
    /// `domainCounts: false` forces the walk over nodes that the zone counts replace (tests compare them).
    func spreadScores(
        _ pod: PodInfo, _ spread: SoftSpread, _ feasible: [Int], _ s: CycleState, domainCounts: Bool = true
    ) -> [Int64] {
        let n = feasible.count
        let cs = spread.constraints
        let hostname = SoftSpread.hostnameKey
        // Domains seen among the feasible nodes; nodes lacking a key are ignored (explicit constraints only).
        var ignored = [Bool](repeating: false, count: n)
        var domains = [[String: Int64]](repeating: [:], count: cs.count)
        for i in 0..<n {
            let node = table.nodes[feasible[i]]
            if spread.requireAllTopologies && cs.contains(where: { node.labels[$0.topologyKey] == nil }) {
                ignored[i] = true
                continue
            }
            for (ci, c) in cs.enumerated() where c.topologyKey != hostname {
                let v = node.labels[c.topologyKey] ?? ""
                if domains[ci][v] == nil { domains[ci][v] = 0 }
            }
        }
        let scored = ignored.lazy.filter { !$0 }.count
        let weights = cs.enumerated().map { ci, c in
            log(Double((c.topologyKey == hostname ? scored : domains[ci].count) + 2))
        }

        // Matching pods per domain, over every node the pod's node affinity allows (not only the feasible).
        if cs.contains(where: { $0.topologyKey != hostname }) {
            func add(_ node: NodeInfo, _ count: (SoftSpread.Constraint) -> Int64) {
                guard node.exists, Self.nodeMatches(pod, node, s) else { return }
                if spread.requireAllTopologies && cs.contains(where: { node.labels[$0.topologyKey] == nil }) { return }
                for (ci, c) in cs.enumerated() where c.topologyKey != hostname {
                    let v = node.labels[c.topologyKey] ?? ""
                    if domains[ci][v] != nil { domains[ci][v]! += count(c) }
                }
            }
            if let owner = spread.ownerUID, domainCounts, !spread.requireAllTopologies, pod.nodeSelector.isEmpty,
                pod.requiredTerms == nil,
                cs.allSatisfy({ $0.topologyKey == hostname || $0.topologyKey == SoftSpread.zoneKey })
            {
                // The defaults for a pod every node may take: the owner's pods per zone, kept as they are
                // placed (`ownerZoneCounts`), are the counts the walk below would add up.
                let counts = ownerZoneCounts[owner] ?? [:]
                for (ci, c) in cs.enumerated() where c.topologyKey != hostname {
                    for v in domains[ci].keys { domains[ci][v] = Int64(counts[v] ?? 0) }
                }
            } else if let owner = spread.ownerUID {
                // Only the nodes holding the owner's pods can add anything.
                for name in (ownerNodeCounts[owner] ?? [:]).keys {
                    if let node = nodes[name] { add(node) { matching($0, spread, on: node) } }
                }
            } else {
                for node in table.nodes { add(node) { matching($0, spread, on: node) } }
            }
        }

        var raw = [Int64](repeating: 0, count: n)
        var lo = Int64.max, hi: Int64 = 0
        for i in 0..<n where !ignored[i] {
            let node = table.nodes[feasible[i]]
            var score = 0.0
            for (ci, c) in cs.enumerated() {
                guard let v = node.labels[c.topologyKey] else { continue }
                let count = c.topologyKey == hostname ? matching(c, spread, on: node) : domains[ci][v] ?? 0
                score += Double(count) * weights[ci] + Double(c.maxSkew - 1)
            }
            raw[i] = Int64(score.rounded())
            lo = min(lo, raw[i]); hi = max(hi, raw[i])
        }
        return (0..<n).map { i in
            if ignored[i] { return 0 }
            return hi == 0 ? 100 : 100 * (hi + lo - raw[i]) / hi
        }
    }
}

extension Scheduler.Cache {
    /// The placed pods on `node` that constraint `c` counts: by owner UID for the defaults (kept as pods
    /// are placed), else by matching each placed pod.
    func matching(_ c: SoftSpread.Constraint, _ spread: SoftSpread, on node: NodeInfo) -> Int64 {
        if let owner = spread.ownerUID { return Int64(ownerNodeCounts[owner]?[node.name] ?? 0) }
        return Int64(node.pods.values.lazy.filter { c.matcher.matches($0) }.count)
    }
}

/// SplitMix64: the tie-break among equally scored nodes draws from it (kube-scheduler picks one of the
/// best at random); a system random call per tie would cost a syscall in the decision loop.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64 = UInt64.random(in: .min ... .max)) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

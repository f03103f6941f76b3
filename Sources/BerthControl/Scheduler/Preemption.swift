import BerthAPI
import BerthKube
import Foundation

/// kube-scheduler's DefaultPreemption (its PostFilter plugin): when a pod fits on no node, find the
/// nodes where removing pods of lower priority would let it fit, keep as few of those victims as
/// possible, and pick the node whose eviction hurts least. The scheduler then nominates the pod to
/// that node, deletes the victims, and places the pod once they are gone.

/// A placed pod that preemption may remove.
struct PreemptionVictim: Sendable, Equatable {
    var namespace: String
    var name: String
    var uid: String
    var labels: [String: String]
    var priority: Int64
    /// status.startTime, seconds since 1970; nil (not started yet) counts as now, as upstream's
    /// GetPodStartTime does.
    var startTime: Int64?
    /// Already being deleted: no second delete is sent.
    var terminating: Bool

    var key: String { namespace + "/" + name }

    init(key: String, _ pod: PlacedPod) {
        let parts = key.split(separator: "/", maxSplits: 1)
        namespace = String(parts.first ?? "")
        name = parts.count > 1 ? String(parts[1]) : ""
        uid = pod.uid
        labels = pod.labels
        priority = pod.priority
        startTime = pod.startTime
        terminating = pod.terminating
    }
}

/// A PodDisruptionBudget as preemption weighs it.
struct DisruptionBudgetView: Sendable {
    var namespace: String
    /// nil: selects nothing here (upstream's preemption skips budgets with an empty selector too).
    var selector: BerthAPI.LabelSelector?
    var allowed: Int32
    /// Pods the disruption controller already counts as disrupted (status.disruptedPods).
    var disrupted: Set<String>

    init(namespace: String, selector: BerthAPI.LabelSelector?, allowed: Int32, disrupted: Set<String> = []) {
        self.namespace = namespace
        self.selector = selector.flatMap { $0.isEmpty ? nil : $0 }
        self.allowed = allowed
        self.disrupted = disrupted
    }

    init(_ budget: PolicyV1.PodDisruptionBudget) {
        let selector = budget.spec.selector.map { BerthAPI.LabelSelector(object: $0.kubeJSON()) }
        self.init(
            namespace: budget.metadata.namespace ?? "default", selector: selector,
            allowed: budget.status.disruptionsAllowed, disrupted: Set(budget.status.disruptedPods.keys))
    }
}

/// One node where removing `victims` lets the pod fit.
struct PreemptionCandidate: Sendable, Equatable {
    var node: String
    /// Most important first (highest priority, then longest running).
    var victims: [PreemptionVictim]
    /// How many victims break a PodDisruptionBudget.
    var budgetViolations: Int
}

/// A preemption decided: what the scheduler does about it.
struct Preemption: Sendable {
    var preemptor: PodInfo
    var node: String
    var victims: [PreemptionVictim]
    /// Pods of lower priority nominated to the same node: their nomination is withdrawn.
    var displaced: [PodInfo]
}

/// The rules by which victims and nodes are chosen, on plain values.
enum PreemptionRules {
    /// Upstream's MoreImportantPod: higher priority, then the one started earlier.
    static func moreImportant(_ a: PreemptionVictim, _ b: PreemptionVictim, now: Int64) -> Bool {
        if a.priority != b.priority { return a.priority > b.priority }
        return (a.startTime ?? now) < (b.startTime ?? now)
    }

    /// Splits victims (in importance order) into those whose removal would break a budget and those
    /// whose would not, spending each budget's allowed disruptions in that order.
    static func splitByBudgets(_ victims: [PreemptionVictim], _ budgets: [DisruptionBudgetView]) -> (
        violating: [PreemptionVictim], safe: [PreemptionVictim]
    ) {
        var allowed = budgets.map(\.allowed)
        var violating: [PreemptionVictim] = [], safe: [PreemptionVictim] = []
        for victim in victims {
            var breaks = false
            // A pod without labels is selected by no budget.
            if !victim.labels.isEmpty {
                for (i, budget) in budgets.enumerated() where budget.namespace == victim.namespace {
                    guard let selector = budget.selector, selector.matches(victim.labels),
                        !budget.disrupted.contains(victim.name)
                    else { continue }
                    allowed[i] -= 1
                    if allowed[i] < 0 { breaks = true }
                }
            }
            if breaks { violating.append(victim) } else { safe.append(victim) }
        }
        return (violating, safe)
    }

    /// Upstream's pickOneNodeForPreemption: a node without victims at once; else the fewest budget
    /// violations, then the lowest highest victim priority, then the smallest sum of priorities, then
    /// the fewest victims, then the latest start among the highest-priority victims; then the first.
    static func pickNode(_ candidates: [PreemptionCandidate], now: Int64) -> Int? {
        if candidates.isEmpty { return nil }
        if let free = candidates.firstIndex(where: { $0.victims.isEmpty }) { return free }
        var left = Array(candidates.indices)
        // Each criterion keeps the candidates with the best value (higher is better).
        func keepBest(_ score: (PreemptionCandidate) -> Int64) {
            guard left.count > 1 else { return }
            let scores = left.map { score(candidates[$0]) }
            let best = scores.max()!
            left = zip(left, scores).filter { $0.1 == best }.map(\.0)
        }
        keepBest { -Int64($0.budgetViolations) }
        keepBest { -$0.victims[0].priority }
        // Shifted so that negative priorities still add up to a positive cost (as upstream does).
        keepBest { -$0.victims.reduce(Int64(0)) { $0 + $1.priority + Int64(Int32.max) + 1 } }
        keepBest { -Int64($0.victims.count) }
        keepBest { c in
            let top = c.victims[0].priority
            return c.victims.filter { $0.priority == top }.map { $0.startTime ?? now }.min() ?? now
        }
        return left.first
    }

    /// Upstream's candidate count: 10% of the nodes, at least 100 (or all when fewer).
    static func candidatesWanted(nodes: Int) -> Int { min(nodes, max(nodes / 10, 100)) }

    /// Filter reasons that removing pods from a node can cure; any other makes preemption pointless
    /// there (kube-scheduler's UnschedulableAndUnresolvable).
    static let resolvable: Set<String> = [
        Reasons.ports, Reasons.tooManyPods, Reasons.cpu, Reasons.memory, Reasons.storage, Reasons.spread,
        Reasons.existingAnti, Reasons.podAnti, Reasons.readWriteOncePod,
    ]

    static let noVictims = "No preemption victims found for incoming pod"
    static let notHelpful = "Preemption is not helpful for scheduling"
}

extension Scheduler.Cache {
    enum PreemptionOutcome {
        /// Why not (the text after "preemption: " in the FailedScheduling message).
        case notPossible(String)
        case chosen(Preemption)
    }

    /// PostFilter, called with `lock` held after `pod` fit on no node.
    func preempt(_ pod: PodInfo, _ state: CycleState) -> PreemptionOutcome {
        if pod.neverPreempts { return .notPossible("not eligible due to preemptionPolicy=Never.") }
        // Its earlier victims are still leaving: wait for them rather than preempt more.
        if let node = nominations[pod.key].flatMap({ nodes[$0] }),
            node.pods.values.contains(where: { $0.terminating && $0.priority < pod.priority })
        {
            return .notPossible("not eligible due to a terminating pod on the nominated node.")
        }
        let total = table.count
        let now = Int64(Date().timeIntervalSince1970)
        let budgets = disruptionBudgets()
        let wanted = PreemptionRules.candidatesWanted(nodes: total)
        let offset = total > 0 ? Int(UInt64.random(in: 0..<UInt64(total), using: &rng)) : 0
        var candidates: [PreemptionCandidate] = []
        var withoutViolations = 0
        var noVictims = 0, notHelpful = 0
        let anyBelow = placedPriorities.keys.contains { $0 < pod.priority }
        for i in 0..<total {
            let node = table.nodes[(offset + i) % total]
            if let why = filter(pod, node, state), !why.allSatisfy(PreemptionRules.resolvable.contains) {
                notHelpful += 1
                continue
            }
            guard anyBelow, let candidate = selectVictims(pod, on: node, state, budgets: budgets, now: now) else {
                noVictims += 1
                continue
            }
            candidates.append(candidate)
            if candidate.budgetViolations == 0 { withoutViolations += 1 }
            if withoutViolations > 0 && candidates.count >= wanted { break }
        }
        guard let best = PreemptionRules.pickNode(candidates, now: now) else {
            let parts = [(PreemptionRules.noVictims, noVictims), (PreemptionRules.notHelpful, notHelpful)]
                .filter { $0.1 > 0 }.map { "\($0.1) \($0.0)" }
            return .notPossible("0/\(total) nodes are available: \(parts.joined(separator: ", ")).")
        }
        let chosen = candidates[best]
        return .chosen(
            Preemption(
                preemptor: pod, node: chosen.node, victims: chosen.victims,
                displaced: nominatedBelow(pod.priority, on: chosen.node)))
    }

    /// Upstream's SelectVictimsOnNode: remove every pod of lower priority; if the pod then fits, add
    /// them back one by one, most important first — those whose removal would break a budget before
    /// the others — and keep as victims only those without which it no longer fits.
    func selectVictims(
        _ pod: PodInfo, on node: NodeInfo, _ state: CycleState, budgets: [DisruptionBudgetView], now: Int64
    ) -> PreemptionCandidate? {
        let lower = node.pods.filter { $0.value.priority < pod.priority }
        if lower.isEmpty { return nil }
        let trial = node.copy()
        var gone = Set<String>()
        for key in lower.keys {
            trial.remove(key)
            gone.insert(key)
        }
        // Pods' (anti-)affinity and hard spreading are counted over the cluster: with pods gone, the
        // counts are taken again. Plain pods (most) only need the node's own sums.
        let countsOthers =
            !pod.affinity.isEmpty || !pod.antiAffinity.isEmpty || pod.spread.contains(where: \.hard)
            || node.pods.values.contains { !$0.antiAffinity.isEmpty }
        func fits() -> Bool {
            guard countsOthers else { return filter(pod, trial, state) == nil }
            var s = prepare(pod, excluding: gone)
            s.volumes = state.volumes
            s.freeVolumes = state.freeVolumes
            s.nominated = state.nominated
            s.readWriteOncePodHolders = state.readWriteOncePodHolders
            s.readWriteOncePodNominated = state.readWriteOncePodNominated
            return filter(pod, trial, s) == nil
        }
        guard fits() else { return nil }
        let ordered = lower.map { PreemptionVictim(key: $0.key, $0.value) }
            .sorted { PreemptionRules.moreImportant($0, $1, now: now) }
        let (violating, safe) = PreemptionRules.splitByBudgets(ordered, budgets)
        var victims: [PreemptionVictim] = []
        var violations = 0
        for (group, breaksBudget) in [(violating, true), (safe, false)] {
            for victim in group {
                guard let placed = lower[victim.key] else { continue }
                trial.add(victim.key, placed)
                gone.remove(victim.key)
                if fits() { continue }
                trial.remove(victim.key)
                gone.insert(victim.key)
                victims.append(victim)
                if breaksBudget { violations += 1 }
            }
        }
        victims.sort { PreemptionRules.moreImportant($0, $1, now: now) }
        return PreemptionCandidate(node: node.name, victims: victims, budgetViolations: violations)
    }
}

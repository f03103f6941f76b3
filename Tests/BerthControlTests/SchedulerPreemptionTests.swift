import BerthAPI
import BerthKube
@testable import BerthControl
import Testing

/// Preemption (kube-scheduler's DefaultPreemption) on hand-made nodes and pods — no server.
@Suite("scheduler preemption")
struct SchedulerPreemptionTests {
    typealias P = SchedulerPluginTests

    /// A pod with a priority (and a start time, seconds since 1970, for placed pods).
    static func pod(
        _ name: String, priority: Int, cpu: String = "1", node: String? = nil, labels: [String: String] = [:],
        started: Int64? = nil, never: Bool = false
    ) -> JSON {
        var spec: JSON = ["priority": .int(Int64(priority))]
        if never { spec["preemptionPolicy"] = "Never" }
        var pod = P.pod(name, labels: labels, cpu: cpu, spec: spec, node: node)
        if let started {
            pod["status"]["startTime"] = .string(MetaV1.Time(secondsSince1970: started).kubeJSON().string ?? "")
        }
        return pod
    }

    /// Offers `pod` to the scheduler and returns its decision.
    static func decide(_ c: Scheduler.Cache, _ pod: JSON) -> Scheduler.Decision {
        c.podChanged(.added(pod.typedPod))
        let key = "default/" + (pod["metadata"]["name"].string ?? "")
        _ = c.popBatch(100)
        return c.scheduleOne(key)
    }

    static func victim(_ name: String, priority: Int64, started: Int64? = nil, labels: [String: String] = [:])
        -> PreemptionVictim
    {
        var placed = PlacedPod(
            namespace: "default", labels: labels, requests: Resources(), nonZero: Resources(), ownerUID: "",
            hostPorts: [], antiAffinity: [])
        placed.uid = "uid-\(name)"
        placed.priority = priority
        placed.startTime = started
        return PreemptionVictim(key: "default/\(name)", placed)
    }

    @Test func onlyAsManyLowerPriorityPodsAsNeededAreVictims() throws {
        let c = P.cache(
            [P.node("a", cpu: "3")],
            placed: [
                Self.pod("low", priority: 1, node: "a"), Self.pod("mid", priority: 5, node: "a"),
                Self.pod("same", priority: 10, node: "a"),
            ])
        guard case .preempting(_, let message, let preemption) = Self.decide(c, Self.pod("high", priority: 10)) else {
            Issue.record("expected a preemption")
            return
        }
        #expect(message == "0/1 nodes are available: 1 Insufficient cpu.")
        #expect(preemption.node == "a")
        // One CPU is needed: the least important pod goes, the more important one is reprieved, and a
        // pod of equal priority is never a victim.
        #expect(preemption.victims.map(\.name) == ["low"])
        #expect(c.nominations["default/high"] == "a")
    }

    @Test func preemptionPolicyNeverWaits() {
        let c = P.cache([P.node("a", cpu: "1")], placed: [Self.pod("low", priority: 0, node: "a")])
        let (node, message) = P.schedule(c, Self.pod("polite", priority: 100, never: true))
        #expect(node == nil)
        #expect(
            message
                == "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
        )
    }

    @Test func nodesThatFailForOtherReasonsAreNotConsidered() {
        let taint: JSON = ["key": "dedicated", "value": "gpu", "effect": "NoSchedule"]
        let c = P.cache(
            [P.node("tainted", cpu: "1", taints: [taint]), P.node("full", cpu: "1")],
            placed: [Self.pod("t", priority: 0, node: "tainted"), Self.pod("f", priority: 0, node: "full")])
        guard case .preempting(_, _, let preemption) = Self.decide(c, Self.pod("high", priority: 10)) else {
            Issue.record("expected a preemption")
            return
        }
        #expect(preemption.node == "full")
        #expect(preemption.victims.map(\.name) == ["f"])
    }

    @Test func nothingToPreemptIsExplained() {
        let c = P.cache([P.node("a", cpu: "1")], placed: [Self.pod("peer", priority: 10, node: "a")])
        #expect(
            P.schedule(c, Self.pod("high", priority: 10)).message
                == "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        )
    }

    @Test func aDisruptionBudgetProtectsWhenAnotherNodeWillDo() {
        let c = P.cache(
            [P.node("a", cpu: "1"), P.node("b", cpu: "1")],
            placed: [
                // The protected pod is the cheaper victim by priority, but a budget with no
                // disruptions left guards it.
                Self.pod("guarded", priority: 1, node: "a", labels: ["app": "db"]),
                Self.pod("free", priority: 2, node: "b", labels: ["app": "web"]),
            ])
        c.disruptionBudgets = {
            [DisruptionBudgetView(namespace: "default", selector: try? BerthAPI.LabelSelector("app=db"), allowed: 0)]
        }
        guard case .preempting(_, _, let preemption) = Self.decide(c, Self.pod("high", priority: 10)) else {
            Issue.record("expected a preemption")
            return
        }
        #expect(preemption.node == "b")
        #expect(preemption.victims.map(\.name) == ["free"])
    }

    @Test func nominatedRoomIsKeptFromLowerPriorityPods() {
        let c = P.cache([P.node("a", cpu: "2")], placed: [Self.pod("low", priority: 0, cpu: "2", node: "a")])
        guard case .preempting = Self.decide(c, Self.pod("high", priority: 10, cpu: "2")) else {
            Issue.record("expected a preemption")
            return
        }
        // While the victim terminates, the preemptor does not preempt again.
        var leaving = Self.pod("low", priority: 0, cpu: "2", node: "a").typedPod
        leaving.metadata.deletionTimestamp = .now()
        c.podChanged(.updated(old: leaving, new: leaving))
        let again = c.scheduleOne("default/high")
        guard case .unschedulable(_, let message) = again else {
            Issue.record("expected to wait, got \(again)")
            return
        }
        #expect(message.hasSuffix("preemption: not eligible due to a terminating pod on the nominated node."))
        c.podChanged(.deleted(leaving))
        // The freed room is promised to the preemptor: a pod of lower priority does not get it.
        let (midNode, _) = P.schedule(c, Self.pod("mid", priority: 5, cpu: "1"))
        #expect(midNode == nil)
        guard case .bound(_, let node) = c.scheduleOne("default/high") else {
            Issue.record("expected the preemptor to be placed")
            return
        }
        #expect(node == "a")
        #expect(c.nominations.isEmpty)
    }

    @Test func victimsAreRemovedByImportanceAndBudgetsFirst() {
        let budgets = [
            DisruptionBudgetView(namespace: "default", selector: try? BerthAPI.LabelSelector("app=db"), allowed: 1)
        ]
        let victims = [
            Self.victim("db-1", priority: 5, labels: ["app": "db"]),
            Self.victim("db-2", priority: 4, labels: ["app": "db"]),
            Self.victim("web", priority: 3, labels: ["app": "web"]),
            Self.victim("bare", priority: 2),
        ]
        let (violating, safe) = PreemptionRules.splitByBudgets(victims, budgets)
        // The budget allows one disruption: the first db pod spends it, the second would break it.
        #expect(violating.map(\.name) == ["db-2"])
        #expect(safe.map(\.name) == ["db-1", "web", "bare"])
        let older = Self.victim("older", priority: 1, started: 100)
        let newer = Self.victim("newer", priority: 1, started: 200)
        #expect(PreemptionRules.moreImportant(older, newer, now: 300))
        #expect(PreemptionRules.moreImportant(Self.victim("p", priority: 2), older, now: 300))
    }

    @Test func nodeIsPickedInUpstreamOrder() {
        func candidate(_ node: String, _ victims: [PreemptionVictim], violations: Int = 0) -> PreemptionCandidate {
            PreemptionCandidate(node: node, victims: victims, budgetViolations: violations)
        }
        let v = { (p: Int64, s: Int64?) in Self.victim("v\(p)-\(s ?? 0)", priority: p, started: s) }
        func pick(_ cs: [PreemptionCandidate]) -> String? {
            PreemptionRules.pickNode(cs, now: 1000).map { cs[$0].node }
        }
        // Fewest budget violations beats everything else.
        #expect(pick([candidate("a", [v(1, nil)], violations: 1), candidate("b", [v(9, nil)])]) == "b")
        // Then the lowest highest-priority victim.
        #expect(pick([candidate("a", [v(5, nil)]), candidate("b", [v(3, nil), v(2, nil), v(1, nil)])]) == "b")
        // Then the smallest sum of priorities; every victim costs something, even one of negative priority.
        #expect(pick([candidate("a", [v(3, nil)]), candidate("b", [v(3, nil), v(-5, nil)])]) == "a")
        #expect(pick([candidate("a", [v(3, nil), v(1, nil)]), candidate("b", [v(3, nil), v(0, nil)])]) == "b")
        // Then the fewest victims.
        #expect(pick([candidate("a", [v(0, nil), v(0, nil)]), candidate("b", [v(0, nil)])]) == "b")
        // Then the latest start among the highest-priority victims (the shortest-running work is lost).
        #expect(pick([candidate("a", [v(2, 100)]), candidate("b", [v(2, 500)])]) == "b")
        // A node where nothing needs to go is taken at once.
        #expect(pick([candidate("a", [v(0, nil)]), candidate("b", [])]) == "b")
        #expect(PreemptionRules.candidatesWanted(nodes: 50) == 50)
        #expect(PreemptionRules.candidatesWanted(nodes: 5000) == 500)
    }
}

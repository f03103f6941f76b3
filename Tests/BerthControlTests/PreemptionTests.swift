import BerthAPI
@testable import BerthControl
import Foundation
import Testing

extension ControlTests {
    /// Preemption end to end: PriorityClasses, pods filling two hollow nodes, a PodDisruptionBudget,
    /// and kubectl (issue 16).
    @Suite(
        "scheduler preemption with kubectl",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    struct PreemptionTests {
        static let classes = """
            apiVersion: scheduling.k8s.io/v1
            kind: PriorityClass
            metadata: {name: lowest}
            value: 10
            ---
            apiVersion: scheduling.k8s.io/v1
            kind: PriorityClass
            metadata: {name: low}
            value: 100
            ---
            apiVersion: scheduling.k8s.io/v1
            kind: PriorityClass
            metadata: {name: high}
            value: 1000
            ---
            apiVersion: scheduling.k8s.io/v1
            kind: PriorityClass
            metadata: {name: high-polite}
            value: 1000
            preemptionPolicy: Never
            """

        /// A pod asking for one CPU, of `priorityClass`, optionally pinned to a node.
        static func pod(_ name: String, app: String, priorityClass: String, node: String? = nil) -> String {
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: \(name), namespace: default, labels: {app: \(app)}}
            spec:
              priorityClassName: \(priorityClass)
              \(node.map { "nodeSelector: {kubernetes.io/hostname: \($0)}" } ?? "")
              containers:
              - name: app
                image: registry.local/app:1
                resources: {requests: {cpu: "1"}}
            """
        }

        static func pod(_ items: [JSON], _ name: String) -> JSON? {
            items.first { $0["metadata"]["name"].string == name }
        }

        @Test func aHighPriorityPodPreemptsWhereNoBudgetIsBroken() async throws {
            let c = try await Cluster(hollowNodes: 2, hollow: { $0.cpu = "2" })
            defer { Task { await c.stop() } }
            #expect(try c.kubectl("apply", "-f", "-", stdin: Self.classes).ok)
            // hollow-00000 holds the cheapest victims, but a budget guards them; hollow-00001 holds
            // pods of a higher (still lower than the preemptor's) priority.
            let fill = [
                Self.pod("guarded-0", app: "guarded", priorityClass: "lowest", node: "hollow-00000"),
                Self.pod("guarded-1", app: "guarded", priorityClass: "lowest", node: "hollow-00000"),
                Self.pod("free-0", app: "free", priorityClass: "low", node: "hollow-00001"),
                Self.pod("free-1", app: "free", priorityClass: "low", node: "hollow-00001"),
            ]
            let applied = try c.kubectl("apply", "-f", "-", stdin: fill.joined(separator: "\n---\n"))
            #expect(applied.ok, "\(applied.stderr)")
            try await c.waitFor(Registry.pods, namespace: "default", "four pods running") { running($0) == 4 }
            #expect(try c.kubectl("create", "pdb", "guarded", "--selector=app=guarded", "--min-available=2").ok)
            try await c.waitFor(Registry.podDisruptionBudgets, namespace: "default", "the budget allowing nothing") {
                $0.first?["status"]["currentHealthy"] == 2 && $0.first?["status"]["disruptionsAllowed"] == 0
            }

            // preemptionPolicy Never: it waits, and nothing is evicted for it.
            #expect(
                try c.kubectl(
                    "apply", "-f", "-", stdin: Self.pod("polite", app: "polite", priorityClass: "high-polite")
                )
                .ok)
            try await c.waitFor(Registry.pods, namespace: "default", "the polite pod unschedulable") { items in
                let condition = Self.pod(items, "polite")?["status"]["conditions"].array?.first {
                    $0["type"] == "PodScheduled"
                }
                return condition?["message"].string?.hasSuffix(
                    "preemption: not eligible due to preemptionPolicy=Never.")
                    == true
            }
            var pods = try await c.client.list(Registry.pods, namespace: "default").items
            #expect(pods.filter { !$0["metadata"]["deletionTimestamp"].isNull }.isEmpty)
            #expect(Self.pod(pods, "polite")?["status"]["nominatedNodeName"].isNull == true)
            #expect(try c.kubectl("delete", "pod", "polite", "--wait=true").ok)

            // The preemptor: one of the free pods goes, the guarded ones stay.
            let nominated = NominationSeen()
            #expect(
                try c.kubectl("apply", "-f", "-", stdin: Self.pod("urgent", app: "urgent", priorityClass: "high")).ok)
            try await c.waitFor(Registry.pods, namespace: "default", timeout: .seconds(60), "the preemptor running") {
                items in
                if let urgent = Self.pod(items, "urgent") {
                    nominated.note(urgent["status"]["nominatedNodeName"].string)
                }
                for victim in items where victim["metadata"]["name"].string?.hasPrefix("free-") == true {
                    let target = victim["status"]["conditions"].array?.first { $0["type"] == "DisruptionTarget" }
                    if target?["reason"] == "PreemptionByScheduler" { nominated.noteDisruptionTarget() }
                }
                return running(items.filter { $0["metadata"]["name"] == "urgent" }) == 1
            }
            pods = try await c.client.list(Registry.pods, namespace: "default").items
            let urgent = try #require(Self.pod(pods, "urgent"))
            #expect(urgent["spec"]["nodeName"] == "hollow-00001")
            #expect(urgent["spec"]["priority"] == 1000)
            #expect(nominated.nodes.contains("hollow-00001"), "nominations seen: \(nominated.nodes)")
            #expect(nominated.sawDisruptionTarget)
            let names = Set(pods.compactMap { $0["metadata"]["name"].string })
            #expect(names.isSuperset(of: ["guarded-0", "guarded-1"]))
            #expect(names.intersection(["free-0", "free-1"]).count == 1, "exactly one victim: \(names.sorted())")

            // The victim was told why, and by whom.
            let events = try c.kubectl(
                "get", "events", "--field-selector", "reason=Preempted", "-o",
                "jsonpath={range .items[*]}{.involvedObject.name}: {.message}{\"\\n\"}{end}")
            let uid = urgent["metadata"]["uid"].string ?? ""
            #expect(
                events.stdout.contains("Preempted by pod \(uid) on node hollow-00001"), "\(events.stdout)")
        }
    }
}

/// What a test saw on pods while waiting (the watch callback runs on another task): the preemptor's
/// nominated nodes, and whether a victim carried DisruptionTarget before it went.
final class NominationSeen: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: Set<String> = []
    private var target = false
    func noteDisruptionTarget() { lock.withLock { target = true } }
    var sawDisruptionTarget: Bool { lock.withLock { target } }
    func note(_ node: String?) {
        guard let node, !node.isEmpty else { return }
        lock.withLock { _ = seen.insert(node) }
    }
    var nodes: Set<String> { lock.withLock { seen } }
}

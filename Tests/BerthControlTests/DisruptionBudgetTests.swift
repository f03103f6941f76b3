import BerthAPI
import BerthControl
import Foundation
import Testing

extension ControlTests {
    /// policy/v1 PodDisruptionBudget: the disruption controller's status, and evictions (`kubectl
    /// drain`) held to it (issue 16).
    @Suite("disruption budgets") struct DisruptionBudgetTests {
        func budget(_ c: Cluster) async throws -> JSON? {
            try await c.client.get(Registry.podDisruptionBudgets, namespace: "default", name: "web")
        }

        @Test func drainWaitsForTheBudget() async throws {
            let c = try await Cluster(hollowNodes: 3)
            defer { Task { await c.stop() } }
            #expect(try c.kubectl("apply", "-f", "-", stdin: webYAML).ok)
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            let created = try c.kubectl("create", "pdb", "web", "--selector=app=web", "--min-available=6")
            #expect(created.ok, "\(created.stderr)")
            try await c.waitFor(Registry.podDisruptionBudgets, namespace: "default", "the budget's status") { items in
                let status = items.first?["status"] ?? .null
                return status["expectedPods"] == 6 && status["currentHealthy"] == 6 && status["desiredHealthy"] == 6
                    && status["disruptionsAllowed"] == 0
                    && status["conditions"][0]["reason"].string == "InsufficientPods"
            }
            let table = try c.kubectl("get", "pdb")
            #expect(table.stdout.contains("ALLOWED DISRUPTIONS") && table.stdout.contains("N/A"), "\(table.stdout)")

            // No disruption allowed: drain retries the 429s until its timeout, and every pod stays.
            var out = try c.kubectl("drain", "hollow-00000", "--ignore-daemonsets", "--timeout=8s")
            #expect(!out.ok)
            #expect(
                (out.stdout + out.stderr).contains("Cannot evict pod as it would violate the pod's disruption budget."),
                "\(out.stdout) \(out.stderr)")
            let pods = try await c.client.list(Registry.pods, namespace: "default").items
            #expect(podsOf(pods, app: "web").filter { $0["metadata"]["deletionTimestamp"].isNull }.count == 6)

            // One allowed at a time: drain evicts, waits for the replacement to be ready, evicts again.
            #expect(try c.kubectl("patch", "pdb", "web", "--type=merge", "-p", #"{"spec":{"minAvailable":5}}"#).ok)
            out = try c.kubectl("drain", "hollow-00000", "--ignore-daemonsets", "--timeout=90s")
            #expect(out.ok, "\(out.stdout) \(out.stderr)")
            try await c.waitFor(Registry.pods, namespace: "default", "6 pods running off the drained node") { items in
                let pods = podsOf(items, app: "web")
                return running(pods) == 6 && pods.allSatisfy { $0["spec"]["nodeName"].string != "hollow-00000" }
            }
            try await c.waitFor(Registry.podDisruptionBudgets, namespace: "default", "the budget healthy again") {
                items in
                items.first?["status"]["currentHealthy"] == 6 && items.first?["status"]["disruptionsAllowed"] == 1
            }
        }

        @Test func budgetsAreValidated() async throws {
            let c = try await Cluster(hollowNodes: 1)
            defer { Task { await c.stop() } }
            var out = try c.kubectl(
                "apply", "-f", "-",
                stdin:
                    #"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"both"},"spec":{"minAvailable":1,"maxUnavailable":1,"selector":{"matchLabels":{"a":"b"}}}}"#
            )
            #expect(out.stderr.contains("minAvailable and maxUnavailable cannot be both set"), "\(out.stderr)")
            out = try c.kubectl("create", "pdb", "over", "--selector=a=b", "--max-unavailable=120%")
            #expect(out.stderr.contains("must not be greater than 100%"), "\(out.stderr)")
        }
    }
}

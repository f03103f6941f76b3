import BerthAPI
import BerthAgent
@testable import BerthControl
import Foundation
import Testing

extension ControlTests {
    /// The autoscaler end to end on hollow nodes (issue 16): the nodes report synthetic usage through
    /// metrics.k8s.io (their pods' `berth.dev/hollow-usage`), kubectl top reads it, and the
    /// HorizontalPodAutoscaler controller scales a Deployment up and down on it.
    @Suite("autoscaling on hollow nodes", .serialized)
    struct HollowAutoscalingTests {
        static let deployment = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec:
              replicas: 2
              selector:
                matchLabels: {app: web}
              template:
                metadata:
                  labels: {app: web}
                  annotations: {berth.dev/hollow-usage: "cpu=150m,memory=200Mi"}
                spec:
                  containers:
                  - name: web
                    image: web:1
                    resources: {requests: {cpu: 100m, memory: 100Mi}}
            """
        static let autoscaler = """
            apiVersion: autoscaling/v2
            kind: HorizontalPodAutoscaler
            metadata: {name: web}
            spec:
              scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
              minReplicas: 1
              maxReplicas: 6
              metrics:
              - {type: Resource, resource: {name: memory, target: {type: Utilization, averageUtilization: 100}}}
              - {type: Pods, pods: {metric: {name: requests_per_second}, target: {type: AverageValue, averageValue: "10"}}}
              behavior: {scaleDown: {stabilizationWindowSeconds: 0}}
            """

        static func replicas(_ items: [JSON]) -> Int64? {
            items.first { $0["metadata"]["name"] == "web" }?["spec"]["replicas"].int
        }

        @Test(.timeLimit(.minutes(3)))
        func hollowNodesReportSyntheticUsageAndTheAutoscalerScalesOnIt() async throws {
            let c = try await Cluster(
                hollowNodes: 3, control: { $0.horizontalPodAutoscalerSyncPeriod = .milliseconds(500) })
            do {
                #expect(try c.kubectl("apply", "-f", "-", stdin: Self.deployment).ok)
                try await c.waitFor(Registry.deployments, namespace: "default", "2 available") { items in
                    items.first { $0["metadata"]["name"] == "web" }?["status"]["availableReplicas"] == 2
                }
                // What each pod's containers use, as kubectl top shows it; the nodes' usage is the sum.
                let top = try c.kubectl("top", "pods", "-l", "app=web", "--no-headers")
                let rows = top.stdout.split(separator: "\n").map {
                    $0.split(separator: " ", omittingEmptySubsequences: true)
                }
                #expect(
                    rows.count == 2 && rows.allSatisfy { $0.count == 3 && $0[1] == "150m" && $0[2] == "200Mi" },
                    "\(top.stdout) \(top.stderr)")
                let nodes = try c.kubectl("top", "nodes", "--no-headers")
                #expect(nodes.ok && nodes.stdout.contains("hollow-"), "\(nodes.stdout) \(nodes.stderr)")
                // 200 % of the request against a 100 % target: double, and again, up to the maximum.
                #expect(try c.kubectl("apply", "-f", "-", stdin: Self.autoscaler).ok)
                try await c.waitFor(Registry.deployments, namespace: "default", "scaled up to 6") { items in
                    Self.replicas(items) == 6
                }
                // The Pods metric has no custom metrics API to come from: it shows <unknown> in its place
                // (an empty status there), and it held no scale-up.
                try await c.waitFor(Registry.deployments, namespace: "default", "6 available") { items in
                    items.first { $0["metadata"]["name"] == "web" }?["status"]["availableReplicas"] == 6
                }
                let table = try c.kubectl("get", "hpa", "web", "--no-headers")
                #expect(table.stdout.contains("memory: 200%/100%, <unknown>/10"), "\(table.stdout)")
                // It would hold a scale-down (it might want more): the metric goes.
                let patched = try c.kubectl(
                    "patch", "hpa", "web", "--type=json", "-p", #"[{"op":"remove","path":"/spec/metrics/1"}]"#)
                #expect(patched.ok, "\(patched.stderr)")
                // Load gone (each pod now says 20 %): down to ceil(6 × 0.2) = 2.
                let idle = try c.kubectl(
                    "annotate", "pods", "-l", "app=web", "--overwrite", "berth.dev/hollow-usage=cpu=10m,memory=20Mi")
                #expect(idle.ok, "\(idle.stderr)")
                try await c.waitFor(Registry.deployments, namespace: "default", "scaled down to 2") { items in
                    Self.replicas(items) == 2
                }
                let hpa = try c.kubectl("get", "hpa", "web", "--no-headers")
                #expect(hpa.stdout.contains("Deployment/web"), "\(hpa.stdout)")
                let events = try c.kubectl(
                    "get", "events", "--field-selector", "reason=SuccessfulRescale", "-o", "name")
                #expect(events.stdout.split(separator: "\n").count >= 2, "\(events.stdout)")
            } catch {
                await c.stop()
                throw error
            }
            await c.stop()
        }
    }
}

import BerthAPI
import BerthAgent
@testable import BerthControl
import BerthStore
import Foundation
import Testing

let webYAML = """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      annotations: {kubernetes.io/change-cause: "first"}
    spec:
      replicas: 6
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: registry.local/web:1
            resources:
              requests: {cpu: 100m, memory: 64Mi}
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      selector: {app: web}
      ports:
      - port: 80
    """

func podsOf(_ items: [JSON], app: String) -> [JSON] {
    items.filter { $0["metadata"]["labels"]["app"].string == app && PodJSON.isActive($0) }
}
func running(_ items: [JSON]) -> Int {
    items.filter { $0["status"]["phase"].string == "Running" && PodJSON.isReady($0) }.count
}

extension ControlTests {
    /// kubectl 1.32 against the scheduler, the controllers and hollow nodes.
    @Suite("rollouts with kubectl", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    struct RolloutTests {
        @Test func applyScaleSetImageHistoryUndoPauseResume() async throws {
            let c = try await Cluster(hollowNodes: 4)
            defer { Task { await c.stop() } }
            var out = try c.kubectl("apply", "-f", "-", stdin: webYAML)
            #expect(out.ok, "\(out.stderr)")
            out = try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s")
            #expect(out.ok && out.stdout.contains("successfully rolled out"), "\(out.stdout) \(out.stderr)")
            // Every pod landed on a hollow node, and the wide listing names it.
            out = try c.kubectl("get", "pods", "-o", "wide", "--no-headers")
            let lines = out.stdout.split(separator: "\n")
            #expect(lines.count == 6)
            #expect(lines.allSatisfy { $0.contains("Running") && $0.contains("hollow-0000") })
            let nodesUsed = Set(lines.map { $0.split(separator: " ", omittingEmptySubsequences: true)[6] })
            #expect(nodesUsed.count == 4, "least-allocated scoring spreads 6 pods over the 4 nodes: \(nodesUsed)")

            #expect(try c.kubectl("scale", "deploy/web", "--replicas=9").ok)
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            #expect(podsOf(try await c.client.list(Registry.pods).items, app: "web").count == 9)

            #expect(try c.kubectl("set", "image", "deploy/web", "web=registry.local/web:2").ok)
            #expect(try c.kubectl("annotate", "deploy/web", "kubernetes.io/change-cause=second", "--overwrite").ok)
            out = try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s")
            #expect(out.ok, "\(out.stderr)")
            var pods = podsOf(try await c.client.list(Registry.pods).items, app: "web")
            #expect(pods.count == 9)
            #expect(pods.allSatisfy { $0["spec"]["containers"][0]["image"].string == "registry.local/web:2" })
            out = try c.kubectl("rollout", "history", "deploy/web")
            #expect(out.stdout.contains("1         first") && out.stdout.contains("2         second"), "\(out.stdout)")

            out = try c.kubectl("rollout", "undo", "deploy/web")
            #expect(out.ok, "\(out.stderr)")
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            pods = podsOf(try await c.client.list(Registry.pods).items, app: "web")
            #expect(
                pods.count == 9
                    && pods.allSatisfy { $0["spec"]["containers"][0]["image"].string == "registry.local/web:1" })
            out = try c.kubectl("rollout", "history", "deploy/web")
            #expect(
                out.stdout.contains("2         second") && out.stdout.contains("3         first")
                    && !out.stdout.contains("1         first"),
                "undo makes revision 1 the new revision 3: \(out.stdout)")
            var sets = try await c.client.list(Registry.replicaSets).items
            #expect(sets.count == 2)

            // Paused: a template change starts no rollout until resumed.
            #expect(try c.kubectl("rollout", "pause", "deploy/web").ok)
            #expect(try c.kubectl("set", "image", "deploy/web", "web=registry.local/web:3").ok)
            try await c.waitFor(Registry.deployments, namespace: "default", "paused condition") { items in
                items.first?["status"]["conditions"].array?.contains { $0["reason"].string == "DeploymentPaused" }
                    == true
            }
            sets = try await c.client.list(Registry.replicaSets).items
            #expect(sets.count == 2, "no ReplicaSet for the new template while paused")
            out = try c.kubectl("rollout", "undo", "deploy/web")
            #expect(!out.ok && out.stderr.contains("paused"), "kubectl refuses to undo a paused rollout: \(out.stderr)")
            #expect(try c.kubectl("rollout", "resume", "deploy/web").ok)
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            pods = podsOf(try await c.client.list(Registry.pods).items, app: "web")
            #expect(
                pods.count == 9
                    && pods.allSatisfy { $0["spec"]["containers"][0]["image"].string == "registry.local/web:3" })
            // The Service's Endpoints list the 9 pods.
            try await c.waitFor(Registry.endpoints, namespace: "default", "endpoints of web") { items in
                let ep = items.first { $0["metadata"]["name"].string == "web" }
                return (ep?["subsets"][0]["addresses"].array?.count ?? 0) == 9
            }
        }

        @Test func recreateStopsOldPodsBeforeStartingNewOnes() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            let yaml = webYAML.replacingOccurrences(
                of: "  replicas: 6\n", with: "  replicas: 4\n  strategy: {type: Recreate}\n")
            #expect(try c.kubectl("apply", "-f", "-", stdin: yaml).ok)
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            // Record every pod image seen running at once while the rollout proceeds.
            let mixed = Flag()
            let watcher = Task {
                try await c.waitFor(Registry.pods, namespace: "default", timeout: .seconds(60), "rollout to v2") {
                    items in
                    let images = Set(
                        podsOf(items, app: "web").filter { $0["status"]["phase"].string == "Running" }
                            .compactMap { $0["spec"]["containers"][0]["image"].string })
                    if images.count > 1 { mixed.set() }
                    let pods = podsOf(items, app: "web")
                    return pods.count == 4 && running(pods) == 4 && images == ["registry.local/web:2"]
                }
            }
            #expect(try c.kubectl("set", "image", "deploy/web", "web=registry.local/web:2").ok)
            try await watcher.value
            #expect(!mixed.value, "old and new pods never run together under Recreate")
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
        }

        @Test func unschedulablePodsExplainWhyAndScheduleWhenTheyFit() async throws {
            let c = try await Cluster(hollowNodes: 3)
            defer { Task { await c.stop() } }
            let pod = """
                apiVersion: v1
                kind: Pod
                metadata: {name: big}
                spec:
                  nodeSelector: {disk: ssd}
                  containers: [{name: c, image: busybox, resources: {requests: {cpu: "2"}}}]
                """
            #expect(try c.kubectl("apply", "-f", "-", stdin: pod).ok)
            try await c.waitFor(Registry.events, namespace: "default", "FailedScheduling") { items in
                items.contains { $0["reason"].string == "FailedScheduling" }
            }
            var out = try c.kubectl("describe", "pod", "big")
            #expect(out.stdout.contains("FailedScheduling"))
            #expect(
                out.stdout.contains("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."),
                "\(out.stdout)")
            out = try c.kubectl("get", "pod", "big", "--no-headers")
            #expect(out.stdout.contains("Pending"))
            // A label makes one node eligible: the pod is retried on the node change and lands there.
            #expect(try c.kubectl("label", "node", "hollow-00001", "disk=ssd").ok)
            try await c.waitFor(Registry.pods, namespace: "default", "big running on hollow-00001") { items in
                items.contains {
                    $0["metadata"]["name"].string == "big" && $0["spec"]["nodeName"].string == "hollow-00001"
                        && $0["status"]["phase"].string == "Running"
                }
            }
            // Too big for any node: the reason is counted per kind of node.
            let huge = pod.replacingOccurrences(of: "name: big", with: "name: huge").replacingOccurrences(
                of: "cpu: \"2\"", with: "cpu: \"7\"")
            #expect(try c.kubectl("apply", "-f", "-", stdin: huge).ok)
            try await c.waitFor(Registry.pods, namespace: "default", "huge unschedulable condition") { items in
                items.contains {
                    $0["metadata"]["name"].string == "huge"
                        && $0["status"]["conditions"].array?.contains { $0["reason"].string == "Unschedulable" } == true
                }
            }
            out = try c.kubectl("describe", "pod", "huge")
            #expect(
                out.stdout.contains(
                    "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."),
                "\(out.stdout)")
        }

        @Test func cordonDrainUncordonTaint() async throws {
            let c = try await Cluster(hollowNodes: 3)
            defer { Task { await c.stop() } }
            #expect(try c.kubectl("apply", "-f", "-", stdin: webYAML).ok)
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            var out = try c.kubectl("cordon", "hollow-00000")
            #expect(out.ok)
            out = try c.kubectl("get", "node", "hollow-00000", "--no-headers")
            #expect(out.stdout.contains("SchedulingDisabled"))
            out = try c.kubectl("drain", "hollow-00000", "--ignore-daemonsets", "--timeout=60s")
            #expect(out.ok, "\(out.stderr)")
            // Through pods/eviction (policy/v1, sent as protobuf), not kubectl's delete fallback.
            #expect((out.stdout + out.stderr).contains("evicting pod default/web-"), "\(out.stdout) \(out.stderr)")
            try await c.waitFor(Registry.pods, namespace: "default", "6 pods running off the drained node") { items in
                let pods = podsOf(items, app: "web")
                return running(pods) == 6 && pods.allSatisfy { $0["spec"]["nodeName"].string != "hollow-00000" }
            }
            #expect(try c.kubectl("uncordon", "hollow-00000").ok)
            out = try c.kubectl("get", "node", "hollow-00000", "--no-headers")
            #expect(!out.stdout.contains("SchedulingDisabled"))
            // A NoExecute taint evicts the pods that do not tolerate it; they come back elsewhere.
            #expect(try c.kubectl("taint", "node", "hollow-00001", "dedicated=infra:NoExecute").ok)
            try await c.waitFor(Registry.pods, namespace: "default", "no pod left on the tainted node") { items in
                let pods = podsOf(items, app: "web")
                return running(pods) == 6 && pods.allSatisfy { $0["spec"]["nodeName"].string != "hollow-00001" }
            }
            #expect(try c.kubectl("taint", "node", "hollow-00001", "dedicated=infra:NoExecute-").ok)
        }

        @Test func deadNodeIsDetectedAndItsPodsReplaced() async throws {
            let c = try await Cluster(hollowNodes: 3, hollow: { $0.heartbeatInterval = .seconds(1) })
            defer { Task { await c.stop() } }
            #expect(try c.kubectl("apply", "-f", "-", stdin: webYAML).ok)
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            let victims = podsOf(try await c.client.list(Registry.pods).items, app: "web").filter {
                $0["spec"]["nodeName"].string == "hollow-00002"
            }
            #expect(!victims.isEmpty)
            let start = ContinuousClock.now
            #expect(try c.kubectl("annotate", "node", "hollow-00002", "\(HollowNodes.stopAnnotation)=stop").ok)
            try await c.waitFor(Registry.nodes, timeout: .seconds(15), "hollow-00002 NotReady") { items in
                let n = items.first { $0["metadata"]["name"].string == "hollow-00002" }
                return n.flatMap { NodeLifecycleController.condition($0, "Ready")?["status"].string } == "Unknown"
            }
            let detected = ContinuousClock.now - start
            #expect(detected < .seconds(10), "NotReady after \(detected)")
            let out = try c.kubectl("get", "node", "hollow-00002", "--no-headers")
            #expect(out.stdout.contains("NotReady"))
            try await c.waitFor(Registry.pods, namespace: "default", timeout: .seconds(25), "replacements running") {
                items in
                let pods = podsOf(items, app: "web")
                return running(pods.filter { $0["spec"]["nodeName"].string != "hollow-00002" }) == 6
            }
            let replaced = ContinuousClock.now - start
            #expect(replaced < .seconds(20), "replaced after \(replaced)")
            // The node comes back: Ready again, taints gone, the terminating pods finished by its agent.
            #expect(try c.kubectl("annotate", "node", "hollow-00002", "\(HollowNodes.stopAnnotation)-").ok)
            try await c.waitFor(Registry.nodes, "hollow-00002 Ready without taints") { items in
                let n = items.first { $0["metadata"]["name"].string == "hollow-00002" }
                return n.flatMap { NodeLifecycleController.condition($0, "Ready")?["status"].string } == "True"
                    && (n?["spec"]["taints"].isNull ?? false)
            }
            try await c.waitFor(Registry.pods, namespace: "default", "evicted pods gone") { items in
                !items.contains { p in victims.contains { $0["metadata"]["uid"] == p["metadata"]["uid"] } }
            }
        }

        @Test func progressDeadlineExceededIsReported() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            // Pods that fit no node never become available: the rollout stops progressing.
            let yaml = webYAML.replacingOccurrences(
                of: "  replicas: 6\n", with: "  replicas: 2\n  progressDeadlineSeconds: 2\n"
            )
            .replacingOccurrences(of: "cpu: 100m", with: "cpu: \"64\"")
            #expect(try c.kubectl("apply", "-f", "-", stdin: yaml).ok)
            let out = try c.kubectl("rollout", "status", "deploy/web", "--timeout=30s")
            #expect(!out.ok && out.stderr.contains("exceeded its progress deadline"), "\(out.stdout) \(out.stderr)")
            let d = try #require(try await c.client.get(Registry.deployments, namespace: "default", name: "web"))
            let progressing = d["status"]["conditions"].array?.first { $0["type"].string == "Progressing" }
            #expect(
                progressing?["status"].string == "False" && progressing?["reason"].string == "ProgressDeadlineExceeded")
        }

        @Test func nodeDyingMidRolloutDoesNotStopIt() async throws {
            let c = try await Cluster(hollowNodes: 3, hollow: { $0.heartbeatInterval = .seconds(1) })
            defer { Task { await c.stop() } }
            let yaml = webYAML.replacingOccurrences(of: "  replicas: 6\n", with: "  replicas: 12\n")
            #expect(try c.kubectl("apply", "-f", "-", stdin: yaml).ok)
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            #expect(try c.kubectl("set", "image", "deploy/web", "web=registry.local/web:2").ok)
            #expect(try c.kubectl("annotate", "node", "hollow-00001", "\(HollowNodes.stopAnnotation)=stop").ok)
            let out = try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s")
            #expect(out.ok, "\(out.stdout) \(out.stderr)")
            try await c.waitFor(Registry.pods, namespace: "default", "12 v2 pods running on live nodes") { items in
                let pods = podsOf(items, app: "web").filter { $0["spec"]["nodeName"].string != "hollow-00001" }
                return running(pods) == 12
                    && pods.allSatisfy { $0["spec"]["containers"][0]["image"].string == "registry.local/web:2" }
            }
        }

        @Test func pythonClientWatchesARollout() async throws {
            let hasClient = (try? run("python3", ["-c", "import kubernetes"]).ok) ?? false
            try #require(hasClient, "the kubernetes Python client is installed by scripts/api-setup.sh")
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            #expect(try c.kubectl("apply", "-f", "-", stdin: webYAML).ok)
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [
                "python3", scriptsDir + "/watch_rollout.py", c.kubeconfig, "default", "web", "60",
                "registry.local/web:2",
            ]
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            // Change the image only once the watch has delivered the Deployment as it is now.
            var data = Data()
            while !data.contains(0x0a) {
                let d = pipe.fileHandleForReading.availableData
                if d.isEmpty { break }
                data.append(d)
            }
            #expect(String(decoding: data, as: UTF8.self).hasPrefix("ADDED"))
            #expect(try c.kubectl("set", "image", "deploy/web", "web=registry.local/web:2").ok)
            data.append(pipe.fileHandleForReading.readDataToEndOfFile())
            p.waitUntilExit()
            let text = String(decoding: data, as: UTF8.self)
            #expect(p.terminationStatus == 0, "\(text)")
            #expect(text.contains("MODIFIED") && text.hasSuffix("complete\n"), "\(text)")
        }

        @Test func invalidDeploymentsAreRefused() async throws {
            let c = try await Cluster()
            defer { Task { await c.stop() } }
            let mismatch = webYAML.replacingOccurrences(
                of: "matchLabels: {app: web}", with: "matchLabels: {app: other}")
            var out = try c.kubectl("apply", "-f", "-", stdin: mismatch)
            #expect(
                !out.ok && out.stderr.contains("The Deployment \"web\" is invalid")
                    && out.stderr.contains("`selector` does not match template `labels`"),
                "\(out.stderr)")
            let noTemplate = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: broken}
                spec:
                  selector: {matchLabels: {app: x}}
                  template: {metadata: {labels: {app: x}}, spec: {containers: []}}
                """
            out = try c.kubectl("apply", "-f", "-", stdin: noTemplate)
            #expect(!out.ok && out.stderr.contains("spec.template.spec.containers"), "\(out.stderr)")
            #expect(try await c.client.list(Registry.replicaSets).items.isEmpty)
        }
    }
}

/// A flag set from a @Sendable closure.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var v = false
    func set() { lock.withLock { v = true } }
    var value: Bool { lock.withLock { v } }
}

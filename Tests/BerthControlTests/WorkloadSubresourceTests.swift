import BerthAPI
@testable import BerthControl
import Foundation
import Testing

/// Runs one of the Scripts/ against the cluster with the official Python client; its output.
func pythonScript(_ script: String, _ c: Cluster, timeout: TimeInterval = 120) throws -> Output {
    try run("python3", [scriptsDir + "/" + script, c.kubeconfig, "default"], timeout: timeout)
}

let hasPythonClient = (try? run("python3", ["-c", "import kubernetes"]).ok) ?? false

extension ControlTests {
    /// Status and scale subresources of Deployments and ReplicaSets, and rollovers, as client-go based tools
    /// and kubectl 1.32 drive them against the controllers and hollow nodes.
    @Suite(
        "workload subresources and rollovers",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    struct WorkloadSubresourceTests {
        @Test func deploymentStatusUpdatesWithoutResourceVersionNeverConflict() async throws {
            try #require(hasPythonClient, "the kubernetes Python client is installed by scripts/api-setup.sh")
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            let out = try pythonScript("deployment_status.py", c)
            #expect(out.ok && out.stdout.contains("ok generation="), "\(out.stdout)\(out.stderr)")
        }

        @Test func replacingADeploymentWithItselfWritesNothing() async throws {
            let c = try await Cluster(hollowNodes: 1)
            defer { Task { await c.stop() } }
            // Created, not applied: kubectl replace rewrites an existing last-applied-configuration annotation.
            #expect(try c.kubectl("create", "-f", "-", stdin: webYAML).ok)
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            try await c.waitFor(Registry.deployments, namespace: "default", "the rollout reported complete") { items in
                items.first?["status"]["conditions"].array?.contains { $0["reason"].string == "NewReplicaSetAvailable" }
                    == true
            }
            var out = try c.kubectl("get", "deploy/web", "-o", "json")
            let before = try JSON.parse(Array(out.stdout.utf8))
            #expect(try c.kubectl("replace", "-f", "-", stdin: out.stdout).ok)
            out = try c.kubectl(
                "get", "deploy/web", "-o", "jsonpath={.metadata.generation} {.metadata.resourceVersion}")
            #expect(
                out.stdout
                    == "\(before["metadata"]["generation"].int ?? 0) \(before["metadata"]["resourceVersion"].string ?? "")",
                "replacing a Deployment with itself changes nothing: \(out.stdout)")
        }

        @Test func scaleSubresourceReachesTheAskedReplicas() async throws {
            try #require(hasPythonClient, "the kubernetes Python client is installed by scripts/api-setup.sh")
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            let out = try pythonScript("scale_subresource.py", c)
            #expect(out.ok && out.stdout.hasSuffix("ok\n"), "\(out.stdout)\(out.stderr)")
            // kubectl scale: a merge patch of rs/scale.
            #expect(try c.kubectl("scale", "rs/scaled-rs", "--replicas=5").ok)
            try await c.waitFor(Registry.replicaSets, namespace: "default", "scaled-rs at 5 available") { items in
                let rs = items.first { $0["metadata"]["name"].string == "scaled-rs" }
                return rs?["status"]["availableReplicas"].int == 5 && rs?["status"]["replicas"].int == 5
            }
            let scale = try c.kubectl("get", "--raw", "/apis/apps/v1/namespaces/default/replicasets/scaled-rs/scale")
            let sc = try JSON.parse(Array(scale.stdout.utf8))
            #expect(
                sc["spec"]["replicas"].int == 5 && sc["status"]["replicas"].int == 5
                    && sc["status"]["selector"].string == "app=scaled-rs",
                "\(scale.stdout)")
            // Requirements of matchLabels and matchExpressions together, in key order as kube-apiserver writes them.
            let mixed = """
                apiVersion: apps/v1
                kind: ReplicaSet
                metadata: {name: mixed}
                spec:
                  replicas: 1
                  selector:
                    matchLabels: {tier: fe}
                    matchExpressions: [{key: app, operator: In, values: [b, a]}]
                  template:
                    metadata: {labels: {tier: fe, app: a}}
                    spec:
                      containers: [{name: c, image: registry.local/s:1}]
                """
            #expect(try c.kubectl("apply", "-f", "-", stdin: mixed).ok)
            let mixedScale = try JSON.parse(
                Array(
                    try c.kubectl("get", "--raw", "/apis/apps/v1/namespaces/default/replicasets/mixed/scale").stdout
                        .utf8))
            #expect(mixedScale["status"]["selector"].string == "app in (a,b),tier=fe", "\(mixedScale)")
        }

        @Test func aReplicaSetReadBackRoundTripsThroughKubectlReplaceAndApply() async throws {
            let c = try await Cluster(hollowNodes: 1)
            defer { Task { await c.stop() } }
            let rs = """
                apiVersion: apps/v1
                kind: ReplicaSet
                metadata: {name: plain}
                spec:
                  replicas: 1
                  selector: {matchLabels: {app: plain}}
                  template:
                    metadata: {labels: {app: plain}}
                    spec:
                      containers: [{name: c, image: registry.local/s:1}]
                """
            #expect(try c.kubectl("create", "-f", "-", stdin: rs).ok)
            // Read once the controller is done with it: the read's resourceVersion is the replace's
            // precondition, which a status write in between would fail.
            func settled(_ replicas: Int64) async throws {
                try await c.waitFor(Registry.replicaSets, namespace: "default", "plain at \(replicas) ready") { items in
                    items.first?["status"]["readyReplicas"].int == replicas
                        && items.first?["status"]["observedGeneration"] == items.first?["metadata"]["generation"]
                }
            }
            try await settled(1)
            var out = try c.kubectl("get", "rs/plain", "-o", "yaml")
            out = try c.kubectl(
                "replace", "-f", "-",
                stdin: out.stdout.replacingOccurrences(of: "replicas: 1\n  selector", with: "replicas: 2\n  selector"))
            #expect(out.ok, "kubectl replace (strict field validation) of the set as read: \(out.stderr)")
            try await settled(2)
            out = try c.kubectl("get", "rs/plain", "-o", "yaml")
            out = try c.kubectl(
                "apply", "-f", "-",
                stdin: out.stdout.replacingOccurrences(of: "replicas: 2\n  selector", with: "replicas: 3\n  selector"))
            #expect(out.ok, "kubectl apply of the set as read: \(out.stderr)")
            try await c.waitFor(Registry.replicaSets, namespace: "default", "plain at 3 ready") { items in
                items.first?["spec"]["replicas"].int == 3 && items.first?["status"]["readyReplicas"].int == 3
            }
        }

        @Test func changingOnlyMinReadySecondsReachesTheNewReplicaSet() async throws {
            let c = try await Cluster(hollowNodes: 1)
            defer { Task { await c.stop() } }
            #expect(try c.kubectl("apply", "-f", "-", stdin: webYAML).ok)
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
            #expect(try c.kubectl("patch", "deploy/web", "-p", #"{"spec":{"minReadySeconds":7}}"#).ok)
            try await c.waitFor(Registry.replicaSets, namespace: "default", "the ReplicaSet's minReadySeconds at 7") {
                items in
                items.count == 1 && items[0]["spec"]["minReadySeconds"].int == 7
            }
            #expect(try c.kubectl("rollout", "status", "deploy/web", "--timeout=60s").ok)
        }

        /// kubernetes' rollover test: a Deployment created over an unowned ReplicaSet whose labels it selects,
        /// stuck on its first template, then given a new one before that rollout finished.
        @Test func rolloverAdoptsTheOrphanedReplicaSetAndScalesEveryOldSetDown() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            let orphan = """
                apiVersion: apps/v1
                kind: ReplicaSet
                metadata: {name: rollover-controller, labels: {name: rollover-pod, pod: httpd}}
                spec:
                  replicas: 1
                  selector: {matchLabels: {name: rollover-pod, pod: httpd}}
                  template:
                    metadata: {labels: {name: rollover-pod, pod: httpd}}
                    spec:
                      containers: [{name: httpd, image: registry.local/httpd:1}]
                """
            #expect(try c.kubectl("apply", "-f", "-", stdin: orphan).ok)
            try await c.waitFor(Registry.replicaSets, namespace: "default", "the orphan's pod ready") { items in
                items.first { $0["metadata"]["name"].string == "rollover-controller" }?["status"]["readyReplicas"].int
                    == 1
            }
            // The first template never becomes schedulable: that rollout cannot finish.
            let deployment = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: rollover}
                spec:
                  replicas: 1
                  minReadySeconds: 1
                  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
                  selector: {matchLabels: {name: rollover-pod}}
                  template:
                    metadata: {labels: {name: rollover-pod}}
                    spec:
                      nodeSelector: {disk: nowhere}
                      containers: [{name: redis-slave, image: registry.local/redis-slave:nonexistent}]
                """
            #expect(try c.kubectl("apply", "-f", "-", stdin: deployment).ok)
            try await c.waitFor(Registry.replicaSets, namespace: "default", "the first rollout under way") { items in
                let owned = items.filter { PodJSON.controllerRef($0)?["name"].string == "rollover" }
                return owned.count == 2 && owned.allSatisfy { $0["status"]["replicas"].int == 1 }
            }
            // kubernetes' checkRolling: with maxUnavailable 0, the Deployment reports at least one available
            // replica (the adopted set's pod, then the new one) at every generation it has observed.
            let dropped = Flag()
            let monitor = Task {
                try await c.waitFor(
                    Registry.deployments, namespace: "default", timeout: .seconds(60), "the rollover reported"
                ) { items in
                    guard let d = items.first(where: { $0["metadata"]["name"].string == "rollover" }) else {
                        return false
                    }
                    let st = d["status"]
                    let observed = (st["observedGeneration"].int ?? 0) >= (d["metadata"]["generation"].int ?? 1)
                    if observed && (st["availableReplicas"].int ?? 0) < 1 { dropped.set() }
                    return observed && d["metadata"]["generation"].int ?? 0 > 1 && st["updatedReplicas"].int == 1
                        && st["availableReplicas"].int == 1 && st["replicas"].int == 1
                }
            }
            let patch =
                #"{"spec":{"template":{"spec":{"nodeSelector":null,"containers":[{"name":"redis-slave","image":"registry.local/agnhost:2"}]}}}}"#
            #expect(try c.kubectl("patch", "deploy/rollover", "--type=strategic", "-p", patch).ok)
            let out = try c.kubectl("rollout", "status", "deploy/rollover", "--timeout=60s")
            #expect(out.ok && out.stdout.contains("successfully rolled out"), "\(out.stdout)\(out.stderr)")
            try await monitor.value
            #expect(!dropped.value, "the Deployment reported no available replica during the rollover")
            let sets = try await c.client.list(Registry.replicaSets, namespace: "default").items
            let old = try #require(sets.first { $0["metadata"]["name"].string == "rollover-controller" })
            #expect(PodJSON.controllerRef(old)?["name"].string == "rollover", "the Deployment adopted the orphan")
            let images: (JSON) -> String = { $0["spec"]["template"]["spec"]["containers"][0]["image"].string ?? "" }
            for rs in sets where images(rs) != "registry.local/agnhost:2" {
                #expect(
                    rs["spec"]["replicas"].int == 0 && (rs["status"]["replicas"].int ?? 0) == 0,
                    "old set \(rs["metadata"]["name"].string ?? "") scaled down: \(rs["spec"]) \(rs["status"])")
            }
            let new = try #require(sets.first { images($0) == "registry.local/agnhost:2" })
            #expect(
                new["status"]["availableReplicas"].int == 1 && new["status"]["readyReplicas"].int == 1,
                "\(new["status"])")
            let d = try #require(try await c.client.get(Registry.deployments, namespace: "default", name: "rollover"))
            #expect(
                d["status"]["availableReplicas"].int == 1 && d["status"]["updatedReplicas"].int == 1
                    && d["status"]["replicas"].int == 1,
                "\(d["status"])")
            let running = try await c.client.list(Registry.pods, namespace: "default").items.filter(PodJSON.isActive)
            #expect(
                running.count == 1
                    && running.allSatisfy { $0["spec"]["containers"][0]["image"].string == "registry.local/agnhost:2" },
                "only the new pod is left: \(running.map { $0["metadata"]["name"].string ?? "" })")
        }
    }
}

import BerthAPI
import BerthAgent
import BerthCRI
@testable import BerthControl
import Foundation
import Testing

extension ControlTests {
    /// Hollow nodes are the node agent over a fake runtime (kubemark's design): what they register and
    /// report is the agent's own — nodeInfo, pod statuses from the runtime, kubelet events, init
    /// containers, restarts with back-off, probes, graceful deletion.
    @Suite("hollow nodes run the agent", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    struct HollowAgentTests {
        @Test func aPodGoesThroughTheAgentAndItsFakeRuntime() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            let yaml = """
                apiVersion: v1
                kind: Pod
                metadata: {name: web, namespace: default}
                spec:
                  nodeSelector: {kubernetes.io/hostname: hollow-00001}
                  containers:
                  - name: app
                    image: registry.local/web:1
                    readinessProbe:
                      httpGet: {path: /, port: 8080}
                      periodSeconds: 1
                """
            #expect(try c.kubectl("apply", "-f", "-", stdin: yaml).ok)
            try await c.waitFor(Registry.pods, namespace: "default", "web Running and Ready") { items in
                items.contains { $0["metadata"]["name"] == "web" && running([$0]) == 1 }
            }
            let node = try #require(try await c.client.get(Registry.nodes, namespace: nil, name: "hollow-00001"))
            #expect(node["status"]["nodeInfo"]["containerRuntimeVersion"] == "hollow://1.0.0")
            #expect(node["status"]["nodeInfo"]["kubeletVersion"].string?.hasPrefix("v1.32.0-berth") == true)
            #expect(node["metadata"]["labels"]["topology.kubernetes.io/zone"] == "zone-b")
            #expect(node["spec"]["podCIDR"] == "10.128.1.0/24")
            #expect(node["status"]["capacity"]["pods"] == "110")

            let pod = try #require(try await c.client.get(Registry.pods, namespace: "default", name: "web"))
            let status = pod["status"]
            let container = status["containerStatuses"][0]
            #expect(container["containerID"].string?.hasPrefix("hollow://") == true)
            #expect(container["imageID"].string?.hasPrefix("sha256:") == true)
            #expect(container["state"]["running"]["startedAt"].string != nil)
            #expect(container["restartCount"] == 0)
            #expect(status["podIP"].string?.hasPrefix("10.128.1.") == true)
            #expect(status["hostIP"] == "198.18.0.1")
            #expect(status["qosClass"] == "BestEffort")

            // The kubelet's events, from the agent.
            let events = try c.kubectl(
                "get", "events", "--field-selector", "involvedObject.name=web", "-o",
                "jsonpath={range .items[*]}{.reason}/{.source.component} {end}")
            for reason in ["Pulling", "Pulled", "Created", "Started"] {
                #expect(events.stdout.contains("\(reason)/kubelet"), "\(events.stdout)")
            }

            // Deleted gracefully: the agent stops its containers and makes the final delete.
            #expect(try c.kubectl("delete", "pod", "web", "--timeout=30s").ok)
            #expect(try await c.client.get(Registry.pods, namespace: "default", name: "web") == nil)
        }

        @Test func initContainersCompleteAndACrashingContainerBacksOff() async throws {
            let c = try await Cluster(hollowNodes: 1)
            defer { Task { await c.stop() } }
            let yaml = """
                apiVersion: v1
                kind: Pod
                metadata:
                  name: job
                  namespace: default
                  annotations: {\(FakeRuntime.exitCodesAnnotation): "setup=0,crash=3"}
                spec:
                  initContainers:
                  - {name: setup, image: registry.local/tools:1}
                  containers:
                  - {name: app, image: registry.local/web:1}
                  - {name: crash, image: registry.local/web:1}
                """
            #expect(try c.kubectl("apply", "-f", "-", stdin: yaml).ok)
            try await c.waitFor(Registry.pods, namespace: "default", "crash in CrashLoopBackOff") { items in
                guard let pod = items.first(where: { $0["metadata"]["name"] == "job" }) else { return false }
                let crash = (pod["status"]["containerStatuses"].array ?? []).first { $0["name"] == "crash" }
                return crash?["state"]["waiting"]["reason"] == "CrashLoopBackOff"
            }
            let pod = try #require(try await c.client.get(Registry.pods, namespace: "default", name: "job"))
            let setup = pod["status"]["initContainerStatuses"][0]
            #expect(setup["state"]["terminated"]["exitCode"] == 0)
            #expect(setup["state"]["terminated"]["reason"] == "Completed")
            let statuses = pod["status"]["containerStatuses"].array ?? []
            let app = statuses.first { $0["name"] == "app" }
            let crash = statuses.first { $0["name"] == "crash" }
            #expect(app?["state"]["running"].isNull == false)
            #expect(crash?["lastState"]["terminated"]["exitCode"] == 3)
            #expect((crash?["restartCount"].int ?? 0) >= 1)
            #expect(pod["status"]["phase"] == "Running")
            #expect(!PodJSON.isReady(pod))
            // Pulled once; the kubelet's word for the image already there for the next container.
            let events = try c.kubectl(
                "get", "events", "--field-selector", "involvedObject.name=job", "-o",
                "jsonpath={range .items[*]}{.reason}: {.message}|{end}")
            #expect(
                events.stdout.contains(#"Pulled: Container image "registry.local/web:1" already present on machine"#))
            #expect(events.stdout.contains(#"Pulling: Pulling image "registry.local/tools:1""#))
        }
    }
}

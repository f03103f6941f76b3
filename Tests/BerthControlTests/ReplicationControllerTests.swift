import BerthAPI
import BerthControl
import Foundation
import Testing

extension ControlTests {
    /// core/v1 ReplicationController and its manager (issue 16): the ReplicaSet controller's loop over
    /// the older kind, with kubectl 1.32 and a hollow node.
    @Suite("replication controllers") struct ReplicationControllerTests {
        static let rcType = Registry.find(group: "", version: "v1", plural: "replicationcontrollers")!

        @Test func podsAreKeptScaledAndPrintedAsKubectlExpects() async throws {
            let c = try await Cluster(hollowNodes: 1)
            defer { Task { await c.stop() } }
            // Selector and labels defaulted from the template, as upstream's defaulting does.
            let made = try c.kubectl(
                "apply", "-f", "-",
                stdin: """
                    apiVersion: v1
                    kind: ReplicationController
                    metadata: {name: web}
                    spec:
                      replicas: 2
                      template:
                        metadata: {labels: {app: web}}
                        spec:
                          terminationGracePeriodSeconds: 0
                          containers: [{name: web, image: nginx}]
                    """)
            #expect(made.ok, "\(made.stderr)")
            let defaults = try c.kubectl(
                "get", "rc", "web", "-o", "jsonpath={.spec.selector.app}/{.metadata.labels.app}")
            #expect(defaults.stdout == "web/web", "\(defaults.stdout)")
            try await c.waitFor(Self.rcType, namespace: "default", "two ready replicas") { items in
                items.first?["status"]["readyReplicas"].int == 2
            }
            let pods = try c.kubectl(
                "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.ownerReferences[0].kind}")
            #expect(pods.stdout == "ReplicationController ReplicationController", "\(pods.stdout)")
            let table = try c.kubectl("get", "rc", "-o", "wide")
            #expect(
                table.stdout.contains("DESIRED") && table.stdout.contains("app=web")
                    && table.stdout.contains("nginx"), "\(table.stdout)")
            #expect(try c.kubectl("get", "all").stdout.contains("replicationcontroller/web"))

            // kubectl scale goes through /scale; the Scale's selector is the label map.
            #expect(try c.kubectl("scale", "rc", "web", "--replicas=3").ok)
            try await c.waitFor(Self.rcType, namespace: "default", "three ready replicas") { items in
                items.first?["status"]["readyReplicas"].int == 3 && items.first?["status"]["replicas"].int == 3
            }
            let scale = try c.kubectl("get", "--raw", "/api/v1/namespaces/default/replicationcontrollers/web/scale")
            #expect(scale.stdout.contains(#""selector":"app=web""#), "\(scale.stdout)")
            // A deleted pod is replaced.
            let victim = try c.kubectl("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}")
                .stdout
            #expect(try c.kubectl("delete", "pod", victim, "--wait=false").ok)
            try await c.waitFor(Registry.pods, namespace: "default", "the pod replaced") { items in
                let live = items.filter {
                    $0["metadata"]["deletionTimestamp"].isNull && $0["metadata"]["name"].string != victim
                }
                return live.count == 3
            }

            // Validation in upstream's words.
            let bad = try c.kubectl(
                "create", "-f", "-",
                stdin:
                    #"{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"bad"},"spec":{"replicas":-1,"selector":{"app":"x"},"template":{"metadata":{"labels":{"app":"y"}},"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}"#
            )
            for phrase in [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value:", "`selector` does not match template `labels`",
                #"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#,
            ] {
                #expect(bad.stderr.contains(phrase), "\(phrase) in \(bad.stderr)")
            }

            // Deleting the controller takes its pods (garbage collection through the owner references).
            #expect(try c.kubectl("delete", "rc", "web").ok)
            try await c.waitFor(Registry.pods, namespace: "default", "the pods gone") { items in
                items.allSatisfy { ($0["metadata"]["labels"]["app"].string ?? "") != "web" }
            }
        }
    }
}

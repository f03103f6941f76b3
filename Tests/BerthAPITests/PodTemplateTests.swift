import BerthAPI
import Foundation
import Testing

extension APITests {
    /// core/v1 PodTemplate (issue 16, the rest of core/v1).
    @Suite("pod templates", .serialized)
    struct PodTemplateTests {
        @Test func podTemplatesAreStoredWithThePodSpecDefaultsAndChecks() async throws {
            let s = try await TestServer()
            let template = """
                apiVersion: v1
                kind: PodTemplate
                metadata: {name: worker}
                template:
                  metadata: {labels: {app: worker}}
                  spec:
                    containers: [{name: main, image: "busybox:1"}]
                """
            let applied = try s.kubectl("apply", "-f", "-", stdin: template)
            #expect(applied.ok, "\(applied.stderr)")
            let table = try s.kubectl("get", "podtemplates")
            #expect(table.stdout.contains("CONTAINERS") && table.stdout.contains("POD LABELS"), "\(table.stdout)")
            #expect(
                table.stdout.contains("worker") && table.stdout.contains("busybox:1")
                    && table.stdout.contains("app=worker"))
            let defaults = try s.kubectl(
                "get", "podtemplate", "worker", "-o",
                "jsonpath={.template.spec.restartPolicy}/{.template.spec.containers[0].imagePullPolicy}")
            #expect(defaults.stdout == "Always/IfNotPresent", "\(defaults.stdout)")
            let empty = try s.kubectl(
                "apply", "-f", "-",
                stdin: #"{"apiVersion":"v1","kind":"PodTemplate","metadata":{"name":"empty"},"template":{"spec":{}}}"#)
            #expect(!empty.ok && empty.stderr.contains("template.spec.containers"), "\(empty.stderr)")
            #expect(try s.kubectl("delete", "podtemplate", "worker").ok)
            await s.stop()
        }

        /// Deployments', ReplicaSets' and DaemonSets' pods always restart and have no deadline, as
        /// kube-apiserver's ValidatePodTemplateSpecForReplicaSet says.
        @Test func workloadTemplatesRestartAlwaysWithoutADeadline() async throws {
            let s = try await TestServer()
            for kind in ["Deployment", "ReplicaSet", "DaemonSet"] {
                let manifest = """
                    apiVersion: apps/v1
                    kind: \(kind)
                    metadata: {name: once}
                    spec:
                      selector: {matchLabels: {app: once}}
                      template:
                        metadata: {labels: {app: once}}
                        spec:
                          restartPolicy: Never
                          activeDeadlineSeconds: 30
                          containers: [{name: c, image: busybox}]
                    """
                let refused = try s.kubectl("apply", "-f", "-", stdin: manifest)
                let deadline =
                    kind == "DaemonSet"
                    ? "spec.template.spec.activeDeadlineSeconds: Invalid value: 30: activeDeadlineSeconds must be nil for DaemonSets"
                    : "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"
                expectMentions(
                    refused.stderr,
                    [
                        "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                        deadline,
                    ])
            }
            await s.stop()
        }
    }
}

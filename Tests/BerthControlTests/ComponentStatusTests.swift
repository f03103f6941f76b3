import BerthAPI
import BerthControl
import Foundation
import Testing

extension ControlTests {
    /// core/v1 ComponentStatus, read-only and computed on each read (issue 16).
    @Suite("component statuses") struct ComponentStatusTests {
        @Test func kubectlGetComponentStatusesShowsTheControlPlaneHealthy() async throws {
            let c = try await Cluster()
            defer { Task { await c.stop() } }
            // The control plane's Lease is taken once the server is leader.
            try await c.waitFor(Registry.leases, namespace: "kube-system", "the controller manager's Lease") {
                $0.contains { $0["metadata"]["name"].string == "berth-controller-manager" }
            }
            var out = try c.kubectl("get", "componentstatuses")
            #expect(out.ok, "\(out.stderr)")
            #expect(out.stderr.contains("Warning: v1 ComponentStatus is deprecated in v1.19+"), "\(out.stderr)")
            let lines = out.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(lines.first == ["NAME", "STATUS", "MESSAGE", "ERROR"], "\(out.stdout)")
            #expect(
                Set(lines.dropFirst().map { $0.prefix(3).joined(separator: " ") })
                    == ["scheduler Healthy ok", "controller-manager Healthy ok", "etcd-0 Healthy ok"], "\(out.stdout)")
            out = try c.kubectl("get", "cs", "etcd-0", "-o", "jsonpath={.conditions[0].type}={.conditions[0].status}")
            #expect(out.stdout == "Healthy=True", "\(out.stdout) \(out.stderr)")
            out = try c.kubectl("get", "cs", "kubelet")
            #expect(out.stderr.contains(#"componentstatuses "kubelet" not found"#), "\(out.stderr)")
            out = try c.kubectl("delete", "cs", "etcd-0")
            #expect(
                !out.ok && out.stderr.contains("MethodNotAllowed") || out.stderr.contains("not allow"), "\(out.stderr)")
        }
    }
}

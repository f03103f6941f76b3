import BerthAPI
import Foundation
import Testing

extension APITests {
    /// autoscaling/v2 HorizontalPodAutoscalers and their autoscaling/v1 view (issue 16), as `kubectl
    /// autoscale` (v1, protobuf) and v2 clients use them.
    @Suite("horizontal pod autoscalers", .serialized)
    struct HorizontalPodAutoscalerTests {
        @Test func autoscaleCreatesThroughV1AndBothVersionsReadTheSameObject() async throws {
            let s = try await TestServer()
            #expect(try s.kubectl("create", "deployment", "web", "--image=nginx").ok)
            let made = try s.kubectl("autoscale", "deployment", "web", "--cpu-percent=50", "--min=2", "--max=5")
            #expect(made.ok, "\(made.stderr)")
            let table = try s.kubectl("get", "hpa")
            #expect(
                table.stdout.contains("Deployment/web") && table.stdout.contains("cpu: <unknown>/50%"),
                "\(table.stdout)")
            let (_, v2) = try s.curl("GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web")
            #expect(v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50)
            #expect(v2["spec"]["minReplicas"] == 2 && v2["spec"]["targetCPUUtilizationPercentage"].isNull)

            // A v2 autoscaler with what v1 cannot say: v1 carries it in annotations, and a v1 update keeps it.
            let second = """
                apiVersion: autoscaling/v2
                kind: HorizontalPodAutoscaler
                metadata: {name: api}
                spec:
                  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
                  maxReplicas: 4
                  metrics:
                  - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}
                  - {type: Resource, resource: {name: memory, target: {type: AverageValue, averageValue: 100Mi}}}
                  behavior: {scaleDown: {stabilizationWindowSeconds: 60}}
                """
            #expect(try s.kubectl("apply", "-f", "-", stdin: second).ok)
            let (_, v1) = try s.curl("GET", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/api")
            #expect(v1["spec"]["targetCPUUtilizationPercentage"] == 60 && v1["spec"]["minReplicas"] == 1)
            #expect(
                v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"].string?.contains("memory")
                    == true, "\(v1)")
            var edited = v1
            edited["spec"]["maxReplicas"] = 6
            let (code, _) = try s.curl(
                "PUT", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/api", body: edited.text)
            #expect(code == 200)
            let (_, after) = try s.curl("GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/api")
            #expect(after["spec"]["maxReplicas"] == 6 && after["spec"]["metrics"].array?.count == 2)
            #expect(after["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60)
            // Defaults of the behavior's other direction, as upstream fills them.
            #expect(after["spec"]["behavior"]["scaleUp"]["policies"].array?.count == 2)
            let annotations = (after["metadata"]["annotations"].object ?? [:]).keys
            #expect(!annotations.contains { $0.hasPrefix("autoscaling.alpha.kubernetes.io/") }, "\(annotations)")

            let bad = try s.kubectl(
                "create", "-f", "-",
                stdin:
                    #"{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"bad"},"spec":{"scaleTargetRef":{"kind":"Deployment"},"minReplicas":3,"maxReplicas":2,"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":0}}}]}}"#
            )
            expectMentions(
                bad.stderr,
                [
                    "spec.scaleTargetRef.name: Required value",
                    "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
                    "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
                ])
            await s.stop()
        }
    }
}

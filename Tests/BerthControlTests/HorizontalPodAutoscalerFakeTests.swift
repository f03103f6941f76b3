import BerthKube
import Foundation
import Logging
import Testing

@testable import BerthAPI
@testable import BerthControl

/// The horizontal pod autoscaler on a ``FakeCluster`` whose pods report synthetic CPU usage, as node
/// agents would through metrics.k8s.io (issue 16). No server, no store, no root.
@Suite("HorizontalPodAutoscaler controller on a fake cluster")
struct HorizontalPodAutoscalerFakeTests {
    let plane: FakeControlPlane = {
        var config = ControlPlaneConfig()
        config.horizontalPodAutoscalerSyncPeriod = .milliseconds(100)
        return FakeControlPlane(label: "hpa-fake-test", config: config)
    }()
    var cluster: FakeCluster { plane.cluster }

    func start() async -> Task<Void, Never> { await plane.start(HorizontalPodAutoscalerController.init) }

    func eventually(_ what: String, _ condition: () -> Bool) async throws {
        try await plane.eventually(
            what, detail: { ": \(hpa?.kubeJSON()["status"].text ?? "") \(cluster.actions.suffix(5))" }, condition)
    }

    func seed(pods: Int, cpuRequest: String? = "100m", hpa extra: JSON = [:]) throws {
        cluster.seed(
            try AppsV1.Deployment(
                kubeJSON: [
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": ["name": "web", "namespace": "default", "uid": "d-1"],
                    "spec": [
                        "replicas": .int(Int64(pods)), "selector": ["matchLabels": ["app": "web"]],
                        "template": [
                            "metadata": ["labels": ["app": "web"]], "spec": ["containers": [["name": "web"]]],
                        ],
                    ],
                    "status": ["replicas": .int(Int64(pods))],
                ]))
        for i in 0..<pods {
            var container: JSON = ["name": "web", "image": "web:1"]
            if let cpuRequest { container["resources"] = ["requests": ["cpu": .string(cpuRequest)]] }
            cluster.seed(
                try CoreV1.Pod(
                    kubeJSON: [
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": ["name": .string("web-\(i)"), "namespace": "default", "labels": ["app": "web"]],
                        "spec": ["nodeName": "node-1", "containers": [container]],
                        "status": ["phase": "Running", "conditions": [["type": "Ready", "status": "True"]]],
                    ]))
        }
        var hpa: JSON = [
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": ["name": "web", "namespace": "default", "generation": 1],
            "spec": [
                "scaleTargetRef": ["apiVersion": "apps/v1", "kind": "Deployment", "name": "web"],
                "minReplicas": 1, "maxReplicas": 10,
                "metrics": [HorizontalPodAutoscalerStrategy.cpuMetric(50)],
                "behavior": ["scaleDown": ["stabilizationWindowSeconds": 0]],
            ],
        ]
        for (k, v) in extra.object ?? [:] { hpa["spec"][k] = v }
        cluster.seed(try AutoscalingV2.HorizontalPodAutoscaler(kubeJSON: hpa))
    }

    func usage(_ pods: Int, _ cpu: String) {
        for i in 0..<pods {
            cluster.setPodUsage(namespace: "default", name: "web-\(i)", ["cpu": cpu, "memory": "10Mi"])
        }
    }

    var replicas: Int32? { cluster.object(AppsV1.Deployment.self, namespace: "default", name: "web")?.spec.replicas }
    var hpa: AutoscalingV2.HorizontalPodAutoscaler? {
        cluster.object(AutoscalingV2.HorizontalPodAutoscaler.self, namespace: "default", name: "web")
    }

    @Test(.timeLimit(.minutes(1)))
    func busyPodsScaleTheTargetUpWithinThePoliciesAndIdleOnesDown() async throws {
        try seed(pods: 2)
        usage(2, "180m")  // 180 % of the request against a 50 % target
        let run = await start()
        defer { run.cancel() }
        // Wanted: ceil(2 × 180/50) = 8; the default scale-up policies allow max(2 + 4, 2 × 2) = 6 now.
        try await eventually("the deployment scaled to 6") { replicas == 6 }
        try await eventually("the status") {
            hpa?.status.desiredReplicas == 6 && hpa?.status.lastScaleTime != nil
                && hpa?.status.currentMetrics.first?.resource?.current.averageUtilization == 180
        }
        let conditions = Dictionary(
            uniqueKeysWithValues: (hpa?.status.conditions ?? []).map { ($0.type.rawValue, $0.reason ?? "") })
        #expect(conditions["ScalingActive"] == "ValidMetricFound" && conditions["AbleToScale"] != nil)
        try await eventually("the SuccessfulRescale event") {
            cluster.events.contains {
                $0["reason"].string == "SuccessfulRescale"
                    && $0["message"].string
                        == "New size: 6; reason: cpu resource utilization (percentage of request) above target"
            }
        }

        // Within the tolerance nothing moves; idle pods bring it down to the minimum (no stabilization
        // window in this autoscaler's behavior).
        var scaled = try #require(cluster.object(AppsV1.Deployment.self, namespace: "default", name: "web"))
        scaled.spec.replicas = 2
        _ = try await cluster.update(scaled)
        usage(2, "52m")
        try await Task.sleep(for: .milliseconds(500))
        #expect(replicas == 2)
        usage(2, "0m")  // wants none: held at the minimum
        try await eventually("the deployment scaled down to 1") { replicas == 1 }
        try await eventually("ScalingLimited at the minimum") {
            hpa?.status.conditions.contains { $0.type.rawValue == "ScalingLimited" && $0.reason == "TooFewReplicas" }
                == true
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func podsWithoutRequestsOrMetricsLeaveTheTargetAlone() async throws {
        try seed(pods: 2, cpuRequest: nil)
        usage(2, "500m")
        let run = await start()
        defer { run.cancel() }
        try await eventually("ScalingActive False") {
            hpa?.status.conditions.contains {
                $0.type.rawValue == "ScalingActive" && $0.reason == "FailedGetResourceMetric"
                    && ($0.message ?? "").contains("missing request for cpu in container web of Pod web-")
            } == true
        }
        #expect(replicas == 2)
    }
}

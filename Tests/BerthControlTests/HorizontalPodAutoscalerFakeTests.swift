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

    /// `pods` pods of a Deployment, Running and Ready for ten minutes (past the CPU initialization
    /// period) but those in `starting`, which started a minute ago and are not Ready yet.
    func seed(pods: Int, cpuRequest: String? = "100m", starting: Set<Int> = [], hpa extra: JSON = [:]) throws {
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
            let since = APITime.string(Date().addingTimeInterval(starting.contains(i) ? -60 : -600))
            let ready: JSON = [
                "type": "Ready", "status": starting.contains(i) ? "False" : "True",
                "lastTransitionTime": .string(since),
            ]
            cluster.seed(
                try CoreV1.Pod(
                    kubeJSON: [
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": ["name": .string("web-\(i)"), "namespace": "default", "labels": ["app": "web"]],
                        "spec": ["nodeName": "node-1", "containers": [container]],
                        "status": ["phase": "Running", "startTime": .string(since), "conditions": [ready]],
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

    /// CPU usage for the first `pods` pods; the others have no metrics.
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

    /// What status.currentMetrics says of CPU, and desiredReplicas.
    var measured: (utilization: Int32?, average: String?, desired: Int32?) {
        let current = hpa?.status.currentMetrics.first?.resource?.current
        return (current?.averageUtilization, current?.averageValue?.string, hpa?.status.desiredReplicas)
    }

    /// Waits until the autoscaler has computed `desired` from `utilization`, then a few more syncs, and
    /// checks that the Deployment kept its replicas throughout.
    func expectKept(_ replicas: Int32, utilization: Int32) async throws {
        try await eventually("the autoscaler measured \(utilization) % and wants \(replicas)") {
            measured.utilization == utilization && measured.desired == replicas
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(self.replicas == replicas)
        #expect(!cluster.events.contains { $0["reason"].string == "SuccessfulRescale" })
    }

    // Pods without metrics (upstream's "missing" pods): they count, with the guess that damps the change.

    @Test(.timeLimit(.minutes(1)))
    func aPodWithoutMetricsCountsAsIdleWhenScalingUp() async throws {
        try seed(pods: 4)
        // Two measured pods at 104 % of their request want ceil(2 × 104/50) = 5 replicas; counting the
        // two silent ones as idle gives 208m over 400m, 52 %: within the tolerance of 50 %.
        usage(2, "104m")
        let run = await start()
        defer { run.cancel() }
        try await expectKept(4, utilization: 104)
        // The status reports what the measured ready pods use, not the guess.
        #expect(measured.average == "104m")
    }

    @Test(.timeLimit(.minutes(1)))
    func aPodWithoutMetricsCountsAsBusyWhenScalingDown() async throws {
        try seed(pods: 4)
        // Three measured pods at 10 % alone would go down to ceil(3 × 10/50) = 1; the silent one counts
        // as using all of its request: 130m over 400m, 32 %, so ceil(4 × 32/50) = 3.
        usage(3, "10m")
        let run = await start()
        defer { run.cancel() }
        try await eventually("the deployment scaled down to 3") { replicas == 3 }
        try await eventually("the status") { measured.utilization == 10 && measured.average == "10m" }
        try await Task.sleep(for: .milliseconds(300))
        // Nothing here deletes pods: the next syncs see the same four and stay at 3.
        #expect(replicas == 3)
    }

    @Test(.timeLimit(.minutes(1)))
    func anUnreadyPodCountsAsIdleWhenScalingUpOnCPU() async throws {
        // web-3 started a minute ago and is not Ready: its CPU (busy warming up) is not trusted.
        try seed(pods: 4, starting: [3])
        usage(4, "100m")
        let run = await start()
        defer { run.cancel() }
        // The three ready pods at 100 % want to double; web-3 counts as idle: 300m over 400m, 75 %,
        // ceil(4 × 75/50) = 6 (counting its sample would have made it 8).
        try await eventually("the deployment scaled up to 6") { replicas == 6 }
        try await eventually("the status") { measured.utilization == 100 && measured.desired == 6 }
    }

    @Test(.timeLimit(.minutes(1)))
    func aGuessThatTurnsTheDirectionKeepsTheReplicas() async throws {
        try seed(pods: 4)
        // The measured pods at 60 % want ceil(2 × 60/50) = 3 replicas, fewer than the 4 running though
        // they are above the target; counting the silent pods as idle (120m over 400m, 30 %) would
        // scale down instead. Neither happens.
        usage(2, "60m")
        let run = await start()
        defer { run.cancel() }
        try await expectKept(4, utilization: 60)
    }

    // More than one metric: each is computed, the most replicas wins, a failed one leaves a gap.

    static let podsMetric: JSON = [
        "type": "Pods",
        "pods": ["metric": ["name": "requests_per_second"], "target": ["type": "AverageValue", "averageValue": "10"]],
    ]

    /// A Pods metric (no custom metrics adapter) fails beside a CPU metric that wants more: the autoscaler
    /// scales on CPU, as upstream's, and says which metric failed.
    @Test(.timeLimit(.minutes(1)))
    func aFailedMetricDoesNotStopAScaleUpTheOthersWant() async throws {
        try seed(pods: 2, hpa: ["metrics": [Self.podsMetric, HorizontalPodAutoscalerStrategy.cpuMetric(50)]])
        usage(2, "100m")  // 100 % against 50 %: 4 replicas
        let run = await start()
        defer { run.cancel() }
        try await eventually("the deployment scaled up to 4") { replicas == 4 }
        try await eventually("the status") {
            let current = hpa?.kubeJSON()["status"]["currentMetrics"] ?? .null
            return current.array?.count == 2 && current[0] == ["type": ""]
                && current[1]["resource"]["current"]["averageUtilization"] == 100
        }
        #expect(
            hpa?.status.conditions.contains {
                $0.type.rawValue == "ScalingActive" && $0.reason == "ValidMetricFound"
                    && $0.message
                        == "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"
            } == true)
        try await eventually("the FailedGetPodsMetric event") {
            cluster.events.contains {
                $0["reason"].string == "FailedGetPodsMetric"
                    && $0["message"].string
                        == "unable to get metric requests_per_second: unable to fetch metrics from custom metrics API: the server could not find the requested resource"
            }
        }
    }

    /// The same failed metric beside a CPU metric that wants fewer: the missing metric might want more, so
    /// nothing scales down; ScalingActive is False with the failed metric's reason, as upstream's.
    @Test(.timeLimit(.minutes(1)))
    func aFailedMetricHoldsAScaleDown() async throws {
        try seed(pods: 4, hpa: ["metrics": [HorizontalPodAutoscalerStrategy.cpuMetric(50), Self.podsMetric]])
        usage(4, "10m")  // 10 % against 50 %: 1 replica
        let run = await start()
        defer { run.cancel() }
        try await eventually("ScalingActive False") {
            hpa?.status.conditions.contains {
                $0.type.rawValue == "ScalingActive" && $0.reason == "FailedGetPodsMetric"
                    && ($0.message ?? "").hasPrefix(
                        "the HPA was unable to compute the replica count: unable to get metric")
            } == true
        }
        try await eventually("the FailedComputeMetricsReplicas event") {
            cluster.events.contains {
                $0["reason"].string == "FailedComputeMetricsReplicas"
                    && $0["message"].string
                        == "invalid metrics (1 invalid out of 2), first error is: failed to get pods metric value: unable to get metric requests_per_second: unable to fetch metrics from custom metrics API: the server could not find the requested resource"
            }
        }
        let current = hpa?.kubeJSON()["status"]["currentMetrics"] ?? .null
        #expect(current[0]["resource"]["current"]["averageUtilization"] == 10 && current[1] == ["type": ""])
        try await Task.sleep(for: .milliseconds(300))
        #expect(replicas == 4)
    }

    /// A ContainerResource metric weighs the named container alone; one naming a container the metrics
    /// do not have fails with upstream's words.
    @Test(.timeLimit(.minutes(1)))
    func containerResourceMetricsMeasureTheirContainer() async throws {
        let metric: JSON = [
            "type": "ContainerResource",
            "containerResource": [
                "name": "cpu", "container": "web", "target": ["type": "Utilization", "averageUtilization": 50],
            ],
        ]
        try seed(pods: 2, hpa: ["metrics": [metric]])
        usage(2, "150m")
        let run = await start()
        defer { run.cancel() }
        try await eventually("the deployment scaled up to 6") { replicas == 6 }
        try await eventually("the status") {
            let current = hpa?.kubeJSON()["status"]["currentMetrics"][0] ?? .null
            return current["type"] == "ContainerResource" && current["containerResource"]["container"] == "web"
                && current["containerResource"]["current"]["averageUtilization"] == 150
        }
        #expect(
            cluster.events.contains {
                $0["reason"].string == "SuccessfulRescale"
                    && $0["message"].string
                        == "New size: 6; reason: cpu container resource utilization (percentage of request) above target"
            })

        var elsewhere = try #require(hpa)
        var spec = elsewhere.kubeJSON()
        var sidecar = metric
        sidecar["containerResource"]["container"] = "sidecar"
        spec["spec"]["metrics"] = [sidecar]
        elsewhere = try AutoscalingV2.HorizontalPodAutoscaler(kubeJSON: spec)
        _ = try await cluster.update(elsewhere)
        try await eventually("FailedGetContainerResourceMetric") {
            hpa?.status.conditions.contains {
                $0.type.rawValue == "ScalingActive" && $0.reason == "FailedGetContainerResourceMetric"
                    && ($0.message ?? "").hasPrefix(
                        "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: failed to get container metrics: container sidecar not present in metrics for pod default/web-"
                    )
            } == true
        }
    }
}

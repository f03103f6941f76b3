import BerthKube
import Foundation
import Testing

@testable import BerthAPI
@testable import BerthControl

/// Upstream's groupPods and the AverageValue path of the replica calculator, on pods made here (the
/// controller around it: HorizontalPodAutoscalerFakeTests).
@Suite("HorizontalPodAutoscaler replica calculator")
struct ReplicaCalculatorTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    let calculator = ReplicaCalculator(now: Self.now)

    /// A Running pod started `started` seconds ago whose Ready condition is `ready` since `transition`
    /// seconds ago (nil: no Ready condition).
    static func pod(
        _ name: String, phase: String = "Running", started: Double? = 600, ready: Bool? = true,
        transition: Double = 600, deleting: Bool = false
    ) throws -> CoreV1.Pod {
        var obj: JSON = [
            "metadata": ["name": .string(name), "namespace": "default"],
            "spec": ["containers": [["name": "c", "resources": ["requests": ["cpu": "100m", "memory": "100Mi"]]]]],
            "status": ["phase": .string(phase)],
        ]
        if let started { obj["status"]["startTime"] = .string(APITime.string(now.addingTimeInterval(-started))) }
        if let ready {
            obj["status"]["conditions"] = [
                [
                    "type": "Ready", "status": ready ? "True" : "False",
                    "lastTransitionTime": .string(APITime.string(now.addingTimeInterval(-transition))),
                ]
            ]
        }
        if deleting { obj["metadata"]["deletionTimestamp"] = .string(APITime.string(now)) }
        return try CoreV1.Pod(kubeJSON: obj)
    }

    static func metric(_ value: Int64, takenAgo: Double = 5) -> ReplicaCalculator.PodMetric {
        .init(value: value, timestamp: now.addingTimeInterval(-takenAgo), window: 10)
    }

    @Test func podsAreGroupedAsUpstreamDoes() throws {
        let pods = try [
            Self.pod("ready"),
            Self.pod("missing"),
            Self.pod("pending", phase: "Pending"),
            Self.pod("failed", phase: "Failed"),
            Self.pod("deleting", deleting: true),
            // Within the initialization period: Ready, but the sample's window began before it was.
            Self.pod("warming", started: 60, transition: 8),
            // Within it, Ready long enough for a whole window.
            Self.pod("warm", started: 60, transition: 30),
            // After it: not Ready and never was (the condition changed right after the start).
            Self.pod("never-ready", ready: false, transition: 590),
            // After it: not Ready any more, having been Ready: its sample counts.
            Self.pod("was-ready", ready: false, transition: 100),
            Self.pod("no-condition", ready: nil),
            Self.pod("no-start", started: nil),
        ]
        var metrics: [String: ReplicaCalculator.PodMetric] = [:]
        for pod in pods where pod.metadata.name != "missing" { metrics[pod.metadata.name ?? ""] = Self.metric(50) }

        let cpu = calculator.group(pods, metrics: metrics, resource: "cpu")
        #expect(cpu.readyCount == 3)  // ready, warm, was-ready
        #expect(cpu.missing == ["missing"])
        #expect(cpu.ignored == ["failed", "deleting"])
        #expect(cpu.unready == ["pending", "warming", "never-ready", "no-condition", "no-start"])

        // Readiness and start-up matter for CPU only; a Pending pod is unready for every resource.
        let memory = calculator.group(pods, metrics: metrics, resource: "memory")
        #expect(memory.readyCount == 7 && memory.unready == ["pending"] && memory.missing == ["missing"])
    }

    @Test func averageValueTargetsTreatMissingPodsAsUsingTheTarget() throws {
        let pods = try (0..<4).map { try Self.pod("p\($0)") }
        // Three pods at 10m against a 50m target would want 1; the fourth, silent, counts as 50m:
        // 80m over 4 pods is 20m a pod, ceil(4 × 20/50) = 2.
        let down = Dictionary(uniqueKeysWithValues: (0..<3).map { ("p\($0)", Self.metric(10)) })
        let (replicas, usage) = try calculator.averageValueReplicas(
            current: 4, target: 50, resource: "memory", pods: pods, metrics: down)
        #expect(replicas == 2 && usage == 10)

        // Scaling up, the silent pod counts as idle: 2 × 60m over 4 pods is 30m, below the target, so the
        // direction turns and nothing changes.
        let up = Dictionary(uniqueKeysWithValues: (0..<2).map { ("p\($0)", Self.metric(60)) })
        let kept = try calculator.averageValueReplicas(
            current: 4, target: 50, resource: "memory", pods: pods, metrics: up)
        #expect(kept.replicas == 4 && kept.usage == 60)
    }

    @Test func noUsableMetricsAndMissingRequestsFailInUpstreamsWords() throws {
        let starting = try [Self.pod("a", ready: false, transition: 595)]
        let target: JSON = ["type": "Utilization", "averageUtilization": 50]
        let metricsItem: JSON = [
            "metadata": ["name": "a"], "timestamp": .string(APITime.string(Self.now)), "window": "10s",
            "containers": [["name": "c", "usage": ["cpu": "50m"]]],
        ]
        #expect(throws: HPAFailure.self) {
            try calculator.replicas(for: target, resource: "cpu", current: 1, pods: starting, metrics: [])
        }
        do throws(HPAFailure) {
            _ = try calculator.replicas(
                for: target, resource: "cpu", current: 1, pods: starting, metrics: [metricsItem])
            Issue.record("an unready pod's sample was used")
        } catch {
            #expect(
                error.message
                    == "failed to get cpu utilization: did not receive metrics for targeted pods (pods might be unready)"
            )
        }
        do throws(HPAFailure) {
            _ = try calculator.replicas(for: target, resource: "cpu", current: 1, pods: starting, metrics: [])
        } catch {
            #expect(
                error.message
                    == "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"
            )
        }
        // A sidecar (restartable init container) must request the resource too.
        var sidecar = try Self.pod("b")
        sidecar.spec.initContainers = [try CoreV1.Container(kubeJSON: ["name": "proxy", "restartPolicy": "Always"])]
        do throws(HPAFailure) {
            _ = try ReplicaCalculator.requests([sidecar], resource: "cpu")
            Issue.record("a sidecar without a request was accepted")
        } catch { #expect(error.message == "missing request for cpu in container proxy of Pod b") }
    }

    /// ContainerResource metrics: the named container's usage against its own request, whatever the pod's
    /// other containers use or ask for (upstream's getContainerMetrics and calculatePodRequests).
    @Test func aContainerMetricWeighsThatContainerAlone() throws {
        var pod = try Self.pod("a")
        pod.spec.containers.append(try CoreV1.Container(kubeJSON: ["name": "proxy"]))  // no request
        #expect(try ReplicaCalculator.requests([pod], resource: "cpu", container: "c") == ["a": 100])
        #expect(throws: HPAFailure.self) { try ReplicaCalculator.requests([pod], resource: "cpu") }
        let item: JSON = [
            "metadata": ["name": "a", "namespace": "default"], "timestamp": .string(APITime.string(Self.now)),
            "window": "15s",
            "containers": [["name": "c", "usage": ["cpu": "200m"]], ["name": "proxy", "usage": ["cpu": "900m"]]],
        ]
        #expect(try ReplicaCalculator.podMetrics([item], resource: "cpu", container: "c")["a"]?.value == 200)
        #expect(try ReplicaCalculator.podMetrics([item], resource: "cpu")["a"]?.value == 1100)
        let (replicas, current) = try calculator.replicas(
            for: ["averageUtilization": 50], resource: "cpu", container: "c", current: 1, pods: [pod], metrics: [item])
        #expect(replicas == 4 && current["averageUtilization"] == 200)
        do throws(HPAFailure) {
            _ = try ReplicaCalculator.podMetrics([item], resource: "cpu", container: "absent")
            Issue.record("a container missing from the metrics was accepted")
        } catch {
            #expect(
                error.message
                    == "unable to get metrics for resource cpu: failed to get container metrics: container absent not present in metrics for pod default/a"
            )
        }
    }
}

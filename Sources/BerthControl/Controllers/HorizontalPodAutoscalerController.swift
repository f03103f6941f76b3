import BerthAPI
import BerthKube
import Foundation
import Logging

/// kube-controller-manager's horizontal pod autoscaler: every `syncPeriod` (15 s upstream) each
/// autoscaler reads its target's Scale and its pods' resource metrics (metrics.k8s.io, which the API
/// server serves from the node agents), computes the replicas each metric wants as upstream's replica
/// calculator does (usage over requests against the target utilization, a 10 % tolerance; or usage
/// against an average value), takes the largest, applies the behavior (scale-up policies, the
/// scale-down stabilization window), clamps to min/max and writes the Scale. Status and the conditions
/// AbleToScale, ScalingActive and ScalingLimited say what it saw, in upstream's words.
///
/// Resource metrics only: Pods, Object and External metrics need a custom or external metrics API,
/// which nothing serves here; such a metric makes ScalingActive False.
struct HorizontalPodAutoscalerController: ControlLoop {
    typealias HPA = AutoscalingV2.HorizontalPodAutoscaler

    let name = "horizontal-pod-autoscaler"
    let client: any KubeClient
    let autoscalers: Informer<HPA>
    let pods: Informer<CoreV1.Pod>
    let queue = WorkQueue(name: "horizontal-pod-autoscaler")
    let events: ComponentRecorder
    let logger: Logger
    let syncPeriod: Duration
    let recommendations = Recommendations()
    let calculator: ReplicaCalculator

    init(_ ctx: ControllerContext) {
        client = ctx.client("horizontal-pod-autoscaler")
        autoscalers = ctx.informers.informer(HPA.self)
        pods = ctx.informers.informer(CoreV1.Pod.self)
        events = ctx.events.component("horizontal-pod-autoscaler")
        logger = ctx.logger
        syncPeriod = ctx.config.horizontalPodAutoscalerSyncPeriod
        calculator = ReplicaCalculator(
            cpuInitializationPeriod: Self.seconds(ctx.config.horizontalPodAutoscalerCPUInitializationPeriod),
            initialReadinessDelay: Self.seconds(ctx.config.horizontalPodAutoscalerInitialReadinessDelay))
        let queue = self.queue, recommendations = self.recommendations
        autoscalers.onChange { e in
            if case .deleted = e {
                recommendations.forget(e.object.cacheKey)
                return
            }
            Task { await queue.add(e.object.cacheKey) }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("autoscaler sync failed", metadata: ["hpa": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ key: String) async throws {
        guard let hpa = autoscalers.get(key), !hpa.isTerminating else { return }
        // Each autoscaler is looked at again every sync period, whatever happens meanwhile.
        defer { queue.add(key, after: syncPeriod) }
        let namespace = hpa.metadata.namespace ?? "default"
        var obj = hpa.kubeJSON()
        let spec = obj["spec"]
        var status = obj["status"]
        status["observedGeneration"] = obj["metadata"]["generation"]
        let ref = spec["scaleTargetRef"]
        let refText = "\(ref["kind"].string ?? "")/\(ref["name"].string ?? "")"

        // The target and its Scale.
        let apiVersion = ref["apiVersion"].string ?? ""
        let kind = ref["kind"].string ?? ""
        // The custom kinds are asked for only when the target is not a built-in one.
        var target = Registry.find(apiVersion: apiVersion, kind: kind)
        if target == nil {
            let custom = (try? await client.customResourceTypes()) ?? []
            target = custom.first { $0.apiVersion == apiVersion && $0.kind == kind }
        }
        guard let target, target.subresources.contains("scale"),
            let scale = try await client.scale(target, namespace: namespace, name: ref["name"].string ?? "")
        else {
            Self.setCondition(
                &status, "AbleToScale", false, "FailedGetScale",
                "the HPA controller was unable to get the target's current scale: \(refText) not found")
            events.record(
                obj, type: "Warning", reason: "FailedGetScale", message: "\(refText) not found or not scalable")
            try await write(hpa, obj, status)
            return
        }
        let current = Int(scale["spec"]["replicas"].int ?? 0)
        status["currentReplicas"] = .int(Int64(scale["status"]["replicas"].int ?? Int64(current)))
        let minReplicas = Int(spec["minReplicas"].int ?? 1)
        let maxReplicas = Int(spec["maxReplicas"].int ?? 1)
        if current == 0 && minReplicas != 0 {
            // Upstream: a target scaled to zero by hand is left alone.
            Self.setCondition(
                &status, "ScalingActive", false, "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero")
            status["desiredReplicas"] = 0
            try await write(hpa, obj, status)
            return
        }

        // What each metric wants, as upstream's computeReplicasForMetrics: every metric is computed and the
        // most replicas wins. A metric that fails leaves an empty status in its place — kubectl pairs
        // status.currentMetrics with spec.metrics by position and prints <unknown> there — and stops the
        // autoscaler only when all fail or the others would scale down (a missing metric might want more).
        let specs = spec["metrics"].array ?? []
        let selector = scale["status"]["selector"].string ?? ""
        let labelSelector = try LabelSelector(selector)
        // Every pod the selector matches, as upstream's lister gives them: the calculator itself sets
        // aside the ones being deleted or failed (it still wants their requests).
        let targetPods = pods.list(namespace: namespace).filter {
            labelSelector.matches($0.metadata.labels) && !selector.isEmpty
        }
        var podMetrics: Result<[JSON], HPAFailure> = .success([])
        if specs.contains(where: { ["Resource", "ContainerResource"].contains($0["type"].string) }) {
            do {
                podMetrics = .success(try await client.podMetrics(namespace: namespace, selector: selector))
            } catch {
                podMetrics = .failure(HPAFailure("unable to fetch metrics from resource metrics API: \(error)"))
            }
        }
        // Evaluated now, so that a pod's start and readiness compare with one instant for every metric.
        var calculator = self.calculator
        calculator.now = Date()
        var proposal = 0
        var metricName = ""
        var statuses: [JSON] = []
        var invalid: [MetricFailure] = []
        for spec in specs {
            switch Self.evaluate(
                spec, calculator: calculator, namespace: namespace, current: current, pods: targetPods,
                metrics: podMetrics)
            {
            case .success(let answer):
                statuses.append(answer.status)
                if proposal == 0 || answer.replicas > proposal {
                    proposal = answer.replicas
                    metricName = answer.name
                }
            case .failure(let failure):
                statuses.append(["type": ""])
                events.record(obj, type: "Warning", reason: failure.reason, message: failure.conditionMessage)
                invalid.append(failure)
            }
        }
        status["currentMetrics"] = .array(statuses)
        if let first = invalid.first, invalid.count >= specs.count || proposal < current {
            Self.setCondition(
                &status, "AbleToScale", true, "SucceededGetScale",
                "the HPA controller was able to get the target's current scale")
            Self.setCondition(
                &status, "ScalingActive", false, first.reason,
                "the HPA was unable to compute the replica count: \(first.conditionMessage)")
            events.record(
                obj, type: "Warning", reason: "FailedComputeMetricsReplicas",
                message:
                    "invalid metrics (\(invalid.count) invalid out of \(specs.count)), first error is: \(first.error)")
            // desiredReplicas stays what it was, as upstream's setCurrentReplicasAndMetricsInStatus leaves it
            // (Go's zero on a first sync).
            if status["desiredReplicas"].isNull { status["desiredReplicas"] = 0 }
            try await write(hpa, obj, status)
            return
        }
        Self.setCondition(
            &status, "ScalingActive", true, "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count from \(metricName)")
        let reason = "\(metricName) above target"

        // Behavior: the scale-down stabilization window keeps the highest recommendation in it; scale-up
        // is limited per period by the policies (selectPolicy Max: the most permissive).
        let behavior = spec["behavior"]
        let downWindow = behavior["scaleDown"]["stabilizationWindowSeconds"].int ?? 300
        let upWindow = behavior["scaleUp"]["stabilizationWindowSeconds"].int ?? 0
        let stabilized = recommendations.stabilize(
            key, proposal, current: current, upWindow: Double(upWindow), downWindow: Double(downWindow))
        var desired = stabilized
        // The policies limit how far replicas move within each policy's period, counted from the
        // replicas the target had when the period began (upstream's scale events).
        if desired > current {
            let policies = behavior["scaleUp"]["policies"].array ?? HorizontalPodAutoscalerDefaults.scaleUpPolicies
            let limits = policies.map { p -> Int in
                let start =
                    current - recommendations.change(key, within: Double(p["periodSeconds"].int ?? 15), up: true)
                let value = Int(p["value"].int ?? 0)
                return p["type"] == "Pods"
                    ? start + value : Int((Double(start) * (1 + Double(value) / 100)).rounded(.up))
            }
            let select = behavior["scaleUp"]["selectPolicy"].string ?? "Max"
            if select != "Disabled", let limit = select == "Min" ? limits.min() : limits.max() {
                desired = min(desired, max(limit, current))
            } else if select == "Disabled" {
                desired = current
            }
        } else if desired < current {
            let policies = behavior["scaleDown"]["policies"].array ?? HorizontalPodAutoscalerDefaults.scaleDownPolicies
            let limits = policies.map { p -> Int in
                let start =
                    current + recommendations.change(key, within: Double(p["periodSeconds"].int ?? 15), up: false)
                let value = Int(p["value"].int ?? 0)
                return p["type"] == "Pods"
                    ? start - value : Int((Double(start) * (1 - Double(value) / 100)).rounded(.up))
            }
            let select = behavior["scaleDown"]["selectPolicy"].string ?? "Max"
            if select != "Disabled", let limit = select == "Min" ? limits.max() : limits.min() {
                desired = max(desired, min(limit, current))
            } else if select == "Disabled" {
                desired = current
            }
        }
        var limited = "DesiredWithinRange", limitedMessage = "the desired count is within the acceptable range"
        if desired < minReplicas {
            desired = minReplicas; limited = "TooFewReplicas";
            limitedMessage = "the desired replica count is less than the minimum replica count"
        } else if desired > maxReplicas {
            desired = maxReplicas; limited = "TooManyReplicas";
            limitedMessage = "the desired replica count is more than the maximum replica count"
        }
        Self.setCondition(&status, "ScalingLimited", limited != "DesiredWithinRange", limited, limitedMessage)
        status["desiredReplicas"] = .int(Int64(desired))
        if desired != current {
            try await client.mergePatch(
                target, namespace: namespace, name: ref["name"].string ?? "",
                ["spec": ["replicas": .int(Int64(desired))]],
                subresource: "scale")
            status["lastScaleTime"] = .string(APITime.string())
            recommendations.scaled(key, by: desired - current)
            events.record(
                obj, reason: "SuccessfulRescale",
                message: "New size: \(desired); reason: \(desired > current ? reason : "All metrics below target")")
            Self.setCondition(
                &status, "AbleToScale", true, "SucceededRescale",
                "the HPA controller was able to update the target scale to \(desired)")
        } else {
            Self.setCondition(&status, "AbleToScale", true, "ReadyForNewScale", "recommended size matches current size")
        }
        obj["status"] = status
        try await write(hpa, obj, status)
    }

    /// Writes the status when it changed (a conflict: the next sync writes it).
    func write(_ hpa: HPA, _ obj: JSON, _ status: JSON) async throws {
        var updated = obj
        updated["status"] = status
        guard updated != hpa.kubeJSON() else { return }
        let typed = try HPA(kubeJSON: updated)
        do { _ = try await client.updateStatus(typed) } catch let e as APIError where e.code == 409 || e.code == 404 {}
    }

    static func seconds(_ d: Duration) -> TimeInterval {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func setCondition(_ status: inout JSON, _ type: String, _ on: Bool, _ reason: String, _ message: String) {
        StatusConditions.set(&status, type, on, reason, message)
    }
}

enum HorizontalPodAutoscalerDefaults {
    static let scaleUpPolicies: [JSON] = [
        ["type": "Pods", "value": 4, "periodSeconds": 15], ["type": "Percent", "value": 100, "periodSeconds": 15],
    ]
    static let scaleDownPolicies: [JSON] = [["type": "Percent", "value": 100, "periodSeconds": 15]]
}

/// Each autoscaler's recent recommendations, for the stabilization windows: scaling down goes only as
/// far as the highest recommendation of the window, scaling up as far as the lowest of its own window.
final class Recommendations: @unchecked Sendable {
    private let lock = NSLock()
    private var byKey: [String: [(time: Date, replicas: Int)]] = [:]
    private var changes: [String: [(time: Date, delta: Int)]] = [:]

    /// Records a rescale by `delta` replicas.
    func scaled(_ key: String, by delta: Int) {
        lock.withLock {
            let now = Date()
            changes[key, default: []].removeAll { now.timeIntervalSince($0.time) > 1800 }
            changes[key, default: []].append((now, delta))
        }
    }

    /// How many replicas were added (`up`) or removed in the last `seconds`.
    func change(_ key: String, within seconds: Double, up: Bool) -> Int {
        lock.withLock {
            let now = Date()
            return (changes[key] ?? []).filter { now.timeIntervalSince($0.time) <= seconds && ($0.delta > 0) == up }
                .reduce(0) { $0 + abs($1.delta) }
        }
    }

    func stabilize(_ key: String, _ proposal: Int, current: Int, upWindow: Double, downWindow: Double) -> Int {
        lock.withLock {
            let now = Date()
            var list = (byKey[key] ?? []).filter { now.timeIntervalSince($0.time) <= max(upWindow, downWindow) }
            list.append((now, proposal))
            byKey[key] = list
            var upLimit = proposal, downLimit = proposal
            for r in list {
                let age = now.timeIntervalSince(r.time)
                if age <= upWindow { upLimit = min(upLimit, r.replicas) }
                if age <= downWindow { downLimit = max(downLimit, r.replicas) }
            }
            if proposal > current { return max(current, upLimit) }
            if proposal < current { return min(current, downLimit) }
            return current
        }
    }

    func forget(_ key: String) {
        lock.withLock {
            byKey[key] = nil; changes[key] = nil
        }
    }
}

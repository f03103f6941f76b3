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
    /// Upstream's --horizontal-pod-autoscaler-tolerance.
    static let tolerance = 0.1

    init(_ ctx: ControllerContext) {
        client = ctx.client("horizontal-pod-autoscaler")
        autoscalers = ctx.informers.informer(HPA.self)
        pods = ctx.informers.informer(CoreV1.Pod.self)
        events = ctx.events.component("horizontal-pod-autoscaler")
        logger = ctx.logger
        syncPeriod = ctx.config.horizontalPodAutoscalerSyncPeriod
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

        // What each metric wants.
        let selector = scale["status"]["selector"].string ?? ""
        var proposal = 0
        var reason = ""
        var currentMetrics: [JSON] = []
        var failure: String?
        let labelSelector = try LabelSelector(selector)
        let targetPods = pods.list(namespace: namespace).filter {
            $0.isActive && labelSelector.matches($0.metadata.labels) && !selector.isEmpty
        }
        var metrics: [String: JSON] = [:]
        do {
            for item in try await client.podMetrics(namespace: namespace, selector: selector) {
                if let name = item["metadata"]["name"].string { metrics[name] = item }
            }
        } catch { failure = "unable to get metrics for resource: \(error)" }
        for spec in spec["metrics"].array ?? [] where failure == nil {
            guard spec["type"].string == "Resource", let resource = spec["resource"]["name"].string else {
                failure =
                    "the HPA was unable to compute the replica count: \(spec["type"].string ?? "") metrics are not served"
                break
            }
            switch Self.replicas(
                for: spec["resource"]["target"], resource: resource, current: current, pods: targetPods,
                metrics: metrics)
            {
            case .failure(let problem):
                failure = problem.message
            case .success(let (replicas, measured)):
                currentMetrics.append([
                    "type": "Resource", "resource": ["name": .string(resource), "current": measured],
                ])
                if replicas > proposal {
                    proposal = replicas
                    reason =
                        "\(resource) resource\(spec["resource"]["target"]["type"] == "Utilization" ? " utilization (percentage of request)" : "") \(replicas > current ? "above" : "below") target"
                }
            }
        }
        if let failure {
            Self.setCondition(
                &status, "AbleToScale", true, "SucceededGetScale",
                "the HPA controller was able to get the target's current scale")
            Self.setCondition(&status, "ScalingActive", false, "FailedGetResourceMetric", failure)
            events.record(obj, type: "Warning", reason: "FailedGetResourceMetric", message: failure)
            status["desiredReplicas"] = .int(Int64(current))
            try await write(hpa, obj, status)
            return
        }
        status["currentMetrics"] = .array(currentMetrics)
        Self.setCondition(
            &status, "ScalingActive", true, "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count from \(reason.split(separator: " ").prefix(2).joined(separator: " "))"
        )

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

    /// Upstream's replica calculator for one resource metric over the pods with a measurement.
    static func replicas(
        for target: JSON, resource: String, current: Int, pods: [CoreV1.Pod], metrics: [String: JSON]
    ) -> Result<(Int, JSON), HPAFailure> {
        var usage: Int64 = 0, requests: Int64 = 0, counted = 0
        for pod in pods {
            guard let name = pod.metadata.name, let m = metrics[name] else { continue }
            let podUsage = (m["containers"].array ?? []).reduce(Int64(0)) {
                $0 + ($1["usage"][resource].string.flatMap(Quantity.milli) ?? 0)
            }
            var podRequest: Int64 = 0
            for c in pod.spec.containers {
                guard let q = c.resources.requests[resource]?.milliValue else {
                    return .failure(
                        HPAFailure(
                            "failed to get \(resource) utilization: missing request for \(resource) in container \(c.name) of Pod \(name)"
                        ))
                }
                podRequest += q
            }
            usage += podUsage; requests += podRequest; counted += 1
        }
        guard counted > 0 else {
            return .failure(
                HPAFailure(
                    "failed to get \(resource) utilization: unable to get metrics for resource \(resource): no metrics returned from resource metrics API"
                ))
        }
        if target["type"] == "Utilization" {
            let want = Double(target["averageUtilization"].int ?? 80)
            guard requests > 0 else {
                return .failure(HPAFailure("failed to get \(resource) utilization: missing request for \(resource)"))
            }
            let utilization = Double(usage) * 100 / Double(requests)
            let ratio = utilization / want
            let replicas = abs(ratio - 1) <= tolerance ? current : Int((ratio * Double(counted)).rounded(.up))
            return .success(
                (
                    replicas,
                    [
                        "averageUtilization": .int(Int64(utilization.rounded(.down))),
                        "averageValue": .string("\(usage / Int64(counted))m"),
                    ]
                ))
        }
        guard let average = (target["averageValue"].string ?? target["value"].string).flatMap(Quantity.milli),
            average > 0
        else {
            return .failure(HPAFailure("invalid target for \(resource): averageValue or value must be set"))
        }
        let ratio = Double(usage) / Double(average * Int64(counted))
        let replicas = abs(ratio - 1) <= tolerance ? current : Int((Double(usage) / Double(average)).rounded(.up))
        return .success((replicas, ["averageValue": .string("\(usage / Int64(counted))m")]))
    }

    /// Writes the status when it changed (a conflict: the next sync writes it).
    func write(_ hpa: HPA, _ obj: JSON, _ status: JSON) async throws {
        var updated = obj
        updated["status"] = status
        guard updated != hpa.kubeJSON() else { return }
        let typed = try HPA(kubeJSON: updated)
        do { _ = try await client.updateStatus(typed) } catch let e as APIError where e.code == 409 || e.code == 404 {}
    }

    static func setCondition(_ status: inout JSON, _ type: String, _ on: Bool, _ reason: String, _ message: String) {
        StatusConditions.set(&status, type, on, reason, message)
    }
}

struct HPAFailure: Error { var message: String; init(_ m: String) { message = m } }

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

import BerthAPI
import BerthKube
import Foundation

/// kube-controller-manager's replica calculator for Resource metrics (pkg/controller/podautoscaler,
/// replica_calculator.go as of v1.32): how many replicas one metric wants, and what the autoscaler's
/// status.currentMetrics says was measured.
///
/// The target's pods fall into four groups (``group(_:metrics:resource:)``): ready pods with a
/// measurement, unready pods, pods without a measurement ("missing") and pods being deleted or failed
/// (ignored). The usage ratio is first taken over the ready measured pods only, and that is what the
/// status reports. When pods are missing, or unready ones would be added to a scale-up, the ratio is
/// taken again with the conservative guess for each: a missing pod uses all of its request when scaling
/// down and nothing when scaling up, an unready pod nothing. The guess may only damp a change, never
/// reverse it: if the second ratio is within the tolerance or points the other way, the target keeps
/// its replicas.
struct ReplicaCalculator {
    /// --horizontal-pod-autoscaler-tolerance: ratios this close to 1 change nothing.
    var tolerance = 0.1
    /// --horizontal-pod-autoscaler-cpu-initialization-period: a pod started this recently may still be
    /// warming up, so its CPU sample counts only once the pod has been Ready for a whole metrics window.
    var cpuInitializationPeriod: TimeInterval = 300
    /// --horizontal-pod-autoscaler-initial-readiness-delay: after the initialization period, a pod not
    /// Ready whose Ready condition last changed within this long of its start has never been Ready.
    var initialReadinessDelay: TimeInterval = 30
    var now = Date()

    /// One pod's measurement of one resource (summed over its containers), in milli-units.
    struct PodMetric {
        var value: Int64
        var timestamp: Date
        var window: TimeInterval
    }

    /// The target's pods as upstream's groupPods sorts them for one metric.
    struct PodGroups {
        /// Pods neither unready, missing nor ignored.
        var readyCount = 0
        /// Pending pods, and for CPU pods not Ready or still warming up.
        var unready: Set<String> = []
        /// Pods the metrics API said nothing about.
        var missing: Set<String> = []
        /// Pods being deleted or failed.
        var ignored: Set<String> = []
    }

    /// The replicas one Resource metric wants — or, with `container`, one ContainerResource metric, which
    /// measures and weighs that container alone — and its MetricValueStatus (status.currentMetrics[]
    /// .resource.current). `items` are the metrics API's PodMetrics for the target's selector.
    func replicas(
        for target: JSON, resource: String, container: String? = nil, current: Int, pods: [CoreV1.Pod],
        metrics items: [JSON]
    ) throws(HPAFailure) -> (replicas: Int, current: JSON) {
        if let text = target["averageValue"].string {
            guard let average = Quantity.milli(text), average > 0 else {
                throw HPAFailure("failed to get \(resource) usage: invalid target average value \(text)")
            }
            do throws(HPAFailure) {
                let metrics = try Self.podMetrics(items, resource: resource, container: container)
                let (replicas, usage) = try averageValueReplicas(
                    current: current, target: average, resource: resource, pods: pods, metrics: metrics)
                return (replicas, ["averageValue": .string(Self.milliQuantity(usage))])
            } catch { throw HPAFailure("failed to get \(resource) usage: \(error.message)") }
        }
        guard let utilizationTarget = target["averageUtilization"].int, utilizationTarget > 0 else {
            throw HPAFailure(
                "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set"
            )
        }
        do throws(HPAFailure) {
            let metrics = try Self.podMetrics(items, resource: resource, container: container)
            let (replicas, utilization, raw) = try utilizationReplicas(
                current: current, target: utilizationTarget, resource: resource, container: container, pods: pods,
                metrics: metrics)
            return (
                replicas,
                ["averageUtilization": .int(utilization), "averageValue": .string(Self.milliQuantity(raw))]
            )
        } catch { throw HPAFailure("failed to get \(resource) utilization: \(error.message)") }
    }

    /// The pods grouped, and the metrics of the ready measured ones (both calculations start from these);
    /// throws, in upstream's words, when there are no pods or none of them is ready and measured.
    private func readyMetrics(_ pods: [CoreV1.Pod], _ measured: [String: PodMetric], resource: String)
        throws(HPAFailure) -> (PodGroups, [String: Int64])
    {
        guard !pods.isEmpty else { throw HPAFailure("no pods returned by selector while calculating replica count") }
        let groups = group(pods, metrics: measured, resource: resource)
        var metrics = measured.mapValues(\.value)
        for name in groups.ignored.union(groups.unready) { metrics[name] = nil }
        guard !metrics.isEmpty else {
            throw HPAFailure("did not receive metrics for targeted pods (pods might be unready)")
        }
        return (groups, metrics)
    }

    /// GetResourceReplicas: usage over requests against a target utilization (percent). Returns the
    /// replicas, and the utilization and average usage of the ready measured pods.
    func utilizationReplicas(
        current: Int, target: Int64, resource: String, container: String? = nil, pods: [CoreV1.Pod],
        metrics measured: [String: PodMetric]
    ) throws(HPAFailure) -> (replicas: Int, utilization: Int64, rawAverage: Int64) {
        let (groups, ready) = try readyMetrics(pods, measured, resource: resource)
        var metrics = ready
        let requests = try Self.requests(pods, resource: resource, container: container)
        let (ratio, utilization, raw) = try Self.utilizationRatio(metrics, requests: requests, target: target)

        let scaleUpWithUnready = !groups.unready.isEmpty && ratio > 1
        if !scaleUpWithUnready && groups.missing.isEmpty {
            if abs(1 - ratio) <= tolerance { return (current, utilization, raw) }
            return (Int((ratio * Double(groups.readyCount)).rounded(.up)), utilization, raw)
        }
        if ratio < 1 {
            // Scaling down: a missing pod may be busy, so it counts as using all of its request (or the
            // target, when that is above 100 %).
            let fallback = max(100, target)
            for name in groups.missing { metrics[name] = (requests[name] ?? 0) * fallback / 100 }
        } else if ratio > 1 {
            // Scaling up: a missing pod may be idle.
            for name in groups.missing { metrics[name] = 0 }
        }
        // Scaling up: an unready pod will take load once it is ready, so it counts as idle.
        if scaleUpWithUnready { for name in groups.unready { metrics[name] = 0 } }
        let (newRatio, _, _) = try Self.utilizationRatio(metrics, requests: requests, target: target)
        return (damped(current: current, ratio: ratio, newRatio: newRatio, counted: metrics.count), utilization, raw)
    }

    /// GetRawResourceReplicas (calcPlainMetricReplicas): average usage per pod against a target average,
    /// in milli-units. Returns the replicas and the average usage of the ready measured pods.
    func averageValueReplicas(
        current: Int, target: Int64, resource: String, pods: [CoreV1.Pod], metrics measured: [String: PodMetric]
    ) throws(HPAFailure) -> (replicas: Int, usage: Int64) {
        let (groups, ready) = try readyMetrics(pods, measured, resource: resource)
        var metrics = ready
        let (ratio, usage) = Self.usageRatio(metrics, target: target)

        let scaleUpWithUnready = !groups.unready.isEmpty && ratio > 1
        if !scaleUpWithUnready && groups.missing.isEmpty {
            if abs(1 - ratio) <= tolerance { return (current, usage) }
            return (Int((ratio * Double(groups.readyCount)).rounded(.up)), usage)
        }
        // As for utilization, with the target standing for "all of its request".
        if ratio < 1 {
            for name in groups.missing { metrics[name] = target }
        } else if ratio > 1 {
            for name in groups.missing { metrics[name] = 0 }
        }
        if scaleUpWithUnready { for name in groups.unready { metrics[name] = 0 } }
        let (newRatio, _) = Self.usageRatio(metrics, target: target)
        return (damped(current: current, ratio: ratio, newRatio: newRatio, counted: metrics.count), usage)
    }

    /// The second pass's answer: no change when the guesses bring the ratio within the tolerance or turn
    /// its direction, or when counting more pods would move replicas against the ratio.
    func damped(current: Int, ratio: Double, newRatio: Double, counted: Int) -> Int {
        if abs(1 - newRatio) <= tolerance || (ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1) {
            return current
        }
        let replicas = Int((newRatio * Double(counted)).rounded(.up))
        if (newRatio < 1 && replicas > current) || (newRatio > 1 && replicas < current) { return current }
        return replicas
    }

    /// groupPods. Which pods are unready depends on the resource: only CPU spikes while a pod starts, so
    /// only CPU samples of starting pods are distrusted; any metric of a Pending pod is.
    func group(_ pods: [CoreV1.Pod], metrics: [String: PodMetric], resource: String) -> PodGroups {
        var groups = PodGroups()
        for pod in pods {
            let name = pod.metadata.name ?? ""
            if pod.isTerminating || pod.status.phase == .failed {
                groups.ignored.insert(name)
                continue
            }
            if pod.status.phase == .pending {
                groups.unready.insert(name)
                continue
            }
            guard let metric = metrics[name] else {
                groups.missing.insert(name)
                continue
            }
            if resource == "cpu" && cpuSampleIsUnready(pod, metric) {
                groups.unready.insert(name)
                continue
            }
            groups.readyCount += 1
        }
        return groups
    }

    /// Within the initialization period a sample counts only if the pod is Ready and the sample's whole
    /// window lies after the pod became Ready; later, it is distrusted only from a pod that is not Ready
    /// and never was (its Ready condition last changed right after it started).
    func cpuSampleIsUnready(_ pod: CoreV1.Pod, _ metric: PodMetric) -> Bool {
        guard let condition = pod.readyCondition, let started = pod.status.startTime else { return true }
        let start = Self.date(started)
        // An unset transition time is Go's zero time, long before anything.
        let transition = Self.date(condition.lastTransitionTime ?? .zero)
        if start.addingTimeInterval(cpuInitializationPeriod) > now {
            return condition.status == .false || metric.timestamp < transition.addingTimeInterval(metric.window)
        }
        return condition.status == .false && start.addingTimeInterval(initialReadinessDelay) > transition
    }

    /// The metrics client's getPodMetrics: each pod's usage of `resource` summed over its containers. A
    /// pod with no containers, or a container without that resource, has no measurement. With
    /// `container` (getContainerMetrics), that container's usage alone; a pod whose metrics lack it fails.
    static func podMetrics(_ items: [JSON], resource: String, container only: String? = nil) throws(HPAFailure)
        -> [String: PodMetric]
    {
        guard !items.isEmpty else {
            throw HPAFailure(
                "unable to get metrics for resource \(resource): no metrics returned from resource metrics API")
        }
        var metrics: [String: PodMetric] = [:]
        for item in items {
            guard let name = item["metadata"]["name"].string else { continue }
            var containers = item["containers"].array ?? []
            if let only {
                guard let measured = containers.first(where: { $0["name"].string == only }) else {
                    throw HPAFailure(
                        "unable to get metrics for resource \(resource): failed to get container metrics: container \(only) not present in metrics for pod \(item["metadata"]["namespace"].string ?? "")/\(name)"
                    )
                }
                containers = [measured]
            }
            var sum: Int64 = 0
            var complete = !containers.isEmpty
            for container in containers {
                guard let usage = container["usage"][resource].string.flatMap(Quantity.milli) else {
                    complete = false
                    break
                }
                sum += usage
            }
            guard complete else { continue }
            // Go's zero time when unset: such a sample never counts as taken after a transition.
            let timestamp = APITime.parse(item["timestamp"].string) ?? Self.date(.zero)
            let window = item["window"].string.flatMap(MetaV1.Duration.init).map { Double($0.nanoseconds) / 1e9 } ?? 0
            metrics[name] = PodMetric(value: sum, timestamp: timestamp, window: window)
        }
        return metrics
    }

    /// calculatePodRequests: each pod's request of `resource` over its containers and its sidecars
    /// (restartable init containers), which run alongside them — or `container`'s alone. Every container
    /// counted must request it.
    static func requests(_ pods: [CoreV1.Pod], resource: String, container only: String? = nil) throws(HPAFailure)
        -> [String: Int64]
    {
        var requests: [String: Int64] = [:]
        for pod in pods {
            let name = pod.metadata.name ?? ""
            var sum: Int64 = 0
            for c in pod.spec.containers + pod.spec.initContainers.filter({ $0.restartPolicy == .always })
            where only == nil || c.name == only {
                guard let request = c.resources.requests[resource]?.milliValue else {
                    throw HPAFailure("missing request for \(resource) in container \(c.name) of Pod \(name)")
                }
                sum += request
            }
            requests[name] = sum
        }
        return requests
    }

    /// GetResourceUtilizationRatio: usage over requests of the pods with both, in whole percent (upstream
    /// truncates before dividing by the target, which decides borderline cases), and the average usage.
    static func utilizationRatio(_ metrics: [String: Int64], requests: [String: Int64], target: Int64)
        throws(HPAFailure) -> (ratio: Double, utilization: Int64, rawAverage: Int64)
    {
        var usage: Int64 = 0, requested: Int64 = 0, counted: Int64 = 0
        for (name, value) in metrics {
            // A measurement of a pod the lister does not know yet.
            guard let request = requests[name] else { continue }
            usage += value
            requested += request
            counted += 1
        }
        guard requested > 0 else { throw HPAFailure("no metrics returned matched known pods") }
        let utilization = usage * 100 / requested
        return (Double(utilization) / Double(target), utilization, usage / counted)
    }

    /// GetMetricUsageRatio: the average (truncated) against the target.
    static func usageRatio(_ metrics: [String: Int64], target: Int64) -> (ratio: Double, usage: Int64) {
        let usage = metrics.values.reduce(0, +) / Int64(max(metrics.count, 1))
        return (Double(usage) / Double(target), usage)
    }

    /// resource.NewMilliQuantity(v, DecimalSI) as Go writes it: `180m`, `1`, `1500m`.
    static func milliQuantity(_ milli: Int64) -> String { Quantity.canonical("\(milli)m") ?? "\(milli)m" }

    static func date(_ time: MetaV1.Time) -> Date { Date(timeIntervalSince1970: Double(time.secondsSince1970)) }
}

/// Why a metric gave no replica count, in upstream's words (the ScalingActive condition's message).
struct HPAFailure: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

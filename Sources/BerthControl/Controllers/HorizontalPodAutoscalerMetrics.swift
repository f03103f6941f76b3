import BerthAPI
import BerthKube
import Foundation

/// One metric that could not be computed, as upstream's computeReplicasForMetric reports it.
struct MetricFailure: Error {
    /// The reason of the ScalingActive condition and of the metric's Warning event
    /// (FailedGetResourceMetric, FailedGetPodsMetric, …).
    var reason: String
    /// What the condition (after "the HPA was unable to compute the replica count: ") and the event say.
    var conditionMessage: String
    /// The error computeReplicasForMetric returns: the first one is FailedComputeMetricsReplicas' cause.
    var error: String
}

extension HorizontalPodAutoscalerController {
    /// One metric's answer: the replicas it wants, its status.currentMetrics entry, and its name as the
    /// conditions and rescale events cite it.
    struct MetricAnswer {
        var replicas: Int
        var status: JSON
        var name: String
    }

    /// Upstream's answer when no adapter serves custom.metrics.k8s.io or external.metrics.k8s.io (Berth
    /// serves neither): the metric fails, and the others still count.
    static let noCustomMetricsAPI = "the server could not find the requested resource"

    /// What one entry of spec.metrics wants. Resource and ContainerResource metrics come from
    /// metrics.k8s.io (`metrics`, fetched once for all of them); Pods, Object and External ones need an
    /// adapter and fail in upstream's words.
    static func evaluate(
        _ spec: JSON, calculator: ReplicaCalculator, namespace: String, current: Int, pods: [CoreV1.Pod],
        metrics: Result<[JSON], HPAFailure>
    ) -> Result<MetricAnswer, MetricFailure> {
        let type = spec["type"].string ?? ""
        switch type {
        case "Resource", "ContainerResource":
            let isContainer = type == "ContainerResource"
            let source = isContainer ? spec["containerResource"] : spec["resource"]
            let resource = source["name"].string ?? ""
            let container = isContainer ? source["container"].string ?? "" : nil
            let target = source["target"]
            do throws(HPAFailure) {
                let items: [JSON]
                switch metrics {
                case .success(let fetched): items = fetched
                case .failure(let error):
                    let what = target["averageValue"].isNull ? "utilization" : "usage"
                    throw HPAFailure(
                        "failed to get \(resource) \(what): unable to get metrics for resource \(resource): \(error.message)"
                    )
                }
                let (replicas, measured) = try calculator.replicas(
                    for: target, resource: resource, container: container, current: current, pods: pods,
                    metrics: items)
                let status: JSON =
                    if let container {
                        [
                            "type": "ContainerResource",
                            "containerResource": [
                                "name": .string(resource), "container": .string(container), "current": measured,
                            ],
                        ]
                    } else {
                        ["type": "Resource", "resource": ["name": .string(resource), "current": measured]]
                    }
                let name =
                    !target["averageValue"].isNull
                    ? "\(resource) resource"
                    : "\(resource)\(isContainer ? " container" : "") resource utilization (percentage of request)"
                return .success(MetricAnswer(replicas: replicas, status: status, name: name))
            } catch {
                return .failure(
                    MetricFailure(
                        reason: isContainer ? "FailedGetContainerResourceMetric" : "FailedGetResourceMetric",
                        conditionMessage: error.message,
                        error: isContainer
                            ? "failed to get \(container ?? "") container metric value: \(error.message)"
                            : "failed to get \(resource) resource metric value: \(error.message)"))
            }
        case "Pods":
            let name = spec["pods"]["metric"]["name"].string ?? ""
            let message =
                "unable to get metric \(name): unable to fetch metrics from custom metrics API: \(noCustomMetricsAPI)"
            return .failure(
                MetricFailure(
                    reason: "FailedGetPodsMetric", conditionMessage: message,
                    error: "failed to get pods metric value: \(message)"))
        case "Object":
            let name = spec["object"]["metric"]["name"].string ?? ""
            let described = spec["object"]["describedObject"]
            let message =
                "unable to get metric \(name): \(described["kind"].string ?? "") on \(namespace) \(described["name"].string ?? "")/unable to fetch metrics from custom metrics API: \(noCustomMetricsAPI)"
            return .failure(
                MetricFailure(
                    reason: "FailedGetObjectMetric", conditionMessage: message,
                    error: "failed to get object metric value: \(message)"))
        case "External":
            let name = spec["external"]["metric"]["name"].string ?? ""
            let message =
                "unable to get external metric \(namespace)/\(name): unable to fetch metrics from external metrics API: \(noCustomMetricsAPI)"
            return .failure(
                MetricFailure(
                    reason: "FailedGetExternalMetric", conditionMessage: message,
                    error: "failed to get \(name) external metric value: \(message)"))
        default:
            let message = "unknown metric source type \"\(type)\""
            return .failure(MetricFailure(reason: "InvalidMetricSourceType", conditionMessage: message, error: message))
        }
    }
}

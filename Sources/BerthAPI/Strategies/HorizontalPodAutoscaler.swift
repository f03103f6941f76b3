/// autoscaling/v2 HorizontalPodAutoscaler (upstream pkg/registry/autoscaling/horizontalpodautoscaler and
/// autoscaling/v2's defaults and validation), stored in this form; autoscaling/v1 (what `kubectl
/// autoscale` creates) is a view of the same objects (`HorizontalPodAutoscalerV1Strategy`).
struct HorizontalPodAutoscalerStrategy: ResourceStrategy {
    /// SetDefaults_HorizontalPodAutoscaler: one replica at least, 80 % CPU when no metric is given, and
    /// the default rules for whichever direction a given `behavior` leaves out.
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if obj["spec"]["minReplicas"].isNull { obj["spec"]["minReplicas"] = 1 }
        if (obj["spec"]["metrics"].array ?? []).isEmpty {
            obj["spec"]["metrics"] = [Self.cpuMetric(80)]
        }
        guard obj["spec"]["behavior"].object != nil else { return }
        var behavior = obj["spec"]["behavior"]
        behavior["scaleUp"] = Self.withDefaults(behavior["scaleUp"], Self.scaleUpDefault)
        behavior["scaleDown"] = Self.withDefaults(behavior["scaleDown"], Self.scaleDownDefault)
        obj["spec"]["behavior"] = behavior
    }

    static func cpuMetric(_ utilization: Int64) -> JSON {
        [
            "type": "Resource",
            "resource": ["name": "cpu", "target": ["type": "Utilization", "averageUtilization": .int(utilization)]],
        ]
    }
    static let scaleUpDefault: JSON = [
        "stabilizationWindowSeconds": 0, "selectPolicy": "Max",
        "policies": [
            ["type": "Pods", "value": 4, "periodSeconds": 15], ["type": "Percent", "value": 100, "periodSeconds": 15],
        ],
    ]
    static let scaleDownDefault: JSON = [
        "stabilizationWindowSeconds": 300, "selectPolicy": "Max",
        "policies": [["type": "Percent", "value": 100, "periodSeconds": 15]],
    ]
    static func withDefaults(_ rules: JSON, _ defaults: JSON) -> JSON {
        guard rules.object != nil else { return defaults }
        var out = rules
        for key in ["stabilizationWindowSeconds", "selectPolicy", "policies"] where out[key].isNull {
            out[key] = defaults[key]
        }
        return out
    }

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) { obj["status"] = [:] }

    /// ValidateHorizontalPodAutoscalerSpec.
    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs = Self.validateCommon(obj)
        for (i, metric) in (obj["spec"]["metrics"].array ?? []).enumerated() {
            let path = "spec.metrics[\(i)]"
            let type = metric["type"].string ?? ""
            let sources = [
                "Object": "object", "Pods": "pods", "Resource": "resource",
                "ContainerResource":
                    "containerResource", "External": "external",
            ]
            guard let source = sources[type] else {
                errs += FieldChecks.supported(
                    .string(type), ["ContainerResource", "External", "Object", "Pods", "Resource"], "\(path).type")
                continue
            }
            if metric[source].isNull {
                errs.append(
                    FieldChecks.required("\(path).\(source)", "must populate information for the given metric source"))
                continue
            }
            let target = metric[source]["target"]
            let targetType = target["type"].string ?? ""
            errs += FieldChecks.supported(
                .string(targetType), ["AverageValue", "Utilization", "Value"], "\(path).\(source).target.type")
            if source == "resource" || source == "containerResource" {
                if (metric[source]["name"].string ?? "").isEmpty {
                    errs.append(FieldChecks.required("\(path).\(source).name", "must specify a resource name"))
                }
            }
            if targetType == "Utilization" {
                if let u = target["averageUtilization"].int, u <= 0 {
                    errs.append(
                        FieldChecks.invalid(
                            "\(path).\(source).target.averageUtilization", .int(u), "must be greater than 0"))
                } else if target["averageUtilization"].isNull {
                    errs.append(
                        FieldChecks.required(
                            "\(path).\(source).target.averageUtilization",
                            "must set either a target value or averageUtilization"))
                }
            }
        }
        return errs
    }

    /// What both versions check: the target and the replica bounds.
    static func validateCommon(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let spec = obj["spec"]
        if (spec["scaleTargetRef"]["kind"].string ?? "").isEmpty {
            errs.append(FieldChecks.required("spec.scaleTargetRef.kind"))
        }
        if (spec["scaleTargetRef"]["name"].string ?? "").isEmpty {
            errs.append(FieldChecks.required("spec.scaleTargetRef.name"))
        }
        let minReplicas = spec["minReplicas"].int ?? 1
        if minReplicas < 1 {
            errs.append(
                FieldChecks.invalid("spec.minReplicas", .int(minReplicas), "must be greater than or equal to 1"))
        }
        let maxReplicas = spec["maxReplicas"].int ?? 0
        if maxReplicas < 1 {
            errs.append(FieldChecks.invalid("spec.maxReplicas", .int(maxReplicas), "must be greater than 0"))
        } else if maxReplicas < minReplicas {
            errs.append(
                FieldChecks.invalid(
                    "spec.maxReplicas", .int(maxReplicas), "must be greater than or equal to `minReplicas`"))
        }
        return errs
    }

    /// kubectl's printer: Reference, Targets (current/target per metric), MinPods, MaxPods, Replicas.
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Reference"), .init(name: "Targets"),
            .init(name: "MinPods", type: "integer"), .init(name: "MaxPods", type: "integer"),
            .init(name: "Replicas", type: "integer"), Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let ref = obj["spec"]["scaleTargetRef"]
        return [
            Tables.nameCell(obj), .string("\(ref["kind"].string ?? "")/\(ref["name"].string ?? "")"),
            .string(Self.targets(obj)), Tables.int(obj["spec"]["minReplicas"]), Tables.int(obj["spec"]["maxReplicas"]),
            Tables.int(obj["status"]["currentReplicas"]), Tables.ageCell(obj),
        ]
    }

    /// kubectl's formatHPAMetrics: `cpu: 12%/50%`, `<unknown>` for a current value not measured yet,
    /// at most two shown.
    static func targets(_ obj: JSON) -> String {
        let specs = obj["spec"]["metrics"].array ?? []
        let current = obj["status"]["currentMetrics"].array ?? []
        var parts: [String] = []
        for (i, metric) in specs.enumerated() {
            let now = i < current.count ? current[i] : .null
            switch metric["type"].string {
            case "Resource", "ContainerResource":
                let source = metric["type"].string == "Resource" ? "resource" : "containerResource"
                let name = metric[source]["name"].string ?? ""
                let target = metric[source]["target"]
                let measured = now[source]["current"]
                if let utilization = target["averageUtilization"].int {
                    let value = measured["averageUtilization"].int.map { "\($0)%" } ?? "<unknown>"
                    parts.append("\(name): \(value)/\(utilization)%")
                } else {
                    let value = measured["averageValue"].string ?? "<unknown>"
                    parts.append("\(name): \(value)/\(target["averageValue"].string ?? target["value"].string ?? "")")
                }
            default:
                let source =
                    (metric["type"].string ?? "").prefix(1).lowercased() + (metric["type"].string ?? "").dropFirst()
                let target = metric[source]["target"]
                let measured = now[source]["current"]
                let want = target["averageValue"].string ?? target["value"].string ?? ""
                let have = measured["averageValue"].string ?? measured["value"].string ?? "<unknown>"
                parts.append("\(have)/\(want)")
            }
        }
        if parts.isEmpty { return "<none>" }
        if parts.count > 2 { return parts.prefix(2).joined(separator: ", ") + " + \(parts.count - 2) more..." }
        return parts.joined(separator: ", ")
    }
}

/// autoscaling/v1 HorizontalPodAutoscaler: the v2 objects with their CPU target as
/// `targetCPUUtilizationPercentage`; what v1 cannot say (other metrics, behavior, conditions, current
/// metrics) travels in the annotations upstream uses, so a v1 client's update loses nothing.
struct HorizontalPodAutoscalerV1Strategy: ResourceStrategy {
    static let metricsAnnotation = "autoscaling.alpha.kubernetes.io/metrics"
    static let behaviorAnnotation = "autoscaling.alpha.kubernetes.io/behavior"
    static let conditionsAnnotation = "autoscaling.alpha.kubernetes.io/conditions"
    static let currentMetricsAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics"

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if obj["spec"]["minReplicas"].isNull { obj["spec"]["minReplicas"] = 1 }
    }
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        obj["status"] = ["currentReplicas": 0, "desiredReplicas": 0]
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs = HorizontalPodAutoscalerStrategy.validateCommon(obj)
        if let target = obj["spec"]["targetCPUUtilizationPercentage"].int, target < 1 {
            errs.append(
                FieldChecks.invalid(
                    "spec.targetCPUUtilizationPercentage", .int(target), "must be greater than or equal to 1"))
        }
        return errs
    }

    static func isCPUUtilization(_ m: JSON) -> Bool {
        m["type"] == "Resource" && m["resource"]["name"] == "cpu" && m["resource"]["target"]["type"] == "Utilization"
    }

    /// v2 (stored) → v1.
    func fromStorage(_ obj: inout JSON) {
        var annotations = obj["metadata"]["annotations"]
        let metrics = obj["spec"]["metrics"].array ?? []
        if let cpu = metrics.first(where: Self.isCPUUtilization) {
            obj["spec"]["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"]
        }
        let others = metrics.filter { !Self.isCPUUtilization($0) }
        if !others.isEmpty { annotations[Self.metricsAnnotation] = .string(JSON.array(others).text) }
        if !obj["spec"]["behavior"].isNull {
            annotations[Self.behaviorAnnotation] = .string(obj["spec"]["behavior"].text)
        }
        let current = obj["status"]["currentMetrics"].array ?? []
        if let cpu = current.first(where: { $0["type"] == "Resource" && $0["resource"]["name"] == "cpu" }),
            let utilization = cpu["resource"]["current"]["averageUtilization"].int
        {
            obj["status"]["currentCPUUtilizationPercentage"] = .int(utilization)
        }
        if !current.isEmpty { annotations[Self.currentMetricsAnnotation] = .string(JSON.array(current).text) }
        if let conditions = obj["status"]["conditions"].array, !conditions.isEmpty {
            annotations[Self.conditionsAnnotation] = .string(JSON.array(conditions).text)
        }
        obj["spec"]["metrics"] = .null
        obj["spec"]["behavior"] = .null
        obj["status"]["currentMetrics"] = .null
        obj["status"]["conditions"] = .null
        if obj["status"]["currentReplicas"].isNull { obj["status"]["currentReplicas"] = 0 }
        if obj["status"]["desiredReplicas"].isNull { obj["status"]["desiredReplicas"] = 0 }
        obj["metadata"]["annotations"] = (annotations.object ?? [:]).isEmpty ? .null : annotations
    }

    /// v1 → v2 (stored).
    func toStorage(_ obj: JSON) -> JSON {
        var out = obj
        var annotations = obj["metadata"]["annotations"]
        func take(_ key: String) -> JSON? {
            guard let text = annotations[key].string else { return nil }
            annotations[key] = .null
            return try? JSON.parse(Array(text.utf8))
        }
        var metrics: [JSON] = []
        if let target = obj["spec"]["targetCPUUtilizationPercentage"].int {
            metrics.append(HorizontalPodAutoscalerStrategy.cpuMetric(target))
        }
        metrics += take(Self.metricsAnnotation)?.array ?? []
        if metrics.isEmpty { metrics = [HorizontalPodAutoscalerStrategy.cpuMetric(80)] }
        out["spec"]["metrics"] = .array(metrics)
        out["spec"]["targetCPUUtilizationPercentage"] = .null
        if let behavior = take(Self.behaviorAnnotation) { out["spec"]["behavior"] = behavior }
        if let current = take(Self.currentMetricsAnnotation) { out["status"]["currentMetrics"] = current }
        if let conditions = take(Self.conditionsAnnotation) { out["status"]["conditions"] = conditions }
        out["status"]["currentCPUUtilizationPercentage"] = .null
        out["metadata"]["annotations"] = (annotations.object ?? [:]).isEmpty ? .null : annotations
        out["apiVersion"] = "autoscaling/v2"
        return out
    }

    var tableColumns: [Tables.Column] { HorizontalPodAutoscalerStrategy().tableColumns }
    func tableCells(_ obj: JSON) -> [JSON] { HorizontalPodAutoscalerStrategy().tableCells(toStorage(obj)) }
}

/// policy/v1 PodDisruptionBudget (upstream pkg/registry/policy/poddisruptionbudget and
/// ValidatePodDisruptionBudgetSpec): how many of the pods it selects must stay up through voluntary
/// disruptions — the evictions `kubectl drain` makes. Its status is the disruption controller's.
struct PodDisruptionBudgetStrategy: ResourceStrategy {
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        resetStatus(&obj, zeros: ["disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"])
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let spec = obj["spec"]
        if !spec["minAvailable"].isNull && !spec["maxUnavailable"].isNull {
            errs.append(
                .init(
                    "spec", "FieldValueInvalid",
                    "Invalid value: \(spec.text): minAvailable and maxUnavailable cannot be both set"))
        }
        for field in ["minAvailable", "maxUnavailable"] where !spec[field].isNull {
            let value = spec[field]
            if let number = value.int, number < 0 {
                errs.append(
                    .init(
                        "spec.\(field)", "FieldValueInvalid",
                        "Invalid value: \(number): must be greater than or equal to 0"))
            } else if let text = value.string {
                guard text.hasSuffix("%"), let percent = Int(text.dropLast()) else {
                    errs.append(
                        .init(
                            "spec.\(field)", "FieldValueInvalid",
                            "Invalid value: \"\(text)\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
                        ))
                    continue
                }
                if percent > 100 {
                    errs.append(
                        .init(
                            "spec.\(field)", "FieldValueInvalid",
                            "Invalid value: \"\(text)\": must not be greater than 100%"))
                }
            }
        }
        if let policy = spec["unhealthyPodEvictionPolicy"].string, !["AlwaysAllow", "IfHealthyBudget"].contains(policy)
        {
            errs.append(
                .init(
                    "spec.unhealthyPodEvictionPolicy", "FieldValueNotSupported",
                    "Unsupported value: \"\(policy)\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\""))
        }
        return errs
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Min Available"), .init(name: "Max Unavailable"),
            .init(name: "Allowed Disruptions", type: "integer"), Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        func bound(_ value: JSON) -> JSON {
            if let number = value.int { return .string(String(number)) }
            return .string(value.string ?? "N/A")
        }
        return [
            Tables.nameCell(obj), bound(obj["spec"]["minAvailable"]), bound(obj["spec"]["maxUnavailable"]),
            Tables.int(obj["status"]["disruptionsAllowed"]), Tables.ageCell(obj),
        ]
    }
}

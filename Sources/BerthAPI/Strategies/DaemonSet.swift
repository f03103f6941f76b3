/// apps/v1 DaemonSet (upstream pkg/registry/apps/daemonset/strategy.go).
struct DaemonSetStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        WorkloadRules.applyDefaults(&obj, replicas: false)
        if obj["spec"]["revisionHistoryLimit"].isNull { obj["spec"]["revisionHistoryLimit"] = 10 }
        if obj["spec"]["updateStrategy"]["type"].isNull {
            obj["spec"]["updateStrategy"] = [
                "type": "RollingUpdate", "rollingUpdate": ["maxUnavailable": 1, "maxSurge": 0],
            ]
        }
    }
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        resetStatus(
            &obj, zeros: ["currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"])
    }
    func validate(_ obj: JSON) -> [APIError.Cause] { WorkloadRules.validate(obj, daemonSet: true) }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Desired", type: "integer"), .init(name: "Current", type: "integer"),
            .init(name: "Ready", type: "integer"), .init(name: "Up-to-date", type: "integer"),
            .init(name: "Available", type: "integer"),
            .init(name: "Node Selector"), Tables.ageColumn,
        ] + WorkloadRules.wideColumns
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let status = obj["status"]
        let ns = obj["spec"]["template"]["spec"]["nodeSelector"].stringMap.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return [
            Tables.nameCell(obj), Tables.int(status["desiredNumberScheduled"]),
            Tables.int(status["currentNumberScheduled"]),
            Tables.int(status["numberReady"]), Tables.int(status["updatedNumberScheduled"]),
            Tables.int(status["numberAvailable"]),
            .string(ns.isEmpty ? "<none>" : ns), Tables.ageCell(obj),
        ] + WorkloadRules.wideCells(obj)
    }
}

/// apps/v1 Deployment (upstream pkg/registry/apps/deployment/strategy.go).
struct DeploymentStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        WorkloadRules.applyDefaults(&obj, replicas: true)
        if obj["spec"]["revisionHistoryLimit"].isNull { obj["spec"]["revisionHistoryLimit"] = 10 }
        if obj["spec"]["progressDeadlineSeconds"].isNull { obj["spec"]["progressDeadlineSeconds"] = 600 }
        if obj["spec"]["strategy"]["type"].isNull { obj["spec"]["strategy"]["type"] = "RollingUpdate" }
        if obj["spec"]["strategy"]["type"].string == "RollingUpdate" {
            if obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"].isNull {
                obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = "25%"
            }
            if obj["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"].isNull {
                obj["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = "25%"
            }
        }
    }
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) { resetStatus(&obj) }
    func prepareForStatusUpdate(_ obj: inout JSON, old: JSON) {
        obj["spec"] = old["spec"]
        // A Deployment's labels are its selector's business, not its status writer's.
        obj["metadata"]["labels"] = old["metadata"]["labels"]
    }
    func validate(_ obj: JSON) -> [APIError.Cause] { WorkloadRules.validate(obj) }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Ready"), .init(name: "Up-to-date", type: "integer"),
            .init(name: "Available", type: "integer"),
            Tables.ageColumn,
        ] + WorkloadRules.wideColumns
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"], status = obj["status"]
        return [
            Tables.nameCell(obj), .string("\(status["readyReplicas"].int ?? 0)/\(spec["replicas"].int ?? 0)"),
            Tables.int(status["updatedReplicas"]), Tables.int(status["availableReplicas"]), Tables.ageCell(obj),
        ]
            + WorkloadRules.wideCells(obj)
    }
}

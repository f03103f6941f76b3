/// apps/v1 ReplicaSet (upstream pkg/registry/apps/replicaset/strategy.go).
struct ReplicaSetStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        WorkloadRules.applyDefaults(&obj, replicas: true)
        // ReplicaSetSpec has no revisionHistoryLimit: earlier Berth defaulted one, and a strict
        // `kubectl replace|apply|edit` of the set as read back then failed. Pruned, as upstream
        // prunes unknown fields.
        obj["spec"]["revisionHistoryLimit"] = .null
    }
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) { resetStatus(&obj, zeros: ["replicas"]) }
    func validate(_ obj: JSON) -> [APIError.Cause] { WorkloadRules.validate(obj) }

    /// apps/v1 ReplicaSet's `status.replicas` is in upstream's field set and in its field-selector
    /// documentation, but 1.32's default conversion refuses it (kubernetes/kubernetes#135136); it is served
    /// here as documented, through the default conversion's error for other labels.
    var fieldLabels: FieldLabelSet {
        .init(getters: ["status.replicas": FieldLabels.int("status.replicas")], ownConversion: false)
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Desired", type: "integer"), .init(name: "Current", type: "integer"),
            .init(name: "Ready", type: "integer"), Tables.ageColumn,
        ] + WorkloadRules.wideColumns
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"], status = obj["status"]
        return [
            Tables.nameCell(obj), Tables.int(spec["replicas"]), Tables.int(status["replicas"]),
            Tables.int(status["readyReplicas"]),
            Tables.ageCell(obj),
        ] + WorkloadRules.wideCells(obj)
    }
}

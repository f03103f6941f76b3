/// core/v1 ReplicationController (upstream pkg/registry/core/replicationcontroller/strategy.go and
/// core/v1's defaults): the ReplicaSet's predecessor, with a plain label map for its selector, run by
/// the same controller (BerthControl's `ReplicationManager`).
struct ReplicationControllerStrategy: ResourceStrategy {
    /// SetDefaults_ReplicationController: the selector and the object's labels come from the template's
    /// labels when not given; one replica.
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        let labels = obj["spec"]["template"]["metadata"]["labels"]
        if labels.object != nil {
            if obj["spec"]["selector"].stringMap.isEmpty { obj["spec"]["selector"] = labels }
            if obj["metadata"]["labels"].stringMap.isEmpty { obj["metadata"]["labels"] = labels }
        }
        if obj["spec"]["replicas"].isNull { obj["spec"]["replicas"] = 1 }
        guard !obj["spec"]["template"].isNull else { return }
        var spec = obj["spec"]["template"]["spec"]
        PodTemplate.applyDefaults(&spec)
        obj["spec"]["template"]["spec"] = spec
        if obj["spec"]["template"]["metadata"]["creationTimestamp"].isNull {
            obj["spec"]["template"]["metadata"]["creationTimestamp"] = .null
        }
    }

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) { resetStatus(&obj, zeros: ["replicas"]) }

    /// ValidateReplicationControllerSpec.
    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let spec = obj["spec"]
        if let replicas = spec["replicas"].int, replicas < 0 {
            errs.append(FieldChecks.invalid("spec.replicas", .int(replicas), "must be greater than or equal to 0"))
        }
        if let ready = spec["minReadySeconds"].int, ready < 0 {
            errs.append(FieldChecks.invalid("spec.minReadySeconds", .int(ready), "must be greater than or equal to 0"))
        }
        let selector = spec["selector"].stringMap
        if selector.isEmpty { errs.append(FieldChecks.required("spec.selector")) }
        let template = spec["template"]
        if template.isNull {
            errs.append(FieldChecks.required("spec.template"))
            return errs
        }
        let labels = template["metadata"]["labels"].stringMap
        if !selector.isEmpty && !selector.allSatisfy({ labels[$0.key] == $0.value }) {
            errs.append(
                FieldChecks.invalid(
                    "spec.template.metadata.labels", template["metadata"]["labels"],
                    "`selector` does not match template `labels`"))
        }
        let podSpec = template["spec"]
        if let policy = podSpec["restartPolicy"].string, policy != "Always" {
            errs += FieldChecks.supported(.string(policy), ["Always"], "spec.template.spec.restartPolicy")
        }
        if !podSpec["activeDeadlineSeconds"].isNull {
            errs.append(
                FieldChecks.invalid(
                    "spec.template.spec.activeDeadlineSeconds", podSpec["activeDeadlineSeconds"],
                    "activeDeadlineSeconds in ReplicationController is not Supported"))
        }
        errs += PodTemplate.validate(podSpec, path: "spec.template.spec")
        return errs
    }

    /// A Scale's selector is the label map written as a selector.
    func scale(of obj: JSON) -> JSON {
        var out = Handler.scaleOf(obj)
        out["status"]["selector"] = .string(Self.selectorText(obj["spec"]["selector"]))
        return out
    }

    static func selectorText(_ selector: JSON) -> String {
        selector.stringMap.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    var fieldLabels: FieldLabelSet {
        .init(getters: ["status.replicas": FieldLabels.int("status.replicas")], ownConversion: true)
    }

    /// kubectl's printer: Desired, Current, Ready, Age; wide adds Containers, Images, Selector.
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Desired", type: "integer"), .init(name: "Current", type: "integer"),
            .init(name: "Ready", type: "integer"), Tables.ageColumn,
        ] + WorkloadRules.wideColumns
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let (containers, images) = Tables.containers(obj["spec"]["template"]["spec"])
        return [
            Tables.nameCell(obj), Tables.int(obj["spec"]["replicas"]), Tables.int(obj["status"]["replicas"]),
            Tables.int(obj["status"]["readyReplicas"]), Tables.ageCell(obj), .string(containers), .string(images),
            .string(Self.selectorText(obj["spec"]["selector"])),
        ]
    }
}

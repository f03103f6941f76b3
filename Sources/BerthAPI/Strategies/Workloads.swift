/// What the three pod-template workloads (Deployment, ReplicaSet, DaemonSet) share: upstream's apps/v1
/// defaulting of replicas and the template, the selector/template checks of ValidateDeploymentSpec and its
/// siblings, and the columns their printers share.
enum WorkloadRules {
    /// `replicas`: the kind has a replica count (not DaemonSet).
    static func applyDefaults(_ obj: inout JSON, replicas: Bool) {
        if replicas && obj["spec"]["replicas"].isNull { obj["spec"]["replicas"] = 1 }
        var spec = obj["spec"]["template"]["spec"]
        PodTemplate.applyDefaults(&spec)
        obj["spec"]["template"]["spec"] = spec
        if obj["spec"]["template"]["metadata"]["creationTimestamp"].isNull {
            obj["spec"]["template"]["metadata"]["creationTimestamp"] = .null
        }
    }

    /// `daemonSet`: ValidateDaemonSetSpec's words for a deadline, not ValidatePodTemplateSpecForReplicaSet's.
    static func validate(_ obj: JSON, daemonSet: Bool = false) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let spec = obj["spec"]
        if let rep = spec["replicas"].int, rep < 0 {
            errs.append(
                .init("spec.replicas", "FieldValueInvalid", "Invalid value: \(rep): must be greater than or equal to 0")
            )
        }
        let sel = spec["selector"]
        if sel.isNull || (sel["matchLabels"].stringMap.isEmpty && (sel["matchExpressions"].array ?? []).isEmpty) {
            errs.append(.init("spec.selector", "FieldValueRequired", "Required value"))
        } else if !LabelSelector(object: sel).matches(spec["template"]["metadata"]["labels"].stringMap) {
            errs.append(
                .init(
                    "spec.template.metadata.labels", "FieldValueInvalid",
                    "Invalid value: \(spec["template"]["metadata"]["labels"].text): `selector` does not match template `labels`"
                ))
        }
        // ValidatePodTemplateSpecForReplicaSet (and its DaemonSet twin): these pods always restart and
        // have no deadline.
        let podSpec = spec["template"]["spec"]
        if let policy = podSpec["restartPolicy"].string, policy != "Always" {
            errs.append(
                .init(
                    "spec.template.spec.restartPolicy", "FieldValueNotSupported",
                    "Unsupported value: \"\(policy)\": supported values: \"Always\""))
        }
        if !podSpec["activeDeadlineSeconds"].isNull {
            errs.append(
                daemonSet
                    ? FieldChecks.invalid(
                        "spec.template.spec.activeDeadlineSeconds", podSpec["activeDeadlineSeconds"],
                        "activeDeadlineSeconds must be nil for DaemonSets")
                    : FieldChecks.forbidden(
                        "spec.template.spec.activeDeadlineSeconds",
                        "activeDeadlineSeconds in ReplicaSet is not Supported"))
        }
        errs += PodTemplate.validate(podSpec, path: "spec.template.spec")
        return errs
    }

    /// The wide columns of every workload printer: Containers, Images, Selector.
    static let wideColumns: [Tables.Column] = [
        .init(name: "Containers", priority: 1), .init(name: "Images", priority: 1),
        .init(name: "Selector", priority: 1),
    ]
    static func wideCells(_ obj: JSON) -> [JSON] {
        let (c, i) = Tables.containers(obj["spec"]["template"]["spec"])
        return [.string(c), .string(i), .string(LabelSelector(object: obj["spec"]["selector"]).text)]
    }
}

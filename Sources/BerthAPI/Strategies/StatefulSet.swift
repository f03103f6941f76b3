/// apps/v1 StatefulSet (upstream pkg/registry/apps/statefulset/strategy.go, apps/v1 SetDefaults_StatefulSet
/// and ValidateStatefulSetSpec/Update as of 1.32).
struct StatefulSetStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        WorkloadRules.applyDefaults(&obj, replicas: true)
        if obj["spec"]["podManagementPolicy"].string?.isEmpty ?? true {
            obj["spec"]["podManagementPolicy"] = "OrderedReady"
        }
        // Upstream gives an unset strategy RollingUpdate with an empty rollingUpdate, whose partition
        // then defaults to 0; a RollingUpdate someone sent without rollingUpdate stays without it.
        if obj["spec"]["updateStrategy"]["type"].string?.isEmpty ?? true {
            obj["spec"]["updateStrategy"]["type"] = "RollingUpdate"
            if obj["spec"]["updateStrategy"]["rollingUpdate"].isNull {
                obj["spec"]["updateStrategy"]["rollingUpdate"] = [:]
            }
        }
        if obj["spec"]["updateStrategy"]["type"].string == "RollingUpdate",
            obj["spec"]["updateStrategy"]["rollingUpdate"].object != nil,
            obj["spec"]["updateStrategy"]["rollingUpdate"]["partition"].isNull
        {
            obj["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 0
        }
        // StatefulSetAutoDeletePVC is on by default in 1.32.
        for field in ["whenDeleted", "whenScaled"]
        where obj["spec"]["persistentVolumeClaimRetentionPolicy"][field].string?.isEmpty ?? true {
            obj["spec"]["persistentVolumeClaimRetentionPolicy"][field] = "Retain"
        }
        if obj["spec"]["revisionHistoryLimit"].isNull { obj["spec"]["revisionHistoryLimit"] = 10 }
        // The claim templates get a claim's defaults (SetDefaults_PersistentVolumeClaim and its spec's).
        if var claims = obj["spec"]["volumeClaimTemplates"].array {
            for i in claims.indices {
                if claims[i]["apiVersion"].isNull { claims[i]["apiVersion"] = "v1" }
                if claims[i]["kind"].isNull { claims[i]["kind"] = "PersistentVolumeClaim" }
                if claims[i]["spec"]["volumeMode"].isNull { claims[i]["spec"]["volumeMode"] = "Filesystem" }
                if claims[i]["status"]["phase"].isNull { claims[i]["status"]["phase"] = "Pending" }
            }
            obj["spec"]["volumeClaimTemplates"] = .array(claims)
        }
    }
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        resetStatus(&obj, zeros: ["replicas", "availableReplicas"])
    }
    func prepareForStatusUpdate(_ obj: inout JSON, old: JSON) {
        obj["spec"] = old["spec"]
        obj["metadata"]["labels"] = old["metadata"]["labels"]
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let spec = obj["spec"]
        switch spec["podManagementPolicy"].string ?? "" {
        case "": errs.append(FieldChecks.required("spec.podManagementPolicy"))
        case "OrderedReady", "Parallel": break
        default:
            errs.append(
                FieldChecks.invalid(
                    "spec.podManagementPolicy", spec["podManagementPolicy"], "must be 'OrderedReady' or 'Parallel'"))
        }
        let strategy = spec["updateStrategy"]
        switch strategy["type"].string ?? "" {
        case "": errs.append(FieldChecks.required("spec.updateStrategy"))
        case "OnDelete":
            if !strategy["rollingUpdate"].isNull {
                errs.append(
                    FieldChecks.invalid(
                        "spec.updateStrategy.rollingUpdate", strategy["rollingUpdate"],
                        "only allowed for updateStrategy 'RollingUpdate'"))
            }
        case "RollingUpdate":
            if let partition = strategy["rollingUpdate"]["partition"].int, partition < 0 {
                errs.append(
                    FieldChecks.invalid(
                        "spec.updateStrategy.rollingUpdate.partition", .int(partition),
                        "must be greater than or equal to 0"))
            }
        default:
            errs.append(
                FieldChecks.invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"))
        }
        for field in ["whenDeleted", "whenScaled"] {
            let value = spec["persistentVolumeClaimRetentionPolicy"][field]
            if value.isNull { continue }
            errs += FieldChecks.supported(
                value, ["Delete", "Retain"], "spec.persistentVolumeClaimRetentionPolicy.\(field)")
        }
        for (path, value) in [
            ("spec.replicas", spec["replicas"]), ("spec.minReadySeconds", spec["minReadySeconds"]),
            ("spec.ordinals.start", spec["ordinals"]["start"]),
        ] {
            if let n = value.int, n < 0 {
                errs.append(FieldChecks.invalid(path, value, "must be greater than or equal to 0"))
            }
        }
        let selector = spec["selector"]
        if selector.isNull {
            errs.append(FieldChecks.required("spec.selector"))
        } else if selector["matchLabels"].stringMap.isEmpty && (selector["matchExpressions"].array ?? []).isEmpty {
            errs.append(FieldChecks.invalid("spec.selector", selector, "empty selector is invalid for statefulset"))
        } else if !LabelSelector(object: selector).matches(spec["template"]["metadata"]["labels"].stringMap) {
            errs.append(
                FieldChecks.invalid(
                    "spec.template.metadata.labels", spec["template"]["metadata"]["labels"],
                    "`selector` does not match template `labels`"))
        }
        let podSpec = spec["template"]["spec"]
        if let policy = podSpec["restartPolicy"].string, policy != "Always" {
            errs += FieldChecks.supported(.string(policy), ["Always"], "spec.template.spec.restartPolicy")
        }
        if !podSpec["activeDeadlineSeconds"].isNull {
            errs.append(
                FieldChecks.forbidden(
                    "spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in StatefulSet is not Supported")
            )
        }
        errs += PodTemplate.validate(podSpec, path: "spec.template.spec")
        return errs
    }

    /// ValidateStatefulSetUpdate: only these spec fields may change; the rest (selector, serviceName,
    /// volumeClaimTemplates, podManagementPolicy) are fixed at create.
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        var new = obj["spec"]
        for field in Self.mutableSpecFields { new[field] = old["spec"][field] }
        if new == old["spec"] { return [] }
        return [
            FieldChecks.forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
            )
        ]
    }
    static let mutableSpecFields = [
        "replicas", "template", "updateStrategy", "minReadySeconds", "ordinals", "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
    ]

    /// kubectl's columns (printStatefulSet): ready of desired, and the wide containers and images.
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Ready"), Tables.ageColumn,
            .init(name: "Containers", priority: 1), .init(name: "Images", priority: 1),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let (containers, images) = Tables.containers(obj["spec"]["template"]["spec"])
        return [
            Tables.nameCell(obj),
            .string("\(obj["status"]["readyReplicas"].int ?? 0)/\(obj["spec"]["replicas"].int ?? 0)"),
            Tables.ageCell(obj), .string(containers), .string(images),
        ]
    }
}

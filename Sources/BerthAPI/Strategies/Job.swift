import Foundation

/// batch/v1 Job (upstream pkg/registry/batch/job, pkg/apis/batch/validation and v1's SetDefaults_Job):
/// pods run to completion. The server defaults parallelism, completions, backoff and the completion
/// mode, and — unless the user picks a selector (`manualSelector`) — labels the template with the Job's
/// UID and name and selects by the UID. Its status is the job controller's.
struct JobStrategy: ResourceStrategy {
    static let controllerUIDLabel = "batch.kubernetes.io/controller-uid"
    static let jobNameLabel = "batch.kubernetes.io/job-name"
    /// Indexed Jobs may not have more completions than this, nor more parallelism.
    static let maxIndexedCompletions: Int64 = 100_000

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        var spec = obj["spec"]
        if spec["completions"].isNull && spec["parallelism"].isNull {
            spec["completions"] = 1
            spec["parallelism"] = 1
        }
        if spec["parallelism"].isNull { spec["parallelism"] = 1 }
        if spec["backoffLimit"].isNull {
            spec["backoffLimit"] = spec["backoffLimitPerIndex"].isNull ? 6 : .int(Int64(Int32.max))
        }
        if spec["completionMode"].isNull { spec["completionMode"] = "NonIndexed" }
        if spec["suspend"].isNull { spec["suspend"] = false }
        if spec["podReplacementPolicy"].isNull {
            spec["podReplacementPolicy"] = spec["podFailurePolicy"].isNull ? "TerminatingOrFailed" : "Failed"
        }
        if var rules = spec["podFailurePolicy"]["rules"].array {
            for index in rules.indices {
                guard var patterns = rules[index]["onPodConditions"].array else { continue }
                for p in patterns.indices where patterns[p]["status"].isNull { patterns[p]["status"] = "True" }
                rules[index]["onPodConditions"] = .array(patterns)
            }
            spec["podFailurePolicy"]["rules"] = .array(rules)
        }
        var podSpec = spec["template"]["spec"]
        PodTemplate.applyDefaults(&podSpec)
        spec["template"]["spec"] = podSpec
        if spec["template"]["metadata"]["creationTimestamp"].isNull {
            spec["template"]["metadata"]["creationTimestamp"] = .null
        }
        obj["spec"] = spec
    }

    /// The generated selector: the template carries the Job's UID and name (new and legacy label keys),
    /// and the Job selects by the UID.
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        obj["status"] = [:]
        guard obj["spec"]["manualSelector"].bool != true else { return }
        let uid = obj["metadata"]["uid"], name = obj["metadata"]["name"]
        var labels = obj["spec"]["template"]["metadata"]["labels"].object ?? [:]
        labels[Self.controllerUIDLabel] = uid
        labels[Self.jobNameLabel] = name
        labels["controller-uid"] = uid
        labels["job-name"] = name
        obj["spec"]["template"]["metadata"]["labels"] = .object(labels)
        obj["spec"]["selector"] = ["matchLabels": [Self.controllerUIDLabel: uid]]
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs: [APIError.Cause] = []
        for field in ["parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"] {
            if let value = spec[field].int, value < 0 {
                errs.append(FieldChecks.invalid("spec.\(field)", .int(value), "must be greater than or equal to 0"))
            }
        }
        if let deadline = spec["activeDeadlineSeconds"].int, deadline <= 0 {
            errs.append(FieldChecks.invalid("spec.activeDeadlineSeconds", .int(deadline), "must be greater than 0"))
        }
        errs += FieldChecks.supported(spec["completionMode"], ["NonIndexed", "Indexed"], "spec.completionMode")
        if spec["completionMode"].string == "Indexed" {
            if spec["completions"].isNull {
                errs.append(FieldChecks.required("spec.completions", "when completion mode is Indexed"))
            } else if let completions = spec["completions"].int, completions > Self.maxIndexedCompletions {
                errs.append(
                    FieldChecks.invalid(
                        "spec.completions", .int(completions), "must be less than or equal to 100000"))
            }
            if let parallelism = spec["parallelism"].int, parallelism > Self.maxIndexedCompletions {
                errs.append(
                    FieldChecks.invalid(
                        "spec.parallelism", .int(parallelism),
                        "must be less than or equal to 100000 when completion mode is Indexed"))
            }
        }
        let selector = spec["selector"]
        if selector.isNull {
            errs.append(FieldChecks.required("spec.selector"))
        } else {
            errs += FieldChecks.labelSelector(selector, "spec.selector")
            if !LabelSelector(object: selector).matches(spec["template"]["metadata"]["labels"].stringMap) {
                errs.append(
                    FieldChecks.invalid(
                        "spec.template.metadata.labels", spec["template"]["metadata"]["labels"],
                        "`selector` does not match template `labels`"))
            }
        }
        errs += FieldChecks.supported(
            spec["template"]["spec"]["restartPolicy"], ["OnFailure", "Never"], "spec.template.spec.restartPolicy")
        errs += PodTemplate.validate(spec["template"]["spec"], path: "spec.template.spec")
        errs += Self.podFailurePolicyErrors(spec)
        errs += Self.perIndexErrors(spec)
        errs += Self.successPolicyErrors(spec)
        return errs
    }

    /// backoffLimitPerIndex and maxFailedIndexes: Indexed Jobs only, within the completions.
    static func perIndexErrors(_ spec: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let indexed = spec["completionMode"].string == "Indexed"
        if let limit = spec["backoffLimitPerIndex"].int {
            if limit < 0 {
                errs.append(
                    FieldChecks.invalid("spec.backoffLimitPerIndex", .int(limit), "must be greater than or equal to 0"))
            }
            if !indexed {
                errs.append(
                    FieldChecks.invalid("spec.backoffLimitPerIndex", .int(limit), "requires indexed completion mode"))
            }
        }
        if let max = spec["maxFailedIndexes"].int {
            if spec["backoffLimitPerIndex"].isNull {
                errs.append(FieldChecks.required("spec.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
            }
            if max < 0 {
                errs.append(
                    FieldChecks.invalid("spec.maxFailedIndexes", .int(max), "must be greater than or equal to 0"))
            } else if let completions = spec["completions"].int, max > completions {
                errs.append(
                    FieldChecks.invalid("spec.maxFailedIndexes", .int(max), "must be less than or equal to completions")
                )
            } else if max > maxIndexedCompletions {
                errs.append(
                    FieldChecks.invalid("spec.maxFailedIndexes", .int(max), "must be less than or equal to 100000"))
            }
        }
        if spec["backoffLimitPerIndex"].isNull {
            for (index, rule) in (spec["podFailurePolicy"]["rules"].array ?? []).enumerated()
            where rule["action"].string == "FailIndex" {
                errs.append(
                    FieldChecks.invalid(
                        "spec.podFailurePolicy.rules[\(index)].action", rule["action"],
                        "requires the backoffLimitPerIndex to be set"))
            }
        }
        return errs
    }

    /// successPolicy: Indexed Jobs only; one to twenty rules, each with indexes or a count within the
    /// completions.
    static func successPolicyErrors(_ spec: JSON) -> [APIError.Cause] {
        let policy = spec["successPolicy"]
        guard !policy.isNull else { return [] }
        var errs: [APIError.Cause] = []
        if spec["completionMode"].string != "Indexed" {
            errs.append(FieldChecks.invalid("spec.successPolicy", policy, "requires indexed completion mode"))
        }
        let rules = policy["rules"].array ?? []
        if rules.isEmpty {
            errs.append(
                FieldChecks.required(
                    "spec.successPolicy.rules",
                    "at least one rules must be specified when the successPolicy is specified"))
        }
        if rules.count > 20 {
            errs.append(
                .init(
                    "spec.successPolicy.rules", "FieldValueTooMany",
                    "Too many: \(rules.count): must have at most 20 items"))
        }
        let completions = spec["completions"].int ?? 0
        for (i, rule) in rules.enumerated() {
            let at = "spec.successPolicy.rules[\(i)]"
            if rule["succeededIndexes"].isNull && rule["succeededCount"].isNull {
                errs.append(
                    FieldChecks.required(at, "at least one of succeededCount or succeededIndexes must be specified"))
            }
            if let text = rule["succeededIndexes"].string {
                let valid = text.split(separator: ",", omittingEmptySubsequences: false).allSatisfy { part in
                    let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
                    guard !bounds.isEmpty, bounds.count <= 2, bounds.allSatisfy({ $0 != nil && $0! >= 0 }) else {
                        return false
                    }
                    return bounds.last!! < Int(completions) && (bounds.count == 1 || bounds[0]! < bounds[1]!)
                }
                if !valid {
                    errs.append(
                        FieldChecks.invalid(
                            "\(at).succeededIndexes", .string(text),
                            "error parsing succeededIndexes: indexes must be ordered ranges within completions"))
                }
            }
            if let count = rule["succeededCount"].int {
                if count < 0 {
                    errs.append(
                        FieldChecks.invalid("\(at).succeededCount", .int(count), "must be greater than or equal to 0"))
                } else if count > completions {
                    errs.append(
                        FieldChecks.invalid(
                            "\(at).succeededCount", .int(count),
                            "must be less than or equal to \(completions) (the number of specified completions)"))
                }
            }
        }
        return errs
    }

    static func podFailurePolicyErrors(_ spec: JSON) -> [APIError.Cause] {
        guard !spec["podFailurePolicy"].isNull else { return [] }
        var errs: [APIError.Cause] = []
        if spec["template"]["spec"]["restartPolicy"].string != "Never" {
            errs.append(
                FieldChecks.invalid(
                    "spec.template.spec.restartPolicy", spec["template"]["spec"]["restartPolicy"],
                    "only \"Never\" is supported when podFailurePolicy is specified"))
        }
        for (index, rule) in (spec["podFailurePolicy"]["rules"].array ?? []).enumerated() {
            let at = "spec.podFailurePolicy.rules[\(index)]"
            errs += FieldChecks.supported(rule["action"], ["FailJob", "FailIndex", "Ignore", "Count"], "\(at).action")
            let exitCodes = rule["onExitCodes"], conditions = rule["onPodConditions"].array ?? []
            if exitCodes.isNull == conditions.isEmpty {
                errs.append(
                    FieldChecks.invalid(
                        at, rule, "specifying one of OnExitCodes and OnPodConditions is required"))
            }
            if !exitCodes.isNull {
                errs += FieldChecks.supported(exitCodes["operator"], ["In", "NotIn"], "\(at).onExitCodes.operator")
                let values = (exitCodes["values"].array ?? []).compactMap(\.int)
                if values.isEmpty {
                    errs.append(FieldChecks.required("\(at).onExitCodes.values"))
                } else if exitCodes["operator"].string == "In" && values.contains(0) {
                    errs.append(
                        FieldChecks.invalid(
                            "\(at).onExitCodes.values", .int(0), "must not be 0 for the In operator"))
                }
            }
        }
        return errs
    }

    /// The template, selector and completion mode are fixed; completions too, except that an Indexed
    /// Job's completions may follow its parallelism (elastic Indexed Jobs).
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        let spec = obj["spec"], before = old["spec"]
        var errs = FieldChecks.immutable(spec["selector"], before["selector"], "spec.selector")
        errs += FieldChecks.immutable(spec["completionMode"], before["completionMode"], "spec.completionMode")
        errs += FieldChecks.immutable(spec["podFailurePolicy"], before["podFailurePolicy"], "spec.podFailurePolicy")
        errs += FieldChecks.immutable(spec["successPolicy"], before["successPolicy"], "spec.successPolicy")
        errs += FieldChecks.immutable(
            spec["backoffLimitPerIndex"], before["backoffLimitPerIndex"], "spec.backoffLimitPerIndex")
        let elastic =
            spec["completionMode"].string == "Indexed" && spec["completions"] == spec["parallelism"]
            && before["completions"] == before["parallelism"]
        if !elastic { errs += FieldChecks.immutable(spec["completions"], before["completions"], "spec.completions") }
        if spec["template"] != before["template"] {
            // A suspended Job that never started may change its pods' scheduling directives.
            let suspendedUnstarted = spec["suspend"].bool == true && old["status"]["startTime"].isNull
            var mutable = spec["template"], previous = before["template"]
            if suspendedUnstarted {
                for field in ["nodeSelector", "tolerations", "affinity", "schedulingGates"] {
                    mutable["spec"][field] = .null
                    previous["spec"][field] = .null
                }
                for field in ["labels", "annotations"] {
                    mutable["metadata"][field] = .null
                    previous["metadata"][field] = .null
                }
            }
            errs += FieldChecks.immutable(mutable, previous, "spec.template")
        }
        return errs
    }

    /// kubectl's columns: status, completions, duration (wide: containers, images, selector).
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Status"), .init(name: "Completions"), .init(name: "Duration"),
            Tables.ageColumn,
        ] + WorkloadRules.wideColumns
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"], status = obj["status"]
        let succeeded = status["succeeded"].int ?? 0
        var completions = "\(succeeded)/1"
        if let wanted = spec["completions"].int {
            completions = "\(succeeded)/\(wanted)"
        } else if let parallelism = spec["parallelism"].int, parallelism > 1 {
            completions = "\(succeeded)/1 of \(parallelism)"
        }
        var duration = ""
        if let start = status["startTime"].string.flatMap(APITime.parse) {
            let end = status["completionTime"].string.flatMap(APITime.parse) ?? Date()
            duration = Tables.duration(end.timeIntervalSince(start))
        }
        return [
            Tables.nameCell(obj), .string(Self.printedStatus(obj)), .string(completions), .string(duration),
            Tables.ageCell(obj),
        ] + WorkloadRules.wideCells(obj)
    }

    static func printedStatus(_ obj: JSON) -> String {
        func has(_ type: String) -> Bool {
            (obj["status"]["conditions"].array ?? []).contains {
                $0["type"].string == type && $0["status"].string == "True"
            }
        }
        if has("Complete") { return "Complete" }
        if has("Failed") { return "Failed" }
        if !obj["metadata"]["deletionTimestamp"].isNull { return "Terminating" }
        if has("SuccessCriteriaMet") { return "SuccessCriteriaMet" }
        if has("Suspended") { return "Suspended" }
        if has("FailureTarget") { return "FailureTarget" }
        return "Running"
    }
}

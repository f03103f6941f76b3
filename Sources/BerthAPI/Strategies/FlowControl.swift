import Foundation

/// flowcontrol.apiserver.k8s.io/v1 PriorityLevelConfiguration (upstream pkg/apis/flowcontrol/v1
/// defaults and pkg/apis/flowcontrol/validation): a share of the server's concurrency, and what
/// happens to requests beyond it (queued fairly, or refused).
struct PriorityLevelConfigurationStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        var spec = obj["spec"]
        guard spec.object != nil else { return }
        if spec["type"].string == "Limited", spec["limited"].object != nil {
            if spec["limited"]["nominalConcurrencyShares"].isNull { spec["limited"]["nominalConcurrencyShares"] = 30 }
            if spec["limited"]["lendablePercent"].isNull { spec["limited"]["lendablePercent"] = 0 }
            if spec["limited"]["limitResponse"]["type"].string == "Queue" {
                var q = spec["limited"]["limitResponse"]["queuing"]
                if q.isNull { q = [:] }
                if q["queues"].isNull { q["queues"] = 64 }
                if q["handSize"].isNull { q["handSize"] = 8 }
                if q["queueLengthLimit"].isNull { q["queueLengthLimit"] = 50 }
                spec["limited"]["limitResponse"]["queuing"] = q
            }
        }
        if spec["type"].string == "Exempt" {
            if spec["exempt"].isNull { spec["exempt"] = [:] }
            if spec["exempt"]["nominalConcurrencyShares"].isNull { spec["exempt"]["nominalConcurrencyShares"] = 0 }
            if spec["exempt"]["lendablePercent"].isNull { spec["exempt"]["lendablePercent"] = 0 }
        }
        obj["spec"] = spec
    }

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) { obj["status"] = [:] }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        let name = obj["metadata"]["name"].string ?? ""
        var errs: [APIError.Cause] = []
        let type = spec["type"].string ?? ""
        if type.isEmpty {
            errs.append(FieldChecks.required("spec.type"))
        } else {
            errs += FieldChecks.supported(spec["type"], ["Exempt", "Limited"], "spec.type")
        }
        if (name == "exempt") != (type == "Exempt"), !type.isEmpty {
            errs.append(
                FieldChecks.invalid("spec.type", spec["type"], "type must be 'Exempt' if and only if name is 'exempt'"))
        }
        switch type {
        case "Limited":
            let limited = spec["limited"]
            if limited.object == nil {
                errs.append(FieldChecks.required("spec.limited", "must not be empty when type is Limited"))
                break
            }
            if !spec["exempt"].isNull {
                errs.append(FieldChecks.forbidden("spec.exempt", "must be nil if the type is Limited"))
            }
            if let shares = limited["nominalConcurrencyShares"].int, shares < 0 {
                errs.append(
                    FieldChecks.invalid(
                        "spec.limited.nominalConcurrencyShares", .int(shares), "must be a non-negative integer"))
            }
            errs += Self.percent(limited["lendablePercent"], "spec.limited.lendablePercent")
            if let b = limited["borrowingLimitPercent"].int, b < 0 {
                errs.append(
                    FieldChecks.invalid(
                        "spec.limited.borrowingLimitPercent", .int(b), "if specified, must be a non-negative integer"))
            }
            errs += Self.limitResponse(limited["limitResponse"], "spec.limited.limitResponse")
        case "Exempt":
            if !spec["limited"].isNull {
                errs.append(FieldChecks.forbidden("spec.limited", "must be nil if the type is not Limited"))
            }
            if let shares = spec["exempt"]["nominalConcurrencyShares"].int, shares < 0 {
                errs.append(
                    FieldChecks.invalid(
                        "spec.exempt.nominalConcurrencyShares", .int(shares), "must be a non-negative integer"))
            }
            errs += Self.percent(spec["exempt"]["lendablePercent"], "spec.exempt.lendablePercent")
        default: break
        }
        return errs
    }

    static func percent(_ value: JSON, _ path: String) -> [APIError.Cause] {
        guard let p = value.int, !(0...100).contains(p) else { return [] }
        return [FieldChecks.invalid(path, .int(p), "must be between 0 and 100, inclusive")]
    }

    static func limitResponse(_ response: JSON, _ path: String) -> [APIError.Cause] {
        let type = response["type"].string ?? ""
        if type.isEmpty { return [FieldChecks.required("\(path).type")] }
        var errs = FieldChecks.supported(response["type"], ["Queue", "Reject"], "\(path).type")
        let q = response["queuing"]
        if type == "Reject" && !q.isNull {
            errs.append(
                FieldChecks.forbidden("\(path).queuing", "must be nil if limited.limitResponse.type is not Limited"))
        }
        guard type == "Queue" else { return errs }
        if q.isNull { return errs + [FieldChecks.required("\(path).queuing", "must not be empty if type is Queue")] }
        let queues = q["queues"].int ?? 0, hand = q["handSize"].int ?? 0, length = q["queueLengthLimit"].int ?? 0
        if queues <= 0 { errs.append(FieldChecks.invalid("\(path).queuing.queues", .int(queues), "must be positive")) }
        if length <= 0 {
            errs.append(FieldChecks.invalid("\(path).queuing.queueLengthLimit", .int(length), "must be positive"))
        }
        if hand <= 0 {
            errs.append(FieldChecks.invalid("\(path).queuing.handSize", .int(hand), "must be positive"))
        } else if hand > queues && queues > 0 {
            errs.append(
                FieldChecks.invalid(
                    "\(path).queuing.handSize", .int(hand), "should not be greater than queues (\(queues))"))
        } else if queues > 0, Double(hand) * log2(Double(queues)) > 60 {
            errs.append(
                FieldChecks.invalid(
                    "\(path).queuing.handSize", .int(hand),
                    "required entropy bits of deckSize \(queues) and handSize \(hand) should not be greater than 60"))
        }
        return errs
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, Tables.Column(name: "Type"), Tables.Column(name: "NominalConcurrencyShares"),
            Tables.Column(name: "Queues"), Tables.Column(name: "HandSize"), Tables.Column(name: "QueueLengthLimit"),
            Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"]
        var shares = "<none>", queues = "<none>", hand = "<none>", length = "<none>"
        if spec["type"].string == "Limited" {
            shares = String(spec["limited"]["nominalConcurrencyShares"].int ?? 0)
            let q = spec["limited"]["limitResponse"]["queuing"]
            if q.object != nil {
                queues = String(q["queues"].int ?? 0)
                hand = String(q["handSize"].int ?? 0)
                length = String(q["queueLengthLimit"].int ?? 0)
            }
        } else if let s = spec["exempt"]["nominalConcurrencyShares"].int {
            shares = String(s)
        }
        return [
            Tables.nameCell(obj), .string(spec["type"].string ?? ""), .string(shares), .string(queues), .string(hand),
            .string(length), Tables.ageCell(obj),
        ]
    }
}

/// flowcontrol.apiserver.k8s.io/v1 FlowSchema: which requests (by subject and resource or URL) go to
/// which priority level, and how they are told apart into flows.
struct FlowSchemaStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if obj["spec"].object != nil && obj["spec"]["matchingPrecedence"].isNull {
            obj["spec"]["matchingPrecedence"] = 1000
        }
    }

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) { obj["status"] = [:] }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs: [APIError.Cause] = []
        if (spec["priorityLevelConfiguration"]["name"].string ?? "").isEmpty {
            errs.append(FieldChecks.required("spec.priorityLevelConfiguration.name", "must reference a priority level"))
        }
        if let p = spec["matchingPrecedence"].int, !(1...10000).contains(p) {
            errs.append(
                FieldChecks.invalid("spec.matchingPrecedence", .int(p), "must be between 1 and 10000, inclusive"))
        }
        if !spec["distinguisherMethod"].isNull {
            errs += FieldChecks.supported(
                spec["distinguisherMethod"]["type"], ["ByNamespace", "ByUser"], "spec.distinguisherMethod.type")
        }
        for (i, rule) in (spec["rules"].array ?? []).enumerated() {
            let path = "spec.rules[\(i)]"
            let subjects = rule["subjects"].array ?? []
            if subjects.isEmpty {
                errs.append(FieldChecks.required("\(path).subjects", "subjects must contain at least one value"))
            }
            for (j, s) in subjects.enumerated() {
                let at = "\(path).subjects[\(j)]"
                switch s["kind"].string ?? "" {
                case "User":
                    if (s["user"]["name"].string ?? "").isEmpty {
                        errs.append(FieldChecks.required("\(at).user.name", "username is required"))
                    }
                case "Group":
                    if (s["group"]["name"].string ?? "").isEmpty {
                        errs.append(FieldChecks.required("\(at).group.name", "name is required"))
                    }
                case "ServiceAccount":
                    if (s["serviceAccount"]["name"].string ?? "").isEmpty {
                        errs.append(FieldChecks.required("\(at).serviceAccount.name", "name is required"))
                    }
                    if (s["serviceAccount"]["namespace"].string ?? "").isEmpty {
                        errs.append(FieldChecks.required("\(at).serviceAccount.namespace", "namespace is required"))
                    }
                default:
                    errs += FieldChecks.supported(s["kind"], ["Group", "ServiceAccount", "User"], "\(at).kind")
                }
            }
            let resourceRules = rule["resourceRules"].array ?? [],
                nonResourceRules = rule["nonResourceRules"].array ?? []
            if resourceRules.isEmpty && nonResourceRules.isEmpty {
                errs.append(
                    FieldChecks.required(path, "at least one of resourceRules and nonResourceRules has to be non-empty")
                )
            }
            for (j, r) in resourceRules.enumerated() {
                let at = "\(path).resourceRules[\(j)]"
                for key in ["verbs", "apiGroups", "resources"] where (r[key].array ?? []).isEmpty {
                    errs.append(FieldChecks.required("\(at).\(key)", "\(key) must contain at least one value"))
                }
                if (r["namespaces"].array ?? []).isEmpty && r["clusterScope"].bool != true {
                    errs.append(
                        FieldChecks.required(
                            "\(at).namespaces",
                            "resource rules that are not cluster scoped must supply at least one namespace"))
                }
            }
            for (j, r) in nonResourceRules.enumerated() {
                let at = "\(path).nonResourceRules[\(j)]"
                if (r["verbs"].array ?? []).isEmpty {
                    errs.append(FieldChecks.required("\(at).verbs", "verbs must contain at least one value"))
                }
                let urls = (r["nonResourceURLs"].array ?? []).compactMap(\.string)
                if urls.isEmpty {
                    errs.append(
                        FieldChecks.required("\(at).nonResourceURLs", "nonResourceURLs must contain at least one value")
                    )
                }
                for (k, url) in urls.enumerated() where url != "*" && !url.hasPrefix("/") {
                    errs.append(
                        FieldChecks.invalid("\(at).nonResourceURLs[\(k)]", .string(url), "must start with slash"))
                }
            }
        }
        return errs
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, Tables.Column(name: "PriorityLevel"),
            Tables.Column(name: "MatchingPrecedence", type: "string"), Tables.Column(name: "DistinguisherMethod"),
            Tables.ageColumn, Tables.Column(name: "MissingPL"),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"]
        let dangling = (obj["status"]["conditions"].array ?? []).first { $0["type"].string == "Dangling" }
        return [
            Tables.nameCell(obj), .string(spec["priorityLevelConfiguration"]["name"].string ?? ""),
            .string(String(spec["matchingPrecedence"].int ?? 0)),
            .string(spec["distinguisherMethod"]["type"].string ?? "*"), Tables.ageCell(obj),
            .string(dangling?["status"].string ?? "?"),
        ]
    }
}

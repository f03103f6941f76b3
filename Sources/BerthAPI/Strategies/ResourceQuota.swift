import BerthKube

/// core/v1 ResourceQuota (upstream pkg/registry/core/resourcequota and ValidateResourceQuota): a
/// namespace's hard limits on what its objects may use in total. The ResourceQuota admission charges
/// each create against it (``ResourceQuotaAdmission``); its status — hard and used — is the quota
/// controller's, which recounts what the namespace holds.
struct ResourceQuotaStrategy: ResourceStrategy {
    /// Upstream's standardQuotaResources (names without a `/`; hugepages-* are standard too).
    static let standardResources: Set<String> = [
        "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
        "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "services",
        "replicationcontrollers", "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims",
        "services.nodeports", "services.loadbalancers",
    ]
    /// Counted in whole objects: an amount must be an integer.
    static let integerResources: Set<String> = [
        "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
        "persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
    ]
    /// The resources a pod-only scope can apply to.
    static let podResources: Set<String> = [
        "pods", "cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory",
    ]

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        obj["status"] = [:]
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let spec = obj["spec"]
        for field in ["spec.hard", "status.hard", "status.used"] {
            let parts = field.split(separator: ".").map(String.init)
            for (name, value) in (obj[parts[0]][parts[1]].object ?? [:]).sorted(by: { $0.key < $1.key }) {
                errs += Self.resourceErrors(name, value, path: "\(field)[\(name)]")
            }
        }
        var scopes: [String] = []
        for (index, scope) in (spec["scopes"].array ?? []).enumerated() {
            let name = scope.string ?? ""
            scopes.append(name)
            if !QuotaUsage.scopes.contains(name) {
                errs.append(
                    .init("spec.scopes[\(index)]", "FieldValueInvalid", "Invalid value: \"\(name)\": unsupported scope")
                )
            }
        }
        for (index, expression) in (spec["scopeSelector"]["matchExpressions"].array ?? []).enumerated() {
            let path = "spec.scopeSelector.matchExpressions[\(index)]"
            let name = expression["scopeName"].string ?? ""
            scopes.append(name)
            if !QuotaUsage.scopes.contains(name) {
                errs.append(
                    .init("\(path).scopeName", "FieldValueInvalid", "Invalid value: \"\(name)\": unsupported scope"))
            }
            let op = expression["operator"].string ?? ""
            let values = expression["values"].array ?? []
            switch op {
            case "In", "NotIn":
                if values.isEmpty {
                    errs.append(
                        .init(
                            "\(path).values", "FieldValueRequired",
                            "Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"
                        ))
                }
            case "Exists", "DoesNotExist":
                if !values.isEmpty {
                    errs.append(
                        .init(
                            "\(path).values", "FieldValueInvalid",
                            "Invalid value: \(expression["values"].text): must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"
                        ))
                }
            default:
                errs.append(
                    .init(
                        "\(path).operator", "FieldValueInvalid",
                        "Invalid value: \"\(op)\": not a valid selector operator"))
            }
        }
        let set = Set(scopes)
        if set.isSuperset(of: ["Terminating", "NotTerminating"]) || set.isSuperset(of: ["BestEffort", "NotBestEffort"])
        {
            errs.append(
                .init(
                    "spec.scopes", "FieldValueInvalid",
                    "Invalid value: \(spec["scopes"].text): conflicting scopes"))
        }
        // A pod-only scope limits pod resources only (BestEffort pods have no compute resources at all).
        if !set.isEmpty {
            let allowed = set.contains("BestEffort") ? ["pods"] : Self.podResources
            let hard = Set((spec["hard"].object ?? [:]).keys)
            if !hard.allSatisfy({ allowed.contains($0) || $0 == "count/pods" }) {
                errs.append(
                    .init(
                        "spec.scopes", "FieldValueInvalid",
                        "Invalid value: \(spec["scopes"].isNull ? "null" : spec["scopes"].text): unsupported scope applied to resource"
                    ))
            }
        }
        return errs
    }

    /// A quota resource name and its amount (ValidateResourceQuotaResourceName, ValidateResourceQuantityValue).
    static func resourceErrors(_ name: String, _ value: JSON, path: String) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let standard =
            standardResources.contains(name) || name.hasPrefix("hugepages-")
            || name.hasPrefix("requests.hugepages-")
        if !name.contains("/") && !standard {
            errs.append(
                .init(path, "FieldValueInvalid", "Invalid value: \"\(name)\": must be a standard resource for quota"))
        }
        let text = value.string ?? value.text
        guard let milli = Quantity.milli(text) else {
            errs.append(.init(path, "FieldValueInvalid", "Invalid value: \"\(text)\": must be a valid quantity"))
            return errs
        }
        if milli < 0 {
            errs.append(
                .init(path, "FieldValueInvalid", "Invalid value: \"\(text)\": must be greater than or equal to 0"))
        } else if (integerResources.contains(name) || name.hasPrefix("count/")) && milli % 1000 != 0 {
            errs.append(.init(path, "FieldValueInvalid", "Invalid value: \"\(text)\": must be an integer"))
        }
        return errs
    }

    /// kubectl's columns: each resource's `used/hard` under Request, the `limits.*` ones under Limit.
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, Tables.ageColumn,
            .init(
                name: "Request",
                description: "Request represents a minimum amount of cpu/memory that a container may consume."),
            .init(
                name: "Limit",
                description:
                    "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."
            ),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let hard = obj["status"]["hard"].object ?? [:], used = obj["status"]["used"].object ?? [:]
        var requests: [String] = [], limits: [String] = []
        for name in hard.keys.sorted() {
            let cell = "\(name): \(used[name]?.string ?? "0")/\(hard[name]?.string ?? "0")"
            if name.hasPrefix("limits.") { limits.append(cell) } else { requests.append(cell) }
        }
        return [
            Tables.nameCell(obj), Tables.ageCell(obj), .string(requests.joined(separator: ", ")),
            .string(limits.joined(separator: ", ")),
        ]
    }
}

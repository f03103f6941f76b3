/// scheduling.k8s.io/v1 PriorityClass (upstream pkg/registry/scheduling/priorityclass and
/// pkg/apis/scheduling/validation): a name for a pod priority. Names starting with `system-` are the
/// two built-in classes only; user classes go up to a billion; the value and preemption policy are
/// fixed once made; the built-in classes cannot be deleted; at most one class is the global default.
struct PriorityClassStrategy: ResourceStrategy {
    static let highestUserDefinable: Int64 = 1_000_000_000
    static let systemPrefix = "system-"
    /// Upstream's SystemPriorityClasses, made when the server first starts.
    static let system: [JSON] = [
        [
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": ["name": "system-node-critical"], "value": 2_000_001_000,
            "description": "Used for system critical pods that must not be moved from their current node.",
        ],
        [
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": ["name": "system-cluster-critical"], "value": 2_000_000_000,
            "description":
                "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ],
    ]
    static let policies = ["Never", "PreemptLowerPriority"]

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if obj["preemptionPolicy"].isNull { obj["preemptionPolicy"] = "PreemptLowerPriority" }
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let name = obj["metadata"]["name"].string ?? ""
        let value = obj["value"].int ?? 0
        if name.hasPrefix(Self.systemPrefix) {
            if let reason = Self.notKnownSystemClass(name: name, value: value, globalDefault: obj["globalDefault"].bool)
            {
                errs.append(
                    .init(
                        "metadata.name", "FieldValueForbidden",
                        "Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: \(reason)"
                    ))
            }
        } else if value > Self.highestUserDefinable {
            errs.append(
                .init(
                    "value", "FieldValueForbidden",
                    "Forbidden: maximum allowed value of a user defined priority is \(Self.highestUserDefinable)"))
        }
        if let policy = obj["preemptionPolicy"].string, !Self.policies.contains(policy) {
            errs.append(
                .init(
                    "preemptionPolicy", "FieldValueNotSupported",
                    "Unsupported value: \"\(policy)\": supported values: \"Never\", \"PreemptLowerPriority\""))
        }
        return errs
    }

    /// Why `name` with the system prefix is not one of the built-in classes as they are; nil if it is.
    static func notKnownSystemClass(name: String, value: Int64, globalDefault: Bool?) -> String? {
        guard let known = system.first(where: { $0["metadata"]["name"].string == name }) else {
            return "name \(name) is not a known system priority class"
        }
        let wanted = known["value"].int ?? 0
        if value != wanted { return "value of \(name) PriorityClass must be \(wanted)" }
        if globalDefault == true { return "globalDefault of \(name) PriorityClass must be false" }
        return nil
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        if (obj["value"].int ?? 0) != (old["value"].int ?? 0) {
            errs.append(.init("value", "FieldValueForbidden", "Forbidden: may not be changed in an update."))
        }
        if obj["preemptionPolicy"] != old["preemptionPolicy"] {
            errs.append(
                .init(
                    "preemptionPolicy", "FieldValueInvalid",
                    "Invalid value: \(obj["preemptionPolicy"].text): field is immutable"))
        }
        return errs
    }

    /// Upstream's Priority admission on PriorityClass writes: one global default at most.
    func admitCreate(_ obj: inout JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        guard obj["globalDefault"].bool == true else { return }
        if let existing = try await Self.globalDefault(handler: handler) {
            throw APIError.forbidden(
                "priorityclasses.scheduling.k8s.io \"\(obj["metadata"]["name"].string ?? "")\" is forbidden: PriorityClass \(existing["metadata"]["name"].string ?? "") is already marked as default. Only one default can exist"
            )
        }
    }

    /// The class marked globalDefault (the lowest-valued if several were made before one was refused).
    static func globalDefault(handler: Handler) async throws -> JSON? {
        try await handler.storedObjects(Registry.priorityClasses, namespace: nil).map(\.object)
            .filter { $0["globalDefault"].bool == true }
            .min { ($0["value"].int ?? 0) < ($1["value"].int ?? 0) }
    }

    func planDeletion(_ obj: inout JSON, gracePeriod: Int64?, _ ctx: StrategyContext) throws -> DeletionPlan {
        let name = obj["metadata"]["name"].string ?? ""
        if Self.system.contains(where: { $0["metadata"]["name"].string == name }) {
            throw APIError.forbidden(
                "priorityclasses.scheduling.k8s.io \"\(name)\" is forbidden: this is a system priority class and cannot be deleted"
            )
        }
        return .proceed(gracePeriod: 0)
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Value", type: "integer"), .init(name: "Global-Default", type: "boolean"),
            Tables.ageColumn, .init(name: "PreemptionPolicy"),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        [
            Tables.nameCell(obj), Tables.int(obj["value"]), .bool(obj["globalDefault"].bool ?? false),
            Tables.ageCell(obj), .string(obj["preemptionPolicy"].string ?? ""),
        ]
    }
}

/// Upstream's Priority admission on pod create: the pod's priority (and preemption policy) come from its
/// PriorityClass, or the global default class, else 0; a pod may not state a different number itself.
enum PriorityAdmission {
    static func admit(_ pod: inout JSON, handler: Handler) async throws {
        let podName = pod["metadata"]["name"].string ?? ""
        func forbidden(_ reason: String) -> APIError {
            APIError.forbidden("pods \"\(podName)\" is forbidden: \(reason)")
        }
        var priority: Int64 = 0
        var policy = "PreemptLowerPriority"
        let className = pod["spec"]["priorityClassName"].string ?? ""
        if className.isEmpty {
            if let fallback = try await PriorityClassStrategy.globalDefault(handler: handler) {
                priority = fallback["value"].int ?? 0
                policy = fallback["preemptionPolicy"].string ?? policy
                pod["spec"]["priorityClassName"] = fallback["metadata"]["name"]
            }
        } else {
            guard
                let priorityClass = try await handler.storedObject(
                    Registry.priorityClasses, namespace: nil, name: className)
            else {
                throw forbidden("no PriorityClass with name \(className) was found")
            }
            priority = priorityClass["value"].int ?? 0
            policy = priorityClass["preemptionPolicy"].string ?? policy
        }
        if let stated = pod["spec"]["priority"].int, stated != priority {
            throw forbidden(
                "the integer value of priority (\(stated)) must not be provided in pod spec; priority admission controller computed \(priority) from the given PriorityClass name"
            )
        }
        if let stated = pod["spec"]["preemptionPolicy"].string, stated != policy {
            throw forbidden(
                "the string value of PreemptionPolicy (\(stated)) must not be provided in pod spec; priority admission controller computed \(policy) from the given PriorityClass name"
            )
        }
        pod["spec"]["priority"] = .int(priority)
        pod["spec"]["preemptionPolicy"] = .string(policy)
    }
}

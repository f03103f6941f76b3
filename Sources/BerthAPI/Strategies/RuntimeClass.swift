import BerthKube

/// node.k8s.io/v1 RuntimeClass (upstream pkg/apis/node/validation): a name for a CRI runtime handler,
/// with the overhead a pod of the class costs beyond its containers and where such pods may run. The
/// handler is fixed once made.
struct RuntimeClassStrategy: ResourceStrategy {
    func validate(_ obj: JSON) -> [APIError.Cause] {
        let handler = obj["handler"].string ?? ""
        var errs = handler.isEmpty ? [FieldChecks.required("handler")] : FieldChecks.dns1123Label(handler, "handler")
        for (resource, quantity) in obj["overhead"]["podFixed"].object ?? [:] {
            errs += FieldChecks.nonNegativeQuantity(quantity, "overhead.podFixed[\(resource)]")
        }
        for (key, value) in obj["scheduling"]["nodeSelector"].object ?? [:] {
            errs += FieldChecks.qualifiedName(key, "scheduling.nodeSelector")
            if let text = value.string, !Validation.isLabelValue(text) {
                errs.append(
                    FieldChecks.invalid(
                        "scheduling.nodeSelector", value, Validation.labelValueText
                    ))
            }
        }
        for (index, toleration) in (obj["scheduling"]["tolerations"].array ?? []).enumerated() {
            errs += FieldChecks.supported(
                toleration["operator"], ["Equal", "Exists"], "scheduling.tolerations[\(index)].operator")
            errs += FieldChecks.supported(
                toleration["effect"], ["NoSchedule", "PreferNoSchedule", "NoExecute"],
                "scheduling.tolerations[\(index)].effect")
        }
        return errs
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        FieldChecks.immutable(obj["handler"], old["handler"], "handler")
    }

    var tableColumns: [Tables.Column] { [Tables.nameColumn, .init(name: "Handler"), Tables.ageColumn] }
    func tableCells(_ obj: JSON) -> [JSON] {
        [Tables.nameCell(obj), .string(obj["handler"].string ?? ""), Tables.ageCell(obj)]
    }
}

/// Upstream's RuntimeClass admission on pod create: a pod naming a RuntimeClass gets the class's
/// overhead (refused if it stated another, or stated one the class has not) and its scheduling — node
/// selector merged (refused on a conflicting value) and tolerations added; a class that does not exist
/// refuses the pod.
enum RuntimeClassAdmission {
    static func admit(_ pod: inout JSON, handler: Handler) async throws {
        let podName = pod["metadata"]["name"].string ?? ""
        func forbidden(_ reason: String) -> APIError {
            APIError.forbidden("pods \"\(podName)\" is forbidden: \(reason)")
        }
        let className = pod["spec"]["runtimeClassName"].string ?? ""
        let stated = pod["spec"]["overhead"].object ?? [:]
        guard !className.isEmpty else {
            if !stated.isEmpty {
                throw forbidden("pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")
            }
            return
        }
        guard
            let runtimeClass = try await handler.storedObject(Registry.runtimeClasses, namespace: nil, name: className),
            runtimeClass["metadata"]["deletionTimestamp"].isNull
        else {
            throw forbidden("pod rejected: RuntimeClass \"\(className)\" not found")
        }
        if let overhead = runtimeClass["overhead"]["podFixed"].object {
            if !stated.isEmpty && !sameQuantities(stated, overhead) {
                throw forbidden("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
            }
            pod["spec"]["overhead"] = .object(overhead)
        } else if !stated.isEmpty {
            throw forbidden("pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")
        }
        let scheduling = runtimeClass["scheduling"]
        guard !scheduling.isNull else { return }
        var selector = pod["spec"]["nodeSelector"].object ?? [:]
        for (key, value) in (scheduling["nodeSelector"].object ?? [:]).sorted(by: { $0.key < $1.key }) {
            if let podValue = selector[key], podValue != value {
                throw forbidden(
                    "conflict: runtimeClass.scheduling.nodeSelector[\(key)] = \(value.string ?? ""); pod.spec.nodeSelector[\(key)] = \(podValue.string ?? "")"
                )
            }
            selector[key] = value
        }
        if !selector.isEmpty { pod["spec"]["nodeSelector"] = .object(selector) }
        var tolerations = pod["spec"]["tolerations"].array ?? []
        for toleration in scheduling["tolerations"].array ?? [] where !tolerations.contains(toleration) {
            tolerations.append(toleration)
        }
        if !tolerations.isEmpty { pod["spec"]["tolerations"] = .array(tolerations) }
    }

    /// Quantities compared by value (`1000m` is `1`), as apiequality.Semantic compares them.
    static func sameQuantities(_ a: [String: JSON], _ b: [String: JSON]) -> Bool {
        guard Set(a.keys) == Set(b.keys) else { return false }
        return a.allSatisfy { key, value in
            guard let left = value.string.flatMap(Quantity.milli), let right = b[key]?.string.flatMap(Quantity.milli)
            else { return value == b[key] }
            return left == right
        }
    }
}

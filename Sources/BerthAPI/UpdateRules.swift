/// What an update may change, per kind, beyond the generic rules of `updateObject`: kube-apiserver's
/// status strategies (`PrepareForUpdate` of each `…StatusStrategy`) and the update validation of
/// immutable ConfigMaps and Secrets (`ValidateConfigMapUpdate`, `ValidateSecretUpdate`).
enum UpdateRules {
    /// A write to `<kind>/status`: the request's object with the stored spec. Upstream's status
    /// strategies reset the spec only, so metadata a status writer sends (labels, annotations,
    /// finalizers …) is kept — node agents and controllers label objects while they report status —
    /// except for the two kinds whose strategy also resets part of it.
    static func prepareStatusUpdate(_ new: JSON, current cur: JSON, kind: String) -> JSON {
        var obj = new
        obj["spec"] = cur["spec"]
        switch kind {
        case "Pod":
            // Old kubelets corrupted owner references through pods/status; upstream ignores them there.
            obj["metadata"]["ownerReferences"] = cur["metadata"]["ownerReferences"]
        case "Deployment":
            // A Deployment's labels are its selector's business, not its status writer's.
            obj["metadata"]["labels"] = cur["metadata"]["labels"]
        default:
            break
        }
        return obj
    }

    static let immutableMessage = "Forbidden: field is immutable when `immutable` is set"

    /// Errors for changes an update may not make. Once a ConfigMap or Secret is `immutable: true`, its
    /// data (and a ConfigMap's binaryData) and the flag itself are fixed — only metadata may change and
    /// the object may be deleted — and a Secret's type never changes.
    static func validate(_ new: JSON, old: JSON, _ r: ResourceType) -> [APIError.Cause] {
        guard r.kind == "ConfigMap" || r.kind == "Secret" else { return [] }
        var errs: [APIError.Cause] = []
        if r.kind == "Secret", let was = old["type"].string, let now = new["type"].string, was != now {
            errs.append(.init("type", "FieldValueInvalid", "Invalid value: \(new["type"].text): field is immutable"))
        }
        guard old["immutable"].bool == true else { return errs }
        if new["immutable"].bool != true { errs.append(.init("immutable", "FieldValueForbidden", immutableMessage)) }
        for field in r.kind == "ConfigMap" ? ["data", "binaryData"] : ["data"] where !sameMap(new[field], old[field]) {
            errs.append(.init(field, "FieldValueForbidden", immutableMessage))
        }
        return errs
    }

    /// Absent and empty are one value for a map that round-trips through Go (nil and empty both omit).
    private static func sameMap(_ a: JSON, _ b: JSON) -> Bool {
        func norm(_ j: JSON) -> JSON { j.object?.isEmpty == true ? .null : j }
        return norm(a) == norm(b)
    }
}

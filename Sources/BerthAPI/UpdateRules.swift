/// What an update may change, per kind, beyond the generic rules of `updateObject`: kube-apiserver's
/// status strategies (`PrepareForUpdate` of each `…StatusStrategy`).
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
}

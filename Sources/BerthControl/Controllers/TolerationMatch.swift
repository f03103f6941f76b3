import BerthKube

/// Whether a pod's toleration lets it stay on (or be placed on) a node with a taint: what the DaemonSet
/// controller's placement and the node lifecycle controller's taint manager both ask.
enum TolerationMatch {
    /// Upstream's ToleratesTaint: an empty effect matches every effect; an empty key with Exists every
    /// key; an unset operator means Equal, and an unset value equals an empty one.
    static func tolerates(_ toleration: CoreV1.Toleration, _ taint: CoreV1.Taint) -> Bool {
        if let effect = toleration.effect, !effect.rawValue.isEmpty, effect != taint.effect { return false }
        if let key = toleration.key, !key.isEmpty, key != taint.key { return false }
        switch toleration.operator?.rawValue ?? "Equal" {
        case "Exists": return true
        case "Equal", "": return (toleration.value ?? "") == (taint.value ?? "")
        default: return false
        }
    }
}

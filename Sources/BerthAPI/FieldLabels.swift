/// Field selectors (`?fieldSelector=`): which labels a kind accepts and the value each has on an object —
/// kube-apiserver's field-label conversion funcs (which labels a kind accepts; any other is a 400) and its
/// per-kind `ToSelectableFields` (what each label reads). Each kind's labels are in its strategy
/// (`ResourceStrategy.fieldLabels`); this file has the shared part.
///
/// Upstream reads typed Go structs, so a field absent from the JSON is its zero value there — an absent
/// bool reads "false", an absent count "0", an absent string "" — and a field upstream defaults when the
/// object is created reads as that default. A stored object here is a JSON tree that may lack either
/// (hollow nodes, nodes and pods that clients create without them), so each getter supplies them:
/// `spec.unschedulable=false` matches a node that never set `unschedulable`, as it does upstream.
enum FieldLabels {
    typealias Getter = @Sendable (JSON) -> String

    /// The getter for `label` on `r`, or the 400 upstream answers for a label the kind does not have.
    static func getter(_ label: String, for r: ResourceType) throws -> Getter {
        let set = r.strategy.fieldLabels
        if let g = set.getters[label] ?? meta(label, namespaced: r.namespaced) { return g }
        if set.ownConversion { throw APIError.badRequest("field label not supported: \(label)") }
        // runtime.DefaultMetaV1FieldSelectorConversion, for kinds without their own conversion func.
        throw APIError.badRequest(
            "\"\(label)\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")
    }

    /// metadata.name for every kind; metadata.namespace for namespaced kinds (the cluster-scoped Node and
    /// Namespace accept only the name upstream).
    private static func meta(_ label: String, namespaced: Bool) -> Getter? {
        switch label {
        case "metadata.name": return { $0["metadata"]["name"].string ?? "" }
        case "metadata.namespace" where namespaced: return { $0["metadata"]["namespace"].string ?? "" }
        default: return nil
        }
    }

    static func string(_ path: String, default fallback: String = "") -> Getter {
        let keys = path.split(separator: ".").map(String.init)
        return { obj in
            let s = obj[keys].string ?? ""
            return s.isEmpty ? fallback : s
        }
    }
    static func bool(_ path: String) -> Getter {
        let keys = path.split(separator: ".").map(String.init)
        return { $0[keys].bool == true ? "true" : "false" }
    }
    static func int(_ path: String) -> Getter {
        let keys = path.split(separator: ".").map(String.init)
        return { String($0[keys].int ?? 0) }
    }
}

/// The field labels one kind serves beyond metadata.
struct FieldLabelSet: Sendable {
    var getters: [String: FieldLabels.Getter]
    /// The kind has a conversion func of its own upstream, whose error for an unknown label differs from
    /// the default conversion's.
    var ownConversion: Bool

    /// metadata.name (and metadata.namespace) only, through the default conversion.
    static let metadataOnly = FieldLabelSet(getters: [:], ownConversion: false)
}

/// The fields each kind can be selected by (`?fieldSelector=`) and the value each has on an object:
/// kube-apiserver's field-label conversion funcs (which labels a kind accepts; any other is a 400) and
/// its per-kind `ToSelectableFields` (what each label reads).
///
/// Upstream reads typed Go structs, so a field absent from the JSON is its zero value there — an absent
/// bool reads "false", an absent count "0", an absent string "" — and a field upstream defaults when the
/// object is created reads as that default. A stored object here is a JSON tree that may lack either
/// (hollow nodes, nodes and pods that clients create without them), so each getter supplies them:
/// `spec.unschedulable=false` matches a node that never set `unschedulable`, as it does upstream.
enum FieldLabels {
    typealias Getter = @Sendable (JSON) -> String

    /// The getter for `label` on `kind`, or the 400 upstream answers for a label the kind does not have.
    static func getter(_ label: String, kind: String, namespaced: Bool) throws -> Getter {
        if let g = byKind[kind]?[label] ?? meta(label, namespaced: namespaced) { return g }
        if byKind[kind] != nil && !defaultConversion.contains(kind) { throw APIError.badRequest("field label not supported: \(label)") }
        // runtime.DefaultMetaV1FieldSelectorConversion, for kinds without their own conversion func.
        throw APIError.badRequest("\"\(label)\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")
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

    private static func string(_ path: String, default fallback: String = "") -> Getter {
        let keys = path.split(separator: ".").map(String.init)
        return { obj in
            let s = obj[keys].string ?? ""
            return s.isEmpty ? fallback : s
        }
    }
    private static func bool(_ path: String) -> Getter {
        let keys = path.split(separator: ".").map(String.init)
        return { $0[keys].bool == true ? "true" : "false" }
    }
    private static func int(_ path: String) -> Getter {
        let keys = path.split(separator: ".").map(String.init)
        return { String($0[keys].int ?? 0) }
    }

    /// Kinds in `byKind` that have no conversion func of their own upstream. apps/v1 ReplicaSet's
    /// `status.replicas` is in upstream's field set and in its field-selector documentation, but 1.32's
    /// default conversion refuses it (kubernetes/kubernetes#135136); it is served here as documented.
    private static let defaultConversion: Set<String> = ["ReplicaSet"]

    /// Kinds with their own field labels upstream, beyond metadata.
    private static let byKind: [String: [String: Getter]] = [
        "Pod": [
            "spec.nodeName": string("spec.nodeName"),
            "spec.host": string("spec.nodeName"),  // what v1 clients of old sent; upstream converts it
            "spec.restartPolicy": string("spec.restartPolicy", default: "Always"),
            "spec.schedulerName": string("spec.schedulerName", default: "default-scheduler"),
            "spec.serviceAccountName": string("spec.serviceAccountName"),
            "spec.hostNetwork": bool("spec.hostNetwork"),
            "status.phase": string("status.phase", default: "Pending"),
            // Upstream reads the first of status.podIPs; an agent may have written only status.podIP.
            "status.podIP": { pod in
                pod["status"]["podIPs"][0]["ip"].string ?? pod["status"]["podIP"].string ?? ""
            },
            // Accepted by upstream's conversion but absent from its field set, so it always reads "".
            "status.podIPs": { _ in "" },
            "status.nominatedNodeName": string("status.nominatedNodeName"),
        ],
        "Node": ["spec.unschedulable": bool("spec.unschedulable")],
        "Namespace": ["status.phase": string("status.phase", default: "Active")],
        "Secret": ["type": string("type", default: "Opaque")],
        "Service": ["spec.clusterIP": string("spec.clusterIP"), "spec.type": string("spec.type", default: "ClusterIP")],
        "ReplicaSet": ["status.replicas": int("status.replicas")],
        "Event": [
            "involvedObject.kind": string("involvedObject.kind"),
            "involvedObject.namespace": string("involvedObject.namespace"),
            "involvedObject.name": string("involvedObject.name"),
            "involvedObject.uid": string("involvedObject.uid"),
            "involvedObject.apiVersion": string("involvedObject.apiVersion"),
            "involvedObject.resourceVersion": string("involvedObject.resourceVersion"),
            "involvedObject.fieldPath": string("involvedObject.fieldPath"),
            "reason": string("reason"),
            "reportingComponent": string("reportingComponent"),
            // Not a path: source.component, or the reporting controller of events written through
            // events.k8s.io, which have no source.
            "source": { e in
                let component = e["source"]["component"].string ?? ""
                return component.isEmpty ? e["reportingComponent"].string ?? "" : component
            },
            "type": string("type"),
        ],
    ]
}

import Foundation

/// One request as admission sees it (upstream's admission.Attributes): what is being done, to which
/// object, by whom. Webhooks receive it as an AdmissionReview; ValidatingAdmissionPolicies read it as
/// CEL's `request`, `object` and `oldObject`.
struct AdmissionAttributes: Sendable {
    enum Operation: String, Sendable {
        case create = "CREATE", update = "UPDATE", delete = "DELETE", connect = "CONNECT"
    }

    var operation: Operation
    var resource: ResourceType
    /// "" for the object itself; "status", "scale", "exec" …
    var subresource: String
    var name: String
    /// nil for cluster-scoped objects.
    var namespace: String?
    /// The object after the request (nil for DELETE); for CONNECT the options object (PodExecOptions …).
    var object: JSON?
    /// The stored object before an UPDATE or DELETE.
    var oldObject: JSON?
    var user: UserInfo
    var dryRun: Bool
    /// CreateOptions, UpdateOptions or DeleteOptions as the request gave them.
    var options: JSON
    /// Where warnings of webhooks and policies go (the response's `Warning` headers); nil for the
    /// server's own writes.
    var warnings: RequestWarnings?
    /// The webhooks and policies this request is admitted by, once the first admission step read them
    /// (`Handler.admitMutating`); nil before.
    var configuration: AdmissionConfiguration? = nil

    /// Who the server's own writes (its controllers and bootstrap) are made by.
    static let loopbackUser = UserInfo(name: "system:apiserver", groups: ["system:masters", "system:authenticated"])

    /// The kind of what the request carries: the resource's own kind, or the subresource's (Scale,
    /// Eviction, Binding, the streaming options).
    var kind: (group: String, version: String, kind: String) {
        switch (resource.kind, subresource) {
        case (_, "scale"): return ("autoscaling", "v1", "Scale")
        case ("Pod", "eviction"): return ("policy", "v1", "Eviction")
        case ("Pod", "binding"): return ("", "v1", "Binding")
        case ("Pod", "exec"): return ("", "v1", "PodExecOptions")
        case ("Pod", "attach"): return ("", "v1", "PodAttachOptions")
        case ("Pod", "portforward"): return ("", "v1", "PodPortForwardOptions")
        default: return (resource.group, resource.version, resource.kind)
        }
    }

    /// Whether the object lives in a namespace (rules' `scope`).
    var namespaced: Bool { !(namespace ?? "").isEmpty }

    /// The AdmissionRequest of admission.k8s.io/v1 (the same shape in v1beta1).
    func request(uid: String) -> JSON {
        let k = kind
        let kindJSON: JSON = ["group": .string(k.group), "version": .string(k.version), "kind": .string(k.kind)]
        let resourceJSON: JSON = [
            "group": .string(resource.group), "version": .string(resource.version),
            "resource": .string(resource.plural),
        ]
        var r: JSON = [
            "uid": .string(uid), "kind": kindJSON, "resource": resourceJSON,
            "requestKind": kindJSON, "requestResource": resourceJSON,
            "name": .string(name), "operation": .string(operation.rawValue),
            "userInfo": user.json, "dryRun": .bool(dryRun), "options": options,
            "object": object ?? .null, "oldObject": oldObject ?? .null,
        ]
        if !subresource.isEmpty {
            r["subResource"] = .string(subresource)
            r["requestSubResource"] = .string(subresource)
        }
        if let namespace, !namespace.isEmpty { r["namespace"] = .string(namespace) }
        return r
    }

    /// What admission's CEL expressions (match conditions, policies) read of the request: `object`,
    /// `oldObject` and `request`. Built once per admission step, not once per webhook or binding.
    var celVariables: [String: JSON] {
        ["object": object ?? .null, "oldObject": oldObject ?? .null, "request": request(uid: "")]
    }

    /// The labels object selectors look at: the object's, or the old object's on DELETE.
    var objectLabels: [String: String]? { object?["metadata"]["labels"].stringMap }
    var oldObjectLabels: [String: String]? { oldObject?["metadata"]["labels"].stringMap }

    /// Options objects of each operation, as upstream fills them.
    static func options(_ operation: Operation, dryRun: Bool, fieldManager: String?) -> JSON {
        let kind =
            switch operation {
            case .create: "CreateOptions"
            case .update: "UpdateOptions"
            case .delete: "DeleteOptions"
            case .connect: ""
            }
        guard !kind.isEmpty else { return .null }
        var o: JSON = ["kind": .string(kind), "apiVersion": "meta.k8s.io/v1"]
        if dryRun { o["dryRun"] = ["All"] }
        if let fieldManager, operation != .delete { o["fieldManager"] = .string(fieldManager) }
        return o
    }
}

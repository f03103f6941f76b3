import BerthStore

/// The Roles, ClusterRoles and their bindings, parsed once per change, and what they allow
/// (upstream's RBAC authorizer and its rule resolver, plugin/pkg/auth/authorizer/rbac and
/// pkg/registry/rbac/validation).
struct RBACPolicy: Sendable {
    static let group = "rbac.authorization.k8s.io"

    struct Subject: Sendable {
        var kind: String
        var name: String
        var namespace: String

        /// Upstream's `appliesToUser`: a ServiceAccount subject without a namespace is one of the
        /// binding's namespace.
        func applies(to user: UserInfo, bindingNamespace: String) -> Bool {
            switch kind {
            case "User": return user.name == name
            case "Group": return user.groups.contains(name)
            case "ServiceAccount":
                let namespace = self.namespace.isEmpty ? bindingNamespace : self.namespace
                return !namespace.isEmpty && user.name == "system:serviceaccount:\(namespace):\(name)"
            default: return false
            }
        }

        /// How an allowing binding names its subject (`User "alice"`, `ServiceAccount "x/ns"`).
        func described(bindingNamespace: String) -> String {
            guard kind == "ServiceAccount" else { return "\(kind) \(GoFormat.quoted(name))" }
            let namespace = self.namespace.isEmpty ? bindingNamespace : self.namespace
            return "\(kind) \(GoFormat.quoted(name + "/" + namespace))"
        }
    }

    struct Binding: Sendable {
        var name: String
        /// "" for a ClusterRoleBinding.
        var namespace: String
        var roleKind: String
        var roleName: String
        var subjects: [Subject]

        init(_ json: JSON) {
            name = json["metadata"]["name"].string ?? ""
            namespace = json["metadata"]["namespace"].string ?? ""
            roleKind = json["roleRef"]["kind"].string ?? ""
            roleName = json["roleRef"]["name"].string ?? ""
            subjects = (json["subjects"].array ?? []).map {
                Subject(
                    kind: $0["kind"].string ?? "", name: $0["name"].string ?? "",
                    namespace: $0["namespace"].string ?? "")
            }
        }

        func describe(_ subject: Subject) -> String {
            let of = "of \(roleKind) \(GoFormat.quoted(roleName)) to \(subject.described(bindingNamespace: namespace))"
            if namespace.isEmpty { return "ClusterRoleBinding \(GoFormat.quoted(name)) \(of)" }
            return "RoleBinding \(GoFormat.quoted(name + "/" + namespace)) \(of)"
        }
    }

    /// Roles by "namespace/name".
    var roles: [String: [PolicyRule]] = [:]
    var clusterRoles: [String: [PolicyRule]] = [:]
    var clusterRoleBindings: [Binding] = []
    var roleBindings: [String: [Binding]] = [:]

    init() {}

    init(roles: [JSON], clusterRoles: [JSON], roleBindings: [JSON], clusterRoleBindings: [JSON]) {
        for role in roles {
            let key = (role["metadata"]["namespace"].string ?? "") + "/" + (role["metadata"]["name"].string ?? "")
            self.roles[key] = (role["rules"].array ?? []).map(PolicyRule.init)
        }
        for role in clusterRoles {
            self.clusterRoles[role["metadata"]["name"].string ?? ""] = (role["rules"].array ?? []).map(PolicyRule.init)
        }
        for binding in roleBindings.map(Binding.init) {
            self.roleBindings[binding.namespace, default: []].append(binding)
        }
        self.clusterRoleBindings = clusterRoleBindings.map(Binding.init)
    }

    /// A role reference's rules; nil with upstream's lister error when the role does not exist.
    func rules(kind: String, name: String, namespace: String) -> Result<[PolicyRule], RoleNotFound> {
        switch kind {
        case "ClusterRole":
            if let rules = clusterRoles[name] { return .success(rules) }
            return .failure(RoleNotFound(resource: "clusterrole", name: name))
        case "Role":
            if let rules = roles[namespace + "/" + name] { return .success(rules) }
            return .failure(RoleNotFound(resource: "role", name: name))
        default:
            return .failure(RoleNotFound(resource: kind.lowercased(), name: name))
        }
    }

    struct RoleNotFound: Error, CustomStringConvertible {
        var resource: String
        var name: String
        var description: String { "\(resource).\(RBACPolicy.group) \(GoFormat.quoted(name)) not found" }
    }

    /// Every binding that applies in `namespace` ("" for cluster scope), cluster-wide ones first, as
    /// upstream's resolver visits them.
    private func bindings(in namespace: String) -> [Binding] {
        namespace.isEmpty ? clusterRoleBindings : clusterRoleBindings + (roleBindings[namespace] ?? [])
    }

    /// Whether RBAC allows the request, and why (upstream's reasons: the allowing binding, or the
    /// resolution errors met on the way to a refusal).
    func authorize(_ request: AuthorizationAttributes) -> Authorizer.Decision {
        var errors: [String] = []
        for binding in bindings(in: request.namespace) {
            guard
                let subject = binding.subjects.first(where: {
                    $0.applies(to: request.user, bindingNamespace: binding.namespace)
                })
            else { continue }
            switch rules(kind: binding.roleKind, name: binding.roleName, namespace: binding.namespace) {
            case .failure(let error): errors.append(error.description)
            case .success(let rules):
                if rules.contains(where: { $0.allows(request) }) {
                    return .init(allowed: true, reason: "RBAC: allowed by \(binding.describe(subject))")
                }
            }
        }
        return .init(allowed: false, reason: errors.isEmpty ? "" : "RBAC: " + Self.aggregate(errors))
    }

    /// Every rule `user` holds in `namespace` (cluster-wide ones too), and the resolution errors.
    func rules(for user: UserInfo, namespace: String) -> (rules: [PolicyRule], errors: [String]) {
        var out: [PolicyRule] = []
        var errors: [String] = []
        for binding in bindings(in: namespace)
        where binding.subjects.contains(where: { $0.applies(to: user, bindingNamespace: binding.namespace) }) {
            switch rules(kind: binding.roleKind, name: binding.roleName, namespace: binding.namespace) {
            case .failure(let error): errors.append(error.description)
            case .success(let rules): out += rules
            }
        }
        return (out, errors)
    }

    /// Go's `utilerrors.NewAggregate(errs).Error()`: one error bare, several in brackets.
    static func aggregate(_ errors: [String]) -> String {
        errors.count == 1 ? errors[0] : "[" + errors.joined(separator: ", ") + "]"
    }
}

/// The current `RBACPolicy`, read from the store when first needed and again after each change of an
/// RBAC object: a store watch marks it stale (writes of any server of the cluster), and the server's own
/// writes mark it stale before they answer, so a binding just made applies to the next request.
actor RBACPolicyCache: StoreDerivedCache {
    private var policy: RBACPolicy?
    private var generation = 0
    var watching = false

    func invalidate() {
        generation += 1
        policy = nil
    }

    func current(_ store: any KVStore) async throws -> RBACPolicy {
        if let policy { return policy }
        if !watching { try await watchForChanges(store, prefix: RBACPolicy.prefix) }
        let started = generation
        let types = [Registry.roles, Registry.clusterRoles, Registry.roleBindings, Registry.clusterRoleBindings]
        var objects: [[JSON]] = []
        for type in types {
            let page = try await store.list(
                prefix: type.prefix(namespace: nil), startAfter: nil, limit: 0, revision: nil)
            objects.append(page.items.compactMap { try? JSON.parse($0.value) })
        }
        let loaded = RBACPolicy(
            roles: objects[0], clusterRoles: objects[1], roleBindings: objects[2], clusterRoleBindings: objects[3])
        // A change seen while reading makes this read stale already: answer with it, keep none.
        if generation == started { policy = loaded }
        return loaded
    }

}

extension RBACPolicy {
    /// The store prefix of every RBAC object.
    static let prefix = "/registry/\(group)/"
    /// The URL prefix of the RBAC kinds.
    static let apiPrefix = "/apis/\(group)/"
}

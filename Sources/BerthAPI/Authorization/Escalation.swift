/// RBAC's escalation prevention (upstream pkg/registry/rbac: the policy-based storage of roles and
/// bindings, and validation.ConfirmNoEscalation): nobody grants through RBAC what they do not hold.
/// A Role or ClusterRole may be written by whoever holds all its rules or has `escalate` on it; a
/// binding by whoever has `bind` on its role or holds all the role's rules. system:masters, and the
/// server's own writes, are not checked.
extension Handler {
    /// What a full-authority role holds: what using an aggregationRule needs.
    static let fullAuthority = [
        PolicyRule(verbs: ["*"], apiGroups: ["*"], resources: ["*"]), PolicyRule(verbs: ["*"], nonResourceURLs: ["*"]),
    ]

    func confirmRoleMayBeWritten(_ role: JSON, _ ctx: StrategyContext) async throws {
        guard let user = ctx.user, !user.isAdmin else { return }
        let r = ctx.resource
        let name = role["metadata"]["name"].string ?? ""
        let namespace = r.namespaced ? (role["metadata"]["namespace"].string ?? "") : ""
        let escalate = AuthorizationAttributes(
            user: user, verb: "escalate", apiGroup: RBACPolicy.group, resource: r.plural, namespace: namespace,
            name: name)
        if try await decide(escalate).allowed { return }
        let forbidden = { (message: String) in
            APIError.forbidden("\(r.plural).\(RBACPolicy.group) \(GoFormat.quoted(name)) is forbidden: \(message)")
        }
        if !role["aggregationRule"].isNull {
            guard try await uncoveredRules(Self.fullAuthority, user: user, namespace: namespace) == nil else {
                throw forbidden("must have cluster-admin privileges to use the aggregationRule")
            }
            return
        }
        let rules = (role["rules"].array ?? []).map(PolicyRule.init)
        if let message = try await uncoveredRules(rules, user: user, namespace: namespace) { throw forbidden(message) }
    }

    func confirmBindingMayBeWritten(_ binding: JSON, _ ctx: StrategyContext) async throws {
        guard let user = ctx.user, !user.isAdmin else { return }
        let r = ctx.resource
        let name = binding["metadata"]["name"].string ?? ""
        let namespace = r.namespaced ? (binding["metadata"]["namespace"].string ?? "") : ""
        let roleKind = binding["roleRef"]["kind"].string ?? ""
        let roleName = binding["roleRef"]["name"].string ?? ""
        let bind = AuthorizationAttributes(
            user: user, verb: "bind", apiGroup: RBACPolicy.group,
            resource: roleKind == "Role" ? "roles" : "clusterroles",
            namespace: namespace, name: roleName)
        if try await decide(bind).allowed { return }
        let policy = try await server.rbac.current(store)
        let rules: [PolicyRule]
        switch policy.rules(kind: roleKind, name: roleName, namespace: namespace) {
        case .success(let found): rules = found
        case .failure(let missing):
            let type = roleKind == "Role" ? Registry.roles : Registry.clusterRoles
            throw APIError(
                code: 404, reason: "NotFound", message: missing.description, details: APIError.details(type, roleName))
        }
        if let message = try await uncoveredRules(rules, user: user, namespace: namespace) {
            throw APIError.forbidden(
                "\(r.plural).\(RBACPolicy.group) \(GoFormat.quoted(name)) is forbidden: \(message)")
        }
    }

    /// nil when `user` holds every rule in `namespace`; else upstream's message naming what is missing.
    func uncoveredRules(_ rules: [PolicyRule], user: UserInfo, namespace: String) async throws -> String? {
        let (owned, errors) = try await server.rbac.current(store).rules(for: user, namespace: namespace)
        let missing = PolicyRule.uncovered(by: owned, rules)
        if missing.isEmpty { return nil }
        let lines = Set(PolicyRule.compacted(missing).map(\.compactDescription)).sorted {
            Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8))
        }
        var message =
            "user \(GoFormat.quoted(user.name)) (groups=\(GoFormat.quotedList(user.groups))) is attempting to grant RBAC permissions not currently held:\n"
            + lines.joined(separator: "\n")
        if !errors.isEmpty { message += "; resolution errors: [" + errors.joined(separator: " ") + "]" }
        return message
    }
}

import Foundation

/// rbac.authorization.k8s.io/v1 Role and ClusterRole (upstream pkg/registry/rbac/role, clusterrole and
/// pkg/apis/rbac/validation): rules of verbs on resources or non-resource URLs; names are path
/// segments (`system:node`). Writing one whose rules the caller does not hold is escalation
/// (Escalation.swift). A ClusterRole with an aggregationRule has its rules filled in by the
/// clusterrole-aggregation controller (BerthControl).
struct RoleStrategy: ResourceStrategy {
    /// ClusterRole (true) or Role.
    var clusterScoped: Bool

    var namesArePathSegments: Bool { true }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        for (i, rule) in (obj["rules"].array ?? []).enumerated() {
            errs += Self.validateRule(rule, namespaced: !clusterScoped, path: "rules[\(i)]")
        }
        let aggregation = obj["aggregationRule"]
        if clusterScoped, !aggregation.isNull {
            let selectors = aggregation["clusterRoleSelectors"].array ?? []
            if selectors.isEmpty {
                errs.append(
                    .init(
                        "aggregationRule.clusterRoleSelectors", "FieldValueRequired",
                        "Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"))
            }
        }
        return errs
    }

    /// Upstream's ValidatePolicyRule.
    static func validateRule(_ rule: JSON, namespaced: Bool, path: String) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let rule = PolicyRule(rule)
        if rule.verbs.isEmpty {
            errs.append(
                .init("\(path).verbs", "FieldValueRequired", "Required value: verbs must contain at least one value"))
        }
        if !rule.nonResourceURLs.isEmpty {
            let urls = "[]string{" + rule.nonResourceURLs.map(GoFormat.quoted).joined(separator: ", ") + "}"
            if namespaced {
                errs.append(
                    .init(
                        "\(path).nonResourceURLs", "FieldValueInvalid",
                        "Invalid value: \(urls): namespaced rules cannot apply to non-resource URLs"))
            }
            if !rule.apiGroups.isEmpty || !rule.resources.isEmpty || !rule.resourceNames.isEmpty {
                errs.append(
                    .init(
                        "\(path).nonResourceURLs", "FieldValueInvalid",
                        "Invalid value: \(urls): rules cannot apply to both regular resources and non-resource URLs"))
            }
            return errs
        }
        if rule.apiGroups.isEmpty {
            errs.append(
                .init(
                    "\(path).apiGroups", "FieldValueRequired",
                    "Required value: resource rules must supply at least one api group"))
        }
        if rule.resources.isEmpty {
            errs.append(
                .init(
                    "\(path).resources", "FieldValueRequired",
                    "Required value: resource rules must supply at least one resource"))
        }
        return errs
    }

    func admitCreate(_ obj: inout JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        try await handler.confirmRoleMayBeWritten(obj, ctx)
    }
    func admitUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        try await handler.confirmRoleMayBeWritten(obj, ctx)
    }

    /// `kubectl get roles`: NAME, CREATED AT.
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn,
            .init(
                name: "Created At", type: "date",
                description:
                    "CreationTimestamp is a timestamp representing the server time when this object was created."),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        [Tables.nameCell(obj), .string(obj["metadata"]["creationTimestamp"].string ?? "")]
    }
}

/// rbac.authorization.k8s.io/v1 RoleBinding and ClusterRoleBinding: subjects given a role. The
/// role reference cannot change (a binding is deleted and made again instead), and making one
/// needs `bind` on the role or every permission it grants (Escalation.swift).
struct RoleBindingStrategy: ResourceStrategy {
    var clusterScoped: Bool

    var namesArePathSegments: Bool { true }

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if (obj["roleRef"]["apiGroup"].string ?? "").isEmpty { obj["roleRef"]["apiGroup"] = .string(RBACPolicy.group) }
        guard var subjects = obj["subjects"].array else { return }
        for i in subjects.indices where (subjects[i]["apiGroup"].string ?? "").isEmpty {
            switch subjects[i]["kind"].string {
            case "User", "Group": subjects[i]["apiGroup"] = .string(RBACPolicy.group)
            case "ServiceAccount": subjects[i]["apiGroup"] = ""
            default: break
            }
        }
        obj["subjects"] = .array(subjects)
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let ref = obj["roleRef"]
        let group = ref["apiGroup"].string ?? ""
        if group != RBACPolicy.group {
            errs.append(
                .init(
                    "roleRef.apiGroup", "FieldValueNotSupported",
                    "Unsupported value: \(GoFormat.quoted(group)): supported values: \"\(RBACPolicy.group)\""))
        }
        let kind = ref["kind"].string ?? ""
        let kinds = clusterScoped ? ["ClusterRole"] : ["Role", "ClusterRole"]
        if !kinds.contains(kind) {
            errs.append(
                .init(
                    "roleRef.kind", "FieldValueNotSupported",
                    "Unsupported value: \(GoFormat.quoted(kind)): supported values: \(kinds.map(GoFormat.quoted).joined(separator: ", "))"
                ))
        }
        let name = ref["name"].string ?? ""
        if name.isEmpty {
            errs.append(.init("roleRef.name", "FieldValueRequired", "Required value"))
        } else {
            for message in Validation.pathSegmentNameErrors(name) {
                errs.append(
                    .init("roleRef.name", "FieldValueInvalid", "Invalid value: \(GoFormat.quoted(name)): \(message)"))
            }
        }
        for (i, subject) in (obj["subjects"].array ?? []).enumerated() {
            errs += validateSubject(subject, path: "subjects[\(i)]")
        }
        return errs
    }

    /// Upstream's ValidateRoleBindingSubject.
    func validateSubject(_ subject: JSON, path: String) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let name = subject["name"].string ?? ""
        let group = subject["apiGroup"].string ?? ""
        if name.isEmpty { errs.append(.init("\(path).name", "FieldValueRequired", "Required value")) }
        func unsupportedGroup(_ allowed: String) -> APIError.Cause {
            .init(
                "\(path).apiGroup", "FieldValueNotSupported",
                "Unsupported value: \(GoFormat.quoted(group)): supported values: \(GoFormat.quoted(allowed))")
        }
        switch subject["kind"].string ?? "" {
        case "ServiceAccount":
            if !name.isEmpty, !Validation.isDNS1123Subdomain(name) {
                errs.append(
                    .init(
                        "\(path).name", "FieldValueInvalid",
                        "Invalid value: \(GoFormat.quoted(name)): \(Validation.nameRegexText)"))
            }
            if !group.isEmpty { errs.append(unsupportedGroup("")) }
            if clusterScoped, (subject["namespace"].string ?? "").isEmpty {
                errs.append(.init("\(path).namespace", "FieldValueRequired", "Required value"))
            }
        case "User", "Group":
            if group != RBACPolicy.group { errs.append(unsupportedGroup(RBACPolicy.group)) }
        case let kind:
            errs.append(
                .init(
                    "\(path).kind", "FieldValueNotSupported",
                    "Unsupported value: \(GoFormat.quoted(kind)): supported values: \"ServiceAccount\", \"User\", \"Group\""
                ))
        }
        return errs
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        guard obj["roleRef"] != old["roleRef"] else { return [] }
        let ref = obj["roleRef"]
        let shown =
            "rbac.RoleRef{APIGroup:\(GoFormat.quoted(ref["apiGroup"].string ?? "")), Kind:\(GoFormat.quoted(ref["kind"].string ?? "")), Name:\(GoFormat.quoted(ref["name"].string ?? ""))}"
        return [.init("roleRef", "FieldValueInvalid", "Invalid value: \(shown): cannot change roleRef")]
    }

    func admitCreate(_ obj: inout JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        try await handler.confirmBindingMayBeWritten(obj, ctx)
    }
    func admitUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        try await handler.confirmBindingMayBeWritten(obj, ctx)
    }

    /// `kubectl get rolebindings`: NAME, ROLE, AGE; `-o wide` adds USERS, GROUPS, SERVICEACCOUNTS.
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Role", description: "Role of the rolebinding."), Tables.ageColumn,
            .init(name: "Users", priority: 1, description: "Users in the rolebinding."),
            .init(name: "Groups", priority: 1, description: "Groups in the rolebinding."),
            .init(name: "ServiceAccounts", priority: 1, description: "ServiceAccounts in the rolebinding."),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        var users: [String] = [], groups: [String] = [], accounts: [String] = []
        for subject in obj["subjects"].array ?? [] {
            let name = subject["name"].string ?? ""
            switch subject["kind"].string {
            case "User": users.append(name)
            case "Group": groups.append(name)
            case "ServiceAccount":
                let namespace = subject["namespace"].string ?? ""
                accounts.append(namespace.isEmpty ? name : namespace + "/" + name)
            default: break
            }
        }
        let ref = obj["roleRef"]
        return [
            Tables.nameCell(obj), .string((ref["kind"].string ?? "") + "/" + (ref["name"].string ?? "")),
            Tables.ageCell(obj), .string(users.joined(separator: ", ")), .string(groups.joined(separator: ", ")),
            .string(accounts.joined(separator: ", ")),
        ]
    }
}

extension Registry {
    static let roles = find(group: RBACPolicy.group, version: "v1", plural: "roles")!
    static let clusterRoles = find(group: RBACPolicy.group, version: "v1", plural: "clusterroles")!
    static let roleBindings = find(group: RBACPolicy.group, version: "v1", plural: "rolebindings")!
    static let clusterRoleBindings = find(group: RBACPolicy.group, version: "v1", plural: "clusterrolebindings")!
}

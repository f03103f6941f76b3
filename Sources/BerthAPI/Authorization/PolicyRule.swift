/// One RBAC rule (rbac.authorization.k8s.io/v1 PolicyRule) and the two questions asked of rules:
/// does a rule allow a request (upstream's `RuleAllows`), and do some rules cover others (upstream's
/// `validation.Covers`, which escalation prevention asks). Plain values, so both are unit-tested alone.
struct PolicyRule: Equatable, Sendable {
    var verbs: [String] = []
    var apiGroups: [String] = []
    var resources: [String] = []
    var resourceNames: [String] = []
    var nonResourceURLs: [String] = []

    static let all = "*"

    init(
        verbs: [String], apiGroups: [String] = [], resources: [String] = [], resourceNames: [String] = [],
        nonResourceURLs: [String] = []
    ) {
        self.verbs = verbs
        self.apiGroups = apiGroups
        self.resources = resources
        self.resourceNames = resourceNames
        self.nonResourceURLs = nonResourceURLs
    }

    /// A rule as a Role or ClusterRole stores it.
    init(_ json: JSON) {
        func strings(_ field: String) -> [String] { (json[field].array ?? []).compactMap(\.string) }
        self.init(
            verbs: strings("verbs"), apiGroups: strings("apiGroups"), resources: strings("resources"),
            resourceNames: strings("resourceNames"), nonResourceURLs: strings("nonResourceURLs"))
    }

    var json: JSON {
        var out: JSON = ["verbs": .array(verbs.map { JSON.string($0) })]
        if !apiGroups.isEmpty || !resources.isEmpty { out["apiGroups"] = .array(apiGroups.map { JSON.string($0) }) }
        if !resources.isEmpty { out["resources"] = .array(resources.map { JSON.string($0) }) }
        if !resourceNames.isEmpty { out["resourceNames"] = .array(resourceNames.map { JSON.string($0) }) }
        if !nonResourceURLs.isEmpty { out["nonResourceURLs"] = .array(nonResourceURLs.map { JSON.string($0) }) }
        return out
    }

    // MARK: does the rule allow a request

    func allows(_ request: AuthorizationAttributes) -> Bool {
        guard verbs.contains(Self.all) || verbs.contains(request.verb) else { return false }
        guard request.isResourceRequest else { return matchesNonResourceURL(request.path) }
        return (apiGroups.contains(Self.all) || apiGroups.contains(request.apiGroup))
            && matchesResource(request.resource, subresource: request.subresource)
            && (resourceNames.isEmpty || resourceNames.contains(request.name))
    }

    /// `pods`, `pods/log`, `*`, or `*/log` for that subresource of any resource.
    func matchesResource(_ resource: String, subresource: String) -> Bool {
        let combined = subresource.isEmpty ? resource : resource + "/" + subresource
        for ruleResource in resources {
            if ruleResource == Self.all || ruleResource == combined { return true }
            if !subresource.isEmpty && ruleResource == "*/" + subresource { return true }
        }
        return false
    }

    /// An exact path, `*`, or a prefix ending in `*` (`/apis/*`).
    func matchesNonResourceURL(_ path: String) -> Bool {
        nonResourceURLs.contains { Self.urlCovers($0, path) }
    }

    static func urlCovers(_ owner: String, _ requested: String) -> Bool {
        if owner == requested || owner == all { return true }
        return owner.hasSuffix("*") && requested.hasPrefix(String(owner.dropLast()))
    }

    // MARK: do rules cover others (escalation prevention)

    /// The rule broken into rules of one group, resource, verb and name each (or one URL and verb),
    /// in upstream's order (`BreakdownRule`).
    var brokenDown: [PolicyRule] {
        var out: [PolicyRule] = []
        for group in apiGroups {
            for resource in resources {
                for verb in verbs {
                    if resourceNames.isEmpty {
                        out.append(PolicyRule(verbs: [verb], apiGroups: [group], resources: [resource]))
                    } else {
                        for name in resourceNames {
                            out.append(
                                PolicyRule(
                                    verbs: [verb], apiGroups: [group], resources: [resource], resourceNames: [name]))
                        }
                    }
                }
            }
        }
        for url in nonResourceURLs {
            for verb in verbs { out.append(PolicyRule(verbs: [verb], nonResourceURLs: [url])) }
        }
        return out
    }

    /// The parts of `servant` that `owner` does not cover (empty: covered).
    static func uncovered(by owner: [PolicyRule], _ servant: [PolicyRule]) -> [PolicyRule] {
        servant.flatMap(\.brokenDown).filter { sub in !owner.contains { $0.covers(sub) } }
    }

    /// Upstream's `ruleCovers`: this rule grants everything `sub` (one broken-down rule) grants.
    func covers(_ sub: PolicyRule) -> Bool {
        func hasAll(_ set: [String], _ wanted: [String]) -> Bool { wanted.allSatisfy { set.contains($0) } }
        let verbsMatch = verbs.contains(Self.all) || hasAll(verbs, sub.verbs)
        let groupsMatch = apiGroups.contains(Self.all) || hasAll(apiGroups, sub.apiGroups)
        let resourcesMatch =
            resources.contains(Self.all) || hasAll(resources, sub.resources)
            || sub.resources.allSatisfy { path in
                if resources.contains(path) { return true }
                guard let slash = path.firstIndex(of: "/") else { return false }
                return resources.contains("*" + path[slash...])
            }
        let urlsMatch = sub.nonResourceURLs.allSatisfy { url in nonResourceURLs.contains { Self.urlCovers($0, url) } }
        let namesMatch =
            sub.resourceNames.isEmpty
            ? resourceNames.isEmpty : resourceNames.isEmpty || hasAll(resourceNames, sub.resourceNames)
        return verbsMatch && groupsMatch && resourcesMatch && urlsMatch && namesMatch
    }

    /// Upstream's `CompactRules`: simple rules (one group, one resource, no names) for the same resource
    /// merged into one with all their verbs, so a refusal lists `{APIGroups:[""], Resources:["pods"],
    /// Verbs:["get" "list"]}` rather than a line per verb.
    static func compacted(_ rules: [PolicyRule]) -> [PolicyRule] {
        var out: [PolicyRule] = []
        var simple: [String: Int] = [:]
        for rule in rules {
            guard rule.apiGroups.count == 1, rule.resources.count == 1, rule.resourceNames.isEmpty,
                rule.nonResourceURLs.isEmpty
            else {
                out.append(rule)
                continue
            }
            let key = rule.apiGroups[0] + "\u{0}" + rule.resources[0]
            if let index = simple[key] {
                for verb in rule.verbs where !out[index].verbs.contains(verb) { out[index].verbs.append(verb) }
            } else {
                simple[key] = out.count
                out.append(rule)
            }
        }
        return out
    }

    /// Upstream's `CompactString`: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["create"]}`.
    var compactDescription: String {
        var parts: [String] = []
        if !apiGroups.isEmpty { parts.append("APIGroups:" + GoFormat.quotedList(apiGroups)) }
        if !resources.isEmpty { parts.append("Resources:" + GoFormat.quotedList(resources)) }
        if !nonResourceURLs.isEmpty { parts.append("NonResourceURLs:" + GoFormat.quotedList(nonResourceURLs)) }
        if !resourceNames.isEmpty { parts.append("ResourceNames:" + GoFormat.quotedList(resourceNames)) }
        if !verbs.isEmpty { parts.append("Verbs:" + GoFormat.quotedList(verbs)) }
        return "{" + parts.joined(separator: ", ") + "}"
    }
}

/// Go's `%q` of strings and string slices, as upstream's messages print them.
enum GoFormat {
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
    /// `["a" "b"]`
    static func quotedList(_ list: [String]) -> String { "[" + list.map(quoted).joined(separator: " ") + "]" }
}

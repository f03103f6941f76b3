import Foundation

/// A RuleWithOperations of admissionregistration.k8s.io/v1 (webhooks' `rules`, policies'
/// `resourceRules`), matched as upstream's rules.Matcher does.
struct AdmissionRule: Sendable {
    var operations: [String]
    var apiGroups: [String]
    var apiVersions: [String]
    /// `pods` (the resource only), `pods/status`, `pods/*` (the resource and every subresource), `*`
    /// (every resource, no subresources), `*/*` (everything).
    var resources: [String]
    /// `*`, `Cluster` or `Namespaced`.
    var scope: String
    /// Policies' rules may name objects.
    var resourceNames: [String]

    init(_ j: JSON) {
        func strings(_ key: String) -> [String] { (j[key].array ?? []).compactMap(\.string) }
        operations = strings("operations")
        apiGroups = strings("apiGroups")
        apiVersions = strings("apiVersions")
        resources = strings("resources")
        scope = j["scope"].string ?? "*"
        resourceNames = strings("resourceNames")
    }

    /// `equivalent`: matchPolicy Equivalent, under which a rule for another version of the same group and
    /// resource matches too (the object is still sent in the version it was requested in).
    func matches(_ a: AdmissionAttributes, equivalent: Bool) -> Bool {
        let any = "*"
        guard operations.contains(any) || operations.contains(a.operation.rawValue) else { return false }
        guard apiGroups.contains(any) || apiGroups.contains(a.resource.group) else { return false }
        guard equivalent || apiVersions.contains(any) || apiVersions.contains(a.resource.version) else { return false }
        switch scope {
        case "Cluster": if a.namespaced { return false }
        case "Namespaced": if !a.namespaced { return false }
        default: break
        }
        if !resourceNames.isEmpty && !resourceNames.contains(a.name) { return false }
        return resources.contains { rule in
            let parts = rule.split(separator: "/", maxSplits: 1).map(String.init)
            let res = parts.first ?? "", sub = parts.count > 1 ? parts[1] : ""
            return (res == any || res == a.resource.plural) && (sub == any || sub == a.subresource)
        }
    }

    /// Upstream's ValidateRuleWithOperations (and, for policies, resource names).
    static func validate(_ j: JSON, path: String, allowResourceNames: Bool) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let rule = AdmissionRule(j)
        if rule.operations.isEmpty {
            errs.append(FieldChecks.required("\(path).operations"))
        }
        let ops = ["*", "CREATE", "UPDATE", "DELETE", "CONNECT"]
        for (i, op) in rule.operations.enumerated() where !ops.contains(op) {
            errs += FieldChecks.supported(.string(op), ops, "\(path).operations[\(i)]")
        }
        if rule.operations.count > 1 && rule.operations.contains("*") {
            errs.append(
                .init(
                    "\(path).operations", "FieldValueInvalid",
                    "Invalid value: \(goSlice(rule.operations)): if '*' is present, must not specify other operations"
                ))
        }
        errs += wildcardList(rule.apiGroups, "\(path).apiGroups", what: "apiGroups")
        errs += wildcardList(rule.apiVersions, "\(path).apiVersions", what: "apiVersions")
        for (i, v) in rule.apiVersions.enumerated() where v.isEmpty {
            errs.append(FieldChecks.required("\(path).apiVersions[\(i)]"))
        }
        if rule.resources.isEmpty {
            errs.append(FieldChecks.required("\(path).resources"))
        }
        var seen = Set<String>()
        for (i, res) in rule.resources.enumerated() {
            let parts = res.split(separator: "/", omittingEmptySubsequences: false)
            if res.isEmpty || parts.contains(where: \.isEmpty) {
                errs.append(FieldChecks.required("\(path).resources[\(i)]"))
                continue
            }
            if !seen.insert(res).inserted {
                errs.append(.init("\(path).resources[\(i)]", "FieldValueDuplicate", "Duplicate value: \"\(res)\""))
            }
        }
        if seen.contains("*/*") && seen.count > 1 {
            errs.append(
                .init(
                    "\(path).resources", "FieldValueInvalid",
                    "Invalid value: \(goSlice(rule.resources)): if '*/*' is present, must not specify other resources"
                ))
        }
        if !["*", "Cluster", "Namespaced"].contains(rule.scope) {
            errs += FieldChecks.supported(.string(rule.scope), ["*", "Cluster", "Namespaced"], "\(path).scope")
        }
        if !allowResourceNames && !rule.resourceNames.isEmpty {
            errs.append(.init("\(path).resourceNames", "FieldValueForbidden", "Forbidden: not allowed here"))
        }
        return errs
    }

    private static func wildcardList(_ values: [String], _ path: String, what: String) -> [APIError.Cause] {
        if values.isEmpty { return [FieldChecks.required(path)] }
        if values.count > 1 && values.contains("*") {
            return [
                .init(
                    path, "FieldValueInvalid",
                    "Invalid value: \(goSlice(values)): if '*' is present, must not specify other \(what)")
            ]
        }
        return []
    }

    /// A []string as field errors print it (Go's %#v).
    static func goSlice(_ values: [String]) -> String {
        "[]string{" + values.map(GoFormat.quoted).joined(separator: ", ") + "}"
    }

    /// The admission registration kinds are never sent to webhooks or policies (upstream's exclusion:
    /// a broken webhook must not be able to stop its own repair).
    static func exempt(_ r: ResourceType) -> Bool { r.group == "admissionregistration.k8s.io" }
}

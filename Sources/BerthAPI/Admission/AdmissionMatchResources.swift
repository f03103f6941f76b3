import Foundation

/// What a webhook, policy or binding matches (admissionregistration.k8s.io/v1 MatchResources, and a
/// webhook's rules and selectors, which have the same meaning): resource rules, excluded rules,
/// namespace and object selectors. One implementation, so webhooks and policies select alike.
struct AdmissionMatchResources: Sendable {
    var resourceRules: [AdmissionRule]
    /// What an empty `resourceRules` means: every resource (a binding's match narrows its policy's only
    /// by its selectors then), or none (a webhook without rules is never called, as upstream).
    var noRulesMatchEverything: Bool
    var excludeResourceRules: [AdmissionRule]
    var namespaceSelector: LabelSelector
    var objectSelector: LabelSelector
    /// matchPolicy Equivalent: a rule for another version of the same group and resource matches too.
    var equivalent: Bool

    /// A policy's `matchConstraints` or a binding's `matchResources`.
    init(_ j: JSON) {
        self.init(
            rules: j["resourceRules"], excluded: j["excludeResourceRules"], noRulesMatchEverything: true, of: j)
    }

    /// A webhook's `rules`, `namespaceSelector`, `objectSelector` and `matchPolicy`.
    init(webhook j: JSON) {
        self.init(rules: j["rules"], excluded: .null, noRulesMatchEverything: false, of: j)
    }

    private init(rules: JSON, excluded: JSON, noRulesMatchEverything: Bool, of j: JSON) {
        resourceRules = (rules.array ?? []).map(AdmissionRule.init)
        self.noRulesMatchEverything = noRulesMatchEverything
        excludeResourceRules = (excluded.array ?? []).map(AdmissionRule.init)
        namespaceSelector = LabelSelector(object: j["namespaceSelector"])
        objectSelector = LabelSelector(object: j["objectSelector"])
        equivalent = (j["matchPolicy"].string ?? "Equivalent") == "Equivalent"
    }

    /// Rules and the object selector first (the request alone decides them), then the namespace
    /// selector, whose namespace is read only when the selector is not empty. A cluster-scoped object
    /// other than a Namespace is not restricted by namespace selectors.
    func matches(_ a: AdmissionAttributes, namespace: NamespaceFacts) async -> Bool {
        guard matchesRules(a), matchesObjectSelector(a) else { return false }
        guard !namespaceSelector.isEmpty, let labels = await namespace.labels() else { return true }
        return namespaceSelector.matches(labels)
    }

    private func matchesRules(_ a: AdmissionAttributes) -> Bool {
        if excludeResourceRules.contains(where: { $0.matches(a, equivalent: equivalent) }) { return false }
        if resourceRules.isEmpty { return noRulesMatchEverything }
        return resourceRules.contains { $0.matches(a, equivalent: equivalent) }
    }

    /// The object's labels, or the old object's (a DELETE has only those; an UPDATE matches by either).
    private func matchesObjectSelector(_ a: AdmissionAttributes) -> Bool {
        if objectSelector.isEmpty { return true }
        return [a.objectLabels, a.oldObjectLabels].contains { labels in labels.map(objectSelector.matches) ?? false }
    }
}

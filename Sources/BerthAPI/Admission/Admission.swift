import Foundation

/// The configurable admission of every write, in upstream's order: mutating webhooks after the built-in
/// mutating plugins (before the strategy validates), then ValidatingAdmissionPolicies and validating
/// webhooks after validation (before quota). Nothing is read or called when no webhook or policy is
/// configured (the common case costs one actor hop).
extension Handler {
    func admitMutating(_ a: inout AdmissionAttributes) async throws {
        guard !AdmissionRule.exempt(a.resource) else { return }
        let configuration = try await server.admission.current(store)
        guard !configuration.mutatingWebhooks.isEmpty else { return }
        try await admitByMutatingWebhooks(&a, configuration.mutatingWebhooks, namespace: namespaceFacts(a))
    }

    func admitValidating(_ a: AdmissionAttributes) async throws {
        guard !AdmissionRule.exempt(a.resource) else { return }
        let configuration = try await server.admission.current(store)
        guard !configuration.policies.isEmpty || !configuration.validatingWebhooks.isEmpty else { return }
        let namespace = namespaceFacts(a)
        try await admitByPolicies(a, configuration.policies, namespace: namespace)
        try await admitByValidatingWebhooks(a, configuration.validatingWebhooks, namespace: namespace)
    }

    /// The namespace selectors look at: the request's namespace, or a Namespace being written itself.
    private func namespaceFacts(_ a: AdmissionAttributes) -> NamespaceFacts {
        if a.resource.group.isEmpty && a.resource.plural == "namespaces" && a.subresource.isEmpty {
            let own = a.object ?? a.oldObject
            return NamespaceFacts(applies: true) { own }
        }
        guard let ns = a.namespace, !ns.isEmpty else { return NamespaceFacts(applies: false) { nil } }
        return NamespaceFacts(applies: true) { [self] in
            try? await storedObject(Registry.namespaces, namespace: nil, name: ns)
        }
    }
}

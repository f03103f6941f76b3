import Foundation

/// The configurable admission of every write, in upstream's order: mutating webhooks after the built-in
/// mutating plugins (before the strategy validates), then ValidatingAdmissionPolicies and validating
/// webhooks after validation (before quota). Nothing is read or called when no webhook or policy is
/// configured (the common case costs one actor hop).
extension Handler {
    func admitMutating(_ a: inout AdmissionAttributes) async throws {
        guard !AdmissionRule.exempt(a.resource) else { return }
        let configuration = try await admissionConfiguration(&a)
        guard !configuration.mutatingWebhooks.isEmpty else { return }
        try await admitByMutatingWebhooks(
            &a, configuration.mutatingWebhooks, variables: a.celVariables, namespace: namespaceFacts(a))
    }

    func admitValidating(_ a: AdmissionAttributes) async throws {
        guard !AdmissionRule.exempt(a.resource) else { return }
        var a = a
        let configuration = try await admissionConfiguration(&a)
        guard !configuration.policies.isEmpty || !configuration.validatingWebhooks.isEmpty else { return }
        let namespace = namespaceFacts(a)
        let variables = a.celVariables
        try await admitByPolicies(a, configuration.policies, variables: variables, namespace: namespace)
        try await admitByValidatingWebhooks(
            a, configuration.validatingWebhooks, variables: variables, namespace: namespace)
    }

    /// The configuration the request is admitted by: read from the cache by its first admission step
    /// and kept in the attributes, so the mutating and validating steps of one write ask once and see
    /// the same webhooks and policies.
    private func admissionConfiguration(_ a: inout AdmissionAttributes) async throws -> AdmissionConfiguration {
        if let configuration = a.configuration { return configuration }
        let configuration = try await server.admission.current(store)
        a.configuration = configuration
        return configuration
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

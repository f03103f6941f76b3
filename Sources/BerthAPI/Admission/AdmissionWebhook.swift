import BerthStore
import Foundation

/// One webhook of a Validating- or MutatingWebhookConfiguration, read once from the stored (defaulted,
/// validated) configuration: what it matches and where it is called.
struct AdmissionWebhook: Sendable {
    enum Endpoint: Sendable {
        case url(String)
        /// A Service of the cluster (called at one of its ready endpoints, its certificate checked for
        /// `<name>.<namespace>.svc` as upstream dials that name).
        case service(namespace: String, name: String, path: String, port: Int)
    }

    var name: String
    var configuration: String
    var mutating: Bool
    var endpoint: Endpoint
    /// PEM certificates the webhook's serving certificate must chain to; nil: the system's roots.
    var caBundle: [UInt8]?
    /// Its rules, selectors and matchPolicy, matched as a policy's are.
    var match: AdmissionMatchResources
    /// failurePolicy Fail (the default): a webhook that cannot be called refuses the request.
    var failClosed: Bool
    var matchConditions: MatchConditions
    var timeout: Duration
    /// reinvocationPolicy IfNeeded: called again when a later webhook changed the object.
    var reinvoke: Bool
    /// The AdmissionReview version sent: v1 when the webhook accepts it, else v1beta1.
    var reviewVersion: String
    /// sideEffects None or NoneOnDryRun: safe to call for a dry run.
    var dryRunSafe: Bool

    init(_ j: JSON, configuration: String, mutating: Bool) {
        name = j["name"].string ?? ""
        self.configuration = configuration
        self.mutating = mutating
        let client = j["clientConfig"]
        if let url = client["url"].string {
            endpoint = .url(url)
        } else {
            let svc = client["service"]
            endpoint = .service(
                namespace: svc["namespace"].string ?? "", name: svc["name"].string ?? "",
                path: svc["path"].string ?? "/", port: Int(svc["port"].int ?? 443))
        }
        caBundle = client["caBundle"].string.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
        match = AdmissionMatchResources(webhook: j)
        failClosed = (j["failurePolicy"].string ?? "Fail") == "Fail"
        matchConditions = MatchConditions(j["matchConditions"])
        timeout = .seconds(j["timeoutSeconds"].int ?? 10)
        reinvoke = j["reinvocationPolicy"].string == "IfNeeded"
        let versions = (j["admissionReviewVersions"].array ?? []).compactMap(\.string)
        reviewVersion = versions.contains("v1") || versions.isEmpty ? "v1" : "v1beta1"
        dryRunSafe = ["None", "NoneOnDryRun"].contains(j["sideEffects"].string ?? "")
    }

    /// The URL shown in errors and called (upstream adds the timeout as a query parameter, so the
    /// webhook can bound its own work).
    var displayURL: String {
        let base: String
        switch endpoint {
        case .url(let u): base = u
        case .service(let ns, let name, let path, let port):
            base = "https://\(name).\(ns).svc:\(port)\(path)"
        }
        let seconds = timeout.components.seconds
        return base + (base.contains("?") ? "&" : "?") + "timeout=\(seconds)s"
    }
}

/// What the configured webhooks and policies are: read from the store when first needed and again after
/// any change of an admissionregistration.k8s.io object (a store watch, and the server's own writes
/// before they answer, as the RBAC policy is kept).
struct AdmissionConfiguration: Sendable {
    var mutatingWebhooks: [AdmissionWebhook] = []
    var validatingWebhooks: [AdmissionWebhook] = []
    var policies: [AdmissionPolicyBinding] = []

    var isEmpty: Bool { mutatingWebhooks.isEmpty && validatingWebhooks.isEmpty && policies.isEmpty }

    /// Webhooks in upstream's order: configurations sorted by name, webhooks in their order within one.
    static func webhooks(_ configurations: [JSON], mutating: Bool) -> [AdmissionWebhook] {
        configurations.sorted { ($0["metadata"]["name"].string ?? "") < ($1["metadata"]["name"].string ?? "") }
            .flatMap { c in
                (c["webhooks"].array ?? []).map {
                    AdmissionWebhook($0, configuration: c["metadata"]["name"].string ?? "", mutating: mutating)
                }
            }
    }
}

actor AdmissionConfigurationCache: StoreDerivedCache {
    private var configuration: AdmissionConfiguration?
    private var generation = 0
    var watching = false
    static let prefix = "/registry/admissionregistration.k8s.io/"
    static let apiPrefix = "/apis/admissionregistration.k8s.io/"

    func invalidate() {
        generation += 1
        configuration = nil
    }

    func current(_ store: any KVStore) async throws -> AdmissionConfiguration {
        if let configuration { return configuration }
        if !watching { try await watchForChanges(store, prefix: Self.prefix) }
        let started = generation
        func objects(_ r: ResourceType) async throws -> [JSON] {
            let page = try await store.list(prefix: r.prefix(namespace: nil), startAfter: nil, limit: 0, revision: nil)
            return page.items.compactMap { try? JSON.parse($0.value) }
        }
        var loaded = AdmissionConfiguration()
        loaded.mutatingWebhooks = AdmissionConfiguration.webhooks(
            try await objects(Registry.mutatingWebhookConfigurations), mutating: true)
        loaded.validatingWebhooks = AdmissionConfiguration.webhooks(
            try await objects(Registry.validatingWebhookConfigurations), mutating: false)
        loaded.policies = AdmissionPolicyBinding.compile(
            policies: try await objects(Registry.validatingAdmissionPolicies),
            bindings: try await objects(Registry.validatingAdmissionPolicyBindings))
        // A change seen while reading makes this read stale already: answer with it, keep none.
        if generation == started { configuration = loaded }
        return loaded
    }

}

import Foundation

/// A ValidatingAdmissionPolicy, its CEL compiled once per change of the policy.
struct CompiledAdmissionPolicy: Sendable {
    struct Check: Sendable {
        var text: String
        var expression: CELExpression
        var message: String?
        var messageExpression: CELExpression?
        /// Forbidden, Invalid (the default), Unauthorized or RequestEntityTooLarge.
        var reason: String
    }

    var name: String
    /// `paramKind`: the kind of the objects bindings pass as `params`; nil: the policy takes none.
    var paramKind: (apiVersion: String, kind: String)?
    var match: AdmissionMatchResources
    var matchConditions: MatchConditions
    var variables: [(name: String, expression: CELExpression)]
    var validations: [Check]
    var failClosed: Bool

    init(_ j: JSON) {
        name = j["metadata"]["name"].string ?? ""
        let spec = j["spec"]
        if let kind = spec["paramKind"]["kind"].string {
            paramKind = (spec["paramKind"]["apiVersion"].string ?? "", kind)
        }
        match = AdmissionMatchResources(spec["matchConstraints"])
        matchConditions = MatchConditions(spec["matchConditions"])
        variables = (spec["variables"].array ?? []).compactMap { v in
            guard let text = v["expression"].string, let e = try? CELParser.parse(text) else { return nil }
            return (v["name"].string ?? "", e)
        }
        validations = (spec["validations"].array ?? []).compactMap { v in
            guard let text = v["expression"].string, let e = try? CELParser.parse(text) else { return nil }
            return Check(
                text: text, expression: e, message: v["message"].string,
                messageExpression: v["messageExpression"].string.flatMap { try? CELParser.parse($0) },
                reason: v["reason"].string ?? "Invalid")
        }
        failClosed = (spec["failurePolicy"].string ?? "Fail") == "Fail"
    }

    /// A failed validation: what the request is told, and the status reason it is told with.
    struct Violation: Sendable {
        var message: String
        var reason: String
    }

    /// The violations of this policy for one set of variables (`object`, `oldObject`, `request`,
    /// `params`, `namespaceObject`); empty when it holds or its match conditions leave the request out.
    /// An expression that fails to evaluate is a violation under failurePolicy Fail, ignored under Ignore.
    func evaluate(_ bound: [String: JSON]) -> [Violation] {
        var vars = bound
        switch matchConditions.evaluate(vars) {
        case .matches: break
        case .excluded: return []
        case .failed(let condition, let reason):
            guard failClosed else { return [] }
            return [
                Violation(message: "failed to evaluate match condition '\(condition)': \(reason)", reason: "Invalid")
            ]
        }
        var computed: [String: JSON] = [:]
        for variable in variables {
            vars["variables"] = .object(computed)
            if let value = try? CELEvaluator(variables: vars).eval(variable.expression) {
                computed[variable.name] = value
            }
        }
        vars["variables"] = .object(computed)
        var out: [Violation] = []
        for check in validations {
            let evaluator = CELEvaluator(variables: vars)
            do {
                guard let holds = try evaluator.eval(check.expression).bool else {
                    throw CELError("expression did not evaluate to a bool")
                }
                if holds { continue }
                let message = evaluator.failureMessage(
                    check.messageExpression, message: check.message, otherwise: "failed expression: \(check.text)")
                out.append(Violation(message: message, reason: check.reason))
            } catch {
                if failClosed {
                    out.append(
                        Violation(message: "expression '\(check.text)' resulted in error: \(error)", reason: "Invalid"))
                }
            }
        }
        return out
    }
}

/// A ValidatingAdmissionPolicyBinding with the policy it binds: what requests it applies to, which
/// parameters it passes and what a violation does (Deny, Warn, Audit).
struct AdmissionPolicyBinding: Sendable {
    var name: String
    var policy: CompiledAdmissionPolicy
    var match: AdmissionMatchResources?
    var actions: Set<String>
    var paramRef: JSON

    /// Bindings of policies that exist, sorted by binding name (a stable order for what is reported).
    static func compile(policies: [JSON], bindings: [JSON]) -> [AdmissionPolicyBinding] {
        var byName: [String: CompiledAdmissionPolicy] = [:]
        for p in policies { byName[p["metadata"]["name"].string ?? ""] = CompiledAdmissionPolicy(p) }
        return bindings.sorted { ($0["metadata"]["name"].string ?? "") < ($1["metadata"]["name"].string ?? "") }
            .compactMap { b in
                guard let policy = byName[b["spec"]["policyName"].string ?? ""] else { return nil }
                let match = b["spec"]["matchResources"]
                return AdmissionPolicyBinding(
                    name: b["metadata"]["name"].string ?? "", policy: policy,
                    match: match.isNull ? nil : AdmissionMatchResources(match),
                    actions: Set((b["spec"]["validationActions"].array ?? []).compactMap(\.string)),
                    paramRef: b["spec"]["paramRef"])
            }
    }
}

extension Handler {
    /// ValidatingAdmissionPolicies: each binding whose policy and own match resources take the request
    /// evaluates the policy once per parameter object; a violation denies the request (Deny), becomes a
    /// warning (Warn), or is written to the audit log (Audit).
    /// `variables`: the request's CEL variables (`AdmissionAttributes.celVariables`), built once per request.
    func admitByPolicies(
        _ a: AdmissionAttributes, _ bindings: [AdmissionPolicyBinding], variables: [String: JSON],
        namespace: NamespaceFacts
    ) async throws {
        for binding in bindings {
            guard await binding.policy.match.matches(a, namespace: namespace),
                await binding.match?.matches(a, namespace: namespace) ?? true
            else { continue }
            var violations: [CompiledAdmissionPolicy.Violation] = []
            var base = variables
            base["namespaceObject"] = await namespace.object() ?? .null
            base["params"] = .null
            switch try await policyParameters(binding, a) {
            case .none: violations = binding.policy.evaluate(base)
            case .objects(let params):
                for p in params {
                    base["params"] = p
                    violations += binding.policy.evaluate(base)
                }
            case .failure(let message):
                violations = [.init(message: message, reason: "Invalid")]
            }
            guard let first = violations.first else { continue }
            let prefix = "ValidatingAdmissionPolicy '\(binding.policy.name)' with binding '\(binding.name)'"
            if binding.actions.contains("Warn") {
                for v in violations { a.warnings?.add("Validation failed for \(prefix): \(v.message)") }
            }
            if binding.actions.contains("Audit") {
                // Upstream puts this annotation on the request's audit event; Berth keeps no audit event for
                // allowed requests, so the server's log carries it.
                server.logger.notice(
                    "validation.policy.admission.k8s.io/validation_failure",
                    metadata: [
                        "policy": "\(binding.policy.name)", "binding": "\(binding.name)",
                        "operation": "\(a.operation.rawValue)", "resource": "\(a.resource.plural)",
                        "namespace": "\(a.namespace ?? "")", "name": "\(a.name)", "user": "\(a.user.name)",
                        "message": "\(first.message)",
                    ])
            }
            if binding.actions.contains("Deny") {
                throw Self.policyDenial(a, message: "\(prefix) denied request: \(first.message)", reason: first.reason)
            }
        }
    }

    enum PolicyParameters { case none, objects([JSON]), failure(String) }

    /// The `params` a binding passes: none (the policy has no paramKind), the objects its paramRef names
    /// or selects, or why there are none to use (a refusal unless parameterNotFoundAction is Allow).
    private func policyParameters(_ b: AdmissionPolicyBinding, _ a: AdmissionAttributes) async throws
        -> PolicyParameters
    {
        guard let kind = b.policy.paramKind else { return .none }
        let failed: PolicyParameters = b.policy.failClosed ? .failure("") : .objects([])
        guard b.paramRef.object != nil else {
            return b.policy.failClosed
                ? .failure("failed to configure binding: paramRef is required when the policy has a paramKind")
                : .objects([])
        }
        guard
            let r = server.customResources.all.first(where: { $0.apiVersion == kind.apiVersion && $0.kind == kind.kind }
            )
        else {
            if case .failure = failed {
                return .failure(
                    "failed to configure policy: failed to find resource referenced by paramKind: '\(kind.apiVersion), Kind=\(kind.kind)'"
                )
            }
            return failed
        }
        var namespace: String? = nil
        if r.namespaced {
            namespace = b.paramRef["namespace"].string ?? a.namespace
            // A namespaced parameter for a cluster-scoped request needs an explicit namespace.
            if (namespace ?? "").isEmpty {
                return .failure(
                    "failed to configure binding: cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
                )
            }
        }
        var params: [JSON] = []
        if let name = b.paramRef["name"].string, !name.isEmpty {
            if let p = try await storedObject(r, namespace: namespace, name: name) { params = [p] }
        } else {
            let selector = LabelSelector(object: b.paramRef["selector"])
            params = try await storedObjects(r, namespace: namespace).map(\.object).filter {
                selector.matches($0["metadata"]["labels"].stringMap)
            }
        }
        if params.isEmpty {
            if b.paramRef["parameterNotFoundAction"].string == "Allow" { return .objects([]) }
            return .failure(
                "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction")
        }
        return .objects(params)
    }

    /// Upstream's error for a denying policy: its validation's reason decides the status.
    static func policyDenial(_ a: AdmissionAttributes, message: String, reason: String) -> APIError {
        let label = APIError.resourceLabel(a.resource)
        switch reason {
        case "Forbidden":
            return APIError(
                code: 403, reason: "Forbidden", message: "\(label) \"\(a.name)\" is forbidden: \(message)",
                details: APIError.details(a.resource, a.name))
        case "Unauthorized":
            return APIError(code: 401, reason: "Unauthorized", message: message)
        case "RequestEntityTooLarge":
            return APIError(code: 413, reason: "RequestEntityTooLarge", message: message)
        default:
            // Upstream names the resource (not the kind) here: `The deployments "web" is invalid: : …`.
            return APIError(
                code: 422, reason: "Invalid",
                message: "The \(a.resource.plural) \"\(a.name)\" is invalid: : \(message)",
                details: APIError.details(
                    a.resource, a.name,
                    causes: [["reason": "FieldValueInvalid", "message": .string(message), "field": ""]]))
        }
    }
}

/// The namespace of a request, read once and only if a selector or policy asks for it.
final class NamespaceFacts: @unchecked Sendable {
    private let load: @Sendable () async -> JSON?
    private let lock = NSLock()
    private var loaded: JSON??
    /// Cluster-scoped requests other than for a Namespace: no namespace to select by.
    let applies: Bool

    init(applies: Bool, load: @escaping @Sendable () async -> JSON?) {
        self.applies = applies
        self.load = load
    }

    func object() async -> JSON? {
        guard applies else { return nil }
        if let loaded = lock.withLock({ loaded }) { return loaded }
        let value = await load()
        lock.withLock { loaded = .some(value) }
        return value
    }

    /// nil: the request has no namespace to select by (every namespace selector matches).
    func labels() async -> [String: String]? {
        guard applies else { return nil }
        return await object()?["metadata"]["labels"].stringMap ?? [:]
    }
}

import HTTPTypes

/// kube-apiserver's `--authorization-mode=Node,RBAC`: system:masters may do anything (upstream's
/// privileged-group authorizer, ahead of the chain), a node what the node authorizer lets it
/// (NodeAuthorizer.swift), and everyone — nodes included — what RBAC grants. The first yes wins.
enum Authorizer {
    struct Decision: Equatable, Sendable {
        var allowed: Bool
        var reason: String
    }
}

extension Handler {
    /// Authorizes a request (every request but the health checks and the node-join endpoints): throws
    /// kube-apiserver's Forbidden when no authorizer allows it.
    func authorizeRequest(_ call: Call) async throws {
        // Before the URL is even read: most of the control plane's traffic is an admin's.
        if call.user.isAdmin { return }
        let attributes = AuthorizationAttributes(
            user: call.user, method: call.method.rawValue, path: call.path, query: call.query)
        let decision = try await decide(attributes, call: call)
        guard !decision.allowed else { return }
        throw APIError.forbidden(attributes.forbiddenMessage(reason: decision.reason))
    }

    /// Whether the authorizers allow `attributes`, and why (what a SubjectAccessReview answers).
    /// `call` is the request itself when there is one (the node authorizer reads a create's body).
    func decide(_ attributes: AuthorizationAttributes, call: Call? = nil) async throws -> Authorizer.Decision {
        if attributes.user.isAdmin { return .init(allowed: true, reason: "") }
        if let node = attributes.user.nodeName, attributes.isResourceRequest,
            let r = Registry.find(group: attributes.apiGroup, plural: attributes.resource)
        {
            let request = call ?? Self.reviewCall(attributes)
            let reading = ["get", "list", "watch"].contains(attributes.verb)
            if try await nodeMay(
                node, request, r, namespace: attributes.namespace.isEmpty ? nil : attributes.namespace,
                name: attributes.name.isEmpty ? nil : attributes.name,
                sub: attributes.subresource.isEmpty ? nil : attributes.subresource, reading: reading)
            {
                return .init(allowed: true, reason: "")
            }
        }
        return try await server.rbac.current(store).authorize(attributes)
    }

    /// A request made up for a review's attributes, for the node authorizer (which reads the method).
    static func reviewCall(_ attributes: AuthorizationAttributes) -> Call {
        let methods: [String: HTTPRequest.Method] = [
            "get": .get, "list": .get, "watch": .get, "create": .post, "update": .put, "patch": .patch,
            "delete": .delete, "deletecollection": .delete,
        ]
        var query: [String: String] = [:]
        if attributes.verb == "watch" { query["watch"] = "true" }
        if attributes.verb == "list" || attributes.verb == "watch", !attributes.name.isEmpty {
            query["fieldSelector"] = "metadata.name=\(attributes.name)"
        }
        return Call(
            method: methods[attributes.verb] ?? HTTPRequest.Method(attributes.verb.uppercased()) ?? .get, path: "",
            query: query,
            headers: [:], body: [], user: attributes.user)
    }
}

extension Registry {
    /// The resource served as `plural` in `group` (at its one served version).
    static func find(group: String, plural: String) -> ResourceType? {
        all.first { $0.group == group && $0.plural == plural }
    }
}

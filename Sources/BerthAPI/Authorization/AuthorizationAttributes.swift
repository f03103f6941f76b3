/// What an authorizer is asked about a request (upstream's `authorizer.Attributes`): who, which verb,
/// and either a resource (group, resource, subresource, namespace, name) or a non-resource path.
struct AuthorizationAttributes: Equatable, Sendable {
    var user: UserInfo
    var verb: String
    var isResourceRequest: Bool
    var path = ""
    var apiGroup = ""
    var apiVersion = ""
    var resource = ""
    var subresource = ""
    var namespace = ""
    var name = ""

    /// The attributes of an HTTP request, as kube-apiserver's `RequestInfoFactory` reads the URL:
    /// `/api/v1/...` and `/apis/<group>/<version>/...` with at least a resource are resource requests
    /// (`namespaces/<ns>/<resource>/<name>/<subresource>`); anything else (`/api`, `/apis/apps`,
    /// `/version`, `/openapi/v2`, `/healthz`) is a path. A GET without a name is a list (or watch),
    /// a DELETE without one a deletecollection; a list narrowed to `metadata.name=X` names X.
    /// `method` is the HTTP method's name (`GET`).
    init(user: UserInfo, method: String, path: String, query: [String: String]) {
        self.user = user
        self.path = path
        isResourceRequest = false
        switch method {
        case "POST": verb = "create"
        case "GET", "HEAD": verb = "get"
        case "PUT": verb = "update"
        case "PATCH": verb = "patch"
        case "DELETE": verb = "delete"
        default: verb = method.lowercased()
        }
        var parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count >= 3, parts[0] == "api" || parts[0] == "apis" else { return }
        let grouped = parts[0] == "apis"
        parts.removeFirst()
        if grouped {
            guard parts.count >= 3 else { return }
            apiGroup = parts.removeFirst()
        }
        isResourceRequest = true
        apiVersion = parts.removeFirst()
        if parts[0] == "watch" || parts[0] == "proxy" {
            verb = parts.removeFirst()
            guard !parts.isEmpty else { return }
        }
        if parts[0] == "namespaces" {
            if parts.count > 1 {
                namespace = parts[1]
                if parts.count > 2 && parts[2] != "status" && parts[2] != "finalize" { parts.removeFirst(2) }
            }
        }
        if parts.count >= 3 && verb != "proxy" { subresource = parts[2] }
        if parts.count >= 2 { name = parts[1] }
        resource = parts[0]
        if name.isEmpty && verb == "get" {
            verb = query["watch"] == "true" || query["watch"] == "1" ? "watch" : "list"
            if let single = Handler.singleName(query["fieldSelector"]) { name = single }
        }
        if name.isEmpty && verb == "delete" { verb = "deletecollection" }
        // A stream into a pod is a create whatever the method (kubectl 1.31+ opens exec, attach and
        // port-forward as WebSocket GETs; kube-apiserver 1.32 asks for create on them).
        if resource == "pods" && ["exec", "attach", "portforward"].contains(subresource) { verb = "create" }
    }

    /// A resource check made by the server itself (bind, escalate, impersonate, a review's attributes).
    init(
        user: UserInfo, verb: String, apiGroup: String, resource: String, subresource: String = "",
        namespace: String = "", name: String = ""
    ) {
        self.user = user
        self.verb = verb
        self.isResourceRequest = true
        self.apiGroup = apiGroup
        self.resource = resource
        self.subresource = subresource
        self.namespace = namespace
        self.name = name
    }

    /// A non-resource check (`/healthz`, `/metrics`, …).
    init(user: UserInfo, verb: String, path: String) {
        self.user = user
        self.verb = verb
        self.isResourceRequest = false
        self.path = path
    }

    /// kube-apiserver's Forbidden message for these attributes; `reason` (the authorizers' reasons,
    /// RBAC's resolution errors) follows after a colon when there is one.
    func forbiddenMessage(reason: String = "") -> String {
        var message: String
        if isResourceRequest {
            let combined = subresource.isEmpty ? resource : resource + "/" + subresource
            message =
                "User \(GoFormat.quoted(user.name)) cannot \(verb) resource \(GoFormat.quoted(combined)) in API group \(GoFormat.quoted(apiGroup))"
            message +=
                namespace.isEmpty ? " at the cluster scope" : " in the namespace \(GoFormat.quoted(namespace))"
        } else {
            message = "User \(GoFormat.quoted(user.name)) cannot \(verb) path \(GoFormat.quoted(path))"
        }
        if !reason.isEmpty { message += ": " + reason }
        // NewForbidden(groupResource, name, err)
        guard isResourceRequest else { return "forbidden: " + message }
        let qualified = apiGroup.isEmpty ? resource : resource + "." + apiGroup
        if name.isEmpty { return "\(qualified) is forbidden: \(message)" }
        return "\(qualified) \(GoFormat.quoted(name)) is forbidden: \(message)"
    }
}

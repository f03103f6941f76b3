import Foundation
import HTTPTypes

/// Impersonation headers (upstream's WithImpersonation filter): `Impersonate-User` (a user, or a
/// service account by its `system:serviceaccount:<ns>:<name>` name), `Impersonate-Group` (repeated),
/// `Impersonate-Uid` and `Impersonate-Extra-<key>`. Each is authorized as the `impersonate` verb on
/// users, groups, serviceaccounts, uids or userextras/<key> for the caller; the request then runs as
/// the impersonated user, who is always in system:authenticated (`kubectl --as=bob --as-group=dev`).
extension Handler {
    static let impersonateUser = HTTPField.Name("Impersonate-User")!
    static let impersonateGroup = HTTPField.Name("Impersonate-Group")!
    static let impersonateUID = HTTPField.Name("Impersonate-Uid")!
    static let impersonateExtraPrefix = "impersonate-extra-"

    /// One thing asked to be impersonated, as upstream lists them (an ObjectReference).
    struct ImpersonationRequest {
        var kind: String
        var namespace = ""
        var name: String
        var apiVersion = ""
        var fieldPath = ""
        /// Go's `%v` of the ObjectReference, for the refusal of a group without a user.
        var goDescription: String { "{\(kind) \(namespace) \(name)  \(apiVersion)  \(fieldPath)}" }
    }

    /// The user a request acts as: `user` itself without impersonation headers.
    func impersonate(_ user: UserInfo, headers: HTTPFields) async throws -> UserInfo {
        var requests: [ImpersonationRequest] = []
        let requestedUser = headers[Self.impersonateUser] ?? ""
        if !requestedUser.isEmpty {
            if let account = Self.serviceAccountName(requestedUser) {
                requests.append(.init(kind: "ServiceAccount", namespace: account.namespace, name: account.name))
            } else {
                requests.append(.init(kind: "User", name: requestedUser))
            }
        }
        let groups = headers[values: Self.impersonateGroup]
        requests += groups.map { ImpersonationRequest(kind: "Group", name: $0) }
        for field in headers where field.name.canonicalName.hasPrefix(Self.impersonateExtraPrefix) {
            let key = String(field.name.canonicalName.dropFirst(Self.impersonateExtraPrefix.count))
            requests.append(
                .init(
                    kind: "UserExtra", name: field.value, apiVersion: "authentication.k8s.io/v1",
                    fieldPath: key.removingPercentEncoding ?? key))
        }
        let uid = headers[Self.impersonateUID] ?? ""
        if !uid.isEmpty { requests.append(.init(kind: "UID", name: uid, apiVersion: "authentication.k8s.io/v1")) }
        if requests.isEmpty { return user }
        if requestedUser.isEmpty {
            throw APIError.internalError(
                "requested [\(requests.map(\.goDescription).joined(separator: " "))] without impersonating a user")
        }
        var name = user.name
        var impersonatedGroups: [String] = []
        var extra: [String: [String]] = [:]
        for request in requests {
            var attributes = AuthorizationAttributes(
                user: user, verb: "impersonate", apiGroup: "", resource: "", namespace: request.namespace,
                name: request.name)
            switch request.kind {
            case "ServiceAccount":
                attributes.resource = "serviceaccounts"
                name = "system:serviceaccount:\(request.namespace):\(request.name)"
                if groups.isEmpty {
                    impersonatedGroups += ["system:serviceaccounts", "system:serviceaccounts:\(request.namespace)"]
                }
            case "User":
                attributes.resource = "users"
                name = request.name
            case "Group":
                attributes.resource = "groups"
                impersonatedGroups.append(request.name)
            case "UserExtra":
                attributes.apiGroup = "authentication.k8s.io"
                attributes.resource = "userextras"
                attributes.subresource = request.fieldPath
                extra[request.fieldPath, default: []].append(request.name)
            default:
                attributes.apiGroup = "authentication.k8s.io"
                attributes.resource = "uids"
            }
            let decision = try await decide(attributes)
            guard decision.allowed else {
                throw APIError.forbidden(attributes.forbiddenMessage(reason: decision.reason))
            }
        }
        if !impersonatedGroups.contains("system:authenticated") { impersonatedGroups.append("system:authenticated") }
        return UserInfo(name: name, groups: impersonatedGroups, uid: uid, extra: extra)
    }

    /// The namespace and name of a service account's user name (`system:serviceaccount:<ns>:<name>`).
    static func serviceAccountName(_ user: String) -> (namespace: String, name: String)? {
        let prefix = "system:serviceaccount:"
        guard user.hasPrefix(prefix) else { return nil }
        let parts = user.dropFirst(prefix.count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return (String(parts[0]), String(parts[1]))
    }
}

import Hummingbird

/// core/v1 ServiceAccount (upstream pkg/registry/core/serviceaccount/strategy.go).
struct ServiceAccountStrategy: ResourceStrategy {
    var tableColumns: [Tables.Column] {
        [Tables.nameColumn, .init(name: "Secrets", type: "integer"), Tables.ageColumn]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        [Tables.nameCell(obj), .int(Int64(obj["secrets"].array?.count ?? 0)), Tables.ageCell(obj)]
    }

    /// serviceaccounts/token: TokenRequest (see Handler.issueToken).
    func post(_ call: Call, subresource: String, namespace: String?, name: String, handler: Handler) async throws
        -> Response?
    {
        guard subresource == "token" else { return nil }
        let request = try handler.bodyJSON(call, kind: "TokenRequest")
        let issued = try await handler.issueToken(
            namespace: namespace ?? "default", serviceAccount: name, request: request, user: call.user)
        return handler.reply(call, issued, status: 201)
    }
}

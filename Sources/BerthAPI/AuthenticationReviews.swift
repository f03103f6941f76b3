import Hummingbird

/// authentication.k8s.io/v1's two reviews, which are answered rather than stored:
///
/// - SelfSubjectReview (`kubectl auth whoami`): the caller's own identity as the server authenticated it,
///   for any authenticated caller;
/// - TokenReview: whose a bearer token is (a static token, a legacy service-account token, a bound
///   one for the server's or the asked audiences), as webhooks and aggregated servers ask the API server.
///   Granted through RBAC (the system:auth-delegator role), as upstream.
extension Handler {
    func selfSubjectReview(_ call: Call) throws -> Response {
        var review: JSON
        do { review = try bodyJSON(call, kind: "SelfSubjectReview") } catch let e as JSONParseError {
            throw APIError.badRequest("\(e)")
        }
        review["kind"] = "SelfSubjectReview"
        review["apiVersion"] = "authentication.k8s.io/v1"
        if review["metadata"].isNull { review["metadata"] = ["creationTimestamp": .null] }
        review["status"] = ["userInfo": call.user.json]
        return reply(call, review, status: 201)
    }

    func tokenReview(_ call: Call) async throws -> Response {
        var review: JSON
        do { review = try bodyJSON(call, kind: "TokenReview") } catch let e as JSONParseError {
            throw APIError.badRequest("\(e)")
        }
        guard let token = review["spec"]["token"].string, !token.isEmpty else {
            throw APIError.invalid(
                ResourceType(
                    group: Discovery.authenticationGroup, version: "v1", kind: "TokenReview", plural: "tokenreviews",
                    singular: "tokenreview", namespaced: false),
                "", [.init("spec.token", "FieldValueRequired", "Required value")])
        }
        review["kind"] = "TokenReview"
        review["apiVersion"] = "authentication.k8s.io/v1"
        if review["metadata"].isNull { review["metadata"] = ["creationTimestamp": .null] }
        // The audiences asked, else the server's own; a bound token must be for one of them.
        var audiences = (review["spec"]["audiences"].array ?? []).compactMap(\.string)
        if audiences.isEmpty { audiences = Self.apiAudiences }
        let user = try await user(bearerToken: token, audiences: audiences)
        if let user {
            review["status"] = [
                "authenticated": true, "user": user.json,
                "audiences": .array(audiences.map { .string($0) }),
            ]
        } else {
            review["status"] = ["user": [:], "error": "invalid bearer token"]
        }
        return reply(call, review, status: 201)
    }
}

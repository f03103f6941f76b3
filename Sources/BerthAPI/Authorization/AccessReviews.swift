import Hummingbird

/// authorization.k8s.io/v1's reviews, answered rather than stored (upstream pkg/registry/authorization):
/// SubjectAccessReview (may anyone do this?), LocalSubjectAccessReview (the same within a namespace, for
/// namespace admins), SelfSubjectAccessReview (may I? — `kubectl auth can-i`) and SelfSubjectRulesReview
/// (what may I do here? — `kubectl auth can-i --list`). Each asks the same authorizers requests are
/// authorized with; creating one is itself authorized like any request (system:basic-user grants the
/// self reviews to every authenticated user).
enum AccessReview: Equatable {
    case subject
    case localSubject(namespace: String)
    case selfSubject
    case selfSubjectRules

    /// The review a path under /apis/authorization.k8s.io/v1/ names.
    init?(path: [String]) {
        switch path.count {
        case 1 where path[0] == "subjectaccessreviews": self = .subject
        case 1 where path[0] == "selfsubjectaccessreviews": self = .selfSubject
        case 1 where path[0] == "selfsubjectrulesreviews": self = .selfSubjectRules
        case 3 where path[0] == "namespaces" && path[2] == "localsubjectaccessreviews":
            self = .localSubject(namespace: path[1])
        default: return nil
        }
    }

    var kind: String {
        switch self {
        case .subject: "SubjectAccessReview"
        case .localSubject: "LocalSubjectAccessReview"
        case .selfSubject: "SelfSubjectAccessReview"
        case .selfSubjectRules: "SelfSubjectRulesReview"
        }
    }

    var resource: ResourceType {
        let plural = kind.lowercased() + "s"
        var type = ResourceType(
            group: Discovery.reviewGroup, version: "v1", kind: kind, plural: plural, singular: kind.lowercased(),
            namespaced: false)
        if case .localSubject = self { type.namespaced = true }
        return type
    }

    /// Served kinds, for discovery.
    static let all: [AccessReview] = [.localSubject(namespace: ""), .selfSubject, .selfSubjectRules, .subject]
}

extension Handler {
    func accessReview(_ call: Call, _ review: AccessReview) async throws -> Response {
        var body: JSON
        do { body = try bodyJSON(call, kind: review.kind) } catch let e as JSONParseError {
            throw APIError.badRequest("\(e)")
        }
        body["kind"] = .string(review.kind)
        body["apiVersion"] = "authorization.k8s.io/v1"
        if body["metadata"].isNull { body["metadata"] = ["creationTimestamp": .null] }
        let spec = body["spec"]
        if review == .selfSubjectRules {
            let namespace = spec["namespace"].string ?? ""
            body["status"] = try await rulesReviewStatus(call.user, namespace: namespace)
            return reply(call, body, status: 201)
        }
        let subject: UserInfo
        switch review {
        case .selfSubject:
            subject = call.user
        default:
            subject = UserInfo(
                name: spec["user"].string ?? "", groups: (spec["groups"].array ?? []).compactMap(\.string),
                uid: spec["uid"].string ?? "",
                extra: (spec["extra"].object ?? [:]).mapValues { ($0.array ?? []).compactMap(\.string) })
        }
        var errors: [APIError.Cause] = []
        let resourceAttributes = spec["resourceAttributes"], nonResource = spec["nonResourceAttributes"]
        if !resourceAttributes.isNull && !nonResource.isNull {
            errors.append(
                .init(
                    "spec.nonResourceAttributes", "FieldValueInvalid",
                    "Invalid value: \(nonResource.text): cannot be specified in combination with resourceAttributes"))
        }
        if resourceAttributes.isNull && nonResource.isNull {
            errors.append(
                .init(
                    "spec.resourceAttributes", "FieldValueInvalid",
                    "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
                ))
        }
        if review != .selfSubject, subject.name.isEmpty, subject.groups.isEmpty {
            errors.append(
                .init(
                    "spec.user", "FieldValueInvalid",
                    "Invalid value: \"\": at least one of user or group must be specified"))
        }
        if case .localSubject(let namespace) = review {
            if !nonResource.isNull {
                errors.append(
                    .init(
                        "spec.nonResourceAttributes", "FieldValueInvalid",
                        "Invalid value: \(nonResource.text): disallowed on this kind of request"))
            }
            let asked = resourceAttributes["namespace"].string ?? ""
            if errors.isEmpty, asked != namespace {
                throw APIError.badRequest(
                    "spec.resourceAttributes.namespace must match namespace: \(namespace)")
            }
        }
        if !errors.isEmpty { throw APIError.invalid(review.resource, "", errors) }
        let attributes: AuthorizationAttributes
        if !nonResource.isNull {
            attributes = AuthorizationAttributes(
                user: subject, verb: nonResource["verb"].string ?? "", path: nonResource["path"].string ?? "")
        } else {
            attributes = AuthorizationAttributes(
                user: subject, verb: resourceAttributes["verb"].string ?? "",
                apiGroup: resourceAttributes["group"].string ?? "",
                resource: resourceAttributes["resource"].string ?? "",
                subresource: resourceAttributes["subresource"].string ?? "",
                namespace: resourceAttributes["namespace"].string ?? "", name: resourceAttributes["name"].string ?? "")
        }
        let decision = try await decide(attributes)
        var status: JSON = ["allowed": .bool(decision.allowed)]
        if !decision.reason.isEmpty { status["reason"] = .string(decision.reason) }
        body["status"] = status
        return reply(call, body, status: 201)
    }

    /// What `user` may do in `namespace`, as SelfSubjectRulesReview's status: RBAC's rules there
    /// (cluster-wide ones included); incomplete for a node, whose node authorizer cannot list its rules.
    func rulesReviewStatus(_ user: UserInfo, namespace: String) async throws -> JSON {
        let (rules, errors) = try await server.rbac.current(store).rules(for: user, namespace: namespace)
        var resourceRules: [JSON] = []
        var nonResourceRules: [JSON] = []
        for rule in rules {
            if !rule.nonResourceURLs.isEmpty {
                nonResourceRules.append([
                    "verbs": .array(rule.verbs.map { JSON.string($0) }),
                    "nonResourceURLs": .array(rule.nonResourceURLs.map { JSON.string($0) }),
                ])
            } else {
                var entry: JSON = [
                    "verbs": .array(rule.verbs.map { JSON.string($0) }),
                    "apiGroups": .array(rule.apiGroups.map { JSON.string($0) }),
                    "resources": .array(rule.resources.map { JSON.string($0) }),
                ]
                if !rule.resourceNames.isEmpty {
                    entry["resourceNames"] = .array(rule.resourceNames.map { JSON.string($0) })
                }
                resourceRules.append(entry)
            }
        }
        var status: JSON = [
            "resourceRules": .array(resourceRules), "nonResourceRules": .array(nonResourceRules),
            "incomplete": .bool(!errors.isEmpty || user.nodeName != nil),
        ]
        if !errors.isEmpty { status["evaluationError"] = .string(RBACPolicy.aggregate(errors)) }
        return status
    }
}

import BerthStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOSSL
import X509

/// A parsed API request.
struct Call {
    var method: HTTPRequest.Method
    var path: String
    var query: [String: String]
    var headers: HTTPFields
    var body: [UInt8]
    var user: UserInfo
    /// The client's connection (nil for in-process calls), for streams that must end when it closes.
    var channel: (any Channel)? = nil
    var accept: String { headers[.accept] ?? "" }
    var contentType: String {
        (headers[.contentType] ?? "application/json").split(separator: ";").first.map {
            String($0).trimmingCharacters(in: .whitespaces).lowercased()
        } ?? "application/json"
    }
    /// The response's form, negotiated from `accept` once the endpoint is known (`Rendering`).
    var render: Rendering = .json
    /// The resource a request addresses, once routed (for rendering its objects as a Table).
    var resource: ResourceType?
    var wantsTable: Bool { render == .table }
    var wantsYAML: Bool { render == .yaml }
    var dryRun: Bool { query["dryRun"] == "All" }
    var strict: Bool { query["fieldValidation"] == "Strict" }
    /// What the response's `Warning` headers will say.
    let warnings = RequestWarnings()
}

actor AsyncLock {
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    func lock() async {
        if !locked { locked = true; return }
        await withCheckedContinuation { waiters.append($0) }
    }
    func unlock() {
        if waiters.isEmpty { locked = false } else { waiters.removeFirst().resume() }
    }
}

/// Routes requests, enforces authn/authz, and implements the generic REST semantics over the store.
struct Handler: Sendable {
    let server: APIServer
    var store: any KVStore { server.store }

    // MARK: entry point

    /// Whether the request is a write whose event reaches the resource's watchers (upstream's mutating
    /// work estimator; a service account's token request writes nothing).
    static func writesToWatchers(_ a: AuthorizationAttributes) -> Bool {
        a.isResourceRequest && ["create", "update", "patch", "delete"].contains(a.verb)
            && !(a.resource == "serviceaccounts" && a.subresource == "token")
    }

    func respond(_ req: Request, _ ctx: APIContext) async -> Response {
        let start = ContinuousClock.now
        let inFlight = server.inFlight.started("\(req.method) \(req.uri)")
        defer { server.inFlight.ended(inFlight) }
        var verb = req.method.rawValue
        var resource = ""
        var response: Response
        var warnings: RequestWarnings?
        var caller: UserInfo?
        var failure: APIError?
        var flow: FlowController.Ticket?
        do {
            let path = req.uri.path
            if ["/healthz", "/livez", "/readyz"].contains(path) || path.hasPrefix("/healthz/")
                || path.hasPrefix("/livez/") || path.hasPrefix("/readyz/")
            {
                if path.hasPrefix("/readyz") { _ = try await store.currentRevision() }
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: "ok")))
            }
            if let answer = await unauthenticated(req, ctx) { return answer }
            let user = try await impersonate(try await authenticate(req, ctx), headers: req.headers)
            caller = user
            let query = try Query.parse(req.uri.query)
            // Priority and fairness after authentication and impersonation, before authorization, as
            // kube-apiserver's filter chain places it.
            let attributes = AuthorizationAttributes(user: user, method: req.method.rawValue, path: path, query: query)
            flow = try await server.flowControl.admit(
                attributes, longRunning: Self.isLongRunning(path, query),
                list: attributes.verb == "list" && attributes.name.isEmpty
                    ? server.customResources.find(
                        group: attributes.apiGroup, version: attributes.apiVersion, plural: attributes.resource
                    ).map { FlowController.ListRequest(keyPrefix: $0.keyPrefix, query: query) } : nil,
                watchers: Self.writesToWatchers(attributes)
                    ? server.watchCounts.interested(
                        group: attributes.apiGroup, resource: attributes.resource, namespace: attributes.namespace,
                        name: attributes.name) : nil,
                store: store)
            var body: [UInt8] = []
            if req.method != .get && req.method != .head {
                do {
                    var buf = try await req.body.collect(upTo: server.config.maxBodyBytes)
                    body = buf.readBytes(length: buf.readableBytes) ?? []
                } catch { throw APIError.tooLarge }
            }
            var call = Call(method: req.method, path: path, query: query, headers: req.headers, body: body, user: user)
            call.channel = ctx.channel
            warnings = call.warnings
            try await authorizeRequest(call)
            (verb, resource) =
                (call.query["watch"] == "true" || call.query["watch"] == "1") ? ("WATCH", "") : (verb, "")
            response = try await route(call, &resource)
            // A binding or role just written applies to the next request (the store watch that also
            // marks the policy stale may come a moment later).
            if call.method != .get && call.method != .head && path.hasPrefix(RBACPolicy.apiPrefix) {
                await server.rbac.invalidate()
            }
            if call.method != .get && call.method != .head && path.hasPrefix(AdmissionConfigurationCache.apiPrefix) {
                await server.admission.invalidate()
            }
            if call.method != .get && call.method != .head && path.hasPrefix(FlowController.apiPrefix) {
                await server.flowControl.invalidate()
            }
        } catch let e as APIError {
            failure = e
            response = Self.json(e.status, status: e.code)
        } catch let e as StoreError {
            let api = Self.map(e, nil, "")
            response = Self.json(api.status, status: api.code)
        } catch {
            let api = APIError.internalError("\(error)")
            response = Self.json(api.status, status: 500)
        }
        if let flow {
            await server.flowControl.release(flow)
            if !flow.schemaUID.isEmpty {
                response.headers.append(HTTPField(name: Self.flowSchemaHeader, value: flow.schemaUID))
            }
            if !flow.levelUID.isEmpty {
                response.headers.append(HTTPField(name: Self.priorityLevelHeader, value: flow.levelUID))
            }
        }
        if failure?.code == 429 { response.headers.append(HTTPField(name: Self.retryAfterHeader, value: "1")) }
        // A node reaching for what is not its own is worth an audit line: a compromised node
        // probing, or an agent that needs a permission the node authorizer does not grant.
        if let failure, failure.code == 403, let caller, let node = caller.nodeName {
            let verbs: [HTTPRequest.Method: String] = [
                .get: "get", .head: "get", .post: "create", .put: "update", .patch: "patch", .delete: "delete",
            ]
            server.audit.refused(
                .init(
                    verb: verb == "WATCH" ? "watch" : verbs[req.method] ?? req.method.rawValue.lowercased(),
                    requestURI: req.uri.description, sourceIP: ctx.channel.remoteAddress?.ipAddress ?? "unknown",
                    user: caller, code: 403, reason: failure.message, node: node))
        }
        for value in warnings?.headerValues ?? [] {
            response.headers.append(HTTPField(name: Self.warningHeader, value: value))
        }
        let d = ContinuousClock.now - start
        server.metrics.record(
            verb: verb, resource: resource, code: Int(response.status.code),
            seconds: Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        return response
    }

    func authenticate(_ req: Request, _ ctx: APIContext) async throws -> UserInfo {
        try await authenticate(authorization: req.headers[.authorization], channel: ctx.channel)
    }

    /// A bearer token (static or a service account's), else the TLS client certificate.
    func authenticate(authorization: String?, channel: any Channel) async throws -> UserInfo {
        if let auth = authorization, auth.hasPrefix("Bearer ") {
            let token = String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            if let u = try await user(bearerToken: token) { return u }
            throw APIError.unauthorized
        }
        if let user = await UserInfo.fromClientCertificate(channel) { return user }
        throw APIError.unauthorized
    }

    /// Whose a bearer token is: a static token's user, a legacy service-account token's, or a bound
    /// one's when it is for one of `audiences` (the server's own unless a TokenReview asks for others).
    func user(bearerToken token: String, audiences: [String] = Handler.apiAudiences) async throws -> UserInfo? {
        if let u = server.tokens.tokens[token] { return u }
        if let u = try await serviceAccountUser(token: token) { return u }
        return try await boundServiceAccountUser(token: token, audiences: audiences)
    }

    /// RFC 7234's Warning header, which kube-apiserver uses for deprecations and unknown fields.
    static let warningHeader = HTTPField.Name("Warning")!
    /// The FlowSchema and PriorityLevelConfiguration a request was classified into (upstream's APF headers).
    static let flowSchemaHeader = HTTPField.Name("X-Kubernetes-PF-FlowSchema-UID")!
    static let priorityLevelHeader = HTTPField.Name("X-Kubernetes-PF-PriorityLevel-UID")!
    static let retryAfterHeader = HTTPField.Name("Retry-After")!

    /// Requests that hold no priority-level seat while they last (upstream's long-running check):
    /// watches, logs followed, and the streams into pods.
    static func isLongRunning(_ path: String, _ query: [String: String]) -> Bool {
        if query["watch"] == "true" || query["watch"] == "1" || path.contains("/watch/") { return true }
        if path.hasSuffix("/log") && query["follow"] == "true" { return true }
        return ["/exec", "/attach", "/portforward", "/proxy"].contains { path.hasSuffix($0) }
            || path.contains("/proxy/")
    }

    static func map(_ e: StoreError, _ r: ResourceType?, _ name: String) -> APIError {
        switch e {
        case .alreadyExists: return r.map { APIError.alreadyExists($0, name) } ?? .badRequest("\(e)")
        case .notFound: return r.map { APIError.notFound($0, name) } ?? .pathNotFound()
        case .conflict: return r.map { APIError.conflict($0, name) } ?? .badRequest("\(e)")
        case .compacted(let req, _): return .gone("too old resource version: \(req)")
        case .futureRevision(let req, let cur):
            return APIError(
                code: 504, reason: "Timeout", message: "Too large resource version: \(req), current: \(cur)")
        case .backend(let m): return APIError(code: 503, reason: "ServiceUnavailable", message: "storage: \(m)")
        case .watchOverflow: return APIError(code: 500, reason: "InternalError", message: "watch overflow")
        }
    }

    // MARK: responses

    static func json(_ j: JSON, status: Int = 200, contentType: String = "application/json") -> Response {
        json(bytes: j.serialized(), status: status, contentType: contentType)
    }
    /// A JSON body already written.
    static func json(bytes: [UInt8], status: Int = 200, contentType: String = "application/json") -> Response {
        Response(
            status: .init(code: status), headers: [.contentType: contentType],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
    func reply(_ call: Call, _ j: JSON, status: Int = 200) -> Response {
        if call.wantsTable, let r = call.resource {
            // Upstream prints every object a resource endpoint answers with (created, updated, deleted …)
            // when a Table is asked for; a Status, or a Table already built, passes through.
            let include = call.query["includeObject"] ?? "Metadata"
            let kind = j["kind"].string
            if kind == r.kind || kind == r.listKind {
                let rows = kind == r.kind ? [j] : j["items"].array ?? []
                return Self.json(
                    Tables.table(
                        rows, r, resourceVersion: j["metadata"]["resourceVersion"].string ?? "", continueToken: nil,
                        includeObject: include), status: status)
            }
        }
        if call.wantsYAML {
            return Response(
                status: .init(code: status), headers: [.contentType: "application/yaml"],
                body: .init(byteBuffer: ByteBuffer(string: j.yaml())))
        }
        var answer = j
        var protobuf = call.render == .protobuf
        if case .partialMetadata(let version, let inProtobuf) = call.render {
            answer = PartialObjectMetadata.convert(j, version: version)
            protobuf = inProtobuf
        }
        // A kind without a message (a custom resource; a custom resource's Scale has one) stays JSON,
        // which the client reads from the Content-Type.
        if protobuf, let bytes = Protobuf.encodeObject(answer) {
            return Response(
                status: .init(code: status), headers: [.contentType: Protobuf.mediaType],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        return Self.json(answer, status: status)
    }

    // MARK: routing

    func route(_ request: Call, _ resourceLabel: inout String) async throws -> Response {
        var call = request
        let segs = call.path.split(separator: "/").map(String.init)
        switch call.path {
        case "/version":
            return Self.json([
                "major": "1", "minor": "32", "gitVersion": "v1.32.0-berth", "gitCommit": "berth",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "swift6", "compiler": "swiftc",
                "platform": "linux/amd64",
            ])
        case "/debug/api_priority_and_fairness/dump_priority_levels":
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: await server.flowControl.dumpPriorityLevels())))
        case "/metrics":
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: server.metrics.text())))
        case "/api", "/api/", "/apis", "/apis/":
            // Aggregated discovery at the version asked for; a version not served falls through to the
            // next range (client-go always lists plain application/json last: the unaggregated documents).
            let legacy = call.path.hasPrefix("/api/") || call.path == "/api"
            call.render = try Rendering.negotiate(call.accept, .aggregatedDiscovery)
            if case .discovery(let v) = call.render {
                return Self.json(
                    Discovery.aggregated(legacy: legacy, version: v, server.customResources.all),
                    contentType: "application/json;g=apidiscovery.k8s.io;v=\(v);as=APIGroupDiscoveryList")
            }
            return reply(
                call,
                legacy
                    ? Discovery.apiVersions(serverAddress: "\(server.config.host):\(server.config.port)")
                    : Discovery.groupList(server.customResources.all))
        case "/.well-known/openid-configuration", "/openid/v1/jwks":
            // Every service account reads them (system:service-account-issuer-discovery).
            return serviceAccountIssuerDocument(call.path)!
        case "/openapi/v2":
            if OpenAPIv2Protobuf.wanted(call.accept) {
                return Response(
                    status: .ok, headers: [.contentType: OpenAPIv2Protobuf.mediaType],
                    body: .init(byteBuffer: ByteBuffer(bytes: server.customResources.openAPIv2Protobuf())))
            }
            return Self.json(bytes: server.customResources.openAPIv2())
        case "/openapi/v3":
            let custom = server.customResources.snapshot
            if custom.types.isEmpty { return Self.json(bytes: OpenAPI.v3IndexDocument) }
            return Self.json(OpenAPI.v3Index(custom: custom.types, generation: custom.generation))
        default: break
        }
        if segs.count >= 3, segs[0] == "openapi", segs[1] == "v3" {
            let gv = segs[2...].joined(separator: "/")
            guard let doc = OpenAPI.v3Documents[gv] ?? server.customResources.snapshot.v3Documents[gv] else {
                throw APIError.pathNotFound()
            }
            return Self.json(bytes: doc)
        }
        var group = "", version = "", rest: [String] = []
        if segs.first == "api", segs.count >= 2 {
            version = segs[1]; rest = Array(segs.dropFirst(2))
            guard version == "v1" else { throw APIError.pathNotFound() }
        } else if segs.first == "apis", segs.count >= 2 {
            group = segs[1]
            if segs.count == 2 {
                let types = server.customResources.all
                guard Discovery.allGroups(types).contains(group) else { throw APIError.pathNotFound() }
                call.render = try Rendering.negotiate(call.accept, .plain)
                return reply(call, Discovery.group(group, types))
            }
            version = segs[2]; rest = Array(segs.dropFirst(3))
        } else {
            throw APIError.pathNotFound()
        }
        if rest.isEmpty {
            let list = Discovery.resourceList(group: group, version: version, server.customResources.all)
            guard !(list["resources"].array ?? []).isEmpty else { throw APIError.pathNotFound() }
            call.render = try Rendering.negotiate(call.accept, .plain)
            return reply(call, list)
        }
        if group == Discovery.metricsGroup {
            // Protobuf as metrics-server answers it (kube-controller-manager's HPA client asks for it).
            call.render = try Rendering.negotiate(call.accept, .builtInAnswers)
            return try await resourceMetrics(call, version: version, rest: rest)
        }
        if group == Discovery.reviewGroup, version == "v1", call.method == .post,
            let review = AccessReview(path: rest)
        {
            // A review has no table: `as=Table` alone is 406 upstream, before the review is made.
            call.render = try Rendering.negotiate(call.accept, .builtInAnswers)
            return try await accessReview(call, review)
        }
        if group == Discovery.authenticationGroup, version == "v1", call.method == .post,
            rest == ["selfsubjectreviews"] || rest == ["tokenreviews"]
        {
            call.render = try Rendering.negotiate(call.accept, .builtInAnswers)
            return rest == ["tokenreviews"] ? try await tokenReview(call) : try selfSubjectReview(call)
        }
        if group.isEmpty, rest.first == ComponentStatuses.resource.plural, rest.count <= 2 {
            return try await componentStatuses(call, name: rest.count == 2 ? rest[1] : nil)
        }
        // [namespaces/<ns>/]<plural>[/<name>[/<subresource>]]
        var namespace: String?
        if rest.count >= 3, rest[0] == "namespaces",
            let r = server.customResources.find(group: group, version: version, plural: rest[2]), r.namespaced
        {
            namespace = rest[1]; rest = Array(rest.dropFirst(2))
        } else if group.isEmpty, rest.count == 3, rest[0] == "namespaces", rest[2] == "bindings" {
            namespace = rest[1]; rest = ["bindings"]
        }
        if group.isEmpty && rest == ["bindings"], let ns = namespace, call.method == .post {
            call.render = try Rendering.negotiate(call.accept, .builtInAnswers)
            return try await PodStrategy.bind(call, namespace: ns, name: nil, handler: self)
        }
        guard let r = server.customResources.find(group: group, version: version, plural: rest[0]), rest.count <= 3
        else {
            throw APIError.pathNotFound()
        }
        resourceLabel = r.plural
        let name = rest.count >= 2 ? rest[1] : nil
        let sub = rest.count == 3 ? rest[2] : nil
        if let sub, !r.subresources.contains(sub) { throw APIError.pathNotFound() }
        if r.kind == "Pod", let sub, Self.streamingSubresources.contains(sub), let name, let namespace,
            call.method == .get || call.method == .post
        {
            return try await podStream(call, namespace: namespace, name: name, sub: sub)
        }
        // Objects and lists of a resource (and its status) print as Tables; Scale, Binding and Eviction
        // answers do not. Negotiated before anything is changed, as upstream's handlers do.
        call.render = try Rendering.negotiate(
            call.accept,
            sub == nil || sub == "status" || sub == "approval"
                ? .resource(apiVersion: r.apiVersion, kind: r.kind) : .builtInAnswers)
        call.resource = r
        if r.namespaced && namespace == nil && name != nil { throw APIError.pathNotFound() }

        switch (call.method, name, sub) {
        case (.get, nil, nil):
            if call.query["watch"] == "true" || call.query["watch"] == "1" {
                return try await watch(call, r, namespace: namespace)
            }
            return try await list(call, r, namespace: namespace)
        case (.post, nil, nil):
            guard !r.namespaced || namespace != nil else { throw APIError.methodNotAllowed("") }
            var obj = try decodeBody(call, r)
            if r.namespaced {
                let bodyNS = obj["metadata"]["namespace"].string ?? ""
                if !bodyNS.isEmpty && bodyNS != namespace {
                    throw APIError.badRequest(
                        "the namespace of the provided object does not match the namespace sent on the request")
                }
            }
            obj["metadata"]["resourceVersion"] = .null
            let created = try await createObject(
                r, namespace: namespace, obj: obj, dryRun: call.dryRun, manager: call.query["fieldManager"],
                user: call.user, warnings: call.warnings)
            return reply(call, created, status: 201)
        case (.delete, nil, nil):
            return try await deleteCollection(call, r, namespace: namespace)
        case (.get, let n?, nil):
            return reply(call, try await getObject(r, namespace: namespace, name: n, call: call))
        case (.put, let n?, let s):
            if s == "scale" {
                return reply(call, try await updateScale(call, r, namespace: namespace, name: n, patch: nil))
            }
            let obj = try decodeBody(call, r, subresource: s)
            // Without a resourceVersion the update is unconditional (upstream's AllowUnconditionalUpdate,
            // which every served kind allows): a write that lands between our read and ours is retried
            // on the newer object, as GuaranteedUpdate does, instead of failing the client with a 409.
            let unconditional = (obj["metadata"]["resourceVersion"].string ?? "").isEmpty
            for attempt in 0..<Self.conflictRetries {
                do {
                    return reply(
                        call,
                        try await updateObject(r, namespace: namespace, name: n, new: obj, subresource: s, call: call))
                } catch let e as APIError
                    where e.reason == "Conflict" && unconditional && attempt < Self.conflictRetries - 1
                {
                    continue
                }
            }
            throw APIError.conflict(r, n)
        case (.patch, let n?, let s):
            if s == "scale" {
                return reply(call, try await updateScale(call, r, namespace: namespace, name: n, patch: call.body))
            }
            let (obj, created) = try await patchObject(call, r, namespace: namespace, name: n, subresource: s)
            return reply(call, obj, status: created ? 201 : 200)
        case (.delete, let n?, nil):
            return try await deleteObject(call, r, namespace: namespace, name: n)
        case (.get, let n?, "status"), (.get, let n?, "approval"):
            return reply(call, try await getObject(r, namespace: namespace, name: n, call: call))
        case (.get, let n?, "scale"):
            return reply(call, try await scale(r, namespace: namespace, name: n))
        case (.post, let n?, let s?):
            // pods/binding, pods/eviction: the kind's own verbs.
            guard
                let response = try await r.strategy.post(
                    call, subresource: s, namespace: namespace, name: n, handler: self)
            else {
                throw APIError.methodNotAllowed("")
            }
            return response
        default:
            throw APIError.methodNotAllowed("")
        }
    }

    // MARK: decoding

    func decodeBody(_ call: Call, _ r: ResourceType, subresource: String? = nil) throws -> JSON {
        let obj: JSON
        let protobuf = call.contentType == Protobuf.mediaType
        do {
            switch call.contentType {
            case "application/json", "": obj = try JSON.parse(call.body)
            case "application/yaml", "application/x-yaml", "text/yaml":
                obj = try JSON.parseYAML(String(decoding: call.body, as: UTF8.self))
            case Protobuf.mediaType: obj = try Protobuf.decodeObject(call.body, kind: r.kind, apiVersion: r.apiVersion)
            default: throw APIError.unsupportedMediaType(call.contentType)
            }
        } catch let e as JSONParseError {
            throw APIError.badRequest(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml: \(e.description)"
            )
        }
        guard obj.object != nil else {
            throw APIError.badRequest(
                "json: cannot unmarshal \(obj.typeName) into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }"
            )
        }
        try checkTypeMeta(obj, r)
        // A protobuf body cannot carry unknown fields (they were skipped), so there is nothing to be strict
        // about, as upstream; only the type checks apply. Type errors come first, as from Go's decoder.
        // A custom kind's unknown fields are its schema's to judge (pruneUnknownFields).
        let typed = KubeKinds.hasModel(r) || r.custom != nil
        try Schema.check(obj, r, strict: call.strict && !protobuf && !typed)
        return protobuf ? obj : try pruneUnknownFields(obj, r, call)
    }

    /// The body of a request that is not an API object of the URL's resource (Binding, Scale, DeleteOptions,
    /// SelfSubjectAccessReview): protobuf (of `kind` if the envelope names none) or else JSON.
    func bodyJSON(_ call: Call, kind: String) throws -> JSON {
        call.contentType == Protobuf.mediaType
            ? try Protobuf.decodeObject(call.body, kind: kind) : try JSON.parse(call.body)
    }

    func checkTypeMeta(_ obj: JSON, _ r: ResourceType) throws {
        if let kind = obj["kind"].string, !kind.isEmpty, kind != r.kind {
            throw APIError.badRequest(
                "the API version in the data (\(obj["apiVersion"].string ?? "")) does not match the expected API version (\(r.apiVersion))"
            )
        }
        if let av = obj["apiVersion"].string, !av.isEmpty, av != r.apiVersion {
            throw APIError.badRequest(
                "the API version in the data (\(av)) does not match the expected API version (\(r.apiVersion))")
        }
    }

    // MARK: object encoding

    /// Stored bytes → API object with resourceVersion from the store's modRevision.
    func decodeStored(_ kv: KeyValue, _ r: ResourceType) throws -> JSON {
        var obj = try JSON.parse(kv.value)
        obj["metadata"]["resourceVersion"] = .string(String(kv.modRevision))
        obj["apiVersion"] = .string(r.apiVersion)
        obj["kind"] = .string(r.kind)
        r.strategy.fromStorage(&obj)
        return obj
    }
    func encodeForStore(_ obj: JSON) -> [UInt8] {
        var o = obj
        o["metadata"]["resourceVersion"] = .null
        return o.serialized()
    }
    /// An object of `r` as stored: in its storage form (events.k8s.io Events are stored as core Events).
    func encodeForStore(_ obj: JSON, _ r: ResourceType) -> [UInt8] { encodeForStore(r.strategy.toStorage(obj)) }

    static func now() -> String { APITime.string() }
    static func microNow() -> String { APITime.micro() }
}

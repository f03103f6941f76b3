import AsyncHTTPClient
import BerthAPI
import BerthKube
import Foundation
import NIOCore
import NIOHTTP1

/// ``KubeClient`` over HTTPS to an API server on another machine: what a node agent that is not inside
/// `berth server` writes with (client-go's REST client). Failures are ``APIError``s carrying the
/// server's Status (code, reason, message), or a 503 naming why the server could not be reached, so
/// callers handle them exactly as they handle ``LocalClient``'s.
public final class HTTPKubeClient: KubeClient, Sendable {
    let transport: RemoteTransport
    public let manager: String

    public init(server: RemoteAPIServer, manager: String) throws(HTTPSourceError) {
        transport = try RemoteTransport(server: server)
        self.manager = manager
    }

    /// Closes the connections. Call it once, when nothing uses the client any more.
    public func shutdown() async throws { try await transport.shutdown() }

    // MARK: Paths and requests

    static func path(
        _ resource: ResourceType, namespace: String?, name: String? = nil, subresource: String? = nil,
        query: [(String, String)] = []
    ) -> String {
        var path = (resource.group.isEmpty ? "/api/" : "/apis/" + resource.group + "/") + resource.version
        if resource.namespaced, let namespace { path += "/namespaces/" + namespace }
        path += "/" + resource.plural
        if let name { path += "/" + name }
        if let subresource { path += "/" + subresource }
        return query.isEmpty ? path : path + HTTPSource<CoreV1.Pod>.encode(query)
    }

    /// The answer of a request that must succeed; anything else as an APIError.
    func request(_ method: HTTPMethod, _ path: String, body: JSON? = nil, contentType: String = "application/json")
        async throws -> JSON
    {
        let answer: (status: Int, body: JSON)
        do {
            answer = try await transport.send(method, path, body: body, contentType: contentType)
        } catch {
            throw APIError(code: 503, reason: "ServiceUnavailable", message: "\(error)")
        }
        guard (200..<300).contains(answer.status) else {
            let status = answer.body
            throw APIError(
                code: status["code"].int.map(Int.init) ?? answer.status,
                reason: status["reason"].string ?? "", message: status["message"].string ?? "HTTP \(answer.status)",
                details: status["details"])
        }
        return answer.body
    }

    var managerQuery: [(String, String)] { [("fieldManager", manager)] }

    // MARK: KubeClient

    public func get<T: KubeObject & HasObjectMeta>(_ type: T.Type, namespace: String?, name: String) async throws
        -> T?
    {
        do {
            return try T.decodeResponse(try await request(.GET, Self.path(.of(type), namespace: namespace, name: name)))
        } catch let error as APIError where error.code == 404 {
            return nil
        }
    }

    public func list<T: KubeObject & HasObjectMeta>(_ type: T.Type, namespace: String?) async throws -> [T] {
        let list = try await request(.GET, Self.path(.of(type), namespace: namespace))
        return try (list["items"].array ?? []).map(T.decodeResponse)
    }

    public func create<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T {
        let resource = ResourceType.of(T.self)
        let path = Self.path(resource, namespace: object.metadata.namespace ?? "default", query: managerQuery)
        return try T.decodeResponse(try await request(.POST, path, body: object.servedJSON()))
    }

    public func update<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T {
        let path = Self.path(
            .of(T.self), namespace: object.metadata.namespace, name: object.metadata.name ?? "", query: managerQuery)
        return try T.decodeResponse(try await request(.PUT, path, body: object.servedJSON()))
    }

    public func updateStatus<T: KubeObject & HasObjectMeta>(_ object: T) async throws -> T {
        let path = Self.path(
            .of(T.self), namespace: object.metadata.namespace, name: object.metadata.name ?? "", subresource: "status",
            query: managerQuery)
        return try T.decodeResponse(try await request(.PUT, path, body: object.servedJSON()))
    }

    public func delete(
        _ resource: ResourceType, namespace: String?, name: String, gracePeriod: Int64?, uid: String?,
        propagation: String?
    ) async throws {
        var options: JSON = ["kind": "DeleteOptions", "apiVersion": "v1"]
        if let gracePeriod { options["gracePeriodSeconds"] = .int(gracePeriod) }
        if let uid { options["preconditions"] = ["uid": .string(uid)] }
        if let propagation { options["propagationPolicy"] = .string(propagation) }
        _ = try await request(.DELETE, Self.path(resource, namespace: namespace, name: name), body: options)
    }

    @discardableResult
    public func mergePatch(
        _ resource: ResourceType, namespace: String?, name: String, _ patch: JSON, subresource: String?
    )
        async throws -> JSON
    {
        try await request(
            .PATCH,
            Self.path(resource, namespace: namespace, name: name, subresource: subresource, query: managerQuery),
            body: patch, contentType: "application/merge-patch+json")
    }

    @discardableResult
    public func finalizeNamespace(name: String) async throws -> JSON? {
        let resource = Registry.namespaces
        for _ in 0..<5 {
            guard var namespace = try? await request(.GET, Self.path(resource, namespace: nil, name: name)) else {
                return nil
            }
            let finalizers = namespace["spec"]["finalizers"].array ?? []
            if !finalizers.contains("kubernetes") { return namespace }
            namespace["spec"]["finalizers"] = .array(finalizers.filter { $0 != "kubernetes" })
            do {
                return try await request(
                    .PUT, Self.path(resource, namespace: nil, name: name, subresource: "finalize"), body: namespace)
            } catch let error as APIError where error.code == 409 {
                continue
            } catch let error as APIError where error.code == 404 {
                return nil
            }
        }
        throw APIError.conflict(resource, name)
    }

    public func bind(_ bindings: [PodNodeBinding]) async -> [Result<Void, APIError>] {
        var results: [Result<Void, APIError>] = []
        for binding in bindings {
            let namespace = binding.pod.metadata.namespace ?? "default"
            let name = binding.pod.metadata.name ?? ""
            let body: JSON = [
                "apiVersion": "v1", "kind": "Binding",
                "metadata": ["name": .string(name), "namespace": .string(namespace)],
                "target": ["apiVersion": "v1", "kind": "Node", "name": .string(binding.node)],
            ]
            do {
                _ = try await request(
                    .POST, Self.path(Registry.pods, namespace: namespace, name: name, subresource: "binding"),
                    body: body)
                results.append(.success(()))
            } catch let error as APIError {
                results.append(.failure(error))
            } catch {
                results.append(.failure(APIError(code: 500, reason: "InternalError", message: "\(error)")))
            }
        }
        return results
    }

    /// An Event as LocalClient writes them (``CoreEvent``: repeats of one reason and message bump `count`).
    public func event(about object: JSON, type: String, reason: String, message: String, component: String?) async {
        let resource = Registry.events
        let event = CoreEvent(
            about: object, type: type, reason: reason, message: message, component: component ?? manager)
        let path = Self.path(resource, namespace: event.namespace, name: event.name)
        for _ in 0..<3 {
            if var existing = try? await request(.GET, path) {
                event.repeated(&existing)
                if (try? await request(.PUT, path, body: existing)) != nil { return }
                continue
            }
            if (try? await request(.POST, Self.path(resource, namespace: event.namespace), body: event.object)) != nil {
                return
            }
        }
    }

    public func subjectAccessReview(_ review: AuthorizationV1.SubjectAccessReview) async throws
        -> AuthorizationV1.SubjectAccessReview
    {
        var body = review.kubeJSON()
        body["apiVersion"] = "authorization.k8s.io/v1"
        body["kind"] = "SubjectAccessReview"
        return try AuthorizationV1.SubjectAccessReview(
            kubeJSON: try await request(.POST, "/apis/authorization.k8s.io/v1/subjectaccessreviews", body: body))
    }

    public func requestToken(namespace: String, serviceAccount: String, _ request: AuthenticationV1.TokenRequest)
        async throws -> AuthenticationV1.TokenRequest
    {
        var body = request.kubeJSON()
        body["apiVersion"] = "authentication.k8s.io/v1"
        body["kind"] = "TokenRequest"
        let path = Self.path(Registry.serviceAccounts, namespace: namespace, name: serviceAccount, subresource: "token")
        return try AuthenticationV1.TokenRequest(kubeJSON: try await self.request(.POST, path, body: body))
    }

    // MARK: MetadataReads

    public func getMetadata(_ resource: ResourceType, namespace: String?, name: String) async throws
        -> MetaV1.PartialObjectMetadata?
    {
        do {
            let object = try await request(.GET, Self.path(resource, namespace: namespace, name: name))
            return try Self.metadata(object)
        } catch let error as APIError where error.code == 404 {
            return nil
        }
    }

    public func listMetadata(_ resource: ResourceType, namespace: String?) async throws -> [MetaV1
        .PartialObjectMetadata]
    {
        let list = try await request(.GET, Self.path(resource, namespace: namespace))
        return try (list["items"].array ?? []).map(Self.metadata)
    }

    public func scale(_ resource: ResourceType, namespace: String?, name: String) async throws -> JSON? {
        do {
            return try await request(.GET, Self.path(resource, namespace: namespace, name: name, subresource: "scale"))
        } catch let error as APIError where error.code == 404 {
            return nil
        }
    }

    public func podMetrics(namespace: String, selector: String) async throws -> [JSON] {
        var components = URLComponents()
        components.queryItems = [URLQueryItem(name: "labelSelector", value: selector)]
        let path = "/apis/metrics.k8s.io/v1beta1/namespaces/\(namespace)/pods?" + (components.percentEncodedQuery ?? "")
        return try await request(.GET, path)["items"].array ?? []
    }

    public func customResourceTypes() async throws -> [ResourceType] {
        let list = try await request(.GET, Self.path(CustomResourceTypes.definitions, namespace: nil))
        return CustomResourceTypes.served(byDefinitions: list["items"].array ?? [])
    }

    static func metadata(_ object: JSON) throws -> MetaV1.PartialObjectMetadata {
        try MetaV1.PartialObjectMetadata(kubeJSON: ["metadata": object["metadata"]])
    }
}

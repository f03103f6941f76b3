import AsyncHTTPClient
import BerthHTTPUpgrade
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL

/// How the API server reaches node agents (the kubelet's port): HTTPS with the API server's kubelet
/// client certificate, the agent's serving certificate checked against the cluster CA (an agent's
/// names are its node's, which need not resolve here, so the host name is not checked, as
/// kube-apiserver without --kubelet-certificate-authority checks less still).
final class NodeAgentConnections: Sendable {
    let tls: TLSConfiguration
    let http: HTTPClient

    init(pki: PKI) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateChain = [
            .certificate(try NIOSSLCertificate(bytes: Array(pki.kubeletClientCertPEM.utf8), format: .pem))
        ]
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(pki.kubeletClientKeyPEM.utf8), format: .pem))
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(pki.caPEM.utf8), format: .pem)])
        tls.certificateVerification = .noHostnameVerification
        self.tls = tls
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout.connect = .seconds(10)
        // Every `kubectl logs -f` holds a connection to its node for as long as it follows: the default
        // of 8 per host would make the ninth wait (and `kubectl top` time out) behind them.
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1024)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() async { try? await http.shutdown() }
}

/// `pods/log`, `pods/exec` and `pods/attach`: kube-apiserver's checks of the pod and container, then the
/// node agent of the pod's node does the work — logs proxied as a stream, exec and attach relayed as
/// WebSocket messages (the upgrade is accepted in ``Handler/podStreamUpgrade(_:channel:)``).
extension Handler {
    static let streamingSubresources: Set<String> = ["log", "exec", "attach", "portforward"]

    func podStream(_ call: Call, namespace: String, name: String, sub: String) async throws -> Response {
        let pod = try await getObject(
            Registry.find(group: "", version: "v1", plural: "pods")!, namespace: namespace, name: name)
        let container = try Self.validateContainer(call.query["container"] ?? "", pod: pod, name: name)
        switch sub {
        case "log": return try await podLog(call, pod: pod, container: container)
        default:
            // Checked as an upgrade would be, then refused: exec and attach only stream.
            _ = try await streamLocation(sub, pod: pod, container: container, query: [])
            throw APIError.badRequest("Upgrade request required")
        }
    }

    /// kube-apiserver's validateContainer: the only container when none is named, else one of the pod's.
    static func validateContainer(_ container: String, pod: JSON, name: String) throws -> String {
        let names = (pod["spec"]["containers"].array ?? []).compactMap { $0["name"].string }
        let initNames = (pod["spec"]["initContainers"].array ?? []).compactMap { $0["name"].string }
        let ephemeralNames = (pod["spec"]["ephemeralContainers"].array ?? []).compactMap { $0["name"].string }
        guard container.isEmpty else {
            guard (names + initNames + ephemeralNames).contains(container) else {
                throw APIError.badRequest("container \(container) is not valid for pod \(name)")
            }
            return container
        }
        switch names.count {
        case 1: return names[0]
        case 0: throw APIError.badRequest("a container name must be specified for pod \(name)")
        default:
            var message =
                "a container name must be specified for pod \(name), choose one of: [\(names.joined(separator: " "))]"
            if !initNames.isEmpty { message += " or one of the init containers: [\(initNames.joined(separator: " "))]" }
            throw APIError.badRequest(message)
        }
    }

    /// `https://<node address>:<agent port>` of the pod's node; nil while the pod has no node.
    func agentBase(_ pod: JSON) async throws -> String? {
        guard let nodeName = pod["spec"]["nodeName"].string, !nodeName.isEmpty else { return nil }
        let node = try await getObject(
            Registry.find(group: "", version: "v1", plural: "nodes")!, namespace: nil, name: nodeName)
        let addresses = node["status"]["addresses"].array ?? []
        // InternalIP first, as k3s prefers it: a node's host name need not resolve from here.
        let preferred = ["InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS"]
        guard
            let address = preferred.lazy.compactMap({ type in
                addresses.first { $0["type"].string == type }?["address"].string
            }).first
        else {
            throw APIError.internalError("node \(nodeName) reports no address")
        }
        let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].int ?? 10250
        let host = address.contains(":") ? "[\(address)]" : address
        return "https://\(host):\(port)"
    }

    // MARK: Logs

    func podLog(_ call: Call, pod: JSON, container: String) async throws -> Response {
        let q = call.query
        func integer(_ key: String, minimum: Int64) throws -> Int64? {
            guard let text = q[key] else { return nil }
            guard let value = Int64(text) else {
                throw APIError.badRequest("invalid \(key) \"\(text)\": must be an integer")
            }
            guard value >= minimum else {
                throw APIError(
                    code: 422, reason: "Invalid",
                    message:
                        "PodLogOptions \"\" is invalid: \(key): Invalid value: \(value): must be greater than \(minimum - 1)"
                )
            }
            return value
        }
        _ = try integer("tailLines", minimum: 0)
        _ = try integer("limitBytes", minimum: 1)
        _ = try integer("sinceSeconds", minimum: 1)
        if q["sinceSeconds"] != nil && q["sinceTime"] != nil {
            throw APIError.badRequest("at most one of `sinceTime` or `sinceSeconds` may be specified")
        }
        let name = pod["metadata"]["name"].string ?? ""
        let namespace = pod["metadata"]["namespace"].string ?? ""
        // A pod not yet on a node has no logs: an empty answer, as kube-apiserver gives.
        guard let base = try await agentBase(pod) else {
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init())
        }
        var parameters: [String] = []
        for key in ["follow", "previous", "sinceSeconds", "sinceTime", "timestamps", "tailLines", "limitBytes"] {
            if let value = q[key] { parameters.append("\(key)=\(Self.escape(value))") }
        }
        let url =
            "\(base)/containerLogs/\(Self.escape(namespace))/\(Self.escape(name))/\(Self.escape(container))"
            + (parameters.isEmpty ? "" : "?" + parameters.joined(separator: "&"))
        let response: HTTPClientResponse
        do {
            response = try await server.nodeAgents.http.execute(HTTPClientRequest(url: url), deadline: .distantFuture)
        } catch {
            throw APIError.internalError("Get \"\(url)\": \(error)")
        }
        guard response.status == .ok else {
            // The agent's words, with its status (kube-apiserver's GenericHttpResponseChecker).
            let body = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
            throw APIError(
                passingOn: Int(response.status.code), message: body.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // Ends (and so closes the agent's stream) when kubectl goes.
        return Response(
            status: .ok, headers: [.contentType: "text/plain"],
            body: ClosingStream.body(channel: call.channel) { sink in
                for try await chunk in response.body { sink.yield(chunk) }
            })
    }

    // MARK: Exec and attach

    /// The agent's WebSocket URL for an exec or attach of `container`, with kube-apiserver's checks.
    func streamLocation(_ sub: String, pod: JSON, container: String, query: [(key: String, value: String)])
        async throws -> String
    {
        let name = pod["metadata"]["name"].string ?? ""
        let namespace = pod["metadata"]["namespace"].string ?? ""
        guard let base = try await agentBase(pod) else {
            throw APIError.badRequest("pod \(name) does not have a host assigned")
        }
        func flag(_ key: String) -> Bool { query.contains { $0.key == key && ($0.value == "true" || $0.value == "1") } }
        var parameters: [String] = []
        if sub == "exec" {
            let command = query.filter { $0.key == "command" }.map(\.value)
            if command.isEmpty && !query.isEmpty { throw APIError.badRequest("you must specify at least 1 command") }
            parameters += command.map { "command=\(Self.escape($0))" }
        }
        // The kubelet's names for the streams (kube-apiserver's streamParams).
        if flag("stdin") { parameters.append("input=1") }
        if flag("stdout") { parameters.append("output=1") }
        if flag("stderr") { parameters.append("error=1") }
        if flag("tty") { parameters.append("tty=1") }
        let path = sub == "exec" ? "exec" : "attach"
        return base.replacingOccurrences(of: "https://", with: "wss://")
            + "/\(path)/\(Self.escape(namespace))/\(Self.escape(name))/\(Self.escape(container))?"
            + parameters.joined(separator: "&")
    }

    /// The agent's URL for a port forward into the pod (the ports travel in the streams' headers).
    func portForwardLocation(_ pod: JSON) async throws -> String {
        let name = pod["metadata"]["name"].string ?? ""
        let namespace = pod["metadata"]["namespace"].string ?? ""
        guard let base = try await agentBase(pod) else {
            throw APIError.badRequest("pod \(name) does not have a host assigned")
        }
        return base.replacingOccurrences(of: "https://", with: "wss://")
            + "/portForward/\(Self.escape(namespace))/\(Self.escape(name))"
    }

    /// Accepts the WebSocket upgrade of `pods/exec` and `pods/attach`. A request that fails a check is
    /// upgraded too and told why on the error channel, as a Status: kubectl prints it as it prints an
    /// HTTP error, where a refused upgrade would only make it retry over SPDY, which is not served.
    func podStreamUpgrade(_ head: HTTPRequest, channel: any Channel) async
        -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>
    {
        let target = (head.path ?? "").split(separator: "?", maxSplits: 1)
        let segments = target.first?.split(separator: "/").map(String.init) ?? []
        guard segments.count == 7, segments[0] == "api", segments[1] == "v1", segments[2] == "namespaces",
            segments[4] == "pods", ["exec", "attach", "portforward"].contains(segments[6]),
            let subprotocol = WebSocketRelay.negotiate(
                head,
                served: segments[6] == "portforward"
                    ? [WebSocketRelay.portForwardProtocol] : WebSocketRelay.channelProtocols)
        else { return .dontUpgrade }
        var headers = HTTPFields()
        if head.headerFields[.secWebSocketProtocol] != nil { headers[.secWebSocketProtocol] = subprotocol }
        let url: String
        do {
            url = try await checkedStreamLocation(
                namespace: segments[3], name: segments[5], sub: segments[6],
                query: target.count > 1 ? String(target[1]) : nil, headers: head.headerFields, channel: channel)
        } catch {
            let failure = (error as? APIError) ?? APIError.internalError("\(error)")
            return .upgrade(headers) { _, outbound, _ in
                await WebSocketRelay.fail(outbound, status: failure.status, protocol: subprotocol)
            }
        }
        let tls = server.nodeAgents.tls
        let logger = server.logger
        return .upgrade(headers) { inbound, outbound, _ in
            await WebSocketRelay.relay(
                inbound: inbound, outbound: outbound, to: url, subprotocol: subprotocol, tls: tls, logger: logger)
        }
    }

    /// The agent's URL for an exec, attach or port-forward of a pod, after kube-apiserver's checks: who
    /// asks (exec and attach are writes: create on pods/exec), the pod, and
    /// the container named or the only one.
    func checkedStreamLocation(
        namespace: String, name: String, sub: String, query queryText: String?, headers: HTTPFields,
        channel: any Channel
    ) async throws -> String {
        // Impersonation headers apply here as on any request (`kubectl exec --as=…`).
        let user = try await impersonate(
            try await authenticate(authorization: headers[.authorization], channel: channel), headers: headers)
        let attributes = AuthorizationAttributes(
            user: user, verb: "create", apiGroup: "", resource: "pods", subresource: sub, namespace: namespace,
            name: name)
        let decision = try await decide(attributes)
        guard decision.allowed else { throw APIError.forbidden(attributes.forbiddenMessage(reason: decision.reason)) }
        let query = try Query.pairs(queryText)
        let pod = try await getObject(
            Registry.find(group: "", version: "v1", plural: "pods")!, namespace: namespace, name: name)
        // Admission of the CONNECT (webhooks and policies that guard exec, as upstream calls them).
        var connect = AdmissionAttributes(
            operation: .connect, resource: Registry.pods, subresource: sub, name: name, namespace: namespace,
            object: Self.connectOptions(sub, query), oldObject: nil, user: user, dryRun: false, options: .null,
            warnings: nil)
        try await admitMutating(&connect)
        try await admitValidating(connect)
        if sub == "portforward" { return try await portForwardLocation(pod) }
        let container = try Self.validateContainer(
            query.first { $0.key == "container" }?.value ?? "", pod: pod, name: name)
        return try await streamLocation(sub, pod: pod, container: container, query: query)
    }

    /// The options object of a CONNECT as admission sees it (PodExecOptions, PodAttachOptions,
    /// PodPortForwardOptions from the query).
    static func connectOptions(_ sub: String, _ query: [(key: String, value: String)]) -> JSON {
        func flag(_ key: String) -> JSON? {
            query.first { $0.key == key }.map { .bool(["1", "true"].contains($0.value)) }
        }
        if sub == "portforward" {
            let ports = query.filter { $0.key == "ports" }.flatMap { $0.value.split(separator: ",") }
            return [
                "kind": "PodPortForwardOptions", "apiVersion": "v1",
                "ports": .array(ports.compactMap { Int64($0).map { .int($0) } }),
            ]
        }
        var o: JSON = ["kind": .string(sub == "exec" ? "PodExecOptions" : "PodAttachOptions"), "apiVersion": "v1"]
        for key in ["stdin", "stdout", "stderr", "tty"] { if let v = flag(key) { o[key] = v } }
        if let c = query.first(where: { $0.key == "container" })?.value { o["container"] = .string(c) }
        let command = query.filter { $0.key == "command" }.map { JSON.string($0.value) }
        if sub == "exec" { o["command"] = .array(command) }
        return o
    }

    /// kubectl's SPDY/3.1 way to exec, attach and port-forward (its fallback when the WebSocket upgrade
    /// is refused, and its only way with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false or before 1.29): the
    /// same checks as the WebSocket upgrade, then kube-apiserver's upgrade-aware proxy — the request goes
    /// on to the pod's node agent, which tunnels it to the runtime, and the SPDY session runs end to end.
    /// A failed check is an HTTP error with a Status, which kubectl prints.
    func podSPDYUpgrade(
        _ request: UpgradeRequestHead, connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, channel: any Channel
    )
        async
    {
        let (path, queryText) = request.pathAndQuery
        let inFlight = server.inFlight.started("SPDY upgrade \(path)")
        defer { server.inFlight.ended(inFlight) }
        let segments = path.split(separator: "/").map(String.init)
        let target: UpgradeTunnel.Target
        do {
            guard segments.count == 7, segments[0] == "api", segments[1] == "v1", segments[2] == "namespaces",
                segments[4] == "pods", ["exec", "attach", "portforward"].contains(segments[6])
            else {
                throw APIError(
                    code: 404, reason: "NotFound", message: "the server could not find the requested resource")
            }
            let url = try await checkedStreamLocation(
                namespace: segments[3], name: segments[5], sub: segments[6], query: queryText,
                headers: HTTPFields(
                    request.headers.compactMap { h in HTTPField.Name(h.name).map { HTTPField(name: $0, value: h.value) }
                    }),
                channel: channel)
            target = try UpgradeTunnel.Target(url: url.replacingOccurrences(of: "wss://", with: "https://"))
        } catch {
            let failure = (error as? APIError) ?? APIError.internalError("\(error)")
            try? await connection.executeThenClose { _, outbound in
                try await outbound.refuseUpgrade(
                    status: failure.code, reason: failure.reason, contentType: "application/json",
                    body: failure.status.serialized())
            }
            return
        }
        await UpgradeTunnel.run(
            request, client: connection, to: target, tls: server.nodeAgents.tls, logger: server.logger)
    }

    /// A path segment or query value percent-encoded (RFC 3986 unreserved characters kept).
    static func escape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}

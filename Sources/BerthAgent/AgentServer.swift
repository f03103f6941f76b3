import BerthAPI
import BerthCRIProtocol
import BerthHTTPUpgrade
import BerthKube
import Foundation
import GRPCCore
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL

/// The agent's HTTPS API, what the kubelet serves on port 10250 for the API server: container logs
/// (`/containerLogs/{namespace}/{pod}/{container}`), exec, attach and port-forward (`/exec/…`,
/// `/attach/…`, `/portForward/…`: WebSocket upgrades relayed to the runtime's streaming server, SPDY
/// upgrades tunnelled to it), stats, the pods it runs (`/pods`) and
/// `/healthz`. Clients must present a certificate from the cluster CA naming the API server's
/// kubelet client (or an admin): nobody else reaches the node's containers through it.
struct AgentServer {
    let agent: NodeAgent
    let settings: AgentServerSettings
    var logger: Logger { agent.logger }

    func run() async throws {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [
                .certificate(try NIOSSLCertificate(bytes: Array(settings.certificatePEM.utf8), format: .pem))
            ],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(settings.keyPEM.utf8), format: .pem)))
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(settings.clientCAPEM.utf8), format: .pem)])
        // A client without a certificate from the CA fails the handshake.
        tls.certificateVerification = .noHostnameVerification
        tls.applicationProtocols = ["http/1.1"]
        // As the API server's: a closing connection waits at most this for the client's close_notify.
        tls.shutdownTimeout = .seconds(2)
        let app = Application(
            responder: CallbackResponder { (request: Request, context: APIContext) in
                await respond(request, context)
            },
            server: try .tls(
                HTTPServerBuilder { responder in
                    UpgradeSniffingChannel(
                        http: HTTP1WebSocketUpgradeChannel(
                            responder: responder, configuration: .init(ws: .init(maxFrameSize: 1 << 20))
                        ) { head, channel, _ in
                            await upgrade(head, channel: channel)
                        },
                        takeover: { request, connection, channel, _ in
                            await spdyUpgrade(request, connection: connection, channel: channel)
                        })
                }, tlsConfiguration: tls),
            configuration: .init(address: .hostname(settings.address, port: settings.port), serverName: nil),
            logger: logger)
        try await app.run()
    }

    /// The API server's kubelet client, or an administrator.
    private func authorized(_ channel: any Channel) async -> Bool {
        guard let user = await UserInfo.fromClientCertificate(channel) else { return false }
        return user.name == PKI.kubeletClientName || user.isAdmin
    }

    /// An error the kubelet's way: its status and plain text (the API server wraps it in a Status).
    struct Failure: Error {
        var status: HTTPResponse.Status
        var message: String
        static func badRequest(_ message: String) -> Failure { Failure(status: .badRequest, message: message) }
        static func notFound(_ message: String) -> Failure { Failure(status: .notFound, message: message) }
    }

    private func respond(_ request: Request, _ context: APIContext) async -> Response {
        do {
            let path = request.uri.path
            if path == "/healthz" { return text(.ok, "ok") }
            guard await authorized(context.channel) else {
                return text(
                    .forbidden,
                    "Forbidden (user=\(await UserInfo.fromClientCertificate(context.channel)?.name ?? "system:anonymous"), verb=get, resource=nodes, subresource=proxy)"
                )
            }
            let segments = path.split(separator: "/").map { (try? Query.unescape($0)) ?? String($0) }
            let query = try Query.pairs(request.uri.query)
            switch segments.first {
            case "containerLogs" where segments.count == 4 && request.method == .get:
                return try await containerLogs(
                    namespace: segments[1], pod: segments[2], container: segments[3], query, channel: context.channel)
            case "exec", "attach":
                guard segments.count == 4 else { break }
                // Checked as the upgrade would be; without an upgrade there is nothing to stream.
                _ = try await streamingURL(
                    segments[0], namespace: segments[1], pod: segments[2], container: segments[3], query)
                return text(.badRequest, "Upgrade request required")
            case "stats" where segments == ["stats", "summary"]:
                let summary = agent.stats.summary(pods: agent.runningPods)
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: summary.serialized())))
            case "metrics" where segments == ["metrics", "resource"]:
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: agent.stats.resourceMetrics(pods: agent.runningPods))))
            case "pods" where segments.count == 1:
                let pods = agent.runningPods.sorted {
                    ($0.metadata.namespace ?? "", $0.metadata.name ?? "") < (
                        $1.metadata.namespace ?? "", $1.metadata.name ?? ""
                    )
                }
                let list: JSON = [
                    "kind": "PodList", "apiVersion": "v1", "metadata": [:], "items": .array(pods.map { $0.kubeJSON() }),
                ]
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: list.serialized())))
            default: break
            }
            return text(.notFound, "404 page not found")
        } catch let failure as Failure {
            return text(failure.status, failure.message)
        } catch {
            return text(.internalServerError, "\(error)")
        }
    }

    private func text(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }

    // MARK: Finding a pod's container

    /// The runtime's instances of a pod's container, newest first (the current one, then the one
    /// before: what `--previous` reads).
    private func instances(namespace: String, pod name: String, container: String) async throws
        -> (pod: CoreV1.Pod, containers: [Runtime_V1_Container])
    {
        guard let pod = agent.pod(namespace: namespace, name: name) else {
            throw Failure.notFound(
                "pod \"\(name)\" in namespace \"\(namespace)\" not found on node \"\(agent.configuration.nodeName)\"")
        }
        var request = Runtime_V1_ListContainersRequest()
        request.filter.labelSelector = [PodLabels.uid: pod.metadata.uid ?? "", PodLabels.container: container]
        let listed = try await agent.cri.runtime.listContainers(request).containers
        return (pod, listed.sorted { ($0.metadata.attempt, $0.createdAt) > ($1.metadata.attempt, $1.createdAt) })
    }

    /// Why a container has no instance yet, as the kubelet words it.
    private func waiting(_ pod: CoreV1.Pod, _ container: String) -> Failure {
        let statuses = pod.status.containerStatuses + pod.status.initContainerStatuses
        let reason = statuses.first { $0.name == container }?.state.waiting?.reason ?? "ContainerCreating"
        return .badRequest(
            "container \"\(container)\" in pod \"\(pod.metadata.name ?? "")\" is waiting to start: \(reason)")
    }

    // MARK: Logs

    private func containerLogs(
        namespace: String, pod name: String, container: String, _ query: [(key: String, value: String)],
        channel: any Channel
    ) async throws -> Response {
        func value(_ key: String) -> String? { query.first { $0.key == key }?.value }
        func flag(_ key: String) -> Bool { value(key) == "true" || value(key) == "1" }
        func integer(_ key: String) throws -> Int64? {
            guard let text = value(key) else { return nil }
            // Bounded, as the API server's validation bounds them (a hostile value cannot overflow the reader).
            guard let number = Int64(text), number >= 0, number <= 1 << 40 else {
                throw Failure.badRequest("invalid \(key) \"\(text)\"")
            }
            return number
        }
        var sinceTime: CRILogEntry.Time?
        if let text = value("sinceTime") {
            guard let parsed = CRILogEntry.Time.parse(text) else {
                throw Failure.badRequest("invalid sinceTime \"\(text)\": not an RFC 3339 time")
            }
            sinceTime = parsed
        }
        let options = ContainerLogOptions(
            follow: flag("follow"), timestamps: flag("timestamps"), tailLines: try integer("tailLines").map { Int($0) },
            sinceTime: sinceTime, sinceSeconds: try integer("sinceSeconds"),
            limitBytes: try integer("limitBytes").map { Int($0) })
        let previous = flag("previous")
        let (pod, containers) = try await instances(namespace: namespace, pod: name, container: container)
        let chosen: Runtime_V1_Container
        if previous {
            guard containers.count > 1 else {
                throw Failure.badRequest("previous terminated container \"\(container)\" in pod \"\(name)\" not found")
            }
            chosen = containers[1]
        } else {
            guard let current = containers.first else { throw waiting(pod, container) }
            chosen = current
        }
        var statusRequest = Runtime_V1_ContainerStatusRequest()
        statusRequest.containerID = chosen.id
        let status = try await agent.cri.runtime.containerStatus(statusRequest).status
        let path = status.logPath
        guard !path.isEmpty, FileManager.default.fileExists(atPath: path) else {
            throw Failure.notFound(
                "failed to try resolving symlinks in path \"\(path)\": lstat \(path): no such file or directory")
        }
        let cri = agent.cri!
        let id = chosen.id
        // A follower stops once the container no longer runs (the kubelet's waitLogs).
        let keepFollowing: @Sendable () async -> Bool = {
            var request = Runtime_V1_ContainerStatusRequest()
            request.containerID = id
            guard let state = try? await cri.runtime.containerStatus(request).status.state else { return false }
            return state == .containerRunning || state == .containerCreated
        }
        let logger = self.logger
        // A follower is cancelled when the API server's connection closes (its client went).
        return Response(
            status: .ok, headers: [.contentType: "text/plain"],
            body: ClosingStream.body(channel: channel) { sink in
                do {
                    try await ContainerLogReader.read(path: path, options: options, keepFollowing: keepFollowing) {
                        bytes in sink.yield(ByteBuffer(bytes: bytes))
                    }
                } catch let error as ContainerLogError {
                    logger.notice("reading the log of container \(id): \(error)")
                }
            })
    }

    // MARK: Exec and attach

    /// Asks the runtime for a streaming URL for an exec or attach of the pod's running container.
    private func streamingURL(
        _ kind: String, namespace: String, pod name: String, container: String, _ query: [(key: String, value: String)]
    ) async throws -> (url: String, streams: RuntimeStreamRelay.Streams) {
        func flag(_ keys: String...) -> Bool {
            query.contains { keys.contains($0.key) && ($0.value == "1" || $0.value == "true") }
        }
        let (_, containers) = try await instances(namespace: namespace, pod: name, container: container)
        guard let current = containers.first, current.state == .containerRunning else {
            throw Failure.notFound("container not found (\"\(container)\")")
        }
        let (stdin, stdout, stderr, tty) = (
            flag("input", "stdin"), flag("output", "stdout"), flag("error", "stderr"), flag("tty")
        )
        let streams = RuntimeStreamRelay.Streams(stdin: stdin, stdout: stdout, stderr: stderr, tty: tty)
        do {
            if kind == "exec" {
                var request = Runtime_V1_ExecRequest()
                request.containerID = current.id
                request.cmd = query.filter { $0.key == "command" }.map(\.value)
                guard !request.cmd.isEmpty else { throw Failure.badRequest("you must specify at least 1 command") }
                (request.stdin, request.stdout, request.stderr, request.tty) = (stdin, stdout, stderr, tty)
                return (try await agent.cri.runtime.exec(request).url, streams)
            }
            var request = Runtime_V1_AttachRequest()
            request.containerID = current.id
            (request.stdin, request.stdout, request.stderr, request.tty) = (stdin, stdout, stderr, tty)
            return (try await agent.cri.runtime.attach(request).url, streams)
        } catch let error as RPCError {
            throw Failure.badRequest(error.message)
        }
    }

    /// Asks the runtime for a port-forwarding URL into the pod's ready sandbox.
    private func portForwardURL(namespace: String, pod name: String) async throws -> String {
        guard let pod = agent.pod(namespace: namespace, name: name) else {
            throw Failure.notFound(
                "pod \"\(name)\" in namespace \"\(namespace)\" not found on node \"\(agent.configuration.nodeName)\"")
        }
        guard
            let sandbox = try await agent.sandboxes(of: pod.metadata.uid ?? "").first(where: {
                $0.state == .sandboxReady
            })
        else {
            throw Failure.badRequest("pod \"\(name)\" has no running sandbox to forward ports into")
        }
        var request = Runtime_V1_PortForwardRequest()
        request.podSandboxID = sandbox.id
        do { return try await agent.cri.runtime.portForward(request).url } catch let error as RPCError {
            throw Failure.badRequest(error.message)
        }
    }

    /// Exec, attach and port-forward over SPDY/3.1 (what the API server passes on for kubectl's SPDY
    /// fallback): the same checks as the WebSocket upgrade, then the request goes on to the runtime's
    /// streaming URL, as the kubelet proxies to a CRI streaming server — the runtime answers the upgrade
    /// and serves the session. A failed check is the kubelet's HTTP error in plain text.
    private func spdyUpgrade(
        _ request: UpgradeRequestHead, connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, channel: any Channel
    )
        async
    {
        let (path, queryText) = request.pathAndQuery
        let segments = path.split(separator: "/").map { (try? Query.unescape($0)) ?? String($0) }
        let target: UpgradeTunnel.Target
        do {
            guard await authorized(channel) else { throw Failure(status: .forbidden, message: "Forbidden") }
            let query = try Query.pairs(queryText)
            let url: String
            if segments.count == 3 && segments[0] == "portForward" {
                url = try await portForwardURL(namespace: segments[1], pod: segments[2])
            } else if segments.count == 4 && (segments[0] == "exec" || segments[0] == "attach") {
                url = try await streamingURL(
                    segments[0], namespace: segments[1], pod: segments[2], container: segments[3], query
                ).url
            } else {
                throw Failure.notFound("404 page not found")
            }
            target = try UpgradeTunnel.Target(url: url)
        } catch {
            let failure = (error as? Failure) ?? Failure(status: .internalServerError, message: "\(error)")
            try? await connection.executeThenClose { _, outbound in
                try await outbound.refuseUpgrade(
                    status: Int(failure.status.code), reason: failure.status.reasonPhrase,
                    body: Array((failure.message + "\n").utf8))
            }
            return
        }
        await UpgradeTunnel.run(request, client: connection, to: target, tls: nil, logger: logger)
    }

    /// Exec, attach and port-forward upgrades; a request that fails a check is upgraded too and told why on the
    /// error channel (the API server relays it to kubectl as it is).
    private func upgrade(_ head: HTTPRequest, channel: any Channel) async
        -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>
    {
        let target = (head.path ?? "").split(separator: "?", maxSplits: 1)
        let segments = target.first?.split(separator: "/").map { (try? Query.unescape($0)) ?? String($0) } ?? []
        let forwarding = segments.count == 3 && segments[0] == "portForward"
        guard forwarding || (segments.count == 4 && (segments[0] == "exec" || segments[0] == "attach")),
            let subprotocol = WebSocketRelay.negotiate(
                head, served: forwarding ? [WebSocketRelay.portForwardProtocol] : WebSocketRelay.channelProtocols)
        else { return .dontUpgrade }
        var headers = HTTPFields()
        if head.headerFields[.secWebSocketProtocol] != nil { headers[.secWebSocketProtocol] = subprotocol }
        let url: String
        var streams: RuntimeStreamRelay.Streams?
        do {
            guard await authorized(channel) else { throw Failure(status: .forbidden, message: "Forbidden") }
            let query = try Query.pairs(target.count > 1 ? String(target[1]) : nil)
            if forwarding {
                url = try await portForwardURL(namespace: segments[1], pod: segments[2])
            } else {
                (url, streams) = try await streamingURL(
                    segments[0], namespace: segments[1], pod: segments[2], container: segments[3], query)
            }
        } catch {
            let failure = (error as? Failure) ?? Failure(status: .internalServerError, message: "\(error)")
            let status = APIError(passingOn: Int(failure.status.code), message: failure.message).status
            return .upgrade(headers) { _, outbound, _ in
                await WebSocketRelay.fail(outbound, status: status, protocol: subprotocol)
            }
        }
        let logger = self.logger
        let commandStreams = streams
        // To the runtime over SPDY, as the kubelet streams from any CRI runtime (containerd 1.6 serves
        // WebSocket only up to v4 and not port-forward's tunnel).
        return .upgrade(headers) { inbound, outbound, _ in
            if let streams = commandStreams {
                await RuntimeStreamRelay.remoteCommand(
                    inbound: inbound, outbound: outbound, url: url, subprotocol: subprotocol, streams: streams,
                    logger: logger)
            } else {
                await RuntimeStreamRelay.portForward(
                    inbound: inbound, outbound: outbound, url: url, subprotocol: subprotocol, logger: logger)
            }
        }
    }
}

import ArgumentParser
import BerthAPI
import BerthAgent
import BerthControl
import BerthImage
import BerthNetwork
import enum BerthKube.CoreV1
import class BerthKube.StringPool
import Foundation
import Logging
import ServiceLifecycle

/// `berth agent`: this machine as a node of a cluster whose API server runs elsewhere — the kubelet's
/// job, with Berth's engine in the same process unless --container-runtime-endpoint names another CRI
/// runtime. It reaches the API server as its kubeconfig says (server, CA, this node's credentials) or,
/// with --server and --token-file, joins the cluster first (as `k3s agent` does) and keeps the node
/// identity it is given; it watches only the pods bound to it and writes through the API like any client.
struct ClusterAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run a node agent (and the engine) for a remote Kubernetes-compatible API server.")

    @Option(help: "The kubeconfig naming the API server, its CA and this node's credentials.")
    var kubeconfig: String?
    @Option(
        help:
            "The API server to join (https://HOST:PORT), with --token-file; the node's credentials are kept under --agent-root."
    )
    var server: String?
    @Option(help: "The server's join token (<data-dir>/token on the server), for --server.")
    var tokenFile: String?
    @Option(help: "The HTTPS API's serving certificate (PEM); without one the HTTPS API (logs, exec) is off.")
    var tlsCertFile: String?
    @Option(help: "The serving certificate's private key (PEM).") var tlsPrivateKeyFile: String?
    @Option(help: "The CA client certificates of the HTTPS API must come from (default: the kubeconfig's CA).")
    var clientCAFile: String?
    @Option(help: "Log level (trace, debug, info, notice, warning, error).") var logLevel: String = "info"
    @OptionGroup(title: "Node agent") var agent: AgentOptions
    @OptionGroup(title: "Engine (when no runtime endpoint is given)") var images: ImageOptions

    func validate() throws {
        if (tlsCertFile == nil) != (tlsPrivateKeyFile == nil) {
            throw ValidationError("--tls-cert-file and --tls-private-key-file go together")
        }
        switch (kubeconfig, server) {
        case (nil, nil): throw ValidationError("either --kubeconfig or --server (with --token-file) is needed")
        case (_?, _?): throw ValidationError("--kubeconfig and --server are mutually exclusive")
        case (_?, nil) where tokenFile != nil:
            throw ValidationError("--token-file goes with --server, not --kubeconfig")
        case (nil, let server?):
            // The join checks it again (and the token); an obvious mistake is named before anything starts.
            do { _ = try JoinClient.baseURL(server) } catch {
                throw ValidationError(error.description)
            }
        default: break
        }
    }

    func run() async throws {
        var logger = Logger(label: "berth.agent")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        // The node's name and address are known before the runtime starts: a join needs them.
        var configuration = agent.configuration(runtimeEndpoint: agent.containerRuntimeEndpoint ?? "")
        var joined: NodeCredentials?
        if let server {
            // A failed join ends the agent with the reason (JoinError's message), not a usage text.
            joined = try await NodeCredentials.obtain(
                root: agent.agentRoot, server: server, tokenFile: tokenFile, nodeName: configuration.nodeName,
                address: configuration.internalIP, logger: logger)
        }
        // The pod range: the flag, else what the server said at the join.
        let clusterCIDR = agent.clusterCIDR ?? joined?.clusterCIDR
        if agent.clusterCIDR == nil, let clusterCIDR, IPv4Subnet(clusterCIDR, strict: false) != nil {
            configuration.clusterCIDR = clusterCIDR
            configuration.podNetworkBackend = PodNetworkBackend(rawValue: agent.flannelBackend)
        }
        let remote: RemoteAPIServer
        do { remote = try RemoteAPIServer.fromKubeconfig(joined?.kubeconfigPath ?? kubeconfig ?? "") } catch {
            throw ValidationError(error.description)
        }
        let client = try HTTPKubeClient(server: remote, manager: "berth-agent")
        var services: [any Service] = []
        var engineImages: ImageService?
        if agent.containerRuntimeEndpoint == nil {
            let local = try LocalRuntime(
                images: images, logger: logger, podNetwork: agent.podNetwork(clusterCIDR: configuration.clusterCIDR))
            engineImages = local.images
            services.append(local.service)
            configuration.runtimeEndpoint = local.endpoint
        }
        configuration.releasesStartupCode = true
        // The HTTPS API's certificate: one given, else the one the join gave (for this node's name and
        // address, from the cluster CA the API server trusts).
        let serving: (certificate: String, key: String)? =
            if let tlsCertFile, let tlsPrivateKeyFile {
                (
                    try String(contentsOfFile: tlsCertFile, encoding: .utf8),
                    try String(contentsOfFile: tlsPrivateKeyFile, encoding: .utf8)
                )
            } else {
                joined.map { ($0.servingCertificatePEM, $0.keyPEM) }
            }
        if let serving, agent.kubeletPort > 0 {
            var settings = AgentServerSettings(
                certificatePEM: serving.certificate, keyPEM: serving.key,
                clientCAPEM: try clientCAFile.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? remote.caPEM)
            settings.address = agent.kubeletAddress
            settings.port = agent.kubeletPort
            configuration.server = settings
        } else if agent.kubeletPort > 0 {
            logger.warning(
                "no --tls-cert-file: the agent's HTTPS API is off, so kubectl logs, exec and attach cannot reach this node"
            )
        }
        // The API server keeps only this node's pods in the agent's watch.
        let nodeName = configuration.nodeName
        let pods = ResourceType.of(CoreV1.Pod.self)
        // One node's pods (110 by default) share few strings: 4,096 slots (64 KB), not the server's 1 MB.
        let sources = try HTTPSourceProvider(server: remote, strings: StringPool(slotBits: 12)) { resource in
            resource.plural == pods.plural && resource.group == pods.group
                ? ObjectSelectors(fieldSelector: "spec.nodeName=\(nodeName)") : .everything
        }
        services.append(
            NodeAgent(
                configuration: configuration, client: client, sources: sources, clusterSources: sources.unselected,
                logger: logger))
        services.append(sources)
        let group = ServiceGroup(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        defer { if let engineImages { Task { await engineImages.shutdown() } } }
        do {
            try await group.run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try? await client.shutdown()
    }
}

import ArgumentParser
import BerthAPI
import BerthAgent
import BerthControl
import BerthImage
import enum BerthKube.CoreV1
import class BerthKube.StringPool
import Foundation
import Logging
import ServiceLifecycle

/// `berth agent`: this machine as a node of a cluster whose API server runs elsewhere — the kubelet's
/// job, with Berth's engine in the same process unless --container-runtime-endpoint names another CRI
/// runtime. It reaches the API server as its kubeconfig says (server, CA, this node's credentials),
/// watches only the pods bound to it and writes through the API like any client.
struct ClusterAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run a node agent (and the engine) for a remote Kubernetes-compatible API server.")

    @Option(help: "The kubeconfig naming the API server, its CA and this node's credentials.")
    var kubeconfig: String
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
    }

    func run() async throws {
        var logger = Logger(label: "berth.agent")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let remote: RemoteAPIServer
        do { remote = try RemoteAPIServer.fromKubeconfig(kubeconfig) } catch {
            throw ValidationError(error.description)
        }
        let client = try HTTPKubeClient(server: remote, manager: "berth-agent")
        var services: [any Service] = []
        var engineImages: ImageService?
        var endpoint = agent.containerRuntimeEndpoint
        if endpoint == nil {
            let local = try LocalRuntime(
                images: images, logger: logger, podNetwork: agent.podNetwork(clusterCIDR: agent.clusterCIDR))
            engineImages = local.images
            services.append(local.service)
            endpoint = local.endpoint
        }
        var configuration = agent.configuration(runtimeEndpoint: endpoint!)
        configuration.releasesStartupCode = true
        if let tlsCertFile, let tlsPrivateKeyFile, agent.kubeletPort > 0 {
            var settings = AgentServerSettings(
                certificatePEM: try String(contentsOfFile: tlsCertFile, encoding: .utf8),
                keyPEM: try String(contentsOfFile: tlsPrivateKeyFile, encoding: .utf8),
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

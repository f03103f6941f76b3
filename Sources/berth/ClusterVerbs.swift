import ArgumentParser
import BerthAPI
import BerthAgent
import BerthCRI
import BerthControl
import BerthEngine
import BerthImage
import BerthNetwork
import enum BerthKube.MetaV1
import Foundation
import Logging
import ServiceLifecycle

/// Control-plane verbs (server, …), owned by the API layer.
let clusterVerbs: [any ParsableCommand.Type] = [ClusterServer.self, ClusterAgent.self, ClusterBench.self]

/// `berth server`: the Kubernetes-compatible API server.
struct ClusterServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the Kubernetes-compatible API server (SQLite by default, or etcd).")

    @Option(help: "Directory for the database, PKI, tokens and admin kubeconfig.")
    var dataDir: String = "/var/lib/berth/server"
    @Option(help: "Datastore: sqlite (embedded, default) or etcd.")
    var datastore: String = "sqlite"
    @Option(help: "Comma-separated etcd client URLs (with --datastore etcd).")
    var etcdEndpoints: String = "http://127.0.0.1:2379"
    @Option(help: "Address to listen on, host:port.")
    var listen: String = "127.0.0.1:6443"
    @Option(help: "CIDR that Service cluster IPs are allocated from.")
    var serviceCIDR: String = "10.96.0.0/12"
    @Option(help: "Bits of each node's pod CIDR, cut from --cluster-cidr (as kube-controller-manager's).")
    var nodeCIDRMaskSize = 24
    @Option(help: "NodePort range, e.g. 30000-32767.")
    var nodePortRange: String = "30000-32767"
    @Option(help: "Extra names/IPs for the serving certificate (comma-separated).")
    var tlsSAN: String = ""
    @Option(help: "Seconds between watch bookmarks.")
    var bookmarkSeconds: Int = 5
    @Option(help: "Identity in leader election (default hostname_port).")
    var identity: String?
    @Option(help: "Leader-election lease duration in seconds.")
    var leaseSeconds: Int = 3
    @Flag(inversion: .prefixedNo, help: "Take part in leader election for the scheduler and controllers.")
    var leaderElect = true
    @Flag(inversion: .prefixedNo, help: "Run the scheduler (while this server leads).")
    var scheduler = true
    @Flag(inversion: .prefixedNo, help: "Run the controllers (while this server leads).")
    var controllers = true
    @Flag(
        inversion: .prefixedNo, help: "Run the garbage collector (while this server leads), even with --no-controllers."
    )
    var garbageCollector = true
    @Option(help: "Seconds without a node heartbeat before the node is NotReady (Kubernetes' 40).")
    var nodeMonitorGraceSeconds: Int = 40
    @Option(help: "Seconds a pod tolerates a NotReady/unreachable node before it is evicted (added to new pods).")
    var defaultTolerationSeconds: Int = 5
    @Option(help: "Simulated (hollow) nodes to run in this process: the node agent over a fake CRI runtime.")
    var hollowNodes: Int = 0
    @Option(help: "CPU of each hollow node.")
    var hollowNodeCpu: String = "8"
    @Option(help: "Memory of each hollow node.")
    var hollowNodeMemory: String = "32Gi"
    @Option(help: "Pod capacity of each hollow node.")
    var hollowNodePods: String = "110"
    @Option(help: "Seconds between hollow node Lease renewals.")
    var hollowHeartbeatSeconds: Double = 2
    @Option(help: "Log level (trace, debug, info, notice, warning, error).")
    var logLevel: String = "info"
    @Flag(help: "Run no node agent (and no engine) in this process: a control plane only.")
    var disableAgent = false
    @Option(
        help:
            "Where the local-path provisioner puts volumes on their nodes (k3s's --default-local-storage-path)."
    )
    var defaultLocalStoragePath = "/var/lib/berth/storage"
    @Flag(help: "Make no local-path StorageClass at start (k3s's --disable local-storage).")
    var disableLocalStorage = false
    @OptionGroup(title: "Node agent") var agent: AgentOptions
    @OptionGroup(title: "Engine (for the node agent)") var images: ImageOptions

    /// The tenth address of an IPv4 CIDR (`10.96.0.0/12` → 10.96.0.10), where clusters put kube-dns.
    static func tenthAddress(of cidr: String) throws -> String {
        guard let subnet = IPv4Subnet(cidr, strict: false), subnet.prefixLength <= 28 else {
            throw ValidationError("--service-cidr: \"\(cidr)\" is not an IPv4 CIDR of at least 16 addresses")
        }
        return subnet.address(10).description
    }

    /// k3s's default pod range: every node gets a /24 of it.
    static let defaultClusterCIDR = "10.42.0.0/16"

    /// The pod range, checked against the Service range: overlapping ones would route a Service's
    /// address to a pod, or a pod's to a Service (kube-apiserver and k3s refuse them at start too).
    static func clusterCIDR(_ text: String?, serviceCIDR: String, maskSize: Int) throws -> String? {
        let cidr = text ?? defaultClusterCIDR
        if cidr.isEmpty { return nil }
        guard let pods = IPv4Subnet(cidr, strict: false) else {
            throw ValidationError("--cluster-cidr: \"\(cidr)\" is not an IPv4 CIDR (such as 10.42.0.0/16)")
        }
        guard maskSize >= pods.prefixLength, maskSize <= 30, maskSize - pods.prefixLength <= 24 else {
            throw ValidationError(
                "--node-cidr-mask-size: /\(maskSize) does not cut --cluster-cidr \(cidr) into node blocks (it must be between /\(pods.prefixLength) and /30, at most 2^24 blocks)"
            )
        }
        if let services = IPv4Subnet(serviceCIDR, strict: false), services.overlaps(pods) {
            throw ValidationError(
                "--cluster-cidr \(cidr) overlaps --service-cidr \(serviceCIDR): pods and Services need ranges of their own"
            )
        }
        return cidr
    }

    func run() async throws {
        let clusterCIDR = try Self.clusterCIDR(
            agent.clusterCIDR, serviceCIDR: serviceCIDR, maskSize: nodeCIDRMaskSize)
        var config = ServerConfig(dataDir: dataDir)
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen must be host:port")
        }
        config.host = String(listen[..<colon])
        config.port = port
        guard let ds = ServerConfig.Datastore(rawValue: datastore) else {
            throw ValidationError("--datastore must be sqlite or etcd")
        }
        config.datastore = ds
        config.etcdEndpoints = etcdEndpoints.split(separator: ",").map(String.init)
        config.serviceCIDR = serviceCIDR
        config.clusterCIDR = clusterCIDR
        // The kube-dns Service every cluster has, at the address the nodes answer DNS on.
        let clusterDNS = try agent.clusterDNS ?? Self.tenthAddress(of: serviceCIDR)
        config.clusterDNS = clusterDNS.split(separator: ",").first.map(String.init)
        let range = nodePortRange.split(separator: "-").compactMap { Int($0) }
        guard range.count == 2, range[0] <= range[1] else { throw ValidationError("--node-port-range must be lo-hi") }
        config.nodePortRange = range[0]...range[1]
        config.tlsSANs = tlsSAN.split(separator: ",").map(String.init)
        config.bookmarkInterval = .seconds(bookmarkSeconds)
        config.identity = identity
        config.leaseDuration = .seconds(leaseSeconds)
        config.leaderElect = leaderElect
        var logger = Logger(label: "berth.server")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        config.namespaceController = controllers
        config.garbageCollector = controllers || garbageCollector
        config.defaultTolerationSeconds = Int64(defaultTolerationSeconds)
        config.localStorage = !disableLocalStorage
        let server = try APIServer(config: config, logger: logger)
        var control = ControlPlaneConfig()
        control.scheduler = scheduler
        control.controllers = controllers
        control.garbageCollector = garbageCollector
        control.nodeMonitorGracePeriod = .seconds(nodeMonitorGraceSeconds)
        control.clusterCIDR = clusterCIDR
        control.nodeCIDRMaskSize = nodeCIDRMaskSize
        control.localPathStorageDirectory = defaultLocalStoragePath
        var hollow = HollowConfig(count: hollowNodes)
        hollow.cpu = hollowNodeCpu
        hollow.memory = hollowNodeMemory
        hollow.pods = hollowNodePods
        hollow.heartbeatInterval = .milliseconds(Int(hollowHeartbeatSeconds * 1000))
        let kubeconfig = try server.writeKubeconfig()
        logger.info(
            "berth server",
            metadata: [
                "url": "\(server.url)", "kubeconfig": "\(kubeconfig)", "datastore": "\(datastore)",
                "join-token": "\(server.joinTokenPath)",
            ])
        var services: [any Service] = [
            ControlPlane(server: server, config: control, logger: logger),
            HollowNodes(server: server, config: hollow, logger: logger),
        ]
        // As `k3s server`: this machine is a node too, its pods run by the engine in this process
        // (the agent calls its CRI services in process; the socket serves other clients, crictl)
        // unless another runtime's endpoint is given.
        var engineImages: ImageService?
        if !disableAgent {
            var endpoint = agent.containerRuntimeEndpoint
            var runtime: CRIClient?
            if endpoint == nil {
                let local = try LocalRuntime(
                    images: self.images, logger: logger, podNetwork: agent.podNetwork(clusterCIDR: clusterCIDR))
                engineImages = local.images
                services.append(local.service)
                endpoint = local.endpoint
                runtime = local.client
            }
            var agentConfiguration = agent.configuration(runtimeEndpoint: endpoint!, clusterDNS: clusterDNS)
            agentConfiguration.clusterCIDR = clusterCIDR
            agentConfiguration.podNetworkBackend =
                clusterCIDR == nil ? nil : PodNetworkBackend(rawValue: agent.flannelBackend)
            if agent.kubeletPort > 0 {
                // Its serving certificate from the cluster CA, for its name and address; the API server
                // presents its kubelet client certificate from the same CA.
                let (cert, key) = try server.pki.kubeletServingCertificate(
                    node: agentConfiguration.nodeName, addresses: [agentConfiguration.internalIP])
                var settings = AgentServerSettings(certificatePEM: cert, keyPEM: key, clientCAPEM: server.pki.caPEM)
                settings.address = agent.kubeletAddress
                settings.port = agent.kubeletPort
                agentConfiguration.server = settings
            }
            services.append(
                NodeAgent(
                    configuration: agentConfiguration,
                    client: LocalClient(server: server, manager: "berth-agent"),
                    sources: StoreSourceProvider(client: LocalClient(server: server, manager: "berth-agent")),
                    runtime: runtime, logger: logger))
        }
        defer { if let engineImages { Task { await engineImages.shutdown() } } }
        try await server.run(
            services: services,
            onReady: { port in
                // One line on stdout when ready, for scripts.
                FileHandle.standardOutput.write(Data("ready \(port)\n".utf8))
            })
    }
}

/// The engine in this process serving the CRI on its socket, for the node agent (of `berth server` or
/// `berth agent`) when no other runtime's endpoint is given.
struct LocalRuntime {
    let images: ImageService
    let service: CRIService
    let endpoint: String
    /// The agent in this process calls the engine directly (the same services, without HTTP/2 over
    /// the socket, which crictl and other clients still use).
    let client: CRIClient

    /// `podNetwork`: the node's pod network the runtime makes once the agent gives it the node's pod
    /// CIDR (nil: pods join the engine's default network).
    init(images options: ImageOptions, logger: Logger, podNetwork: PodNetworkTemplate? = nil) throws {
        images = try options.service()
        let engine = try Engine(
            images: images, exitCommand: try cleanupCommand(options.settings),
            configuration: try options.engineConfiguration())
        var settings = CRIRuntime.Settings.beside(engine)
        settings.podNetwork = podNetwork
        let runtime = try CRIRuntime(engine: engine, settings: settings, logger: logger)
        let socket = engine.layout.run + "/cri.sock"
        let server = CRIServer(runtime: runtime, socketPath: socket)
        service = CRIService(server: server)
        endpoint = "unix://" + socket
        client = CRIClient(inProcess: server.services)
    }
}

/// `berth bench scheduler`: scheduling throughput on hollow nodes (see SchedulingBenchmark).
struct ClusterBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract:
            "Benchmarks: the scheduler and the store on hollow nodes, a CRI runtime's pod start, the service proxy and cluster DNS.",
        subcommands: [Scheduling.self, StoreBench.self, CRIBench.self, ProxyBench.self, DNSBench.self])

    struct Scheduling: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scheduler",
            abstract: "Schedule pending pods onto hollow nodes through the store and report pods/s.")
        @Option(help: "Hollow nodes.") var nodes: Int = 5000
        @Option(help: "Pods.") var pods: Int = 50000
        @Option(help: "Scratch directory for the store (removed afterwards).") var dataDir: String =
            "/tmp/berth-bench-scheduler"
        func run() async throws {
            try? FileManager.default.removeItem(atPath: dataDir)
            defer { try? FileManager.default.removeItem(atPath: dataDir) }
            var logger = Logger(label: "berth.bench")
            logger.logLevel = .warning
            let report = try await SchedulingBenchmark.run(nodes: nodes, pods: pods, dataDir: dataDir, logger: logger)
            print(report)
            if !report.violations.isEmpty { throw ExitCode(1) }
        }
    }
}

/// The node agent's options, as the kubelet spells the ones it shares.
struct AgentOptions: ParsableArguments {
    @Option(help: "The Node's name (default the host's name).") var nodeName: String?
    @Option(
        name: .customLong("container-runtime-endpoint"),
        help: "A CRI runtime's socket (unix:///run/containerd/containerd.sock); default the engine in this process.")
    var containerRuntimeEndpoint: String?
    @Option(help: "The agent's state (pods' volumes).") var agentRoot = "/var/lib/berth/agent"
    @Option(help: "Where pods' logs go.") var podLogDir = "/var/log/pods"
    @Option(help: "The address the Node reports (default the first non-loopback IPv4 address).") var nodeIP: String?
    @Option(help: "Resources kept for the system, e.g. cpu=500m,memory=1Gi.") var systemReserved = ""
    @Option(help: "Pods this node takes.") var maxPods = 110
    @Option(help: "The cgroup pods go under, by QoS class beneath it.") var cgroupRoot = "/kubepods"
    @Option(
        help:
            "Cluster DNS addresses pods use (comma-separated; \"\": the node's resolv.conf); the agent answers the first itself (the kube-dns Service address). Default: the service CIDR's tenth address for `berth server`, 10.96.0.10 for `berth agent`."
    )
    var clusterDNS: String?
    @Flag(help: "Answer no cluster DNS on this node (another server answers --cluster-dns).")
    var disableClusterDNS = false
    @Flag(help: "Enforce no NetworkPolicies on this node's pods (another agent does, or none).")
    var disableNetworkPolicy = false
    @Option(help: "The cluster's DNS domain.") var clusterDomain = "cluster.local"
    @Option(help: "Image filesystem use (%) above which unused images are removed.") var imageGCHighThreshold = 85
    @Option(help: "Image filesystem use (%) image garbage collection brings it down to.") var imageGCLowThreshold = 80
    @Option(help: "Seconds an image must be unused before it may be removed.") var imageMinimumGCAge = 120
    @Option(help: "Seconds between image garbage collections.") var imageGCPeriod = 300
    @Option(help: "The port of the agent's HTTPS API for logs, exec and attach (0: none).") var kubeletPort = 10250
    @Option(help: "The address the agent's HTTPS API listens on.") var kubeletAddress = "0.0.0.0"
    @Option(
        help:
            "Seconds the node's Lease lasts, renewed every quarter of it (the kubelet's nodeLeaseDurationSeconds); keep it at most the server's --node-monitor-grace-seconds."
    )
    var nodeLeaseDurationSeconds = 40
    @Option(help: "A directory of static pod manifests the node runs whatever the API server says.")
    var podManifestPath: String?
    @Option(help: "Seconds between reads of --pod-manifest-path when nothing reported a change.")
    var fileCheckFrequency = 20
    @Option(
        help:
            "Hard eviction thresholds, e.g. memory.available<100Mi,nodefs.available<10% (the kubelet's defaults when not given)."
    )
    var evictionHard: String?
    @Option(help: "How long a pressure condition lasts after its threshold clears (a Go duration, e.g. 5m0s).")
    var evictionPressureTransitionPeriod = "5m0s"
    @Option(help: "How often eviction signals are observed (a Go duration; the kubelet's is a fixed 10s).")
    var evictionMonitoringInterval = "10s"
    @Flag(
        help:
            "Route no Services on this node: the agent's service proxy (kube-proxy's job, in nftables) is off, as when another proxy owns them."
    )
    var disableKubeProxy = false
    @Option(
        help:
            "Pods' addresses (IPv4 CIDR): each node's pod CIDR is a block of it, traffic between them is not masqueraded, Service traffic from outside them is (kube-proxy's --cluster-cidr). `berth server`'s default 10.42.0.0/16 (\"\": no node pod CIDRs)."
    )
    var clusterCIDR: String?
    @Option(
        help:
            "How pods reach other nodes' pods (k3s's flag): auto (a direct route where the node shares a link, VXLAN where not), host-gw, vxlan, or none (something else routes pod CIDRs)."
    )
    var flannelBackend: String = PodNetworkBackend.auto.rawValue

    func validate() throws {
        if PodNetworkBackend(rawValue: flannelBackend) == nil {
            let known = PodNetworkBackend.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("--flannel-backend: \"\(flannelBackend)\" is not one of \(known)")
        }
        if let nodeIP, IPv4Address(nodeIP) == nil {
            throw ValidationError("--node-ip: \"\(nodeIP)\" is not an IPv4 address")
        }
        if let clusterCIDR, !clusterCIDR.isEmpty, IPv4Subnet(clusterCIDR, strict: false) == nil {
            throw ValidationError("--cluster-cidr: \"\(clusterCIDR)\" is not an IPv4 CIDR (such as 10.244.0.0/16)")
        }
        if let evictionHard {
            do { _ = try EvictionThreshold.parse(evictionHard) } catch { throw ValidationError(error.description) }
        }
        for (flag, text) in [
            ("--eviction-pressure-transition-period", evictionPressureTransitionPeriod),
            ("--eviction-monitoring-interval", evictionMonitoringInterval),
        ] where MetaV1.Duration(text).map({ $0.nanoseconds < 0 }) ?? true {
            throw ValidationError("\(flag): \"\(text)\" is not a duration (such as 30s or 5m0s)")
        }
        guard (0...100).contains(imageGCHighThreshold), (0...100).contains(imageGCLowThreshold) else {
            throw ValidationError("--image-gc-high-threshold and --image-gc-low-threshold must be between 0 and 100")
        }
        guard imageGCLowThreshold <= imageGCHighThreshold else {
            throw ValidationError(
                "--image-gc-low-threshold (\(imageGCLowThreshold)) must be less than --image-gc-high-threshold (\(imageGCHighThreshold))"
            )
        }
    }

    /// The pod network the engine in this process makes on the node's pod CIDR: for the cluster's pod
    /// range, with the MTU the backend leaves (nil without a cluster CIDR, or with backend none and
    /// its routes someone else's — the template is still the engine's, so pods get the node's block).
    func podNetwork(clusterCIDR: String?) -> PodNetworkTemplate? {
        guard let clusterCIDR, !clusterCIDR.isEmpty, let backend = PodNetworkBackend(rawValue: flannelBackend) else {
            return nil
        }
        return PodNetworkTemplate(clusterCIDR: clusterCIDR, mtu: backend.podMTU(nodeIP: nodeIP))
    }

    /// `clusterDNS`: the default when `--cluster-dns` is not given (the server's, from its service CIDR).
    func configuration(runtimeEndpoint: String, clusterDNS defaultDNS: String = "10.96.0.10") -> AgentConfiguration {
        let host = ((try? String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8)) ?? "localhost")
            .trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        var configuration = AgentConfiguration(nodeName: nodeName ?? host, runtimeEndpoint: runtimeEndpoint)
        configuration.rootDirectory = agentRoot
        configuration.podLogDirectory = podLogDir
        configuration.nodeIP = nodeIP
        configuration.maxPods = maxPods
        configuration.cgroupRoot = cgroupRoot
        configuration.clusterDNS = (clusterDNS ?? defaultDNS).split(separator: ",").map(String.init)
        configuration.serveClusterDNS = !disableClusterDNS && !configuration.clusterDNS.isEmpty
        configuration.clusterDomain = clusterDomain
        configuration.imageGCHighThresholdPercent = imageGCHighThreshold
        configuration.imageGCLowThresholdPercent = min(imageGCLowThreshold, imageGCHighThreshold)
        configuration.imageMinimumGCAge = .seconds(max(0, imageMinimumGCAge))
        configuration.imageGCInterval = .seconds(max(1, imageGCPeriod))
        configuration.podManifestPath = podManifestPath
        if let evictionHard, let thresholds = try? EvictionThreshold.parse(evictionHard) {
            configuration.evictionHard = thresholds
        }
        if let period = MetaV1.Duration(evictionPressureTransitionPeriod) {
            configuration.evictionPressureTransitionPeriod = .nanoseconds(period.nanoseconds)
        }
        if let interval = MetaV1.Duration(evictionMonitoringInterval), interval.nanoseconds > 0 {
            configuration.evictionMonitoringInterval = .nanoseconds(interval.nanoseconds)
        }
        configuration.fileCheckFrequency = .seconds(max(1, fileCheckFrequency))
        configuration.leaseDurationSeconds = max(4, nodeLeaseDurationSeconds)
        configuration.leaseInterval = .milliseconds(max(4, nodeLeaseDurationSeconds) * 250)
        configuration.proxyServices = !disableKubeProxy
        configuration.enforceNetworkPolicies = !disableNetworkPolicy
        configuration.clusterCIDR = clusterCIDR?.isEmpty == false ? clusterCIDR : nil
        if configuration.clusterCIDR != nil {
            configuration.podNetworkBackend = PodNetworkBackend(rawValue: flannelBackend)
        }
        for pair in systemReserved.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { configuration.systemReserved[parts[0]] = parts[1] }
        }
        return configuration
    }
}

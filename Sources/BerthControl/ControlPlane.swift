import BerthAPI
import BerthStore
import Foundation
import Logging
import ServiceLifecycle

/// How the scheduler, controllers and hollow nodes behave. Defaults detect a dead node much faster than
/// Kubernetes (40 s grace, 300 s eviction): NotReady within 10 s, pods replaced within 20 s.
public struct ControlPlaneConfig: Sendable {
    public var scheduler = true
    public var controllers = true
    /// Run the garbage collector even when the other controllers are off (with them it is one of them):
    /// cascading deletion happens only there, so an API server without it would never finish a
    /// Foreground or Orphan delete nor remove a deleted owner's dependents.
    public var garbageCollector = true
    /// A node whose heartbeat (Lease renewTime or Ready condition) is older than this is NotReady.
    public var nodeMonitorGracePeriod: Duration = .seconds(8)
    /// How often node health is checked.
    public var nodeMonitorPeriod: Duration = .seconds(1)
    /// Workers per controller.
    public var workers = 4
    /// Pods created or deleted concurrently by one ReplicaSet sync.
    public var burst = 500
    /// The scheduler's name in pod.spec.schedulerName it serves ("default-scheduler" upstream).
    public var schedulerName = "default-scheduler"
    /// Percentage of nodes to score (0 = kube-scheduler's adaptive default).
    public var percentageOfNodesToScore = 0
    /// Pods' addresses: each Node gets a block of ``nodeCIDRMaskSize`` bits out of it in spec.podCIDR
    /// (kube-controller-manager's --cluster-cidr with --allocate-node-cidrs); nil: no node IPAM.
    public var clusterCIDR: String?
    public var nodeCIDRMaskSize = 24
    /// How often each HorizontalPodAutoscaler is evaluated (kube-controller-manager's
    /// --horizontal-pod-autoscaler-sync-period).
    public var horizontalPodAutoscalerSyncPeriod: Duration = .seconds(15)
    /// How long after a pod starts its CPU samples are trusted only once it has been Ready for a whole
    /// metrics window (--horizontal-pod-autoscaler-cpu-initialization-period).
    public var horizontalPodAutoscalerCPUInitializationPeriod: Duration = .seconds(300)
    /// How soon after its start a pod's Ready condition may turn False and still mean "never Ready yet"
    /// (--horizontal-pod-autoscaler-initial-readiness-delay).
    public var horizontalPodAutoscalerInitialReadinessDelay: Duration = .seconds(30)
    /// Where the local-path provisioner puts volumes on their nodes (k3s's
    /// /var/lib/rancher/k3s/storage): `<this>/pvc-<uid>_<namespace>_<name>`.
    public var localPathStorageDirectory = "/var/lib/berth/storage"
    /// The longest certificate the CSR signer issues, and what it issues when a request names no
    /// expirationSeconds (kube-controller-manager's --cluster-signing-duration, one year).
    public var clusterSigningDuration: Duration = .seconds(365 * 24 * 3600)
    /// How often the CSR cleaner looks for requests to remove (upstream: hourly).
    public var certificateCleanupInterval: Duration = .seconds(3600)
    public init() {}
}

/// What every controller gets: a client (its own field manager), the shared informers, an event
/// recorder, a logger and the configuration.
///
/// Loops see the cluster only through these (never the API server's internals), so the same loop runs
/// in the server's process, against a ``FakeCluster`` in a unit test, or over HTTPS on another machine.
public struct ControllerContext: Sendable {
    public let informers: InformerFactory
    public let events: EventRecorder
    public let logger: Logger
    public let config: ControlPlaneConfig
    /// What some loops need to know of the API server: its address (the `kubernetes` Service's endpoint)
    /// and the keys the token controller signs with.
    public let facts: ServerFacts
    let clients: @Sendable (String) -> any KubeClient

    /// Loops inside the API server's process: informers over its store, writes through its handler.
    public init(
        server: APIServer, informers: InformerFactory, events: EventRecorder, logger: Logger,
        config: ControlPlaneConfig
    ) {
        self.informers = informers
        self.events = events
        self.logger = logger
        self.config = config
        self.facts = ServerFacts(server)
        self.clients = { LocalClient(server: server, manager: $0) }
    }

    /// Loops over any client and informers, e.g. a ``FakeCluster`` in unit tests.
    public init(
        client: @escaping @Sendable (String) -> any KubeClient, informers: InformerFactory, events: EventRecorder,
        logger: Logger, config: ControlPlaneConfig, facts: ServerFacts = ServerFacts()
    ) {
        self.facts = facts
        self.informers = informers
        self.events = events
        self.logger = logger
        self.config = config
        self.clients = client
    }

    /// The typed client a loop writes through, as field manager `manager`.
    public func client(_ manager: String) -> any KubeClient { clients(manager) }
}

/// The API server facts loops use, taken from the server in process or given by a test.
public struct ServerFacts: Sendable {
    /// Where the `kubernetes` Service's endpoints point.
    public var address: (ip: String, port: Int64)
    public var caPEM: String
    /// Signs service-account tokens (nil: the token controller cannot run).
    public var serviceAccountSigner: ServiceAccountTokenSigner?
    /// The cluster CA with its key, which issues the certificates of approved CSRs (nil: no signer runs).
    public var certificateAuthority: CertificateAuthority?

    public init(
        address: (ip: String, port: Int64) = ("127.0.0.1", 6443), caPEM: String = "",
        serviceAccountSigner: ServiceAccountTokenSigner? = nil, certificateAuthority: CertificateAuthority? = nil
    ) {
        self.address = address
        self.caPEM = caPEM
        self.serviceAccountSigner = serviceAccountSigner
        self.certificateAuthority = certificateAuthority
    }

    init(_ server: APIServer) {
        self.init(
            address: ServiceBackends.apiServerAddress(server), caPEM: server.pki.caPEM,
            serviceAccountSigner: server.pki.serviceAccountSigner,
            certificateAuthority: try? server.pki.certificateAuthority())
    }
}

/// A long-running control loop, started when this server becomes leader and cancelled when it stops.
public protocol ControlLoop: Sendable {
    var name: String { get }
    func run() async
}

/// The run-once half of the control plane. With leader election on, it runs only while this server holds
/// the kube-system/berth-controller-manager Lease, so of several servers on one etcd exactly one schedules.
public final class ControlPlane: Service, @unchecked Sendable {
    let server: APIServer
    let config: ControlPlaneConfig
    let logger: Logger

    public init(
        server: APIServer, config: ControlPlaneConfig = .init(), logger: Logger = Logger(label: "berth.control")
    ) {
        self.server = server; self.config = config; self.logger = logger
    }

    /// Builds every enabled loop over fresh informers (a new leader starts from a fresh list).
    static func makeLoops(_ ctx: ControllerContext) -> [any ControlLoop] {
        var loops: [any ControlLoop] = []
        if ctx.config.scheduler { loops.append(Scheduler(ctx)) }
        if ctx.config.controllers {
            loops += controllerLoops(ctx)
        } else if ctx.config.garbageCollector {
            loops.append(GarbageCollector(ctx))
        }
        return loops
    }

    /// Runs the loops until cancelled.
    public static func runLeading(server: APIServer, config: ControlPlaneConfig, logger: Logger) async {
        let factory = InformerFactory(client: LocalClient(server: server, manager: "berth-informer"), logger: logger)
        let ctx = ControllerContext(
            server: server, informers: factory, events: EventRecorder(), logger: logger, config: config)
        let loops = makeLoops(ctx)
        await withTaskGroup(of: Void.self) { g in
            g.addTask { await factory.run() }
            g.addTask { await ctx.events.run(client: ctx.client("berth-events")) }
            await factory.waitForSync()
            // Cancelled before the first list (leadership lost, shutting down): start nothing.
            if Task.isCancelled { g.cancelAll(); return }
            logger.info("control plane started", metadata: ["loops": "\(loops.map(\.name).joined(separator: ","))"])
            for loop in loops { g.addTask { await loop.run() } }
            await g.waitForAll()
        }
    }

    public func run() async throws {
        let (server, config, logger) = (self.server, self.config, self.logger)
        guard let elector = server.elector else {
            await cancelWhenGracefulShutdown {
                await Self.runLeading(server: server, config: config, logger: logger)
            }
            return
        }
        await cancelWhenGracefulShutdown {
            await Self.follow(elector, server: server, config: config, logger: logger)
        }
    }

    /// Starts the loops each time this server becomes leader and stops them when it is no longer.
    static func follow(_ elector: LeaderElector, server: APIServer, config: ControlPlaneConfig, logger: Logger) async {
        var current: Task<Void, Never>?
        for await leading in elector.leadership {
            if Task.isCancelled { break }
            current?.cancel()
            _ = await current?.value
            current = nil
            if leading { current = Task { await runLeading(server: server, config: config, logger: logger) } }
        }
        current?.cancel()
        _ = await current?.value
    }
}

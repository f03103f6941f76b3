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
    public init() {}
}

/// What every controller gets: a client (its own field manager), the shared informers, an event
/// recorder, a logger and the configuration.
public struct ControllerContext: Sendable {
    public let server: APIServer
    public let informers: InformerFactory
    public let events: EventRecorder
    public let logger: Logger
    public let config: ControlPlaneConfig
    public func client(_ manager: String) -> LocalClient { LocalClient(server: server, manager: manager) }
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

    public init(server: APIServer, config: ControlPlaneConfig = .init(), logger: Logger = Logger(label: "berth.control")) {
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
        let ctx = ControllerContext(server: server, informers: factory, events: EventRecorder(), logger: logger, config: config)
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
            try? await cancelWhenGracefulShutdown { await Self.runLeading(server: server, config: config, logger: logger) }
            return
        }
        try? await cancelWhenGracefulShutdown { await Self.follow(elector, server: server, config: config, logger: logger) }
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

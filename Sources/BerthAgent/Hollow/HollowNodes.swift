import BerthAPI
import BerthCRI
import BerthControl
import BerthKube
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Simulated nodes, kubemark's design: each is the real node agent (``NodeAgent``) over a
/// ``FakeRuntime`` in this process. It registers its Node and Lease and renews them, and its pods go
/// through the agent's own sync — sandbox, image, containers created and started, status posted from
/// what the runtime reports, graceful termination and the final delete — with containers that run
/// nothing. They let the control plane be driven at thousands of nodes and let users plan capacity.
///
/// What thousands of agents would each run alone is shared: one pod informer (its cache indexed by
/// node), one queue with one pool of workers, one event writer, one heartbeat loop. The agents' own
/// loops that watch the machine (stats, eviction, image collection, the runtime's health, static pods)
/// have no machine to watch and do not run.
///
/// A node stops heartbeating and syncing (a simulated failure) while it carries the annotation
/// `berth.dev/hollow-heartbeat: stop`, and recovers when the annotation is removed.
///
/// Their resource usage is synthetic: each node's Summary (what metrics.k8s.io, `kubectl top` and the
/// autoscaler read) says each running container uses what its pod's `berth.dev/hollow-usage`
/// annotation says (`cpu=250m,memory=64Mi`), nothing without one.
public final class HollowNodes: ServiceLifecycle.Service, NodeSummarySource, @unchecked Sendable {
    public static let stopAnnotation = "berth.dev/hollow-heartbeat"
    public static let usageAnnotation = "berth.dev/hollow-usage"
    let config: HollowConfig
    let logger: Logger
    let client: any KubeClient
    let rootDirectory: String
    let events = EventRecorder()
    let work = WorkQueue(name: "hollow-pods")
    let informers: InformerFactory
    /// Every pod bound to a hollow node, indexed by node.
    let pods: Informer<CoreV1.Pod>
    /// By node name; made once, in init.
    let agents: [String: NodeAgent]
    /// Each node's runtime, connected to its agent when the nodes register.
    let fakes: [String: FakeRuntime]
    private let stopped = Mutex<Set<String>>([])

    /// `rootDirectory`: where the agents keep pods' volumes (default: the server's data directory).
    public init(
        server: APIServer, config: HollowConfig, rootDirectory: String? = nil,
        logger: Logger = Logger(label: "berth.hollow")
    ) {
        self.config = config
        self.logger = logger
        self.rootDirectory = rootDirectory ?? server.config.dataDir + "/hollow"
        client = LocalClient(server: server, manager: "berth-hollow-node") as any KubeClient
        informers = InformerFactory(client: LocalClient(server: server, manager: "berth-hollow-node"), logger: logger)
        let names = Set((0..<config.count).map(config.nodeName))
        pods = Informer(
            source: FilteredSource(
                inner: informers.provider.source(CoreV1.Pod.self, resource: ResourceType.of(CoreV1.Pod.self)),
                keep: { pod in pod.spec.nodeName.map(names.contains) ?? false }),
            name: "hollow-pods", logger: logger)
        pods.addIndex("node") { [$0.spec.nodeName ?? ""] }
        var agents: [String: NodeAgent] = [:]
        var fakes: [String: FakeRuntime] = [:]
        for index in 0..<config.count {
            let name = config.nodeName(index)
            fakes[name] = FakeRuntime(podCIDR: config.podCIDR(index))
            agents[name] = NodeAgent(
                configuration: Self.configuration(index, config, root: self.rootDirectory), client: client,
                pods: NodePods(informer: pods, node: name), podInformer: nil,
                queue: PodQueue(work: work, prefix: name + "|"), events: events, facts: Self.facts(index, config),
                runtime: nil, logger: logger)
        }
        self.agents = agents
        self.fakes = fakes
        if config.count > 0 { server.addNodeSummarySource(self) }
    }

    /// The Summary API's answer for a hollow node that is up: its running pods' containers at the usage
    /// their pods' annotation gives, the node's usage their sum.
    public func summary(node: String) -> JSON? {
        guard agents[node] != nil, !isStopped(node) else { return nil }
        let now = JSON.string(APITime.string())
        func stats(_ nanoCores: Int64, _ bytes: Int64) -> (cpu: JSON, memory: JSON) {
            (["time": now, "usageNanoCores": .int(nanoCores)], ["time": now, "workingSetBytes": .int(bytes)])
        }
        var nodeCPU: Int64 = 0
        var nodeMemory: Int64 = 0
        var podStats: [JSON] = []
        for pod in pods.byIndex("node", node) where pod.status.phase == .running {
            let (cpu, memory) = Self.usage(pod.metadata.annotations[Self.usageAnnotation])
            let containers = pod.spec.containers.map { container -> JSON in
                let (c, m) = stats(cpu, memory)
                return ["name": .string(container.name), "cpu": c, "memory": m]
            }
            let count = Int64(containers.count)
            nodeCPU += cpu * count
            nodeMemory += memory * count
            let (c, m) = stats(cpu * count, memory * count)
            podStats.append([
                "podRef": [
                    "name": .string(pod.metadata.name ?? ""), "namespace": .string(pod.metadata.namespace ?? ""),
                    "uid": .string(pod.metadata.uid ?? ""),
                ],
                "cpu": c, "memory": m, "containers": .array(containers),
            ])
        }
        let (c, m) = stats(nodeCPU, nodeMemory)
        return ["node": ["nodeName": .string(node), "cpu": c, "memory": m], "pods": .array(podStats)]
    }

    /// `cpu=250m,memory=64Mi` as nanocores and bytes per container; what is missing or does not parse
    /// is zero.
    static func usage(_ annotation: String?) -> (nanoCores: Int64, bytes: Int64) {
        var nanoCores: Int64 = 0
        var bytes: Int64 = 0
        for part in (annotation ?? "").split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            switch pair[0] {
            case "cpu": nanoCores = (Quantity.milli(pair[1]) ?? 0) * 1_000_000
            case "memory": bytes = Quantity(pair[1]).value ?? 0
            default: break
            }
        }
        return (max(0, nanoCores), max(0, bytes))
    }

    static func configuration(_ index: Int, _ config: HollowConfig, root: String) -> AgentConfiguration {
        let name = config.nodeName(index)
        var configuration = AgentConfiguration(nodeName: name, runtimeEndpoint: "in-process fake runtime")
        configuration.hollow = true
        configuration.nodeLabels = config.labels(index)
        configuration.podCIDR = config.podCIDR(index)
        configuration.maxPods = Int(Quantity(config.pods).value ?? 110)
        configuration.rootDirectory = root + "/" + name
        configuration.podLogDirectory = root + "/" + name + "/logs"
        configuration.leaseInterval = config.heartbeatInterval
        configuration.statusInterval = config.statusInterval
        return configuration
    }

    /// The machine a hollow node pretends to be.
    static func facts(_ index: Int, _ config: HollowConfig) -> NodeFacts {
        let name = config.nodeName(index)
        return NodeFacts(
            cpus: Int((Quantity(config.cpu).milliValue ?? 8000) / 1000),
            memoryBytes: Quantity(config.memory).value ?? 0, storageBytes: Quantity(config.ephemeralStorage).value ?? 0,
            hostname: name, internalIP: config.internalIP(index), machineID: name, bootID: name,
            kernelVersion: "hollow", osImage: "Berth hollow node")
    }

    func isStopped(_ node: String) -> Bool { stopped.withLock { $0.contains(node) } }

    public func run() async throws {
        guard config.count > 0 else {
            try? await gracefulShutdown()
            return
        }
        let nodes = informers.informer(CoreV1.Node.self)
        nodes.onChange { [weak self] event in self?.nodeChanged(event) }
        pods.onChange { [agents] event in
            guard let agent = event.object.spec.nodeName.flatMap({ agents[$0] }) else { return }
            let key = event.object.cacheKey
            Task { await agent.queue.add(key) }
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.informers.run() }
                group.addTask { await self.pods.run() }
                group.addTask { await self.events.run(client: self.client) }
                group.addTask {
                    // Nodes failed on purpose before a restart stay failed: known before registering.
                    await self.informers.waitForSync()
                    await self.register()
                    async let beats: Void = self.heartbeats()
                    await self.pods.waitForSync()
                    await runWorkers(self.work, count: self.config.workers) { key in
                        guard let bar = key.firstIndex(of: "|") else { return }
                        let node = String(key[..<bar])
                        guard !self.isStopped(node), let agent = self.agents[node] else { return }
                        try await agent.syncPod(String(key[key.index(after: bar)...]))
                    } onError: { key, error in
                        self.logger.debug("hollow pod sync failed", metadata: ["pod": "\(key)", "error": "\(error)"])
                    }
                    await beats
                }
                await group.waitForAll()
            }
        }
        for agent in agents.values { await agent.cri?.close() }
    }

    /// The stop annotation put on or taken off, and a node the node controller marked not ready.
    func nodeChanged(_ event: InformerEvent<CoreV1.Node>) {
        let name = event.object.metadata.name ?? ""
        guard let agent = agents[name] else { return }
        if case .deleted = event { return }
        let stop = event.object.metadata.annotations[Self.stopAnnotation] == "stop"
        let wasStopped = stopped.withLock { set in
            defer { if stop { set.insert(name) } else { set.remove(name) } }
            return set.contains(name)
        }
        if wasStopped && !stop {
            // Back from a simulated outage: status and Lease at once, then every pod looked at again
            // (the node controller marked them not ready meanwhile).
            Task {
                guard agent.cri != nil else { return }  // not registered yet: registration reports it
                await agent.renewLease()
                await agent.postStatus()
                for pod in self.pods.byIndex("node", name) { await agent.queue.add(pod.cacheKey) }
            }
        } else if !stop, case .updated(_, let node) = event,
            node.status.conditions.first(where: { $0.type == .ready })?.status != .true
        {
            Task { if agent.cri != nil { await agent.postStatus() } }
        }
    }

    /// Connects every agent to its runtime and registers its Node and Lease, many at a time.
    func register() async {
        await forEachConcurrently(agents.values, width: 64) { agent in
            let name = agent.configuration.nodeName
            do {
                if agent.cri == nil { try await agent.connect(CRIClient(inProcess: self.fakes[name]!.services)) }
                if self.isStopped(name) { return }
                try await agent.register()
            } catch {
                self.logger.warning(
                    "hollow node registration failed", metadata: ["node": "\(name)", "error": "\(error)"])
            }
        }
        logger.info("hollow nodes registered", metadata: ["count": "\(config.count)"])
    }

    /// Every node's Lease renewed each heartbeat interval, its status posted each status interval.
    func heartbeats() async {
        var lastStatus = ContinuousClock.now
        let names = agents.keys.sorted()
        var spent = Duration.zero
        while !Task.isCancelled {
            // Registration renewed every Lease just now: the first round waits a whole interval.
            if spent < config.heartbeatInterval { try? await Task.sleep(for: config.heartbeatInterval - spent) }
            if Task.isCancelled { break }
            let started = ContinuousClock.now
            let live = names.filter { !isStopped($0) }
            await forEachConcurrently(live, width: 64) { await self.agents[$0]?.renewLease() }
            if ContinuousClock.now - lastStatus >= config.statusInterval {
                lastStatus = .now
                await forEachConcurrently(live, width: 32) { await self.agents[$0]?.postStatus() }
            }
            spent = ContinuousClock.now - started
        }
    }
}

/// One hollow node's pods: its share of the informer of every hollow node's pods.
struct NodePods: BoundPods {
    let informer: Informer<CoreV1.Pod>
    let node: String

    func get(_ key: String) -> CoreV1.Pod? {
        guard let pod = informer.get(key), pod.spec.nodeName == node else { return nil }
        return pod
    }

    func list() -> [CoreV1.Pod] { informer.byIndex("node", node) }
}

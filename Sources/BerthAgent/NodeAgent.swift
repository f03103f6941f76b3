import BerthAPI
import BerthCRI
import BerthCRIProtocol
import BerthControl
import BerthJSON
import BerthKube
import BerthOS
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import GRPCCore

/// The node agent (the kubelet's job): registers this machine as a Node, renews its Lease, watches the
/// pods bound to it and runs them through a CRI runtime, reporting their status. It knows containers
/// only through ``CRIClient``, so Berth's engine and containerd serve it alike.
public final class NodeAgent: ServiceLifecycle.Service, @unchecked Sendable {
    let configuration: AgentConfiguration
    let client: any KubeClient
    /// Connected in ``run()`` once the runtime's socket exists (the engine in the same process may
    /// still be binding it); the agent reaches containers only through it.
    private(set) var cri: CRIClient!
    let logger: Logger
    let facts: NodeFacts
    let events: EventRecorder
    let recorder: ComponentRecorder
    let queue: PodQueue
    let state = PodRuntimeState()
    let probes = Prober()
    let stats: NodeStats
    let imageUse = ImageUse()
    /// The API's pods bound to this node (mirror pods among them: see ``pod(_:)``).
    let pods: any BoundPods
    /// The informer behind ``pods`` when the agent runs its own (nil for a hollow node's share of one).
    private let podInformer: Informer<CoreV1.Pod>?
    let staticPods: StaticPods
    /// The service proxy and the cluster DNS this node runs (nil: neither, as for hollow nodes).
    let networkServices: NodeNetworkServices?
    /// The node's pod CIDR for the runtime and the routes to other nodes' (nil: the runtime's network
    /// is all there is, as for hollow nodes and agents without a cluster CIDR).
    let podNetwork: NodePodNetwork?
    let eviction: EvictionManager
    let tokens = ServiceAccountTokens()
    /// Removes the data of local-path volumes of this node once they are deleted (nil: a hollow node).
    let localVolumes: LocalVolumeCleanup?
    /// The runtime's name as container IDs carry it (`berth://…`, `containerd://…`).
    private(set) var runtimeName = "berth"
    private(set) var runtimeVersion = ""
    private(set) var nodeUID: String?
    /// What the last runtime status check found wrong (the kubelet's runtime state), nil: nothing.
    let runtimeProblem = Mutex<String?>(nil)
    private var lease: CoordinationV1.Lease?

    /// `runtime`: a runtime in this process (`berth server`'s engine), else the agent connects to
    /// `configuration.runtimeEndpoint` when it runs.
    /// `clusterSources`: where the node's network services read the cluster's objects when `sources`
    /// holds back what is not this node's (`berth agent`'s pods watch); default `sources`.
    public convenience init(
        configuration: AgentConfiguration, client: any KubeClient, sources: any ObjectSourceProvider,
        clusterSources: (any ObjectSourceProvider)? = nil, runtime: CRIClient? = nil,
        logger: Logger = Logger(label: "berth.agent")
    ) {
        let cluster = clusterSources ?? sources
        let name = configuration.nodeName
        let informer = Informer(
            source: FilteredSource(
                inner: sources.source(CoreV1.Pod.self, resource: ResourceType.of(CoreV1.Pod.self)),
                keep: { $0.spec.nodeName == name }),
            name: "pods", logger: logger)
        let events = EventRecorder()
        self.init(
            configuration: configuration, client: client, pods: informer, podInformer: informer,
            queue: PodQueue(work: WorkQueue(name: "pods"), prefix: ""), events: events,
            facts: NodeFacts.read(rootDirectory: configuration.rootDirectory, nodeIP: configuration.nodeIP),
            runtime: runtime, logger: logger,
            networkServices: NodeNetworkServices.make(
                configuration: configuration, sources: cluster, events: events, logger: logger),
            podNetwork: configuration.podNetworkBackend.map { backend in
                let recorder = events.component("berth-agent")
                let node = configuration.nodeReference
                return NodePodNetwork(
                    configuration: configuration, backend: backend, sources: cluster, logger: logger
                ) { recorder.record(node, type: "Warning", reason: "PodNetworkFailed", message: $0) }
            },
            localVolumes: LocalVolumeCleanup(
                nodeName: name, client: client, sources: cluster, events: events.component("berth-agent"),
                logger: logger))
    }

    /// An agent whose parts are given: a hollow node's, with its pods, queue and events shared with
    /// the other hollow nodes, its facts made up, and its runtime a fake in this process.
    init(
        configuration: AgentConfiguration, client: any KubeClient, pods: any BoundPods,
        podInformer: Informer<CoreV1.Pod>?, queue: PodQueue, events: EventRecorder, facts: NodeFacts,
        runtime: CRIClient?, logger: Logger, networkServices: NodeNetworkServices? = nil,
        podNetwork: NodePodNetwork? = nil, localVolumes: LocalVolumeCleanup? = nil
    ) {
        self.localVolumes = localVolumes
        self.networkServices = networkServices
        self.podNetwork = podNetwork
        self.configuration = configuration
        self.client = client
        self.pods = pods
        self.podInformer = podInformer
        self.queue = queue
        self.logger = logger
        self.facts = facts
        self.events = events
        cri = runtime
        recorder = events.component("kubelet")
        stats = NodeStats(nodeName: configuration.nodeName)
        eviction = EvictionManager(
            thresholds: configuration.evictionHard, transitionPeriod: configuration.evictionPressureTransitionPeriod)
        staticPods = StaticPods(
            directory: configuration.podManifestPath, nodeName: configuration.nodeName, logger: logger)
    }

    /// Asks `runtime` its version and, once it answers, reaches containers through it (a hollow node's
    /// fake in process, or the socket ``connectRuntime()`` found answering).
    func connect(_ runtime: CRIClient, options: CallOptions = .defaults) async throws {
        let version = try await runtime.runtime.version(Runtime_V1_VersionRequest(), options: options)
        cri = runtime
        runtimeName = version.runtimeName
        runtimeVersion = version.runtimeVersion
    }

    public func run() async throws {
        try FileManager.default.createDirectory(
            atPath: configuration.rootDirectory + "/pods", withIntermediateDirectories: true)
        if let runtime = cri { try await connect(runtime) } else { try await connectRuntime() }
        // Registered Ready only if the runtime is (a pod network waiting for its CIDR is not): no pod
        // is scheduled here before its sandbox can have an address.
        let problem = await runtimeStatusProblem()
        runtimeProblem.withLock { $0 = problem }
        // SIGTERM while the server is unreachable ends the attempts (and the agent).
        try await cancelWhenGracefulShutdown { try await self.registerUntilAccepted() }
        guard let podInformer else { throw AgentError("an agent without an informer of its own runs as a hollow node") }
        podInformer.onChange { [queue] event in
            let key = event.object.cacheKey
            Task { await queue.add(key) }
        }
        logger.info(
            "node agent started",
            metadata: ["node": "\(configuration.nodeName)", "runtime": "\(runtimeName) \(runtimeVersion)"])
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await podInformer.run() }
                if self.configuration.releasesStartupCode {
                    group.addTask {
                        await podInformer.waitForSync()
                        await self.keepResidentSetSmall()
                    }
                }
                group.addTask { await self.events.run(client: self.client) }
                if let network = self.networkServices { group.addTask { await network.run() } }
                if let localVolumes = self.localVolumes { group.addTask { await localVolumes.run() } }
                if let podNetwork = self.podNetwork {
                    group.addTask {
                        await podNetwork.run(runtime: self.cri, client: self.client) { await self.checkRuntime() }
                    }
                }
                group.addTask { await self.heartbeats() }
                group.addTask { await self.relist() }
                group.addTask { await self.sampleStats() }
                group.addTask { await self.collectImages() }
                group.addTask { await self.manageEvictions() }
                group.addTask { await self.watchRuntime() }
                group.addTask { await self.refreshTokens() }
                group.addTask {
                    await self.staticPods.watch(period: self.configuration.fileCheckFrequency) { keys in
                        for key in keys { await self.queue.add(key) }
                    }
                }
                if let settings = self.configuration.server {
                    group.addTask {
                        do {
                            try await AgentServer(agent: self, settings: settings).run()
                        } catch {
                            self.logger.error(
                                "the agent's HTTPS API stopped: logs, exec and attach are unavailable",
                                metadata: ["address": "\(settings.address):\(settings.port)", "error": "\(error)"])
                        }
                    }
                }
                group.addTask {
                    await podInformer.waitForSync()
                    await runWorkers(self.queue.work, count: self.configuration.podWorkers) { key in
                        // Each sync in a child task of its own: a task keeps the allocator slabs its
                        // deepest call needed until it ends, and the workers live as long as the agent
                        // (with 110 pods the agent's anonymous memory was 7.5 MB, 5.7 MB this way).
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask { try await self.syncPod(key) }
                            try await group.waitForAll()
                        }
                    } onError: { key, error in
                        self.logger.debug("pod sync failed", metadata: ["pod": "\(key)", "error": "\(error)"])
                    }
                }
                await group.waitForAll()
            }
        }
        await cri.close()
    }

    /// Waits for the runtime to answer (up to a minute), connects, and asks the runtime's version. The
    /// socket may exist before anything listens on it — a runtime restarting leaves its old socket file
    /// until it binds again — so the Version call itself is retried, on a fresh connection each time.
    func connectRuntime() async throws {
        let endpoint = configuration.runtimeEndpoint
        let path = endpoint.hasPrefix("unix://") ? String(endpoint.dropFirst("unix://".count)) : endpoint
        let deadline = ContinuousClock.now + .seconds(60)
        var lastError = "the socket \(path) does not exist"
        while ContinuousClock.now < deadline {
            if FileManager.default.fileExists(atPath: path) {
                let client = try CRIClient(endpoint: endpoint)
                var options = CallOptions.defaults
                options.timeout = .seconds(2)
                do {
                    try await connect(client, options: options)
                    return
                } catch {
                    lastError = "\(error)"
                    await client.close()
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw AgentError("the container runtime at \(endpoint) did not answer in 60 s: \(lastError)")
    }

    // MARK: The pods this node runs

    /// The pod the node runs under `key`: its static pod, else the API's pod bound here — but never a
    /// mirror pod, which only shows a static pod to the API (what runs is the static pod's spec).
    func pod(_ key: String) -> CoreV1.Pod? {
        if let staticPod = staticPods.pod(key) { return staticPod }
        guard let pod = pods.get(key), !StaticPodManifest.isMirror(pod) else { return nil }
        return pod
    }

    func pod(namespace: String, name: String) -> CoreV1.Pod? { pod(namespace + "/" + name) }

    /// Every pod the node runs: the API's (mirror pods left out) and the static ones.
    var runningPods: [CoreV1.Pod] {
        pods.list().filter { !StaticPodManifest.isMirror($0) } + staticPods.all
    }

    /// Lets go of code pages and free heap (ResidentMemory) once the pods are listed, and again whenever
    /// a change in the node's pods has settled: the set was different ten seconds ago and is the same
    /// now. What the steady loops need faults back in; what a burst of pod creations touched once does not.
    func keepResidentSetSmall() async {
        func release() {
            ResidentMemory.trimHeap()
            ResidentMemory.releaseExecutablePages()
        }
        release()
        var previous = Set(runningPods.compactMap(\.metadata.uid))
        var changed = false
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(10))
            let current = Set(runningPods.compactMap(\.metadata.uid))
            if current != previous {
                changed = true
            } else if changed {
                changed = false
                release()
            }
            previous = current
        }
    }

    // MARK: The Node

    func nodeObject() -> CoreV1.Node {
        var node = CoreV1.Node()
        node.metadata.name = configuration.nodeName
        node.metadata.labels = [
            "kubernetes.io/hostname": configuration.nodeName, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": Self.architecture, "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": Self.architecture,
        ]
        node.metadata.labels.merge(configuration.nodeLabels) { _, given in given }
        node.metadata.annotations = ["node.alpha.kubernetes.io/ttl": "0"]
        if let cidr = configuration.podCIDR {
            node.spec.podCIDR = cidr
            node.spec.podCIDRs = [cidr]
        }
        node.status = nodeStatus()
        return node
    }

    static let architecture: String = {
        #if arch(x86_64)
        return "amd64"
        #elseif arch(arm64)
        return "arm64"
        #else
        return "unknown"
        #endif
    }()

    /// Capacity from the machine; allocatable less --system-reserved; the conditions the kubelet reports.
    func nodeStatus() -> CoreV1.NodeStatus {
        var status = CoreV1.NodeStatus()
        let capacity: [String: Quantity] = [
            "cpu": Quantity(String(facts.cpus)), "memory": Quantity(Self.kibibytes(facts.memoryBytes)),
            "pods": Quantity(String(configuration.maxPods)),
            "ephemeral-storage": Quantity(Self.kibibytes(facts.storageBytes)),
            "hugepages-2Mi": Quantity("0"), "hugepages-1Gi": Quantity("0"),
        ]
        status.capacity = capacity
        var allocatable = capacity
        for (resource, reserved) in configuration.systemReserved {
            guard let total = capacity[resource] else { continue }
            let reservedQuantity = Quantity(reserved)
            if resource == "cpu" {
                let milli = max(0, (total.milliValue ?? 0) - (reservedQuantity.milliValue ?? 0))
                allocatable[resource] = Quantity("\(milli)m")
            } else {
                let left = max(0, (total.value ?? 0) - (reservedQuantity.value ?? 0))
                allocatable[resource] = Quantity(String(left))
            }
        }
        status.allocatable = allocatable
        status.conditions = Self.conditions(
            pressures: eviction.pressures, runtimeProblem: runtimeProblem.withLock { $0 })
        status.addresses = [
            CoreV1.NodeAddress(type: .internalIP, address: facts.internalIP),
            CoreV1.NodeAddress(type: .hostName, address: facts.hostname),
        ]
        status.daemonEndpoints.kubeletEndpoint.Port = Int32(configuration.server?.port ?? 0)
        status.nodeInfo = CoreV1.NodeSystemInfo(
            machineID: facts.machineID, systemUUID: facts.machineID, bootID: facts.bootID,
            kernelVersion: facts.kernelVersion, osImage: facts.osImage,
            containerRuntimeVersion: "\(runtimeName)://\(runtimeVersion)", kubeletVersion: "v1.32.0-berth",
            kubeProxyVersion: "v1.32.0-berth", operatingSystem: "linux", architecture: Self.architecture)
        return status
    }

    static func kibibytes(_ bytes: Int64) -> String { "\(bytes / 1024)Ki" }

    /// `runtimeProblem`: why the node is not ready (the runtime does not answer, or says it is not
    /// ready), nil when it is.
    static func conditions(pressures: Set<CoreV1.NodeConditionType>, runtimeProblem: String? = nil)
        -> [CoreV1.NodeCondition]
    {
        let now = MetaV1.Time.now()
        func condition(
            _ type: CoreV1.NodeConditionType, _ status: CoreV1.ConditionStatus, _ reason: String, _ message: String
        )
            -> CoreV1.NodeCondition
        {
            CoreV1.NodeCondition(
                type: type, status: status, lastHeartbeatTime: now, lastTransitionTime: now, reason: reason,
                message: message)
        }
        return [
            pressures.contains(.memoryPressure)
                ? condition(
                    .memoryPressure, .true, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
                : condition(
                    .memoryPressure, .false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            pressures.contains(.diskPressure)
                ? condition(.diskPressure, .true, "KubeletHasDiskPressure", "kubelet has disk pressure")
                : condition(.diskPressure, .false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            pressures.contains(.pidPressure)
                ? condition(.pidPressure, .true, "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
                : condition(.pidPressure, .false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            runtimeProblem.map { condition(.ready, .false, "KubeletNotReady", $0) }
                ?? condition(.ready, .true, "KubeletReady", "kubelet is posting ready status"),
        ]
    }

    /// Creates the Node, or takes over the one already registered under this name.
    /// Registers, again and again while the API server cannot be reached or refuses (the kubelet's
    /// "attempting to register node" loop): an agent that starts before its network is up, or while
    /// the server is away, joins when they are back rather than exiting.
    func registerUntilAccepted() async throws {
        var delay = Duration.milliseconds(200)
        while true {
            do {
                try await register()
                return
            } catch {
                if Task.isCancelled { throw error }
                logger.warning(
                    "unable to register the node with the API server; retrying",
                    metadata: ["node": "\(configuration.nodeName)", "in": "\(delay)", "error": "\(error)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(7))
            }
        }
    }

    func register() async throws {
        do {
            let created = try await client.create(nodeObject())
            nodeUID = created.metadata.uid
        } catch let error as APIError where error.code == 409 {
            guard var existing = try await client.get(CoreV1.Node.self, namespace: nil, name: configuration.nodeName)
            else { throw error }
            nodeUID = existing.metadata.uid
            let fresh = nodeStatus()
            existing.status.capacity = fresh.capacity
            existing.status.allocatable = fresh.allocatable
            existing.status.conditions = fresh.conditions
            existing.status.addresses = fresh.addresses
            existing.status.nodeInfo = fresh.nodeInfo
            existing.status.daemonEndpoints = fresh.daemonEndpoints
            _ = try await client.updateStatus(existing)
        }
        await renewLease()
    }

    /// The Lease renewed every `leaseInterval`, the node's status posted every `statusInterval`.
    func heartbeats() async {
        var lastStatus = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.leaseInterval)
            if Task.isCancelled { break }
            await renewLease()
            if ContinuousClock.now - lastStatus >= configuration.statusInterval {
                lastStatus = .now
                await postStatus()
            }
        }
    }

    func postStatus() async {
        guard var node = try? await client.get(CoreV1.Node.self, namespace: nil, name: configuration.nodeName) else {
            return
        }
        let fresh = nodeStatus()
        node.status.conditions = fresh.conditions
        node.status.allocatable = fresh.allocatable
        _ = try? await client.updateStatus(node)
    }

    func renewLease() async {
        let name = configuration.nodeName
        let now = MetaV1.MicroTime.now()
        var lastError: (any Error)?
        for _ in 0..<3 {
            do {
                var current = lease
                if current == nil {
                    current = try await client.get(CoordinationV1.Lease.self, namespace: "kube-node-lease", name: name)
                }
                if var existing = current {
                    existing.spec.renewTime = now
                    existing.spec.holderIdentity = name
                    lease = try await client.update(existing)
                } else {
                    var fresh = CoordinationV1.Lease()
                    fresh.metadata.name = name
                    fresh.metadata.namespace = "kube-node-lease"
                    if let uid = nodeUID {
                        fresh.metadata.ownerReferences = [
                            MetaV1.OwnerReference(apiVersion: "v1", kind: "Node", name: name, uid: uid)
                        ]
                    }
                    fresh.spec.holderIdentity = name
                    fresh.spec.leaseDurationSeconds = Int32(configuration.leaseDurationSeconds)
                    fresh.spec.renewTime = now
                    lease = try await client.create(fresh)
                }
                return
            } catch {
                lease = nil
                lastError = error
            }
        }
        logger.warning(
            "could not renew the node's lease",
            metadata: ["node": "\(name)", "error": "\(lastError.map { "\($0)" } ?? "")"])
    }

    // MARK: The runtime's health

    /// Every 5 s the runtime's Status, as the kubelet checks it: a runtime that does not answer, or is
    /// not RuntimeReady or NetworkReady, makes the node NotReady (posted at once), and Ready again
    /// when it recovers.
    func watchRuntime() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.runtimeCheckInterval)
            await checkRuntime()
        }
    }

    /// Asks the runtime's Status now and posts the node's status when readiness changed (also when the
    /// pod network has just been made: the node need not wait for the next check to be Ready).
    func checkRuntime() async {
        let problem = await runtimeStatusProblem()
        let changed = runtimeProblem.withLock { current in
            defer { current = problem }
            return current != problem
        }
        if changed {
            if let problem {
                logger.warning("the node is not ready", metadata: ["reason": "\(problem)"])
            } else {
                logger.info("the container runtime is ready again")
            }
            await postStatus()
        }
    }

    func runtimeStatusProblem() async -> String? {
        var options = CallOptions.defaults
        options.timeout = .seconds(2)
        let status: Runtime_V1_StatusResponse
        do {
            status = try await cri.runtime.status(Runtime_V1_StatusRequest(), options: options)
        } catch {
            return "container runtime is down: \(Self.message(error))"
        }
        for type in ["RuntimeReady", "NetworkReady"] {
            guard let condition = status.status.conditions.first(where: { $0.type == type }) else { continue }
            if !condition.status {
                let what =
                    type == "RuntimeReady" ? "container runtime not ready" : "container runtime network not ready"
                return "\(what): \(type)=false reason:\(condition.reason) message:\(condition.message)"
            }
        }
        return nil
    }

    // MARK: Probes

    /// A probe that failed once: the kubelet's Unhealthy event.
    func probeFailed(_ kind: Prober.Kind, target: Prober.Target, output: String) async {
        guard let pod = pod(target.podKey) else { return }
        let name = kind.rawValue.prefix(1).uppercased() + kind.rawValue.dropFirst()
        recorder.record(pod, type: "Warning", reason: "Unhealthy", message: "\(name) probe failed: \(output)")
    }

    /// A liveness (or startup) probe failed its threshold: the container is killed with the probe's
    /// grace period (else the pod's) and its restartPolicy decides what follows.
    func restartUnhealthy(_ kind: Prober.Kind, target: Prober.Target, probe: CoreV1.Probe) async {
        var grace = probe.terminationGracePeriodSeconds ?? target.gracePeriod
        if let pod = pod(target.podKey) {
            recorder.record(
                pod, reason: "Killing",
                message: "Container \(target.containerName) failed \(kind.rawValue) probe, will be restarted")
            // Its preStop hook first, as for any kill; what it took comes out of the grace period.
            let spec = (pod.spec.containers + pod.spec.initContainers).first { $0.name == target.containerName }
            grace = await runPreStop(
                spec, pod: pod, containerID: target.containerID, podIP: target.podIP, grace: grace)
        }
        var stop = Runtime_V1_StopContainerRequest()
        stop.containerID = target.containerID
        stop.timeout = grace
        _ = try? await cri.runtime.stopContainer(stop)
        await queue.add(target.podKey)
    }

    /// Samples resource use every `statsInterval` for the stats endpoints.
    func sampleStats() async {
        while !Task.isCancelled {
            await stats.sample(cri)
            try? await Task.sleep(for: configuration.statsInterval)
        }
    }

    // MARK: Noticing container changes (the kubelet's PLEG)

    /// Lists the runtime's containers every second and queues the pods whose containers changed state
    /// (an exit the agent must act on), as the kubelet's pod lifecycle event generator relists.
    func relist() async {
        var previous: [String: Runtime_V1_ContainerState] = [:]
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard let listed = try? await cri.runtime.listContainers(Runtime_V1_ListContainersRequest()) else {
                continue
            }
            var current: [String: Runtime_V1_ContainerState] = [:]
            var changed: Set<String> = []
            for container in listed.containers {
                current[container.id] = container.state
                if previous[container.id] != container.state,
                    let namespace = container.labels[PodLabels.namespace], let name = container.labels[PodLabels.name]
                {
                    changed.insert(namespace + "/" + name)
                }
            }
            previous = current
            for key in changed { await queue.add(key) }
        }
    }
}

/// The labels the agent puts on sandboxes and containers to find a pod's again.
enum PodLabels {
    static let name = "io.kubernetes.pod.name"
    static let namespace = "io.kubernetes.pod.namespace"
    static let uid = "io.kubernetes.pod.uid"
    static let container = "io.kubernetes.container.name"
}

/// Why the agent cannot run, in words for its log.
struct AgentError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

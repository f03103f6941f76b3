import BerthAPI
import BerthKube
import BerthStore
import Foundation
import Logging
import ServiceLifecycle

/// How many hollow nodes, and what each one offers.
public struct HollowConfig: Sendable {
    public var count = 0
    public var namePrefix = "hollow-"
    public var cpu = "8"
    public var memory = "32Gi"
    public var pods = "110"
    public var ephemeralStorage = "100Gi"
    /// Nodes are labelled topology.kubernetes.io/zone=zone-a, zone-b, … round-robin.
    public var zones = 3
    /// How often each node renews its Lease (kubelet: 10 s; the node monitor grace period must be
    /// several times this).
    public var heartbeatInterval: Duration = .seconds(2)
    /// How often the Ready condition's heartbeat is refreshed when nothing changed (kubelet: 5 min).
    public var statusInterval: Duration = .seconds(60)
    /// Pods whose status updates run at once.
    public var workers = 64
    public init(count: Int = 0) { self.count = count }
}

/// Simulated nodes, like kwok: each registers a Node and a Lease, renews the Lease, and reports the pods
/// bound to it Running (with an IP from the node's podCIDR) and finishes their deletion — without
/// containers. They let the control plane be driven at thousands of nodes and let users plan capacity.
///
/// A node stops heartbeating (a simulated failure) while it carries the annotation
/// `berth.dev/hollow-heartbeat: stop`, and recovers when the annotation is removed.
public final class HollowNodes: ServiceLifecycle.Service, @unchecked Sendable {
    public static let stopAnnotation = "berth.dev/hollow-heartbeat"
    let server: APIServer
    let config: HollowConfig
    let logger: Logger
    let client: any KubeClient
    private let lock = NSLock()
    /// Node name → index (for its podCIDR).
    private var index: [String: Int] = [:]
    private var usedIPs: [String: Set<Int>] = [:]
    private var podIP: [String: String] = [:]
    private var stopped: Set<String> = []
    private var leases: [String: CoordinationV1.Lease] = [:]
    private var uids: [String: String] = [:]

    public init(server: APIServer, config: HollowConfig, logger: Logger = Logger(label: "berth.hollow")) {
        self.server = server; self.config = config; self.logger = logger
        client = LocalClient(server: server, manager: "berth-hollow-node") as any KubeClient
    }

    public func nodeName(_ i: Int) -> String { config.namePrefix + String(format: "%05d", i) }
    func isHollow(_ node: String) -> Bool { lock.withLock { index[node] != nil } }
    func isStopped(_ node: String) -> Bool { lock.withLock { stopped.contains(node) } }

    public func run() async throws {
        guard config.count > 0 else {
            try? await gracefulShutdown()
            return
        }
        for i in 0..<config.count { index[nodeName(i)] = i }
        await register()
        let factory = InformerFactory(client: LocalClient(server: server, manager: "berth-hollow-node"), logger: logger)
        let pods = Informer(
            source: factory.provider.source(HollowPod.self, resource: ResourceType.of(CoreV1.Pod.self)), name: "pods",
            logger: logger)
        let nodes = factory.informer(CoreV1.Node.self)
        let queue = WorkQueue(name: "hollow-pods")
        pods.onChange { [weak self] e in
            guard let self, let node = e.object.nodeName, self.isHollow(node) else { return }
            if case .deleted(let p) = e {
                self.release(p)
                return
            }
            let key = e.object.cacheKey
            Task { await queue.add(key) }
        }
        nodes.onChange { [weak self] e in
            guard let self else { return }
            let name = e.object.metadata.name ?? ""
            guard self.isHollow(name) else { return }
            let stop = e.object.metadata.annotations[Self.stopAnnotation] == "stop"
            let wasStopped = self.lock.withLock { () -> Bool in
                let was = self.stopped.contains(name)
                if stop { self.stopped.insert(name) } else { self.stopped.remove(name) }
                return was
            }
            if wasStopped && !stop {
                // Back from a simulated outage: report Ready at once, then look at our pods again.
                Task { await self.reportReady(name, node: e.object) }
                for p in pods.byIndex("node", name) {
                    let k = p.cacheKey
                    Task { await queue.add(k) }
                }
            } else if !stop, case .updated(_, let n) = e, Self.readyStatus(n) != .true {
                Task { await self.reportReady(name, node: n) }
            }
        }
        pods.addIndex("node") { [$0.nodeName ?? ""] }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { g in
                g.addTask { await factory.run() }
                g.addTask { await pods.run() }
                g.addTask { await self.heartbeats() }
                g.addTask {
                    await factory.waitForSync()
                    await pods.waitForSync()
                    await runWorkers(
                        queue, count: self.config.workers,
                        sync: { key in
                            guard let pod = pods.get(key) else { return }
                            try await self.syncPod(pod)
                        },
                        onError: { key, error in
                            self.logger.debug(
                                "hollow pod sync failed", metadata: ["pod": "\(key)", "error": "\(error)"])
                        })
                }
                await g.waitForAll()
            }
        }
    }

    static func readyStatus(_ node: CoreV1.Node) -> CoreV1.ConditionStatus? {
        node.status.conditions.first { $0.type == .ready }?.status
    }

    // MARK: nodes

    func nodeObject(_ i: Int) -> CoreV1.Node {
        let name = nodeName(i)
        let zones = max(config.zones, 1)
        let zone = "zone-" + String(UnicodeScalar(UInt8(97 + i % min(zones, 26))))
        let cidr = "10.\(128 + i / 256).\(i % 256).0/24"
        let capacity: [String: Quantity] = [
            "cpu": Quantity(config.cpu), "memory": Quantity(config.memory), "pods": Quantity(config.pods),
            "ephemeral-storage": Quantity(config.ephemeralStorage),
        ]
        var node = CoreV1.Node()
        node.metadata.name = name
        node.metadata.labels = [
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": zone, "node.kubernetes.io/instance-type": "hollow",
            "berth.dev/hollow": "true",
        ]
        node.metadata.annotations = ["node.alpha.kubernetes.io/ttl": "0"]
        node.spec.podCIDR = cidr
        node.spec.podCIDRs = [cidr]
        node.status.capacity = capacity
        node.status.allocatable = capacity
        node.status.conditions = Self.conditions(ready: true)
        // 198.18.0.0/15 is the benchmarking range: these addresses carry no traffic.
        node.status.addresses = [
            CoreV1.NodeAddress(type: .internalIP, address: "198.18.\(i / 256).\(i % 256)"),
            CoreV1.NodeAddress(type: .hostName, address: name),
        ]
        node.status.daemonEndpoints.kubeletEndpoint.Port = 10250
        node.status.nodeInfo = CoreV1.NodeSystemInfo(
            machineID: name, systemUUID: name, bootID: name, kernelVersion: "hollow", osImage: "Berth hollow node",
            containerRuntimeVersion: "hollow://1.0", kubeletVersion: "v1.32.0-berth-hollow",
            kubeProxyVersion: "v1.32.0-berth-hollow", operatingSystem: "linux", architecture: "amd64")
        return node
    }

    static func conditions(ready: Bool) -> [CoreV1.NodeCondition] {
        let now = MetaV1.Time.now()
        func condition(
            _ type: CoreV1.NodeConditionType, _ status: CoreV1.ConditionStatus, _ reason: String,
            _ message: String
        ) -> CoreV1.NodeCondition {
            CoreV1.NodeCondition(
                type: type, status: status, lastHeartbeatTime: now, lastTransitionTime: now, reason: reason,
                message: message)
        }
        return [
            condition(.memoryPressure, .false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition(.diskPressure, .false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition(.pidPressure, .false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition(.ready, ready ? .true : .false, "KubeletReady", "kubelet is posting ready status"),
        ]
    }

    /// Creates (or re-adopts) every node and its Lease, many at a time.
    func register() async {
        await forEachConcurrently(0..<config.count, width: 64) { i in
            let name = self.nodeName(i)
            do {
                let created = try await self.client.create(self.nodeObject(i))
                self.lock.withLock { self.uids[name] = created.metadata.uid }
            } catch let e as APIError where e.code == 409 {
                if let cur = try? await self.client.get(CoreV1.Node.self, namespace: nil, name: name) {
                    self.lock.withLock { self.uids[name] = cur.metadata.uid }
                    if cur.metadata.annotations[Self.stopAnnotation] == "stop" {
                        self.lock.withLock { _ = self.stopped.insert(name) }
                    }
                }
            } catch {
                self.logger.warning(
                    "hollow node registration failed", metadata: ["node": "\(name)", "error": "\(error)"])
            }
            await self.renewLease(name)
        }
        logger.info("hollow nodes registered", metadata: ["count": "\(config.count)"])
    }

    func reportReady(_ name: String, node: CoreV1.Node) async {
        guard !isStopped(name) else { return }
        var n = node
        n.status.conditions = Self.conditions(ready: true)
        _ = try? await client.updateStatus(n)
    }

    func renewLease(_ name: String) async {
        let now = MetaV1.MicroTime.now()
        for _ in 0..<3 {
            var lease = lock.withLock { leases[name] }
            if lease == nil {
                lease = try? await client.get(CoordinationV1.Lease.self, namespace: "kube-node-lease", name: name)
            }
            do {
                if var l = lease {
                    l.spec.renewTime = now
                    l.spec.holderIdentity = name
                    let out = try await client.update(l)
                    lock.withLock { leases[name] = out }
                } else {
                    // Owned by the Node (as kubelet does), so deleting the node deletes its Lease.
                    guard let uid = lock.withLock({ uids[name] }) else { return }
                    var l = CoordinationV1.Lease()
                    l.metadata.name = name
                    l.metadata.namespace = "kube-node-lease"
                    l.metadata.ownerReferences = [
                        MetaV1.OwnerReference(apiVersion: "v1", kind: "Node", name: name, uid: uid)
                    ]
                    l.spec.holderIdentity = name
                    l.spec.leaseDurationSeconds = 40
                    l.spec.renewTime = now
                    let out = try await client.create(l)
                    lock.withLock { leases[name] = out }
                }
                return
            } catch {
                lock.withLock { leases[name] = nil }
            }
        }
    }

    func heartbeats() async {
        var lastStatus = ContinuousClock.now
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let names = (0..<config.count).map(nodeName).filter { !isStopped($0) }
            await forEachConcurrently(names, width: 64) { await self.renewLease($0) }
            if ContinuousClock.now - lastStatus >= config.statusInterval {
                lastStatus = .now
                await forEachConcurrently(names, width: 32) { name in
                    guard !self.isStopped(name),
                        var n = try? await self.client.get(CoreV1.Node.self, namespace: nil, name: name)
                    else { return }
                    let now = MetaV1.Time.now()
                    for i in n.status.conditions.indices { n.status.conditions[i].lastHeartbeatTime = now }
                    _ = try? await self.client.updateStatus(n)
                }
            }
            let spent = ContinuousClock.now - started
            if spent < config.heartbeatInterval { try? await Task.sleep(for: config.heartbeatInterval - spent) }
        }
    }

    // MARK: pods

    /// A pod bound to one of our nodes: report it Running, or finish its deletion.
    func syncPod(_ pod: HollowPod) async throws {
        guard let node = pod.nodeName, !isStopped(node) else { return }
        let ns = pod.metadata.namespace ?? "default"
        let name = pod.metadata.name ?? ""
        if pod.isTerminating {
            // The containers "stop" at once: confirm the deletion (kubelet's final grace-0 delete).
            do {
                try await client.delete(
                    CoreV1.Pod.self, namespace: ns, name: name, gracePeriod: 0, uid: pod.metadata.uid)
            } catch let e as APIError where e.code == 404 || e.code == 409 {}
            return
        }
        let phase = pod.phase ?? .pending
        if phase == .succeeded || phase == .failed || (phase == .running && pod.isReady) { return }
        // Pending, or marked not ready while the node was unreachable: (re)report it running and ready.
        let ip = allocateIP(pod, node: node)
        let now = MetaV1.Time.now()
        let i = lock.withLock { index[node] } ?? 0
        let hostIP = "198.18.\(i / 256).\(i % 256)"
        var status = CoreV1.PodStatus()
        status.phase = .running
        status.hostIP = hostIP
        status.hostIPs = [CoreV1.HostIP(ip: hostIP)]
        status.podIP = ip
        status.podIPs = [CoreV1.PodIP(ip: ip)]
        status.startTime = pod.startTime ?? now
        status.conditions = pod.otherConditions
        for type in HollowPod.reportedConditions {
            status.conditions.append(CoreV1.PodCondition(type: type, status: .true, lastTransitionTime: now))
        }
        let uid = pod.metadata.uid ?? ""
        status.containerStatuses = pod.containers.map { c in
            var container = CoreV1.ContainerStatus()
            container.name = c.name
            container.image = c.image
            container.imageID = "hollow://\(c.image)"
            container.containerID = "hollow://\(uid)/\(c.name)"
            container.ready = true
            container.started = true
            container.state.running = CoreV1.ContainerStateRunning(startedAt: now)
            return container
        }
        // A merge patch of pods/status, as a kubelet's status manager patches it: the fields written
        // here replace the stored ones; the rest of the pod is the server's. The uid and resourceVersion
        // make it apply to the pod as seen, or fail with a 409 and be retried from the next event.
        var patch: JSON = ["status": status.kubeJSON()]
        patch["metadata"] = ["uid": .string(uid), "resourceVersion": .string(pod.metadata.resourceVersion ?? "")]
        do {
            try await client.mergePatch(
                ResourceType.of(CoreV1.Pod.self), namespace: ns, name: name, patch, subresource: "status")
        } catch let e as APIError where e.code == 404 {
            release(pod)
        }
    }

    func allocateIP(_ pod: HollowPod, node: String) -> String {
        let key = pod.cacheKey
        return lock.withLock {
            if let ip = podIP[key] { return ip }
            let i = index[node] ?? 0
            var used = usedIPs[node] ?? []
            var host = 2
            while used.contains(host) && host < 254 { host += 1 }
            used.insert(host)
            usedIPs[node] = used
            let ip = "10.\(128 + i / 256).\(i % 256).\(host)"
            podIP[key] = ip
            return ip
        }
    }

    func release(_ pod: HollowPod) {
        let key = pod.cacheKey
        lock.withLock {
            guard let ip = podIP.removeValue(forKey: key), let node = pod.nodeName,
                let host = Int(ip.split(separator: ".").last ?? "")
            else { return }
            usedIPs[node]?.remove(host)
        }
    }
}

/// Runs `body` for every element, at most `width` at a time.
func forEachConcurrently<S: Sequence>(_ items: S, width: Int, _ body: @escaping @Sendable (S.Element) async -> Void)
    async
where S.Element: Sendable {
    await withTaskGroup(of: Void.self) { g in
        var running = 0
        for item in items {
            if running >= width { _ = await g.next(); running -= 1 }
            g.addTask { await body(item) }
            running += 1
        }
    }
}

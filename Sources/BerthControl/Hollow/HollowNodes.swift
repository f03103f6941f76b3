import BerthAPI
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
public final class HollowNodes: Service, @unchecked Sendable {
    public static let stopAnnotation = "berth.dev/hollow-heartbeat"
    let server: APIServer
    let config: HollowConfig
    let logger: Logger
    let client: LocalClient
    private let lock = NSLock()
    /// Node name → index (for its podCIDR).
    private var index: [String: Int] = [:]
    private var usedIPs: [String: Set<Int>] = [:]
    private var podIP: [String: String] = [:]
    private var stopped: Set<String> = []
    private var leases: [String: JSON] = [:]
    private var uids: [String: String] = [:]

    public init(server: APIServer, config: HollowConfig, logger: Logger = Logger(label: "berth.hollow")) {
        self.server = server; self.config = config; self.logger = logger
        client = LocalClient(server: server, manager: "berth-hollow-node")
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
        let factory = InformerFactory(client: client, logger: logger)
        let pods = factory.informer(Registry.pods)
        let nodes = factory.informer(Registry.nodes)
        let queue = WorkQueue(name: "hollow-pods")
        pods.onChange { [weak self] e in
            guard let self, let node = e.object["spec"]["nodeName"].string, self.isHollow(node) else { return }
            if case .deleted(let p) = e { self.release(p); return }
            let key = UntypedInformer.key(e.object)
            Task { await queue.add(key) }
        }
        nodes.onChange { [weak self] e in
            guard let self else { return }
            let name = e.object["metadata"]["name"].string ?? ""
            guard self.isHollow(name) else { return }
            let stop = e.object["metadata"]["annotations"][Self.stopAnnotation].string == "stop"
            let wasStopped = self.lock.withLock { () -> Bool in
                let was = self.stopped.contains(name)
                if stop { self.stopped.insert(name) } else { self.stopped.remove(name) }
                return was
            }
            if wasStopped && !stop {
                // Back from a simulated outage: report Ready at once, then look at our pods again.
                Task { await self.reportReady(name, node: e.object) }
                for p in pods.byIndex("node", name) { let k = UntypedInformer.key(p); Task { await queue.add(k) } }
            } else if !stop, case .updated(_, let n) = e, Self.readyStatus(n) != "True" {
                Task { await self.reportReady(name, node: n) }
            }
        }
        pods.addIndex("node") { [$0["spec"]["nodeName"].string ?? ""] }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { g in
                g.addTask { await factory.run() }
                g.addTask { await self.heartbeats() }
                g.addTask {
                    await factory.waitForSync()
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

    static func readyStatus(_ node: JSON) -> String? {
        (node["status"]["conditions"].array ?? []).first { $0["type"].string == "Ready" }?["status"].string
    }

    // MARK: nodes

    func nodeObject(_ i: Int) -> JSON {
        let name = nodeName(i)
        let zones = max(config.zones, 1)
        let zone = "zone-" + String(UnicodeScalar(UInt8(97 + i % min(zones, 26))))
        let cidr = "10.\(128 + i / 256).\(i % 256).0/24"
        let capacity: JSON = [
            "cpu": .string(config.cpu), "memory": .string(config.memory), "pods": .string(config.pods),
            "ephemeral-storage": .string(config.ephemeralStorage),
        ]
        return [
            "apiVersion": "v1", "kind": "Node",
            "metadata": [
                "name": .string(name),
                "labels": [
                    "kubernetes.io/hostname": .string(name), "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": .string(zone), "node.kubernetes.io/instance-type": "hollow",
                    "berth.dev/hollow": "true",
                ], "annotations": ["node.alpha.kubernetes.io/ttl": "0"],
            ],
            "spec": ["podCIDR": .string(cidr), "podCIDRs": [.string(cidr)]],
            "status": [
                "capacity": capacity, "allocatable": capacity,
                "conditions": .array(Self.conditions(ready: true)),
                // 198.18.0.0/15 is the benchmarking range: these addresses carry no traffic.
                "addresses": [
                    ["type": "InternalIP", "address": .string("198.18.\(i / 256).\(i % 256)")],
                    ["type": "Hostname", "address": .string(name)],
                ],
                "daemonEndpoints": ["kubeletEndpoint": ["Port": 10250]],
                "nodeInfo": [
                    "kubeletVersion": "v1.32.0-berth-hollow", "kubeProxyVersion": "v1.32.0-berth-hollow",
                    "containerRuntimeVersion": "hollow://1.0", "osImage": "Berth hollow node",
                    "kernelVersion": "hollow",
                    "operatingSystem": "linux", "architecture": "amd64", "machineID": .string(name),
                    "systemUUID": .string(name),
                    "bootID": .string(name),
                ],
            ],
        ]
    }

    static func conditions(ready: Bool) -> [JSON] {
        let now = JSON.string(APITime.string())
        func c(_ type: String, _ status: String, _ reason: String, _ message: String) -> JSON {
            [
                "type": .string(type), "status": .string(status), "reason": .string(reason),
                "message": .string(message),
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            ]
        }
        return [
            c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            c("Ready", ready ? "True" : "False", "KubeletReady", "kubelet is posting ready status"),
        ]
    }

    /// Creates (or re-adopts) every node and its Lease, many at a time.
    func register() async {
        await forEachConcurrently(0..<config.count, width: 64) { i in
            let name = self.nodeName(i)
            do {
                let created = try await self.client.create(Registry.nodes, self.nodeObject(i))
                self.lock.withLock { self.uids[name] = created["metadata"]["uid"].string }
            } catch let e as APIError where e.code == 409 {
                if let cur = try? await self.client.get(Registry.nodes, namespace: nil, name: name) {
                    self.lock.withLock { self.uids[name] = cur["metadata"]["uid"].string }
                    if cur["metadata"]["annotations"][Self.stopAnnotation].string == "stop" {
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

    func reportReady(_ name: String, node: JSON) async {
        guard !isStopped(name) else { return }
        var n = node
        n["status"]["conditions"] = .array(Self.conditions(ready: true))
        _ = try? await client.updateStatus(Registry.nodes, n)
    }

    func renewLease(_ name: String) async {
        let now = JSON.string(APITime.micro())
        for _ in 0..<3 {
            var lease = lock.withLock { leases[name] }
            if lease == nil { lease = try? await client.get(Registry.leases, namespace: "kube-node-lease", name: name) }
            do {
                if var l = lease {
                    l["spec"]["renewTime"] = now
                    l["spec"]["holderIdentity"] = .string(name)
                    let out = try await client.update(Registry.leases, l)
                    lock.withLock { leases[name] = out }
                } else {
                    // Owned by the Node (as kubelet does), so deleting the node deletes its Lease.
                    guard let uid = lock.withLock({ uids[name] }) else { return }
                    let out = try await client.create(
                        Registry.leases,
                        [
                            "metadata": [
                                "name": .string(name), "namespace": "kube-node-lease",
                                "ownerReferences": [
                                    ["apiVersion": "v1", "kind": "Node", "name": .string(name), "uid": .string(uid)]
                                ],
                            ],
                            "spec": ["holderIdentity": .string(name), "leaseDurationSeconds": 40, "renewTime": now],
                        ])
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
                        var n = try? await self.client.get(Registry.nodes, namespace: nil, name: name)
                    else { return }
                    var conds = n["status"]["conditions"].array ?? []
                    for i in conds.indices { conds[i]["lastHeartbeatTime"] = .string(APITime.string()) }
                    n["status"]["conditions"] = .array(conds)
                    _ = try? await self.client.updateStatus(Registry.nodes, n)
                }
            }
            let spent = ContinuousClock.now - started
            if spent < config.heartbeatInterval { try? await Task.sleep(for: config.heartbeatInterval - spent) }
        }
    }

    // MARK: pods

    /// A pod bound to one of our nodes: report it Running, or finish its deletion.
    func syncPod(_ pod: JSON) async throws {
        guard let node = pod["spec"]["nodeName"].string, !isStopped(node) else { return }
        let ns = pod["metadata"]["namespace"].string ?? "default", name = pod["metadata"]["name"].string ?? ""
        if !pod["metadata"]["deletionTimestamp"].isNull {
            // The containers "stop" at once: confirm the deletion (kubelet's final grace-0 delete).
            do {
                try await client.delete(
                    Registry.pods, namespace: ns, name: name, gracePeriod: 0, uid: pod["metadata"]["uid"].string)
            } catch let e as APIError where e.code == 404 || e.code == 409 {}
            return
        }
        let phase = pod["status"]["phase"].string ?? "Pending"
        if phase == "Succeeded" || phase == "Failed" || (phase == "Running" && Objects.isReady(pod)) { return }
        // Pending, or marked not ready while the node was unreachable: (re)report it running and ready.
        var p = pod
        let ip = allocateIP(pod, node: node)
        let now = JSON.string(APITime.string())
        let i = lock.withLock { index[node] } ?? 0
        let hostIP = JSON.string("198.18.\(i / 256).\(i % 256)")
        p["status"]["phase"] = "Running"
        p["status"]["hostIP"] = hostIP
        p["status"]["hostIPs"] = [["ip": hostIP]]
        p["status"]["podIP"] = .string(ip)
        p["status"]["podIPs"] = [["ip": .string(ip)]]
        if p["status"]["startTime"].isNull { p["status"]["startTime"] = now }
        var conds = (p["status"]["conditions"].array ?? []).filter {
            !["Initialized", "Ready", "ContainersReady", "PodReadyToStartContainers"].contains($0["type"].string ?? "")
        }
        for t in ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"] {
            conds.append(["type": .string(t), "status": "True", "lastProbeTime": .null, "lastTransitionTime": now])
        }
        p["status"]["conditions"] = .array(conds)
        let uid = pod["metadata"]["uid"].string ?? ""
        p["status"]["containerStatuses"] = .array(
            (pod["spec"]["containers"].array ?? []).map { c in
                [
                    "name": c["name"], "image": c["image"], "imageID": .string("hollow://\(c["image"].string ?? "")"),
                    "containerID": .string("hollow://\(uid)/\(c["name"].string ?? "")"), "ready": true, "started": true,
                    "restartCount": 0,
                    "state": ["running": ["startedAt": now]],
                ]
            })
        do {
            try await client.updateStatus(Registry.pods, p)
        } catch let e as APIError where e.code == 404 {
            release(pod)
        }
    }

    func allocateIP(_ pod: JSON, node: String) -> String {
        let key = UntypedInformer.key(pod)
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

    func release(_ pod: JSON) {
        let key = UntypedInformer.key(pod)
        lock.withLock {
            guard let ip = podIP.removeValue(forKey: key), let node = pod["spec"]["nodeName"].string,
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

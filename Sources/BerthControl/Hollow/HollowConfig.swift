import BerthKube

/// How many hollow nodes, and what each one offers: the shape shared by the hollow nodes (agents over
/// a fake runtime, in BerthAgent) and the scheduling benchmark (which only registers their Nodes).
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
    /// How often each node posts its status when nothing changed (kubelet: 5 min).
    public var statusInterval: Duration = .seconds(60)
    /// Pods synced at once, over all the hollow nodes.
    public var workers = 64
    public init(count: Int = 0) { self.count = count }

    public func nodeName(_ index: Int) -> String {
        // Five digits, zero-padded: names sort as the nodes were made.
        let digits = String(index)
        return namePrefix + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    /// Its zone's label value: zone-a, zone-b, … round-robin.
    public func zone(_ index: Int) -> String {
        "zone-" + String(UnicodeScalar(UInt8(97 + index % min(max(zones, 1), 26))))
    }

    /// Its own /24 out of 10.128.0.0/9.
    public func podCIDR(_ index: Int) -> String { "10.\(128 + index / 256).\(index % 256).0/24" }

    /// Its InternalIP: 198.18.0.0/15 is the benchmarking range, so these addresses carry no traffic.
    public func internalIP(_ index: Int) -> String { "198.18.\(index / 256).\(index % 256)" }

    /// The labels beside the kubelet's own.
    public func labels(_ index: Int) -> [String: String] {
        [
            "topology.kubernetes.io/zone": zone(index), "node.kubernetes.io/instance-type": "hollow",
            "berth.dev/hollow": "true",
        ]
    }

    /// The Node as registered, for what needs the nodes without agents (the scheduling benchmark).
    public func nodeObject(_ index: Int) -> CoreV1.Node {
        let name = nodeName(index)
        let capacity: [String: Quantity] = [
            "cpu": Quantity(cpu), "memory": Quantity(memory), "pods": Quantity(pods),
            "ephemeral-storage": Quantity(ephemeralStorage),
        ]
        var node = CoreV1.Node()
        node.metadata.name = name
        node.metadata.labels = labels(index).merging([
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        ]) { a, _ in a }
        node.metadata.annotations = ["node.alpha.kubernetes.io/ttl": "0"]
        node.spec.podCIDR = podCIDR(index)
        node.spec.podCIDRs = [podCIDR(index)]
        node.status.capacity = capacity
        node.status.allocatable = capacity
        let now = MetaV1.Time.now()
        node.status.conditions = [
            CoreV1.NodeCondition(
                type: .ready, status: .true, lastHeartbeatTime: now, lastTransitionTime: now, reason: "KubeletReady",
                message: "kubelet is posting ready status")
        ]
        node.status.addresses = [
            CoreV1.NodeAddress(type: .internalIP, address: internalIP(index)),
            CoreV1.NodeAddress(type: .hostName, address: name),
        ]
        return node
    }
}

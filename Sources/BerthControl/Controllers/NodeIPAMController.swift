import BerthAPI
import BerthJSON
import BerthKube
import Logging
import Synchronization

import struct BerthNetwork.IPv4Address
import struct BerthNetwork.IPv4Subnet

/// Node IPAM (kube-controller-manager's range allocator): every Node gets a pod CIDR of its own, a
/// block of `--node-cidr-mask-size` (24) out of the cluster CIDR, in `spec.podCIDR` and
/// `spec.podCIDRs`. The node's agent builds its pod network on it and the other nodes route it to
/// the node. A deleted Node's block is free again. A Node that registered with a block of its own
/// (a hollow node, a kubelet with --pod-cidr) keeps it, and a block inside the cluster CIDR counts as
/// taken, so two nodes never share one.
struct NodeIPAMController: ControlLoop {
    let name = "node-ipam-controller"
    let client: any KubeClient
    let nodes: Informer<CoreV1.Node>
    let events: EventRecorder
    let queue = WorkQueue(name: "node-ipam")
    let blocks: PodCIDRBlocks
    let logger: Logger

    init?(_ ctx: ControllerContext) {
        guard let cidr = ctx.config.clusterCIDR,
            let blocks = PodCIDRBlocks(clusterCIDR: cidr, maskSize: ctx.config.nodeCIDRMaskSize)
        else { return nil }
        self.blocks = blocks
        client = ctx.client("node-ipam-controller")
        nodes = ctx.informers.informer(CoreV1.Node.self)
        events = ctx.events
        logger = ctx.logger
        let queue = self.queue
        nodes.onChange { event in
            let node = event.object
            if case .deleted = event {
                blocks.release(node.spec.podCIDRs.isEmpty ? [node.spec.podCIDR ?? ""] : node.spec.podCIDRs)
                return
            }
            if node.spec.podCIDR == nil || node.spec.podCIDR == "" {
                Task { await queue.add(node.metadata.name ?? "") }
            } else {
                blocks.markTaken(node.spec.podCIDRs.isEmpty ? [node.spec.podCIDR ?? ""] : node.spec.podCIDRs)
            }
        }
    }

    func run() async {
        // Every block already given counts before the first new one is handed out (the informer's
        // first list has arrived: the control plane starts loops once informers are synced).
        for node in nodes.list() {
            blocks.markTaken(node.spec.podCIDRs.isEmpty ? [node.spec.podCIDR ?? ""] : node.spec.podCIDRs)
        }
        for node in nodes.list() where (node.spec.podCIDR ?? "").isEmpty {
            await queue.add(node.metadata.name ?? "")
        }
        await runWorkers(
            queue, count: 1, sync: sync,
            onError: { key, error in
                logger.warning("node IPAM failed", metadata: ["node": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ name: String) async throws {
        guard let node = nodes.get(name), (node.spec.podCIDR ?? "").isEmpty,
            node.metadata.deletionTimestamp == nil
        else { return }
        guard let block = blocks.allocate() else {
            // As upstream: an event on the Node; the node stays without a pod network until a block frees.
            events.record(
                JSON.object(["kind": "Node", "apiVersion": "v1", "metadata": ["name": .string(name)]]),
                type: "Normal", reason: "CIDRNotAvailable",
                message:
                    "Node \(name) status is now: CIDRNotAvailable (no block of /\(blocks.maskSize) left in \(blocks.cluster))",
                component: "cidrAllocator")
            return
        }
        let patch: JSON = ["spec": ["podCIDR": .string(block), "podCIDRs": [.string(block)]]]
        do {
            try await client.mergePatch(
                ResourceType.of(CoreV1.Node.self), namespace: nil, name: name, patch, subresource: nil)
            logger.info("node pod CIDR allocated", metadata: ["node": "\(name)", "podCIDR": "\(block)"])
        } catch {
            blocks.release([block])
            if let error = error as? APIError, error.code == 404 { return }
            throw error
        }
    }
}

/// The cluster CIDR cut into equal blocks, one per node, with the ones in use.
final class PodCIDRBlocks: Sendable {
    let cluster: IPv4Subnet
    let maskSize: Int
    /// The block indexes given out, and where the next search starts.
    private let state = Mutex<(taken: Set<UInt32>, next: UInt32)>(([], 0))

    /// nil when `clusterCIDR` is not an IPv4 CIDR or `maskSize` does not fit in it.
    init?(clusterCIDR: String, maskSize: Int) {
        guard let cluster = IPv4Subnet(clusterCIDR, strict: false), maskSize >= cluster.prefixLength,
            maskSize <= 30, maskSize - cluster.prefixLength <= 24
        else { return nil }
        self.cluster = cluster
        self.maskSize = maskSize
    }

    var count: UInt32 { UInt32(1) << UInt32(maskSize - cluster.prefixLength) }

    func block(_ index: UInt32) -> String {
        IPv4Subnet(network: cluster.address(index << UInt32(32 - maskSize)), prefixLength: maskSize).description
    }

    /// The block index of `cidr` when it is exactly one of the cluster's blocks.
    func index(of cidr: String) -> UInt32? {
        guard let subnet = IPv4Subnet(cidr, strict: false), subnet.prefixLength == maskSize,
            cluster.contains(subnet.network)
        else { return nil }
        return (subnet.network.value - cluster.network.value) >> UInt32(32 - maskSize)
    }

    /// The next free block (round robin from the last one given, as upstream's allocator), or nil.
    func allocate() -> String? {
        let total = count
        return state.withLock { state -> String? in
            for step in 0..<total {
                let candidate = (state.next &+ step) % total
                if !state.taken.contains(candidate) {
                    state.taken.insert(candidate)
                    state.next = (candidate + 1) % total
                    return block(candidate)
                }
            }
            return nil
        }
    }

    func markTaken(_ cidrs: [String]) {
        let indexes = cidrs.compactMap(index(of:))
        state.withLock { $0.taken.formUnion(indexes) }
    }

    func release(_ cidrs: [String]) {
        let indexes = cidrs.compactMap(index(of:))
        state.withLock { $0.taken.subtract(indexes) }
    }
}

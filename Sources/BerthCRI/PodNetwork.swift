import BerthNetwork
import GRPCCore

/// What the node's pod network is made of besides its pod CIDR (the rest of containerd's CNI
/// `conf_template`, which k3s fills with a bridge and host-local IPAM on the node's CIDR).
public struct PodNetworkTemplate: Sendable, Equatable {
    /// The engine network's name, also its bridge's (15 characters at most: an interface name).
    public var name: String
    /// The whole cluster's pod range: reached without masquerading, and allowed to reach the pods.
    public var clusterCIDR: String
    /// The pods' MTU (nil: the kernel's), less than the link's when traffic to other nodes is
    /// wrapped in VXLAN.
    public var mtu: Int?

    public init(name: String = "berth-pods", clusterCIDR: String, mtu: Int? = nil) {
        self.name = name
        self.clusterCIDR = clusterCIDR
        self.mtu = mtu
    }
}

extension CRIRuntime {
    /// Makes the pod network on `podCIDR` (the kubelet's UpdateRuntimeConfig), or leaves it when it is
    /// already there as wanted. A network on another CIDR (the node was deleted and registered again,
    /// and got another block) is made again when no sandbox uses it; while one does, the old network
    /// stays and the call fails: its pods keep their addresses until they go.
    func ensurePodNetwork(podCIDR: String) throws(RPCError) {
        guard let template = settings.podNetwork, !podCIDR.isEmpty else { return }
        guard let subnet = IPv4Subnet(podCIDR, strict: false), subnet.prefixLength <= 30 else {
            throw CRIError.invalid("pod CIDR \"\(podCIDR)\" is not an IPv4 CIDR of at least four addresses")
        }
        let store = engine.networks.store
        let wanted = subnet.description
        if let existing = try? store.inspect(template.name) {
            if existing.subnet == wanted, existing.mtu == template.mtu, existing.clusterCIDR == template.clusterCIDR {
                return
            }
            let users = sandboxes.filter { $0.record.network == template.name }.count
            guard users == 0 else {
                throw RPCError(
                    code: .failedPrecondition,
                    message:
                        "the pod network \(template.name) is on \(existing.subnet ?? "?") and \(users) sandbox(es) still use it; the node's pod CIDR is now \(wanted)"
                )
            }
            do { try store.remove(template.name) } catch {
                throw RPCError(code: .internalError, message: "removing the old pod network \(template.name): \(error)")
            }
        }
        do {
            try NetworkStore.removeStaleBridge(template.name, gateway: subnet.address(1).description)
            _ = try store.create(
                name: template.name, subnet: wanted, bridge: template.name, mtu: template.mtu,
                clusterCIDR: template.clusterCIDR)
        } catch {
            throw RPCError(
                code: .internalError, message: "making the pod network \(template.name) on \(wanted): \(error)")
        }
        logger.info("pod network ready", metadata: ["network": "\(template.name)", "podCIDR": "\(wanted)"])
    }
}

import BerthNetwork

/// How pods on different nodes reach each other (flannel's backends, which k3s's --flannel-backend picks).
public enum PodNetworkBackend: String, Sendable, CaseIterable {
    /// A direct route where the other node shares a link with this one, VXLAN where it does not.
    case auto
    /// Direct routes only (`ip route <their pod CIDR> via <their address>`): nodes must share a link.
    case hostGW = "host-gw"
    /// Every other node through the kernel's VXLAN device (50 bytes of each packet's MTU).
    case vxlan
    /// No routes: something else connects the nodes' pod CIDRs.
    case none

    /// Whether the node needs its VXLAN device.
    var usesVXLAN: Bool { self == .auto || self == .vxlan }

    /// The MTU pods get on the link of `nodeIP` (nil: the node's first address; nil result: the kernel's
    /// default). With `vxlan` every packet between nodes is wrapped, so pods get the link's less VXLAN's
    /// 50 bytes, as flannel gives them. With `auto` most peers are usually on the link, so pods keep its
    /// whole MTU and only what leaves through the VXLAN device is smaller: the device's MTU says so to
    /// the kernel, which clamps the MSS of TCP connections through it (the pod network's mangle rule)
    /// and sends "fragmentation needed" for other packets too big for it. Pods at 1450 everywhere cost
    /// host-gw traffic a tenth of its throughput on a CPU-bound link (scripts/bench-cluster.sh).
    public func podMTU(nodeIP: String?) -> Int? {
        guard usesVXLAN else { return nil }
        let mtu = HostLinks.interface(holding: NodeFacts.address(nodeIP: nodeIP))?.mtu ?? 1500
        return self == .vxlan ? mtu - PodRoutePlan.vxlanOverhead : mtu
    }
}

/// The routes, neighbours and forwarding entries that take this node's traffic to the other nodes'
/// pod CIDRs, as `ip -batch` and `bridge -batch` lines. A pure function of the Nodes, so a reconcile
/// is: compute, compare with what the kernel holds (our routes carry protocol ``routeProtocol``),
/// apply the difference.
struct PodRoutePlan: Equatable, Sendable {
    /// Another node, as its Node object says: its pod CIDR, its address and its VXLAN device's MAC.
    struct Peer: Equatable, Sendable {
        var name: String
        var podCIDR: IPv4Subnet
        var address: IPv4Address
        var vtepMAC: String?
    }

    enum Route: Equatable, Sendable {
        /// host-gw: straight to the node's address, which is on one of our links.
        case direct(podCIDR: IPv4Subnet, via: IPv4Address)
        /// Through the VXLAN device: to the peer's VTEP address (its pod CIDR's first), whose MAC
        /// the neighbour entry gives and whose node the FDB entry gives.
        case vxlan(podCIDR: IPv4Subnet, vtep: IPv4Address, mac: String, node: IPv4Address)

        var podCIDR: IPv4Subnet {
            switch self {
            case .direct(let cidr, _), .vxlan(let cidr, _, _, _): return cidr
            }
        }
    }

    /// The VXLAN device (flannel's is `flannel.1`), its VNI and UDP port (flannel's, the Linux default
    /// being 8472 too), and what its encapsulation costs of the MTU.
    static let vxlanDevice = "berth-vxlan"
    static let vxlanID = 1
    static let vxlanPort = 8472
    static let vxlanOverhead = 50
    /// Marks the routes Berth owns (`proto 66` in `ip route`), so a restarted agent finds and removes
    /// the ones of nodes that have gone, and nothing else's.
    static let routeProtocol = 66

    var routes: [Route]

    /// The routes to `peers` with `backend`; `onLink` says whether an address is on one of this node's
    /// links (no gateway between). A peer that needs VXLAN but has published no MAC yet gets no route
    /// until it does; with host-gw, a peer not on a link gets none (and is reported by the caller).
    static func plan(peers: [Peer], backend: PodNetworkBackend, onLink: (IPv4Address) -> Bool) -> PodRoutePlan {
        var routes: [Route] = []
        for peer in peers.sorted(by: { $0.name < $1.name }) {
            switch backend {
            case .none: continue
            case .hostGW:
                if onLink(peer.address) { routes.append(.direct(podCIDR: peer.podCIDR, via: peer.address)) }
            case .auto where onLink(peer.address):
                routes.append(.direct(podCIDR: peer.podCIDR, via: peer.address))
            case .auto, .vxlan:
                guard let mac = peer.vtepMAC else { continue }
                routes.append(.vxlan(podCIDR: peer.podCIDR, vtep: peer.podCIDR.network, mac: mac, node: peer.address))
            }
        }
        return PodRoutePlan(routes: routes)
    }

    /// `ip -batch` lines: every route (replace is idempotent) and the neighbour of each VXLAN peer.
    var ipCommands: [String] {
        routes.flatMap { route -> [String] in
            switch route {
            case .direct(let cidr, let via):
                return ["route replace \(cidr) via \(via) proto \(Self.routeProtocol)"]
            case .vxlan(let cidr, let vtep, let mac, _):
                return [
                    "neigh replace \(vtep) lladdr \(mac) dev \(Self.vxlanDevice) nud permanent",
                    "route replace \(cidr) via \(vtep) dev \(Self.vxlanDevice) onlink proto \(Self.routeProtocol)",
                ]
            }
        }
    }

    /// `bridge -batch` lines: where each VXLAN peer's MAC lives.
    var fdbCommands: [String] {
        routes.compactMap { route in
            guard case .vxlan(_, _, let mac, let node) = route else { return nil }
            return "fdb replace \(mac) dev \(Self.vxlanDevice) dst \(node) self permanent"
        }
    }

    /// What to remove of the kernel's current state: our routes (`ip -4 -o route show proto 66`
    /// lines), the VXLAN device's neighbours (`ip -4 neigh show dev …`) and its FDB entries (`bridge
    /// fdb show dev …`) that the plan no longer has.
    func staleCommands(routes routeLines: [String], neighbours: [String], fdb: [String]) -> (
        ip: [String], bridge: [String]
    ) {
        let wantedCIDRs = Set(routes.map(\.podCIDR.description))
        var wantedVTEPs = Set<String>()
        var wantedMACs = Set<String>()
        for case .vxlan(_, let vtep, let mac, _) in routes {
            wantedVTEPs.insert(vtep.description)
            wantedMACs.insert(mac.lowercased())
        }
        var ip: [String] = []
        for line in routeLines {
            guard let destination = line.split(separator: " ").first.map(String.init),
                IPv4Subnet(destination, strict: false) != nil, !wantedCIDRs.contains(destination)
            else { continue }
            ip.append("route del \(destination) proto \(Self.routeProtocol)")
        }
        for line in neighbours {
            guard let address = line.split(separator: " ").first.map(String.init), IPv4Address(address) != nil,
                !wantedVTEPs.contains(address)
            else { continue }
            ip.append("neigh del \(address) dev \(Self.vxlanDevice)")
        }
        var bridge: [String] = []
        for line in fdb {
            let fields = line.split(separator: " ").map(String.init)
            // The device's own entries (its MAC, the all-zero default) carry no `dst` of a peer's.
            guard let mac = fields.first, fields.contains("dst"), !wantedMACs.contains(mac.lowercased()) else {
                continue
            }
            bridge.append("fdb del \(mac) dev \(Self.vxlanDevice) self")
        }
        return (ip, bridge)
    }
}

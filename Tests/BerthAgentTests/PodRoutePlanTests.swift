import BerthNetwork
import Testing

@testable import BerthAgent

/// Routes to other nodes' pod CIDRs: which peers get direct routes and which VXLAN, the exact
/// iproute2 lines, and what is removed of a kernel state that no longer matches.
@Suite struct PodRoutePlanTests {
    let near = PodRoutePlan.Peer(
        name: "b", podCIDR: IPv4Subnet("10.42.1.0/24")!, address: IPv4Address("192.168.7.3")!,
        vtepMAC: "aa:bb:cc:00:00:01")
    let far = PodRoutePlan.Peer(
        name: "c", podCIDR: IPv4Subnet("10.42.2.0/24")!, address: IPv4Address("172.31.9.4")!,
        vtepMAC: "aa:bb:cc:00:00:02")
    func onLink(_ address: IPv4Address) -> Bool { address.description.hasPrefix("192.168.7.") }

    @Test func autoRoutesNeighboursDirectlyAndTheRestThroughVXLAN() {
        let plan = PodRoutePlan.plan(peers: [far, near], backend: .auto, onLink: onLink)
        #expect(
            plan.ipCommands == [
                "route replace 10.42.1.0/24 via 192.168.7.3 proto 66",
                "neigh replace 10.42.2.0 lladdr aa:bb:cc:00:00:02 dev berth-vxlan nud permanent",
                "route replace 10.42.2.0/24 via 10.42.2.0 dev berth-vxlan onlink proto 66",
            ])
        #expect(plan.fdbCommands == ["fdb replace aa:bb:cc:00:00:02 dev berth-vxlan dst 172.31.9.4 self permanent"])
    }

    @Test func eachBackendKeepsToItsKind() {
        #expect(
            PodRoutePlan.plan(peers: [near, far], backend: .hostGW, onLink: onLink).routes == [
                .direct(podCIDR: near.podCIDR, via: near.address)
            ])
        let vxlan = PodRoutePlan.plan(peers: [near, far], backend: .vxlan, onLink: onLink)
        #expect(vxlan.fdbCommands.count == 2 && vxlan.routes.allSatisfy { if case .vxlan = $0 { true } else { false } })
        #expect(PodRoutePlan.plan(peers: [near, far], backend: .none, onLink: onLink).routes.isEmpty)
        // A far peer that has not published its VXLAN MAC yet gets no route until it does.
        var unpublished = far
        unpublished.vtepMAC = nil
        #expect(PodRoutePlan.plan(peers: [unpublished], backend: .auto, onLink: onLink).routes.isEmpty)
    }

    @Test func whatTheKernelHoldsBeyondThePlanIsRemoved() {
        let plan = PodRoutePlan.plan(peers: [near, far], backend: .auto, onLink: onLink)
        let stale = plan.staleCommands(
            routes: [
                "10.42.1.0/24 via 192.168.7.3 dev eth0 proto 66",
                "10.42.9.0/24 via 10.42.9.0 dev berth-vxlan proto 66 onlink",
            ],
            neighbours: [
                "10.42.2.0 lladdr aa:bb:cc:00:00:02 PERMANENT", "10.42.9.0 lladdr aa:bb:cc:00:00:09 PERMANENT",
            ],
            fdb: [
                "AA:BB:CC:00:00:02 dst 172.31.9.4 self permanent", "aa:bb:cc:00:00:09 dst 172.31.9.9 self permanent",
                "00:00:00:00:00:00 dev berth-vxlan self permanent",
            ])
        #expect(stale.ip == ["route del 10.42.9.0/24 proto 66", "neigh del 10.42.9.0 dev berth-vxlan"])
        #expect(stale.bridge == ["fdb del aa:bb:cc:00:00:09 dev berth-vxlan self"])
    }

    /// A node addressed on loopback has no link MTU to give its pods (lo's 65536 is more than a veth
    /// takes): auto leaves the kernel's default, vxlan the default less the tunnel's 50 bytes.
    @Test func aLoopbackNodesPodsGetTheDefaultMTU() {
        #expect(PodNetworkBackend.auto.podMTU(nodeIP: "127.0.0.1") == nil)
        #expect(PodNetworkBackend.vxlan.podMTU(nodeIP: "127.0.0.1") == 1450)
        #expect(PodNetworkBackend.hostGW.podMTU(nodeIP: "127.0.0.1") == nil)
    }
}

@testable import BerthEngine
import BerthNetwork
import Testing

/// The rules of `network connect/disconnect` without root: the next interface name, docker's refusals,
/// and which network is first after one is left.
@Suite struct NetworkConnectionTests {
    func network(_ name: String, driver: String = "bridge") -> Network {
        Network(
            name: name, id: String(repeating: "a", count: 64), driver: driver, subnet: "10.90.3.0/24",
            gateway: "10.90.3.1",
            created: "2026-12-03T00:00:00.000000000Z")
    }

    @Test func theNextInterfaceIsPastEveryOneInUseAndNeverReusedWhileRunning() {
        #expect(NetworkConnection.nextInterfaceIndex(inUse: ["eth0"], counter: 1) == 1)
        #expect(NetworkConnection.nextInterfaceIndex(inUse: ["eth0", "eth1", "eth2"], counter: nil) == 3)
        // eth0 left: the next is still eth2, not eth0.
        #expect(NetworkConnection.nextInterfaceIndex(inUse: ["eth1"], counter: 2) == 2)
        // eth1 left (docker's sandbox counts on: eth2, as `docker network connect` gives).
        #expect(NetworkConnection.nextInterfaceIndex(inUse: ["eth0"], counter: 2) == 2)
        #expect(NetworkConnection.nextInterfaceIndex(inUse: [], counter: nil) == 0)
        #expect(NetworkConnection.nextInterfaceIndex(inUse: ["eth9", "eth10"], counter: 3) == 11)
    }

    @Test func refusalsAreDockersMessages() {
        let user = network("front")
        let cases: [(String, Network, String?, [String], String?)] = [
            ("front", network("back"), "10.90.3.7", ["db"], nil),
            ("bridge", network("bridge"), nil, [], nil),
            ("container:web", user, nil, [], NetworkConnection.sharedNetwork),
            ("host", user, nil, [], NetworkConnection.sharedNetwork),
            ("bridge", network("host", driver: "host"), nil, [], NetworkConnection.hostNetwork),
            ("none", user, nil, [], NetworkConnection.noNetwork),
            ("bridge", network("none", driver: "null"), nil, [], NetworkConnection.noNetwork),
            ("front", network("bridge"), "172.17.0.9", [], NetworkConnection.addressOnPredefined),
            ("front", network("bridge"), nil, ["x"], NetworkConnection.aliasOnPredefined),
        ]
        for (mode, target, ip, aliases, expected) in cases {
            #expect(
                NetworkConnection.connectRefusal(
                    mode: mode, hasEmptiedNamespace: false, network: target, ipAddress: ip, aliases: aliases)
                    == expected,
                "\(mode) → \(target.name)")
        }
        #expect(
            NetworkConnection.noNetwork
                == "container cannot be connected to multiple networks with one of the networks in private (none) mode")
        // A container whose networks were all disconnected may join one again.
        #expect(
            NetworkConnection.connectRefusal(
                mode: "none", hasEmptiedNamespace: true, network: user, ipAddress: nil, aliases: []) == nil)
    }

    @Test func leavingTheFirstNetworkMakesTheNextFirstWithItsAddressAndAliases() {
        var c = ContainerConfiguration(image: "x")
        c.networkMode = "front"
        c.ipAddress = "10.90.1.5"
        c.networkAliases = ["web"]
        NetworkConnection.add("back", .init(ipAddress: "10.90.2.7", aliases: ["db"]), to: &c)
        NetworkConnection.add("bridge", .init(), to: &c)
        #expect(NetworkConnection.configuredNetworks(c) == ["front", "back", "bridge"])
        #expect(c.additionalEndpoints == ["back": .init(ipAddress: "10.90.2.7", aliases: ["db"])])
        #expect(!NetworkConnection.remove("elsewhere", from: &c))
        #expect(NetworkConnection.remove("front", from: &c))
        #expect(c.networkMode == "back")
        #expect(c.ipAddress == "10.90.2.7")
        #expect(c.networkAliases == ["db"])
        #expect(c.additionalNetworks == ["bridge"])
        #expect(c.additionalEndpoints == nil)
        #expect(NetworkConnection.remove("bridge", from: &c))
        #expect(NetworkConnection.remove("back", from: &c))
        #expect(c.networkMode == "none")
        #expect(c.networksDisconnected == true)
        #expect(c.ipAddress == nil && c.networkAliases.isEmpty)
        #expect(NetworkConnection.configuredNetworks(c).isEmpty)
        // Joining again from none: that network is first.
        NetworkConnection.add("back", .init(aliases: ["db2"]), to: &c)
        #expect(c.networkMode == "back" && c.networkAliases == ["db2"] && c.additionalNetworks.isEmpty)
        #expect(c.networksDisconnected == nil)
    }

    @Test func theDefaultModeIsTheBridgeNetwork() {
        var c = ContainerConfiguration(image: "x")
        c.networkMode = "default"
        #expect(NetworkConnection.configuredNetworks(c) == ["bridge"])
        #expect(NetworkConnection.remove("bridge", from: &c))
        #expect(c.networkMode == "none")
    }
}

import ArgumentParser
import Testing

@testable import berth

/// The cluster verbs' defaults that depend on other flags.
@Suite struct ClusterOptionsTests {
    @Test func kubeDNSIsTheServiceCIDRsTenthAddress() throws {
        #expect(try ClusterServer.tenthAddress(of: "10.96.0.0/12") == "10.96.0.10")
        #expect(try ClusterServer.tenthAddress(of: "10.43.0.0/16") == "10.43.0.10")
        // A CIDR written with host bits set is the same network.
        #expect(try ClusterServer.tenthAddress(of: "172.20.5.7/16") == "172.20.0.10")
        #expect(throws: ValidationError.self) { try ClusterServer.tenthAddress(of: "10.96.0.0/30") }
        #expect(throws: ValidationError.self) { try ClusterServer.tenthAddress(of: "bogus") }
    }

    @Test func theAgentsDNSDefaultsToTheServersUnlessGiven() throws {
        let defaults = try AgentOptions.parse([])
        #expect(defaults.configuration(runtimeEndpoint: "x", clusterDNS: "10.43.0.10").clusterDNS == ["10.43.0.10"])
        #expect(defaults.configuration(runtimeEndpoint: "x").clusterDNS == ["10.96.0.10"])
        let none = try AgentOptions.parse(["--cluster-dns", ""])
        #expect(none.configuration(runtimeEndpoint: "x").clusterDNS.isEmpty)
        #expect(!none.configuration(runtimeEndpoint: "x").serveClusterDNS)
        let proxyOff = try AgentOptions.parse(["--disable-kube-proxy", "--cluster-cidr", "10.244.0.0/16"])
        #expect(!proxyOff.configuration(runtimeEndpoint: "x").proxyServices)
        #expect(proxyOff.configuration(runtimeEndpoint: "x").clusterCIDR == "10.244.0.0/16")
        #expect(throws: (any Error).self) { try AgentOptions.parse(["--cluster-cidr", "10.244.0.0"]) }
    }
}

/// The pod range of `berth server`: k3s's default, checked against the Service range and the node mask.
@Suite struct ClusterCIDROptionsTests {
    @Test func theClusterCIDRDefaultsToK3sAndOverlapsAreRefused() throws {
        #expect(try ClusterServer.clusterCIDR(nil, serviceCIDR: "10.96.0.0/12", maskSize: 24) == "10.42.0.0/16")
        #expect(try ClusterServer.clusterCIDR("", serviceCIDR: "10.96.0.0/12", maskSize: 24) == nil)
        #expect(
            try ClusterServer.clusterCIDR("10.244.0.0/16", serviceCIDR: "10.96.0.0/12", maskSize: 24) == "10.244.0.0/16"
        )
        let overlap = #expect(throws: ValidationError.self) {
            try ClusterServer.clusterCIDR("10.96.0.0/16", serviceCIDR: "10.96.0.0/12", maskSize: 24)
        }
        #expect(overlap?.message.contains("overlaps --service-cidr 10.96.0.0/12") == true)
        #expect(throws: ValidationError.self) {
            try ClusterServer.clusterCIDR("10.42.0.0/16", serviceCIDR: "10.96.0.0/12", maskSize: 12)
        }
        #expect(throws: ValidationError.self) {
            try ClusterServer.clusterCIDR("10.42.0.0", serviceCIDR: "10.96.0.0/12", maskSize: 24)
        }
    }

    @Test func theBackendIsOneOfFlannels() throws {
        let options = try AgentOptions.parse(["--cluster-cidr", "10.42.0.0/16", "--flannel-backend", "host-gw"])
        #expect(options.configuration(runtimeEndpoint: "x").podNetworkBackend == .hostGW)
        #expect(options.podNetwork(clusterCIDR: "10.42.0.0/16")?.mtu == nil)
        #expect(try AgentOptions.parse([]).configuration(runtimeEndpoint: "x").podNetworkBackend == nil)
        #expect(throws: (any Error).self) { try AgentOptions.parse(["--flannel-backend", "wireguard"]) }
    }
}

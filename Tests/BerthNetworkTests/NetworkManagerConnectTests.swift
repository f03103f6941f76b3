import BerthOS
import Testing
@testable import BerthNetwork

/// One network more or less for a container already attached (`network connect/disconnect` of a running
/// container), against fake plugins, without root: only that attachment is added or deleted, and the
/// host ports stay with the attachment that published them.
@Suite struct NetworkManagerConnectTests {
    @Test func oneMoreNetworkIsAddedOnTheGivenInterfaceWithItsAddressAndNoPorts() throws {
        let bed = try FakeManager()
        defer { bed.close() }
        _ = try bed.manager.attach(
            containerID: "k1", netnsPath: "/run/k1", networks: ["faketwo"], ports: [PortMapping(containerPort: 80)])
        bed.fake.clearLog()
        let added = try bed.manager.attach(
            containerID: "k1", netnsPath: "/run/k1", network: "fakeone", interface: "eth3", staticIP: "10.77.0.9")
        #expect(try bed.calls() == ["ADD one eth3"])
        #expect(added.interface == "eth3")
        #expect(added.network == "fakeone")
        #expect(added.ports.isEmpty)
        let runtimeConfig = try bed.fake.calls()[0]["config"]["runtimeConfig"]
        try #require(runtimeConfig.object != nil)
        #expect(runtimeConfig == ["ips": ["10.77.0.9/24"]])
        #expect(bed.manager.attachments(containerID: "k1").map(\.interface) == ["eth0", "eth3"])
    }

    @Test func aFailedAddOfOneMoreNetworkLeavesNothingAndKeepsTheOthers() throws {
        let bed = try FakeManager()
        defer { bed.close() }
        _ = try bed.manager.attach(
            containerID: "k2", netnsPath: "/run/k2", networks: ["fakeone"], ports: [PortMapping(containerPort: 80)])
        bed.fake.clearLog()
        #expect(throws: NetworkError.self) {
            try bed.manager.attach(containerID: "k2", netnsPath: "/run/k2", network: "fakebad", interface: "eth1")
        }
        #expect(try bed.calls() == ["ADD three eth1", "DEL three eth1"])
        #expect(bed.manager.attachments(containerID: "k2").map(\.network) == ["fakeone"])
        #expect(bed.manager.ports.reservations().count == 1)
        for (network, staticIP, message) in [
            ("fakeone", "10.78.0.9", "not a host address"),
            ("fakeplain", "10.77.0.9", "does not take static addresses"),
            ("none", nil, "cannot be attached"),
            ("nosuch", nil, "network nosuch not found"),
        ] as [(String, String?, String)] {
            bed.fake.clearLog()
            do {
                _ = try bed.manager.attach(
                    containerID: "k2", netnsPath: "/run/k2", network: network, interface: "eth1", staticIP: staticIP)
                Issue.record("expected \(network) \(staticIP ?? "") to fail")
            } catch {
                #expect(error.description.contains(message), "\(error)")
            }
            #expect(try bed.calls().isEmpty)
        }
    }

    @Test func detachingAnotherNetworkKeepsTheFirstNetworksPorts() throws {
        let bed = try FakeManager()
        defer { bed.close() }
        _ = try bed.manager.attach(
            containerID: "k3", netnsPath: "/run/k3", networks: ["fakeone", "faketwo"],
            ports: [PortMapping(containerPort: 80)])
        bed.fake.clearLog()
        try bed.manager.detach(containerID: "k3", netnsPath: "/run/k3", network: "faketwo", interface: "eth1")
        #expect(try bed.calls() == ["DEL two eth1"])
        #expect(bed.manager.ports.reservations().count == 1)
        #expect(bed.manager.attachments(containerID: "k3").map(\.network) == ["fakeone"])
        // The filter of the many-network form keeps them too.
        _ = try bed.manager.attach(containerID: "k3", netnsPath: "/run/k3", network: "faketwo", interface: "eth2")
        try bed.manager.detach(containerID: "k3", netnsPath: "/run/k3", networks: ["faketwo"])
        #expect(bed.manager.ports.reservations().count == 1)
        // Detaching the first releases them.
        bed.fake.clearLog()
        try bed.manager.detach(containerID: "k3", netnsPath: "/run/k3", network: "fakeone", interface: "eth0")
        #expect(try bed.calls() == ["DEL one eth0"])
        #expect(bed.manager.ports.reservations().isEmpty)
        #expect(bed.manager.cni.cachedContainerIDs().isEmpty)
        // Again: nothing cached, a DEL with the current configuration on that interface (plugins allow it).
        bed.fake.clearLog()
        try bed.manager.detach(containerID: "k3", netnsPath: "/run/k3", network: "fakeone", interface: "eth0")
        #expect(try bed.calls() == ["DEL one eth0"])
    }
}

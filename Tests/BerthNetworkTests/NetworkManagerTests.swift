import BerthOS
import Testing
@testable import BerthNetwork

/// The manager's own logic — interface numbering, where ports/--ip/--mac go, rollback of a failed
/// attach, idempotent detach — against fake plugins (see ``FakePlugins``), without root.
struct FakeManager {
    let fake: FakePlugins
    let root: String
    let manager: NetworkManager

    init() throws {
        fake = try FakePlugins()
        root = temporaryDirectory("berth-manager")
        let configs = "\(root)/net.d"
        try FileSystem.makeDirectories(configs)
        let capabilities = #"{"portMappings":true,"ips":true,"mac":true}"#
        let log = #""log":"\#(fake.log)""#
        for (name, plugin) in [
            ("fakeone", #"{\#(log),"type":"one","capabilities":\#(capabilities),"ipam":{"subnet":"10.77.0.0/24"}}"#),
            ("faketwo", #"{\#(log),"type":"two","capabilities":\#(capabilities)}"#),
            ("fakeplain", #"{\#(log),"type":"one"}"#),
            ("fakebad", #"{\#(log),"type":"three","failOn":"ADD"}"#),
        ] {
            try writeFile(
                "\(configs)/\(name).conflist", #"{"cniVersion":"1.0.0","name":"\#(name)","plugins":[\#(plugin)]}"#)
        }
        manager = NetworkManager(
            store: NetworkStore(root: root, configDirectories: [configs], hostRoutes: { [] }),
            cni: fake.cni, ports: PortAllocator(directory: "\(root)/ports"))
    }

    func close() {
        try? FileSystem.removeTree(root)
        try? FileSystem.removeTree(fake.directory)
    }

    /// `COMMAND plugin ifName` per call.
    func calls() throws -> [String] {
        try fake.calls().map { "\($0["command"].string!) \($0["plugin"].string!) \($0["ifName"].string!)" }
    }
}

@Suite struct NetworkManagerTests {
    @Test func networksGetEth0Eth1AndPortsIPAndMACGoToTheFirst() throws {
        let bed = try FakeManager()
        defer { bed.close() }
        let attached = try bed.manager.attach(
            containerID: "c1", netnsPath: "/run/n1", networks: ["fakeone", "faketwo"],
            ports: [PortMapping(hostIP: "127.0.0.1", containerPort: 80)],
            staticIP: "10.77.0.9", macAddress: "02:42:00:00:00:09")
        #expect(attached.map(\.interface) == ["eth0", "eth1"])
        #expect(attached.map(\.network) == ["fakeone", "faketwo"])
        #expect(attached[0].ipAddress == "10.77.0.2")
        #expect(attached[0].prefixLength == 24)
        #expect(attached[0].gateway == "10.77.0.1")
        #expect(attached[0].macAddress == "02:00:00:00:00:00")
        let hostPort = try #require(attached[0].ports.first?.hostPort)
        #expect(hostPort != 0)
        #expect(attached[1].ports.isEmpty)
        let calls = try bed.fake.calls()
        #expect(try bed.calls() == ["ADD one eth0", "ADD two eth1"])
        let runtimeConfig = calls[0]["config"]["runtimeConfig"]
        try #require(runtimeConfig.object != nil)
        #expect(
            runtimeConfig["portMappings"] == [
                [
                    "hostPort": .int(Int64(hostPort)), "containerPort": 80, "protocol": "tcp",
                    "hostIP": "127.0.0.1",
                ]
            ])
        #expect(runtimeConfig["ips"] == ["10.77.0.9/24"])
        #expect(runtimeConfig["mac"] == "02:42:00:00:00:09")
        #expect(calls[1]["config"]["runtimeConfig"] == nil)
        #expect(bed.manager.ports.reservations().map(\.hostPort) == [hostPort])
        // What an engine restart reads back.
        let recorded = bed.manager.attachments(containerID: "c1")
        #expect(recorded.map(\.interface) == ["eth0", "eth1"])
        #expect(recorded[0].ports == attached[0].ports)
        #expect(recorded[0].ipAddress == "10.77.0.2")
        try bed.manager.check(containerID: "c1", netnsPath: "/run/n1")
    }

    @Test func detachDeletesInReverseReleasesPortsAndCanBeRepeated() throws {
        let bed = try FakeManager()
        defer { bed.close() }
        _ = try bed.manager.attach(
            containerID: "c2", netnsPath: "/run/n2", networks: ["fakeone", "faketwo"],
            ports: [PortMapping(containerPort: 80)])
        #expect(bed.manager.cni.cachedContainerIDs() == ["c2"])
        bed.fake.clearLog()
        try bed.manager.detach(containerID: "c2", netnsPath: "/run/n2", networks: ["fakeone", "faketwo"])
        #expect(try bed.calls() == ["DEL two eth1", "DEL one eth0"])
        #expect(bed.manager.ports.reservations().isEmpty)
        #expect(bed.manager.attachments(containerID: "c2").isEmpty)
        #expect(bed.manager.cni.cachedContainerIDs().isEmpty)
        // Again: nothing cached any more, so each network gets a DEL on the interface its position implies.
        bed.fake.clearLog()
        try bed.manager.detach(containerID: "c2", netnsPath: "/run/n2", networks: ["fakeone", "faketwo"])
        #expect(try bed.calls() == ["DEL two eth1", "DEL one eth0"])
        #expect(throws: NetworkError.self) {
            try bed.manager.check(containerID: "c2", netnsPath: "/run/n2", networks: ["fakeone"])
        }
    }

    @Test func aFailedAttachUndoesEveryNetworkAndReleasesItsPorts() throws {
        let bed = try FakeManager()
        defer { bed.close() }
        #expect(throws: NetworkError.self) {
            try bed.manager.attach(
                containerID: "c3", netnsPath: "/run/n3", networks: ["fakeone", "fakebad"],
                ports: [PortMapping(containerPort: 80)])
        }
        #expect(try bed.calls() == ["ADD one eth0", "ADD three eth1", "DEL three eth1", "DEL one eth0"])
        #expect(bed.manager.ports.reservations().isEmpty)
        #expect(bed.manager.attachments(containerID: "c3").isEmpty)
    }

    @Test func noneHostUnknownNetworksAndBadAddressesAreRefusedBeforeAnyPluginRuns() throws {
        let bed = try FakeManager()
        defer { bed.close() }
        for (networks, staticIP, message) in [
            (["none"], nil, "network none cannot be attached"),
            (["host"], nil, "network host cannot be attached"),
            (["fakeone", "nosuch"], nil, "network nosuch not found"),
            (
                ["fakeone"], "10.78.0.9",
                "invalid --ip 10.78.0.9: not a host address of network fakeone's subnet 10.77.0.0/24"
            ),
            (["fakeone"], "10.77.0.255", "not a host address"),
            (["fakeone"], "nonsense", "invalid --ip nonsense: not an IPv4 address"),
            (["fakebad"], "10.77.0.9", "invalid --ip 10.77.0.9: network fakebad does not take static addresses"),
        ] as [([String], String?, String)] {
            do {
                _ = try bed.manager.attach(
                    containerID: "c4", netnsPath: "/run/n4", networks: networks,
                    ports: [PortMapping(containerPort: 80)], staticIP: staticIP)
                Issue.record("expected \(networks) \(staticIP ?? "") to fail")
            } catch {
                #expect(error.description.contains(message), "\(error)")
            }
        }
        for mac in ["02:42:00:00:00", "zz:42:00:00:00:01", "01:00:5e:00:00:01", "02-42-00-00-00-01"] {
            #expect(throws: NetworkError.self, "\(mac)") {
                try bed.manager.attach(containerID: "c4", netnsPath: "/run/n4", networks: ["fakeone"], macAddress: mac)
            }
        }
        #expect(throws: NetworkError.self) {
            try bed.manager.attach(
                containerID: "c4", netnsPath: "/run/n4", networks: ["fakebad"], macAddress: "02:42:00:00:00:01")
        }
        #expect(try bed.calls().isEmpty)
        #expect(bed.manager.ports.reservations().isEmpty)
    }

    @Test func portsAreNotReservedOnANetworkThatCannotPublishThem() throws {
        let bed = try FakeManager()
        defer { bed.close() }
        let attached = try bed.manager.attach(
            containerID: "c5", netnsPath: "/run/n5", networks: ["fakeplain", "fakeone"],
            ports: [PortMapping(containerPort: 80)])
        #expect(attached.map(\.ports) == [[], []])
        #expect(bed.manager.ports.reservations().isEmpty)
        #expect(try bed.fake.calls().allSatisfy { $0["config"]["runtimeConfig"] == nil })
    }
}

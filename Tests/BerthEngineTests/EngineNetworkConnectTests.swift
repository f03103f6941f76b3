#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import Testing

/// `network connect/disconnect` as a docker user meets them: a running container gains an interface on
/// another network and reaches its containers, loses it again with its address lease and veth, and
/// leaves nothing after `rm -f`; a stopped one joins at its next start; refusals say what docker says.
@Suite(.serialized, .enabled(if: isRealRoot, "creates networks and containers: needs real root"))
final class EngineNetworkConnectTests {
    let box: EngineBox
    var networks: [String] = []

    init() throws { box = try EngineBox("connect") }
    deinit {
        // Containers first (a network in use cannot go), networks before the box's data is deleted
        // (their bridges and rules are known only there).
        if let ids = try? box.berth(["ps", "-aq", "--no-trunc"]).stdoutText.split(separator: "\n").map(String.init),
            !ids.isEmpty
        {
            _ = try? box.berth(["rm", "-f"] + ids)
        }
        for name in networks { _ = try? box.berthNoun("network", ["rm", name]) }
        box.tearDown()
    }

    /// A user network of this suite, removed at the end.
    func makeNetwork() throws -> (name: String, id: String) {
        let name = "bc\(UInt32.random(in: 0...UInt32.max) % 100000)"
        let created = try box.berthNoun("network", ["create", name])
        guard created.status == .exited(0) else { throw TestFailure("network create: \(created.stderrText)") }
        networks.append(name)
        return (name, created.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func ip(_ arguments: [String]) throws -> ChildProcess.Output {
        try ChildProcess.run("/usr/sbin/ip", arguments: ["ip"] + arguments, environment: [])
    }

    /// Host interfaces enslaved to a network's bridge (one veth per attached container).
    func bridgePorts(_ id: String) throws -> [String] {
        try ip(["-o", "link", "show", "master", "br-" + String(id.prefix(12))]).stdoutText.split(separator: "\n").map(
            String.init)
    }

    /// host-local's lease file for an address on a network.
    func leasePath(_ network: (name: String, id: String), _ address: String) -> String {
        "\(box.root)/networks/ipam/\(network.id)/\(network.name)/\(address)"
    }

    func events() throws -> String { (try? FileSystem.readString(box.root + "/events.jsonl")) ?? "" }

    static let server =
        "while true; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello from %s\\n' $(hostname) | nc -l -p 80; done"

    /// What the server at `address` answers when asked from inside `container`.
    func ask(_ container: String, _ address: String) throws -> String {
        try box.berth(["exec", container, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 \(address) 80"])
            .stdoutText
    }

    @Test func aRunningContainerGainsEth1OnAnotherNetworkAndLosesItWithItsLeaseAndVeth() throws {
        let front = try makeNetwork()
        let back = try makeNetwork()
        #expect(
            try box.berth([
                "run", "-d", "--name", "server", "-h", "server", "--network", back.name, box.image, "sh", "-c",
                Self.server,
            ]).status == .exited(0))
        let serverAddress = try box.inspect("server", "{{.NetworkSettings.Networks.\(back.name).IPAddress}}")
        #expect(
            try box.berth([
                "run", "-d", "--name", "client", "-h", "client", "--network", front.name, box.image, "sleep", "1000",
            ]).status == .exited(0))
        let id = try box.inspect("client", "{{.Id}}")
        #expect(try bridgePorts(back.id).count == 1)
        // As dockerd, a start reports the networks it attached.
        #expect(
            try events().contains(
                #""Action":"connect","Actor":{"Attributes":{"container":"\#(id)","name":"\#(front.name)","type":"bridge"},"ID":"\#(front.id)"}"#
            ))

        let connected = try box.berthNoun("network", ["connect", "--alias", "cache", back.name, "client"])
        #expect(connected.status == .exited(0), "\(connected.stderrText)")
        let address = try box.inspect("client", "{{.NetworkSettings.Networks.\(back.name).IPAddress}}")
        #expect(
            address.split(separator: ".").prefix(3) == serverAddress.split(separator: ".").prefix(3),
            "\(address) vs \(serverAddress)")
        let eth1 = try box.berth(["exec", "client", "ip", "-o", "-4", "addr", "show", "eth1"]).stdoutText
        #expect(eth1.contains("inet \(address)/24"), "\(eth1)")
        #expect(try box.inspect("client", "{{json .NetworkSettings.Networks.\(back.name).Aliases}}") == "[\"cache\"]")
        #expect(try box.berth(["exec", "client", "cat", "/etc/hosts"]).stdoutText.contains("\(address)\tclient"))
        #expect(try bridgePorts(back.id).count == 2)
        #expect(FileSystem.exists(leasePath(back, address)))
        var answer = ""
        _ = try box.eventually {
            answer = try ask("client", serverAddress); return answer.hasSuffix("hello from server\n")
        }
        #expect(answer.hasSuffix("hello from server\n"))
        #expect(
            try events().contains(
                #""Action":"connect","Actor":{"Attributes":{"container":"\#(id)","name":"\#(back.name)","type":"bridge"},"ID":"\#(back.id)"}"#
            ))
        // Still on its first network too.
        #expect(try box.inspect("client", "{{.NetworkSettings.Networks.\(front.name).IPAddress}}").hasPrefix("10."))

        let disconnected = try box.berthNoun("network", ["disconnect", back.name, "client"])
        #expect(disconnected.status == .exited(0), "\(disconnected.stderrText)")
        #expect(try box.berth(["exec", "client", "ip", "link", "show", "eth1"]).status != .exited(0))
        #expect(try box.berth(["exec", "client", "ip", "link", "show", "eth0"]).status == .exited(0))
        #expect(try box.inspect("client", "{{json .NetworkSettings.Networks}}").contains(front.name))
        #expect(!(try box.inspect("client", "{{json .NetworkSettings.Networks}}").contains(back.name)))
        #expect(!(try box.berth(["exec", "client", "cat", "/etc/hosts"]).stdoutText.contains(address)))
        #expect(!FileSystem.exists(leasePath(back, address)))
        #expect(try bridgePorts(back.id).count == 1)
        #expect(
            try events().contains(
                #""Action":"disconnect","Actor":{"Attributes":{"container":"\#(id)","name":"\#(back.name)","type":"bridge"},"ID":"\#(back.id)"}"#
            ))
        // Joined again: the next interface, as docker's sandbox numbers them.
        #expect(try box.berthNoun("network", ["connect", back.name, "client"]).status == .exited(0))
        #expect(try box.berth(["exec", "client", "ip", "link", "show", "eth2"]).status == .exited(0))

        #expect(try box.berth(["rm", "-f", "client"]).status == .exited(0))
        #expect(!FileSystem.exists("\(box.run)/netns/\(id)"))
        // And its end the networks it detached.
        #expect(
            try events().contains(
                #""Action":"disconnect","Actor":{"Attributes":{"container":"\#(id)","name":"\#(front.name)","type":"bridge"},"ID":"\#(front.id)"}"#
            ))
        #expect(try bridgePorts(back.id).count == 1)
        #expect(try bridgePorts(front.id).isEmpty)
        let leases =
            (try? ChildProcess.run(
                "/usr/bin/grep", arguments: ["grep", "-rl", id, "\(box.root)/networks"], environment: []
            ).stdoutText) ?? ""
        #expect(leases.isEmpty, "\(leases)")
        let rules = try ChildProcess.run("/usr/sbin/iptables-save", arguments: ["iptables-save"], environment: [])
            .stdoutText
        #expect(!rules.contains(String(id.prefix(12))))
    }

    @Test func aStoppedContainerJoinsAtItsNextStartWithItsAddressAndAlias() throws {
        let front = try makeNetwork()
        let back = try makeNetwork()
        #expect(
            try box.berth(["create", "--name", "later", "--network", front.name, box.image, "sleep", "1000"]).status
                == .exited(0))
        let subnet = try box.berthNoun("network", ["inspect", "--format", "{{json .IPAM}}", back.name]).stdoutText
        let prefix = try #require(subnet.split(separator: "\"").first { $0.hasPrefix("10.") && $0.hasSuffix("/24") })
            .dropLast(4)
        let wanted = "\(prefix)77"
        let connected = try box.berthNoun("network", ["connect", "--ip", wanted, "--alias", "db", back.name, "later"])
        #expect(connected.status == .exited(0), "\(connected.stderrText)")
        // docker leaves a stopped container already configured for a network as it is.
        #expect(try box.berthNoun("network", ["connect", back.name, "later"]).status == .exited(0))
        #expect(try box.berth(["start", "later"]).status == .exited(0))
        #expect(
            try box.berth(["exec", "later", "ip", "-o", "-4", "addr", "show", "eth1"]).stdoutText.contains(
                "inet \(wanted)/24"))
        #expect(try box.inspect("later", "{{json .NetworkSettings.Networks.\(back.name).Aliases}}") == "[\"db\"]")
        // And again after a restart.
        #expect(try box.berth(["stop", "-t", "0", "later"]).status == .exited(0))
        #expect(try box.berth(["start", "later"]).status == .exited(0))
        #expect(try box.inspect("later", "{{.NetworkSettings.Networks.\(back.name).IPAddress}}") == wanted)
        // Disconnected while stopped: not there at the next start.
        #expect(try box.berth(["stop", "-t", "0", "later"]).status == .exited(0))
        #expect(try box.berthNoun("network", ["disconnect", back.name, "later"]).status == .exited(0))
        let again = try box.berthNoun("network", ["disconnect", back.name, "later"])
        #expect(again.stderrText.contains("is not connected to the network \(back.name)"), "\(again.stderrText)")
        #expect(try box.berth(["start", "later"]).status == .exited(0))
        #expect(try box.berth(["exec", "later", "ip", "link", "show", "eth1"]).status != .exited(0))
        _ = try box.berth(["rm", "-f", "later"])
    }

    @Test func refusalsAreDockersAndAFailedConnectLeavesNothing() throws {
        let front = try makeNetwork()
        let back = try makeNetwork()
        _ = try box.berth(["run", "-d", "--name", "r1", "--network", front.name, box.image, "sleep", "1000"])
        _ = try box.berth(["run", "-d", "--name", "r2", "--network", back.name, box.image, "sleep", "1000"])
        _ = try box.berth(["run", "-d", "--name", "onhost", "--network", "host", box.image, "sleep", "1000"])
        _ = try box.berth(["run", "-d", "--name", "alone", "--network", "none", box.image, "sleep", "1000"])
        _ = try box.berth(["run", "-d", "--name", "shared", "--network", "container:r1", box.image, "sleep", "1000"])
        let r1 = try box.inspect("r1", "{{.Id}}")
        let taken = try box.inspect("r2", "{{.NetworkSettings.Networks.\(back.name).IPAddress}}")
        for (arguments, message) in [
            (["connect", front.name, "r1"], "endpoint with name r1 already exists in network \(front.name)"),
            (["connect", "nosuch", "r1"], "network nosuch not found"),
            (
                ["connect", back.name, "onhost"],
                "container sharing network namespace with another container or host cannot be connected to any other network"
            ),
            (
                ["connect", back.name, "shared"],
                "container sharing network namespace with another container or host cannot be connected to any other network"
            ),
            (
                ["connect", back.name, "alone"],
                "container cannot be connected to multiple networks with one of the networks in private (none) mode"
            ),
            (
                ["connect", "host", "r1"],
                "container cannot be disconnected from host network or connected to host network"
            ),
            (
                ["connect", "--ip", "10.89.0.200", "bridge", "r1"],
                "user specified IP address is supported on user defined networks only"
            ),
            (
                ["connect", "--alias", "x", "bridge", "r1"],
                "network-scoped alias is supported only for containers in user defined networks"
            ),
            (["connect", back.name, "nosuch"], "No such container: nosuch"),
            (["disconnect", back.name, "r1"], "container \(r1) is not connected to network \(back.name)"),
            (
                ["disconnect", "host", "onhost"],
                "container cannot be disconnected from host network or connected to host network"
            ),
            (["disconnect", "nosuch", "r1"], "network nosuch not found"),
        ] {
            let out = try box.berthNoun("network", arguments)
            #expect(out.status != .exited(0), "\(arguments)")
            #expect(out.stderrText.contains(message), "\(arguments): \(out.stderrText)")
        }
        // An address already leased to r2: host-local refuses, and r1 is as it was.
        let before = try bridgePorts(back.id)
        let failed = try box.berthNoun("network", ["connect", "--ip", taken, back.name, "r1"])
        #expect(failed.status != .exited(0))
        #expect(try bridgePorts(back.id) == before)
        #expect(!(try box.inspect("r1", "{{json .NetworkSettings.Networks}}").contains(back.name)))
        #expect(try box.berth(["exec", "r1", "ip", "link", "show", "eth1"]).status != .exited(0))
        #expect(try box.inspect("r1", "{{json .HostConfig.NetworkMode}}") == "\"\(front.name)\"")
        // The next connect still gets eth1.
        #expect(try box.berthNoun("network", ["connect", back.name, "r1"]).status == .exited(0))
        #expect(try box.berth(["exec", "r1", "ip", "link", "show", "eth1"]).status == .exited(0))
        // A stop DELs what was connected while running (its veth goes), a start attaches it again.
        _ = try box.berth(["rm", "-f", "shared"])
        #expect(try box.berth(["stop", "-t", "0", "r1"]).status == .exited(0))
        #expect(try bridgePorts(back.id) == before)
        #expect(try box.berth(["start", "r1"]).status == .exited(0))
        #expect(
            try box.berth(["exec", "r1", "ip", "-o", "-4", "addr", "show", "eth1"]).stdoutText.contains(
                try box.inspect("r1", "{{.NetworkSettings.Networks.\(back.name).IPAddress}}") + "/24"))
        #expect(try bridgePorts(back.id).count == before.count + 1)
        _ = try box.berth(["rm", "-f", "r1", "r2", "onhost", "alone"])
    }

    @Test func leavingTheFirstNetworkReleasesItsPortsAndTheNextIsFirstFromTheNextStart() throws {
        let front = try makeNetwork()
        let back = try makeNetwork()
        let port = UInt16.random(in: 20000...30000)
        #expect(
            try box.berth([
                "run", "-d", "--name", "web", "-h", "web", "-p", "127.0.0.1:\(port):80", "--network", front.name,
                box.image,
                "sh", "-c", Self.server,
            ]).status == .exited(0))
        #expect(try box.berthNoun("network", ["connect", back.name, "web"]).status == .exited(0))
        #expect(try box.berth(["port", "web"]).stdoutText == "80/tcp -> 127.0.0.1:\(port)\n")
        #expect(try box.berthNoun("network", ["disconnect", front.name, "web"]).status == .exited(0))
        #expect(try box.berth(["port", "web"]).stdoutText.isEmpty)
        #expect(try box.berth(["exec", "web", "ip", "link", "show", "eth0"]).status != .exited(0))
        #expect(try box.inspect("web", "{{.HostConfig.NetworkMode}}") == back.name)
        #expect(try bridgePorts(front.id).isEmpty)
        // Another container may take the released host port now.
        let taker = try box.berth([
            "run", "-d", "--name", "taker", "-p", "127.0.0.1:\(port):80", "--network", back.name, box.image, "sleep",
            "1000",
        ])
        #expect(taker.status == .exited(0), "\(taker.stderrText)")
        _ = try box.berth(["rm", "-f", "taker"])
        // From the next start, the remaining network is eth0 and carries the ports.
        #expect(try box.berth(["stop", "-t", "0", "web"]).status == .exited(0))
        #expect(try box.berth(["start", "web"]).status == .exited(0))
        #expect(
            try box.berth(["exec", "web", "ip", "-o", "-4", "addr", "show", "eth0"]).stdoutText.contains(
                try box.inspect("web", "{{.NetworkSettings.Networks.\(back.name).IPAddress}}")))
        #expect(try box.berth(["port", "web"]).stdoutText == "80/tcp -> 127.0.0.1:\(port)\n")
        // Leaving the last one: loopback only; joining again is possible while it runs.
        #expect(try box.berthNoun("network", ["disconnect", back.name, "web"]).status == .exited(0))
        #expect(try box.inspect("web", "{{.HostConfig.NetworkMode}}") == "none")
        #expect(try box.berth(["exec", "web", "ip", "-o", "link"]).stdoutText.split(separator: "\n").count == 1)
        let rejoined = try box.berthNoun("network", ["connect", front.name, "web"])
        #expect(rejoined.status == .exited(0), "\(rejoined.stderrText)")
        #expect(try box.inspect("web", "{{.HostConfig.NetworkMode}}") == front.name)
        // Left with none while stopped: unlike a --network none container it may join again (docker's too).
        #expect(try box.berth(["stop", "-t", "0", "web"]).status == .exited(0))
        #expect(try box.berthNoun("network", ["disconnect", front.name, "web"]).status == .exited(0))
        let stoppedJoin = try box.berthNoun("network", ["connect", back.name, "web"])
        #expect(stoppedJoin.status == .exited(0), "\(stoppedJoin.stderrText)")
        #expect(try box.berth(["start", "web"]).status == .exited(0))
        #expect(try box.berth(["exec", "web", "ip", "link", "show", "eth0"]).status == .exited(0))
        // Started with none left: loopback only, in a namespace a connect can still add to.
        #expect(try box.berthNoun("network", ["disconnect", back.name, "web"]).status == .exited(0))
        #expect(try box.berth(["stop", "-t", "0", "web"]).status == .exited(0))
        #expect(try box.berth(["start", "web"]).status == .exited(0))
        #expect(try box.berth(["exec", "web", "ip", "-o", "link"]).stdoutText.split(separator: "\n").count == 1)
        #expect(try box.berthNoun("network", ["connect", front.name, "web"]).status == .exited(0))
        #expect(try box.berth(["exec", "web", "ip", "link", "show", "eth0"]).status == .exited(0))
        let id = try box.inspect("web", "{{.Id}}")
        #expect(try box.berth(["rm", "-f", "web"]).status == .exited(0))
        #expect(!FileSystem.exists("\(box.run)/netns/\(id)"))
        #expect(try bridgePorts(front.id).isEmpty && bridgePorts(back.id).isEmpty)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Testing
@testable import BerthNetwork

/// Runs a program to completion and returns its output (stdout, then stderr).
@discardableResult
func run(_ arguments: [String], input: String = "") throws -> (status: ChildProcess.ExitStatus, output: String) {
    guard let path = ChildProcess.lookup(arguments[0], path: "/usr/sbin:/usr/bin:/sbin:/bin") else {
        throw NetworkError.system(SystemCallError(call: "lookup", errno: ENOENT, subject: arguments[0]))
    }
    let result = try ChildProcess.run(
        path, arguments: arguments, environment: ChildProcess.currentEnvironment,
        input: Array(input.utf8))
    return (result.status, result.stdoutText + result.stderrText)
}

/// The target of a namespace link (`net:[4026531840]`), or "" if unreadable.
func namespaceLink(_ path: String) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    let count = readlink(path, &buffer, buffer.count - 1)
    return count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    let deadline = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 + seconds
    while true {
        if condition() { return true }
        clock_gettime(CLOCK_MONOTONIC, &now)
        if Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 > deadline { return false }
        usleep(20_000)
    }
}

/// Connects to `host:port` (from the namespace at `netns`, or the host's) and returns the first line
/// the peer sends, or nil if the connection fails.
func greeting(_ host: String, _ port: UInt16, netns: String? = nil) -> String? {
    let program =
        "import socket; s = socket.create_connection(('\(host)', \(port)), 2); print(s.makefile().readline().strip())"
    var command = ["/usr/bin/python3", "-c", program]
    if let netns { command = ["nsenter", "--net=\(netns)"] + command }
    guard let (status, output) = try? run(command), status.succeeded else { return nil }
    return output.trimmingWhitespace
}

/// A TCP server inside a network namespace answering every connection with `hello from <tag>`,
/// ended by PID when the test is done.
final class NamespaceServer {
    let pid: pid_t
    init(netns: String, port: UInt16, tag: String) throws {
        let program = """
            import socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('0.0.0.0', \(port))); s.listen(16); s.settimeout(120)
            while True:
                c, _ = s.accept(); c.sendall(b'hello from \(tag)\\n'); c.close()
            """
        pid = try ChildProcess.spawn(
            "/usr/bin/nsenter", arguments: ["nsenter", "--net=\(netns)", "/usr/bin/python3", "-c", program],
            environment: ChildProcess.currentEnvironment)
    }
    func stop() {
        kill(pid, SIGTERM)
        _ = try? ChildProcess.wait(pid)
    }
}

/// A test network of its own (unique name, a random 10.2xx.y.0/24 subnet that overlaps nothing on the
/// host), in a manager rooted in a temporary directory. `close()` removes everything it made.
struct TestBed {
    let root: String
    let manager: NetworkManager
    let network: Network

    init(configDirectory: String? = nil) throws {
        root = temporaryDirectory("berth-net-it")
        manager = NetworkManager(root: root, configDirectories: configDirectory.map { [$0] } ?? [])
        network = try manager.store.create(name: "bt\(randomSuffix())", subnet: Self.freeSubnet())
    }

    /// A random 10.2xx.y.0/24 that no route of the host covers.
    static func freeSubnet() -> String {
        let routes = HostRoutes.current()
        var generator = SystemRandomNumberGenerator()
        while true {
            let subnet =
                "10.\(Int.random(in: 200...250, using: &generator)).\(Int.random(in: 0...255, using: &generator)).0/24"
            if !routes.contains(where: { $0.overlaps(IPv4Subnet(subnet)!) }) { return subnet }
        }
    }

    func netnsPath(_ name: String) -> String { "\(root)/netns/\(name)" }

    func close() {
        _ = try? manager.store.remove(network.name)
        if let names = try? FileSystem.listDirectory("\(root)/netns") {
            for name in names { try? NetworkNamespace.remove(at: "\(root)/netns/\(name)") }
        }
        _ = umount2("\(root)/netns", Int32(MNT_DETACH))
        try? FileSystem.removeTree(root)
    }

    var leaseDirectory: String { "\(manager.store.ipamDirectory(for: network))/\(network.name)" }
}

@Suite(
    .enabled(if: identityRoot && cniPluginsInstalled, "needs real root and containernetworking-plugins"), .serialized)
struct NetworkIntegrationTests {
    @Test func aPinnedNamespaceHasLoopbackUpAndIsRemovedIdempotently() throws {
        let root = temporaryDirectory("berth-netns")
        let path = "\(root)/netns/one"
        defer {
            try? NetworkNamespace.remove(at: path)
            _ = umount2("\(root)/netns", Int32(MNT_DETACH))
            try? FileSystem.removeTree(root)
        }
        let before = namespaceLink("/proc/thread-self/ns/net")
        #expect(before.hasPrefix("net:["))
        try NetworkNamespace.create(at: path)
        // The calling thread (a test's pool thread) is still in the host's namespace.
        #expect(namespaceLink("/proc/thread-self/ns/net") == before)
        #expect(NetworkNamespace.isPinned(path))
        let links = try run(["nsenter", "--net=\(path)", "ip", "-o", "link", "show"])
        #expect(links.status.succeeded)
        #expect(links.output.contains("lo: <LOOPBACK,UP,LOWER_UP>"))
        #expect(!links.output.contains("eth0"))
        // Another namespace than ours (the host's).
        let inside = try run(["nsenter", "--net=\(path)", "readlink", "/proc/self/ns/net"]).output
        let outside = try run(["readlink", "/proc/self/ns/net"]).output
        #expect(inside != outside)
        #expect(throws: SystemCallError.self) { try NetworkNamespace.create(at: path) }
        try NetworkNamespace.remove(at: path)
        #expect(!FileSystem.exists(path))
        try NetworkNamespace.remove(at: path)
    }

    @Test func publishedPortsAnswerOnLoopbackAndTheBridgeAndContainersReachEachOther() throws {
        let bed = try TestBed()
        let a = bed.netnsPath("a"), b = bed.netnsPath("b")
        let idA = "it" + randomSuffix(20), idB = "it" + randomSuffix(20)
        var server: NamespaceServer?
        defer {
            server?.stop()
            try? bed.manager.detach(containerID: idA, netnsPath: a, networks: [bed.network.name])
            try? bed.manager.detach(containerID: idB, netnsPath: b, networks: [bed.network.name])
            bed.close()
        }
        try NetworkNamespace.create(at: a)
        try NetworkNamespace.create(at: b)
        let subnet = IPv4Subnet(bed.network.subnet!)!
        let attachedA = try bed.manager.attach(
            containerID: idA, netnsPath: a, networks: [bed.network.name],
            ports: [PortMapping(containerPort: 8080), PortMapping(hostIP: "127.0.0.1", containerPort: 8080)])
        let staticIP = subnet.address(50).description
        let attachedB = try bed.manager.attach(
            containerID: idB, netnsPath: b, networks: [bed.network.name],
            staticIP: staticIP, macAddress: "02:42:0a:00:00:32")
        let first = try #require(attachedA.first)
        #expect(attachedA.count == 1)
        #expect(first.network == bed.network.name)
        #expect(first.networkID == bed.network.id)
        #expect(first.interface == "eth0")
        #expect(first.prefixLength == 24)
        #expect(first.gateway == bed.network.gateway)
        let ipA = try #require(first.ipAddress)
        #expect(subnet.contains(IPv4Address(ipA)!))
        #expect(first.macAddress?.count == 17)
        let hostPort = try #require(first.ports.first?.hostPort)
        #expect(hostPort != 0)
        #expect(attachedB.first?.ipAddress == staticIP)
        #expect(attachedB.first?.macAddress == "02:42:0a:00:00:32")

        // The address is really inside the namespace, on eth0.
        let addresses = try run(["nsenter", "--net=\(a)", "ip", "-4", "-o", "addr", "show", "dev", "eth0"]).output
        #expect(addresses.contains("inet \(ipA)/24"))

        server = try NamespaceServer(netns: a, port: 8080, tag: "a")
        #expect(eventually { greeting(ipA, 8080) == "hello from a" })
        #expect(greeting("127.0.0.1", hostPort) == "hello from a")
        #expect(greeting(bed.network.gateway!, hostPort) == "hello from a")
        // Hairpin: the container reaches its own published port through the host.
        #expect(greeting(bed.network.gateway!, hostPort, netns: a) == "hello from a")
        // A port published on 127.0.0.1 only answers there.
        let loopbackPort = try #require(first.ports.last?.hostPort)
        #expect(first.ports.count == 2 && loopbackPort != hostPort)
        #expect(greeting("127.0.0.1", loopbackPort) == "hello from a")
        #expect(greeting(bed.network.gateway!, loopbackPort) == nil)
        // Container to container on one network.
        #expect(greeting(ipA, 8080, netns: b) == "hello from a")
        // The same host port cannot be published again while A holds it.
        do {
            _ = try bed.manager.attach(
                containerID: "other" + randomSuffix(), netnsPath: b, networks: [bed.network.name],
                ports: [PortMapping(hostPort: hostPort, containerPort: 80)])
            Issue.record("expected port is already allocated")
        } catch {
            #expect(error.description == "Bind for 0.0.0.0:\(hostPort) failed: port is already allocated")
        }
        try bed.manager.check(containerID: idA, netnsPath: a)
        #expect(bed.manager.attachments(containerID: idA).map(\.ipAddress) == [ipA])

        // Detach leaves nothing: no veth, no lease, no rule naming the container or its address.
        let hostVeths =
            bed.manager.cni.cachedEntries(containerID: idA).first?.parsedResult?.interfaces
            .filter { $0.sandbox == nil && $0.name != bed.network.bridge }.map(\.name) ?? []
        #expect(hostVeths.count == 1)
        #expect(FileSystem.exists("\(bed.leaseDirectory)/\(ipA)"))
        try bed.manager.detach(containerID: idA, netnsPath: a, networks: [bed.network.name])
        for veth in hostVeths { #expect(!FileSystem.exists("/sys/class/net/\(veth)")) }
        #expect(!FileSystem.exists("\(bed.leaseDirectory)/\(ipA)"))
        let rules = try run(["iptables-save"]).output
        #expect(!rules.contains(idA))
        #expect(!rules.contains("\(ipA)/32"))
        #expect(!rules.contains("dport \(hostPort) "))
        #expect(bed.manager.ports.reservations().allSatisfy { $0.containerID != idA })
        #expect(greeting("127.0.0.1", hostPort) == nil)
        // DEL twice is fine.
        try bed.manager.detach(containerID: idA, netnsPath: a, networks: [bed.network.name])
        try NetworkNamespace.remove(at: a)
        try bed.manager.detach(containerID: idA, netnsPath: a, networks: [bed.network.name])
    }

    @Test func aFailureOnTheSecondNetworkUndoesTheFirst() throws {
        let configs = temporaryDirectory("berth-netd")
        try writeFile(
            "\(configs)/broken.conflist",
            #"{"cniVersion":"1.0.0","name":"brk\#(randomSuffix())","plugins":[{"type":"nosuchplugin"}]}"#)
        let bed = try TestBed(configDirectory: configs)
        let broken = try #require(bed.manager.store.configDirectoryNetworks().first?.network.name)
        let path = bed.netnsPath("c")
        let id = "it" + randomSuffix(20)
        defer {
            try? bed.manager.detach(containerID: id, netnsPath: path, networks: [bed.network.name])
            bed.close()
            try? FileSystem.removeTree(configs)
        }
        try NetworkNamespace.create(at: path)
        do {
            _ = try bed.manager.attach(
                containerID: id, netnsPath: path, networks: [bed.network.name, broken],
                ports: [PortMapping(containerPort: 80)])
            Issue.record("expected the attach to fail")
        } catch {
            guard case .pluginNotFound(let plugin, let network, _) = error else {
                Issue.record("expected pluginNotFound, got \(error)")
                return
            }
            #expect(plugin == "nosuchplugin")
            #expect(network == broken)
        }
        #expect(bed.manager.cni.cachedEntries(containerID: id).isEmpty)
        #expect(bed.manager.ports.reservations().isEmpty)
        let leases = (try? FileSystem.listDirectory(bed.leaseDirectory)) ?? []
        #expect(leases.filter { IPv4Address($0) != nil }.isEmpty)
        let links = try run(["nsenter", "--net=\(path)", "ip", "-o", "link", "show"]).output
        #expect(!links.contains("eth0"))
        let ports = (try? FileSystem.listDirectory("/sys/class/net/\(bed.network.bridge!)/brif")) ?? []
        #expect(ports.isEmpty)
        #expect(!(try run(["iptables-save"]).output.contains(id)))
    }

    @Test func twoNetworksGiveEth0AndEth1() throws {
        let bed = try TestBed()
        let path = bed.netnsPath("d")
        let id = "it" + randomSuffix(20)
        var other: Network?
        defer {
            try? bed.manager.detach(containerID: id, netnsPath: path)
            if let other { _ = try? bed.manager.store.remove(other.name) }
            bed.close()
        }
        var subnet = TestBed.freeSubnet()
        while subnet == bed.network.subnet { subnet = TestBed.freeSubnet() }
        other = try bed.manager.store.create(name: "bt\(randomSuffix())", subnet: subnet)
        let second = try #require(other)
        try NetworkNamespace.create(at: path)
        let attached = try bed.manager.attach(
            containerID: id, netnsPath: path, networks: [bed.network.name, second.name])
        #expect(attached.map(\.interface) == ["eth0", "eth1"])
        #expect(attached.map(\.network) == [bed.network.name, second.name])
        let links = try run(["nsenter", "--net=\(path)", "ip", "-o", "-4", "addr", "show"]).output
        for attachment in attached {
            let line = links.split(separator: "\n").first {
                $0.contains(" \(attachment.interface) ") || $0.contains(" \(attachment.interface)@")
            }
            #expect(line?.contains("inet \(attachment.ipAddress!)/24") == true, "\(links)")
        }
        try bed.manager.detach(containerID: id, netnsPath: path)
        #expect(bed.manager.cni.cachedEntries(containerID: id).isEmpty)
        // The network's own NAT and forwarding rules are in place (once, not per container)…
        let tag = "berth-network-\(try #require(second.bridge)) "
        #expect(try run(["iptables-save", "-t", "nat"]).output.contains(tag))
        #expect(
            try run(["iptables-save", "-t", "filter"]).output.split(separator: tag, omittingEmptySubsequences: false)
                .count - 1 == 2)
        // …and removing a network removes them with its bridge device.
        let bridge = try #require(second.bridge)
        #expect(FileSystem.exists("/sys/class/net/\(bridge)"))
        try bed.manager.store.remove(second.name)
        other = nil
        #expect(!FileSystem.exists("/sys/class/net/\(bridge)"))
        #expect(!(try run(["iptables-save"]).output.contains(tag)))
        #expect(!(try run(["nsenter", "--net=\(path)", "ip", "-o", "link", "show"]).output.contains("eth")))
    }

    @Test func anInternalNetworkHasNoDefaultRouteButItsContainersMeet() throws {
        let root = temporaryDirectory("berth-net-it")
        let manager = NetworkManager(root: root, configDirectories: [])
        let network = try manager.store.create(
            name: "bt\(randomSuffix())", subnet: TestBed.freeSubnet(), internal: true)
        let a = "\(root)/netns/a", b = "\(root)/netns/b"
        let idA = "it" + randomSuffix(20), idB = "it" + randomSuffix(20)
        var server: NamespaceServer?
        defer {
            server?.stop()
            try? manager.detach(containerID: idA, netnsPath: a)
            try? manager.detach(containerID: idB, netnsPath: b)
            try? NetworkNamespace.remove(at: a)
            try? NetworkNamespace.remove(at: b)
            _ = try? manager.store.remove(network.name)
            _ = umount2("\(root)/netns", Int32(MNT_DETACH))
            try? FileSystem.removeTree(root)
        }
        try NetworkNamespace.create(at: a)
        try NetworkNamespace.create(at: b)
        let ipA = try #require(
            try manager.attach(containerID: idA, netnsPath: a, networks: [network.name]).first?.ipAddress)
        _ = try manager.attach(containerID: idB, netnsPath: b, networks: [network.name])
        let routes = try run(["nsenter", "--net=\(a)", "ip", "-4", "route", "show"]).output
        #expect(!routes.contains("default"))
        #expect(routes.contains(network.subnet!))
        #expect(!(try run(["iptables-save", "-t", "nat"]).output.contains(idA)))  // no masquerade
        server = try NamespaceServer(netns: a, port: 7070, tag: "internal")
        #expect(eventually { greeting(ipA, 7070, netns: b) == "hello from internal" })
    }

    @Test func aUDPPortIsPublishedToo() throws {
        let bed = try TestBed()
        let path = bed.netnsPath("u")
        let id = "it" + randomSuffix(20)
        var server: pid_t?
        defer {
            if let server { kill(server, SIGTERM); _ = try? ChildProcess.wait(server) }
            try? bed.manager.detach(containerID: id, netnsPath: path)
            bed.close()
        }
        try NetworkNamespace.create(at: path)
        let attached = try bed.manager.attach(
            containerID: id, netnsPath: path, networks: [bed.network.name],
            ports: try PortMapping.parse("127.0.0.1::5353/udp"))
        let mapping = try #require(attached.first?.ports.first)
        #expect(mapping.proto == "udp" && mapping.hostPort != 0)
        let echo = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5353)); s.settimeout(120)
            while True:
                data, peer = s.recvfrom(100); s.sendto(b'pong ' + data, peer)
            """
        server = try ChildProcess.spawn(
            "/usr/bin/nsenter", arguments: ["nsenter", "--net=\(path)", "/usr/bin/python3", "-c", echo],
            environment: ChildProcess.currentEnvironment)
        let client = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
            s.sendto(b'ping', ('127.0.0.1', \(mapping.hostPort))); print(s.recvfrom(100)[0].decode())
            """
        // A datagram sent before the server binds is lost: ask again until one is answered.
        #expect(
            eventually { (try? run(["/usr/bin/python3", "-c", client]))?.output.trimmingWhitespace == "pong ping" })
    }
}

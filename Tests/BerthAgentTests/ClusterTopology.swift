#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Foundation
import Testing

/// A cluster of machines on this one: `berth server --disable-agent` on the host, and each node a
/// network namespace of its own (its own links, routes, nftables, cluster DNS address) running its own
/// `berth agent` with its own engine. Nodes sit on one of two LANs — host bridges of the test's own —
/// and a router namespace joins the LANs, so nodes of one LAN share a link (host-gw routes) and nodes
/// of different LANs do not (VXLAN). The host, on the first LAN, reaches the second through the router.
///
/// Everything is named with a random tag and removed by ``tearDown()``: the namespaces (and all in
/// them), the bridges, the cgroups, the directories.
final class ClusterTopology: @unchecked Sendable {
    struct Node {
        let name: String
        let namespace: String
        let address: String
        /// The host end of its link (down: the node is cut off).
        let hostLink: String
        let directory: String
        var agent: pid_t = 0
    }

    let base: String
    let berth: String
    let tag: String
    let image = "test/agent:1"
    /// The two LANs' first three octets, and their bridges on the host.
    let lans: [String]
    let bridges: [String]
    let router: String
    private(set) var nodes: [Node] = []
    private(set) var server: pid_t = 0
    let port: Int
    let cgroupTop: String

    /// `lanOfNode[i]`: the LAN (0 or 1) node i sits on.
    init(lanOfNode: [Int]) throws {
        tag = String(UInt32.random(in: 0x1000...0xffff), radix: 16)
        base = NSTemporaryDirectory() + "berth-topology-" + tag
        berth = builtExecutable("berth")
        cgroupTop = "/berth-topology-" + tag
        let third = Int.random(in: 100...180)
        lans = ["192.168.\(third)", "192.168.\(third + 1)"]
        bridges = ["bt\(tag)a", "bt\(tag)b"]
        router = "bt\(tag)r"
        port = Int(freeLocalPort())
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        do {
            try makeNetwork(lanOfNode: lanOfNode)
            try importImage()
            try startServer()
            for index in nodes.indices { try startAgent(index) }
        } catch {
            tearDown()
            throw error
        }
    }

    var environment: [String] { ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=\(base)"] }
    var kubeconfig: String { base + "/server/admin.kubeconfig" }

    /// Runs a command; throws with its error output when it fails.
    @discardableResult
    func run(_ arguments: [String], input: String = "") throws -> ChildProcess.Output {
        guard let program = ChildProcess.lookup(arguments[0], path: "/usr/sbin:/sbin:/usr/bin:/bin") else {
            throw TestFailure("\(arguments[0]) is not installed")
        }
        let output = try ChildProcess.run(
            program, arguments: arguments, environment: environment, input: Array(input.utf8))
        guard output.status.succeeded else {
            throw TestFailure("\(arguments.joined(separator: " ")): \(output.stderrText)")
        }
        return output
    }

    /// Two bridges on the host (the host is .1 on the first), a router namespace on both (.254), and
    /// each node's namespace linked to its LAN's bridge (.11, .12, …) with the router as its gateway.
    private func makeNetwork(lanOfNode: [Int]) throws {
        for (lan, bridge) in zip(lans, bridges) {
            try run(["ip", "link", "add", bridge, "type", "bridge"])
            try run(["ip", "link", "set", bridge, "up"])
            if lan == lans[0] { try run(["ip", "addr", "add", "\(lan).1/24", "dev", bridge]) }
        }
        try run(["ip", "netns", "add", router])
        for (index, (lan, bridge)) in zip(lans, bridges).enumerated() {
            let outside = "bt\(tag)r\(index)"
            try run(["ip", "link", "add", outside, "type", "veth", "peer", "name", "lan\(index)", "netns", router])
            try run(["ip", "link", "set", outside, "master", bridge, "up"])
            try inNamespace(router, ["ip", "addr", "add", "\(lan).254/24", "dev", "lan\(index)"])
            try inNamespace(router, ["ip", "link", "set", "lan\(index)", "up"])
        }
        try inNamespace(router, ["ip", "link", "set", "lo", "up"])
        try inNamespace(router, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        // The host reaches the second LAN (its nodes' agents' HTTPS APIs, NodePorts) through the router.
        try run(["ip", "route", "add", "\(lans[1]).0/24", "via", "\(lans[0]).254", "dev", bridges[0]])
        for (index, lan) in lanOfNode.enumerated() {
            let name = "tnode-\(index)"
            let namespace = "bt\(tag)n\(index)"
            let address = "\(lans[lan]).\(11 + index)"
            let hostLink = "bt\(tag)v\(index)"
            try run(["ip", "netns", "add", namespace])
            try run(["ip", "link", "add", hostLink, "type", "veth", "peer", "name", "eth0", "netns", namespace])
            try run(["ip", "link", "set", hostLink, "master", bridges[lan], "up"])
            try inNamespace(namespace, ["ip", "addr", "add", "\(address)/24", "dev", "eth0"])
            try inNamespace(namespace, ["ip", "link", "set", "eth0", "up"])
            try inNamespace(namespace, ["ip", "link", "set", "lo", "up"])
            try inNamespace(namespace, ["ip", "route", "add", "default", "via", "\(lans[lan]).254"])
            let directory = base + "/" + name
            for sub in ["engine", "run", "agent", "logs"] {
                try FileManager.default.createDirectory(
                    atPath: "\(directory)/\(sub)", withIntermediateDirectories: true)
            }
            nodes.append(
                Node(name: name, namespace: namespace, address: address, hostLink: hostLink, directory: directory))
        }
    }

    @discardableResult
    func inNamespace(_ namespace: String, _ arguments: [String]) throws -> ChildProcess.Output {
        try run(["ip", "netns", "exec", namespace] + arguments)
    }

    /// `ip netns exec` gives the command a sysfs of its namespace's links, which hides the cgroup
    /// mounts under /sys/fs/cgroup: this mounts the host's hierarchies again there (the same ones: a
    /// v1 hierarchy mounted with the same controllers is the same tree).
    func cgroupRemountScript() -> String {
        let mounts = ((try? FileSystem.readString("/proc/self/mountinfo")) ?? "").split(separator: "\n")
        var lines = ["mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup"]
        for line in mounts {
            let fields = line.split(separator: " ").map(String.init)
            guard let dash = fields.firstIndex(of: "-"), dash + 3 < fields.count,
                fields[dash + 1] == "cgroup" || fields[dash + 1] == "cgroup2"
            else { continue }
            var options = fields[dash + 3].split(separator: ",").map(String.init).filter { $0 != "rw" && $0 != "ro" }
            if options.contains(where: { $0.hasPrefix("name=") }) { options.insert("none", at: 0) }
            let point = fields[4]
            lines.append("mkdir -p \(point)")
            lines.append(
                "mount -t \(fields[dash + 1]) \(options.isEmpty ? "" : "-o \(options.joined(separator: ","))") cgroup \(point)"
            )
        }
        return lines.joined(separator: " && ")
    }

    private func importImage() throws {
        let tar = try busyboxLayer(in: base, files: ["/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"])
        for node in nodes {
            try run([berth, "image", "import", "--root", node.directory + "/engine", tar, "--tag", image])
        }
    }

    private func startServer() throws {
        let output = try BerthOS.Pipe()
        let log = open(base + "/server.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer { close(log) }
        server = try ChildProcess.spawn(
            berth,
            arguments: [
                berth, "server", "--disable-agent", "--data-dir", base + "/server", "--listen", "\(lans[0]).1:\(port)",
                "--node-monitor-grace-seconds", "8",
            ],
            environment: environment, fileDescriptors: [1: output.writing.rawValue, 2: log])
        output.writing.close()
        try awaitOutput(output.reading, containing: "ready ", seconds: 60, what: "berth server") {
            (try? FileSystem.readString(base + "/server.log")) ?? ""
        }
    }

    /// Starts node `index`'s agent (again, after ``stopAgent(_:)``): it joins with the server's token
    /// the first time (its node identity, serving certificate and the cluster's pod range from the
    /// join; kept under its agent root for the next start), runs its engine, and puts its pods'
    /// cgroups under this topology's parent.
    func startAgent(_ index: Int) throws {
        let node = nodes[index]
        let agent = [
            berth, "agent", "--server", "https://\(lans[0]).1:\(port)", "--token-file", base + "/server/token",
            "--node-name", node.name, "--node-ip", node.address, "--root", node.directory + "/engine",
            "--agent-root", node.directory + "/agent", "--pod-log-dir", node.directory + "/logs", "--cgroup-root",
            "\(cgroupTop)/\(node.name)/kubepods", "--kubelet-address", node.address,
            "--node-lease-duration-seconds", "8",
        ]
        let script = cgroupRemountScript() + " && exec " + agent.map { "'\($0)'" }.joined(separator: " ")
        let log = open(node.directory + "/agent.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer { close(log) }
        nodes[index].agent = try ChildProcess.spawn(
            "/usr/sbin/ip", arguments: ["ip", "netns", "exec", node.namespace, "sh", "-c", script],
            environment: environment + ["BERTH_RUN=\(node.directory)/run"], fileDescriptors: [1: log, 2: log])
    }

    /// Ends node `index`'s agent with `signal` (SIGKILL: a crash; its containers live on).
    func stopAgent(_ index: Int, signal: Int32 = SIGTERM) {
        guard nodes[index].agent > 0 else { return }
        kill(nodes[index].agent, signal)
        _ = try? ChildProcess.wait(nodes[index].agent)
        nodes[index].agent = 0
    }

    /// Cuts node `index` off its LAN, or connects it again.
    func setLink(_ index: Int, up: Bool) throws {
        try run(["ip", "link", "set", nodes[index].hostLink, up ? "up" : "down"])
    }

    func agentLog(_ index: Int) -> String {
        (try? FileSystem.readString(nodes[index].directory + "/agent.log")) ?? ""
    }

    /// The API server's audit lines for refused requests (a node identity denied something).
    func auditRefusals() -> [String] {
        ((try? FileSystem.readString(base + "/server/audit.log")) ?? "").split(separator: "\n").map(String.init)
    }

    func serverLog() -> String { (try? FileSystem.readString(base + "/server.log")) ?? "" }

    @discardableResult
    func kubectl(_ arguments: [String], input: String = "") throws -> ChildProcess.Output {
        try ChildProcess.run(
            "/usr/bin/kubectl", arguments: ["kubectl", "--kubeconfig", kubeconfig] + arguments,
            environment: environment, input: Array(input.utf8))
    }

    func get(_ object: String, _ path: String) throws -> String {
        try kubectl(["get", object, "-o", "jsonpath=\(path)"]).stdoutText
    }

    /// Polls until `condition` holds.
    func eventually(_ seconds: Double = 60, _ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? condition()) == true { return true }
            usleep(200_000)
        }
        return try condition()
    }

    /// Whether every node is Ready within `seconds`.
    func nodesReady(within seconds: Double = 90) throws -> Bool {
        let wanted = String(repeating: "True ", count: nodes.count)
        return try eventually(seconds) {
            try get("nodes", "{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\" \"}{end}") == wanted
        }
    }

    /// What a failed expectation shows: the pods, the nodes, the logs' ends.
    func diagnostics() -> String {
        let pods = (try? kubectl(["get", "pods", "-A", "-o", "wide"]).stdoutText) ?? ""
        let nodes = (try? kubectl(["get", "nodes", "-o", "wide"]).stdoutText) ?? ""
        let agents = self.nodes.indices.map { "agent \($0):\n\(agentLog($0).suffix(3000))" }.joined(separator: "\n")
        return "pods:\n\(pods)\nnodes:\n\(nodes)\n\(agents)\nserver:\n\(serverLog().suffix(3000))"
    }

    func tearDown() {
        _ = try? kubectl(["delete", "all", "--all", "--wait=false"])
        _ = try? kubectl(["delete", "pods", "--all", "--wait=true", "--timeout=60s", "--grace-period=1"])
        for index in nodes.indices {
            if nodes[index].agent > 0 { stopAgent(index) }
        }
        if server > 0 {
            kill(server, SIGTERM)
            _ = try? ChildProcess.wait(server)
            server = 0
        }
        // What the agents left (a failed test): each engine removes its containers, in its namespace.
        for node in nodes {
            let engine = node.directory + "/engine"
            let script =
                cgroupRemountScript()
                + " && ids=$('\(berth)' ps -aq --no-trunc --root '\(engine)') && [ -n \"$ids\" ] && '\(berth)' rm -f --root '\(engine)' $ids"
            _ = try? ChildProcess.run(
                "/usr/sbin/ip", arguments: ["ip", "netns", "exec", node.namespace, "sh", "-c", script],
                environment: environment + ["BERTH_RUN=\(node.directory)/run"])
        }
        // The namespaces take their links, routes, tables and addresses with them.
        for namespace in nodes.map(\.namespace) + [router] {
            _ = try? run(["ip", "netns", "delete", namespace])
        }
        for bridge in bridges { _ = try? run(["ip", "link", "delete", bridge]) }
        removeLeftovers(directory: base, cgroupParent: cgroupTop)
    }
}

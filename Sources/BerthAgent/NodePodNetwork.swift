import BerthAPI
import BerthCRI
import BerthCRIProtocol
import BerthControl
import BerthJSON
import BerthKube
import BerthNetwork
import BerthOS
import Logging
import Synchronization

/// The node's part of the pod network (flannel's job, in the agent): the runtime gets the node's pod
/// CIDR (the kubelet's UpdateRuntimeConfig; Berth's engine then makes its pod network on it, as
/// containerd's CNI template does), and the kernel gets a route to every other node's pod CIDR —
/// direct where the node shares a link, through a VXLAN device where it does not (``PodRoutePlan``).
/// The VXLAN device's MAC is published on the Node (`berth.dev/vtep-mac`) for the others' FDBs.
final class NodePodNetwork: Sendable {
    static let vtepAnnotation = "berth.dev/vtep-mac"

    let nodeName: String
    let nodeIP: String
    let backend: PodNetworkBackend
    let nodes: Informer<CoreV1.Node>
    let logger: Logger
    let report: @Sendable (String) -> Void
    /// The pod CIDR the runtime last accepted, and the last problem reported (each reported once).
    private let state = Mutex<(podCIDR: String, problem: String?)>(("", nil))

    init(
        configuration: AgentConfiguration, backend: PodNetworkBackend, sources: any ObjectSourceProvider,
        logger: Logger, report: @escaping @Sendable (String) -> Void
    ) {
        nodeName = configuration.nodeName
        nodeIP = configuration.internalIP
        self.backend = backend
        nodes = Informer(
            source: sources.source(CoreV1.Node.self, resource: ResourceType.of(CoreV1.Node.self)),
            name: "node-pod-network", logger: logger)
        self.logger = logger
        self.report = report
    }

    /// Until cancelled: keeps the runtime on the node's pod CIDR and the routes to the other nodes as
    /// the Nodes say, again every 30 s (routes someone flushed come back). `ready` runs when the
    /// runtime has taken a new pod CIDR (the node may be Ready now).
    func run(runtime: CRIClient, client: any KubeClient, ready: @escaping @Sendable () async -> Void) async {
        let (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        nodes.onChange { _ in continuation.yield() }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.nodes.run() }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(30))
                    continuation.yield()
                }
            }
            group.addTask {
                await self.nodes.waitForSync()
                var vtepMAC: String?
                if self.backend.usesVXLAN { vtepMAC = await self.publishVTEP(client: client) }
                for await _ in changes {
                    if Task.isCancelled { break }
                    if self.backend.usesVXLAN, vtepMAC == nil { vtepMAC = await self.publishVTEP(client: client) }
                    await self.reconcile(runtime: runtime, ready: ready)
                }
            }
            // Every task ends when the agent's is cancelled (an AsyncStream's iteration too).
            await group.waitForAll()
        }
    }

    /// One pass: the runtime's pod CIDR, then the routes.
    func reconcile(runtime: CRIClient, ready: @Sendable () async -> Void) async {
        var problems: [String] = []
        let own = nodes.get(nodeName)
        let podCIDR = own?.spec.podCIDR ?? ""
        if !podCIDR.isEmpty, state.withLock({ $0.podCIDR }) != podCIDR {
            var request = Runtime_V1_UpdateRuntimeConfigRequest()
            request.runtimeConfig.networkConfig.podCidr = podCIDR
            do {
                _ = try await runtime.runtime.updateRuntimeConfig(request)
                state.withLock { $0.podCIDR = podCIDR }
                logger.info("the runtime has the node's pod CIDR", metadata: ["podCIDR": "\(podCIDR)"])
                if backend.usesVXLAN, let subnet = IPv4Subnet(podCIDR, strict: false) {
                    // The device's own address is its VTEP's (the pod CIDR's first): traffic the node
                    // itself sends to other nodes' pods comes from an address they route back.
                    _ = IPRoute2.ip(["addr", "replace", "\(subnet.network)/32", "dev", PodRoutePlan.vxlanDevice])
                }
                await ready()
            } catch {
                problems.append("the runtime refused the node's pod CIDR \(podCIDR): \(error)")
            }
        }
        if backend != .none { problems += applyRoutes() }
        let problem = problems.isEmpty ? nil : problems.joined(separator: "; ")
        let isNew = state.withLock { current in
            defer { current.problem = problem }
            return problem != nil && current.problem != problem
        }
        if isNew, let problem {
            logger.warning("pod network", metadata: ["problem": "\(problem)"])
            report(problem)
        }
    }

    /// The other nodes as route planning sees them (ones without a pod CIDR or address are skipped).
    func peers() -> [PodRoutePlan.Peer] {
        nodes.list().compactMap { node -> PodRoutePlan.Peer? in
            guard let name = node.metadata.name, name != nodeName, node.metadata.deletionTimestamp == nil,
                let cidr = node.spec.podCIDR.flatMap({ IPv4Subnet($0, strict: false) }),
                let address = node.status.addresses.first(where: { $0.type.rawValue == "InternalIP" })
                    .flatMap({ IPv4Address($0.address) })
            else { return nil }
            return PodRoutePlan.Peer(
                name: name, podCIDR: cidr,
                address: address, vtepMAC: node.metadata.annotations[Self.vtepAnnotation])
        }
    }

    /// Plans the routes and makes the kernel hold exactly them; the problems found, if any.
    func applyRoutes() -> [String] {
        let peers = peers()
        // One `ip route get` per peer: the plan and the host-gw check below both ask.
        let onLink = Set(peers.map(\.address).filter { HostLinks.isOnLink($0) })
        let plan = PodRoutePlan.plan(peers: peers, backend: backend) { onLink.contains($0) }
        var problems: [String] = []
        if backend == .hostGW {
            let unreachable = peers.filter { !onLink.contains($0.address) }.map(\.name)
            if !unreachable.isEmpty {
                problems.append(
                    "host-gw cannot reach the pods of \(unreachable.joined(separator: ", ")): not on a link of this node (use --flannel-backend vxlan or auto)"
                )
            }
        }
        let vxlan = backend.usesVXLAN
        let stale = plan.staleCommands(
            routes: IPRoute2.ip(["-4", "-o", "route", "show", "proto", String(PodRoutePlan.routeProtocol)]).lines,
            neighbours: vxlan ? IPRoute2.ip(["-4", "neigh", "show", "dev", PodRoutePlan.vxlanDevice]).lines : [],
            fdb: vxlan ? IPRoute2.run("bridge", ["fdb", "show", "dev", PodRoutePlan.vxlanDevice]).lines : [])
        for (program, commands) in [
            ("ip", stale.ip + plan.ipCommands), ("bridge", stale.bridge + plan.fdbCommands),
        ] where !commands.isEmpty {
            let result = IPRoute2.run(
                program, ["-force", "-batch", "-"], input: commands.joined(separator: "\n") + "\n")
            if !result.ok { problems.append("\(program) -batch: \(result.error)") }
        }
        return problems
    }

    /// Makes the VXLAN device on the node's link (again when its settings changed) and puts its MAC on
    /// the Node; the MAC, or nil when either failed (reported; tried again on the next change).
    func publishVTEP(client: any KubeClient) async -> String? {
        let device = PodRoutePlan.vxlanDevice
        guard let link = HostLinks.interface(holding: nodeIP) else {
            report("no interface holds the node's address \(nodeIP): no VXLAN device for the pod network")
            return nil
        }
        let details = IPRoute2.ip(["-d", "link", "show", device])
        if details.ok, !details.output.contains("local \(nodeIP) ") || !details.output.contains("dev \(link.name) ") {
            _ = IPRoute2.ip(["link", "del", device])
        }
        if !IPRoute2.ip(["link", "show", device]).ok {
            let made = IPRoute2.ip([
                "link", "add", device, "type", "vxlan", "id", String(PodRoutePlan.vxlanID), "local", nodeIP, "dev",
                link.name, "dstport", String(PodRoutePlan.vxlanPort), "nolearning",
            ])
            guard made.ok else {
                report("could not make the VXLAN device \(device): \(made.error)")
                return nil
            }
        }
        _ = IPRoute2.ip(["link", "set", device, "mtu", String(link.mtu - PodRoutePlan.vxlanOverhead), "up"])
        guard let mac = HostLinks.link(named: device)?.mac else { return nil }
        let patch: JSON = ["metadata": ["annotations": [Self.vtepAnnotation: .string(mac)]]]
        do {
            _ = try await client.mergePatch(
                ResourceType.of(CoreV1.Node.self), namespace: nil, name: nodeName, patch, subresource: nil)
        } catch {
            report("could not publish the VXLAN device's MAC on the Node: \(error)")
            return nil
        }
        return mac
    }
}

/// The host's links as the pod network needs them: which one holds an address, and whether an address
/// is reached without a gateway.
enum HostLinks {
    struct Link {
        var name: String
        var mtu: Int
        var mac: String?
    }

    /// The interface `address` is assigned to (`ip -4 -o addr show`).
    static func interface(holding address: String) -> Link? {
        for line in IPRoute2.ip(["-4", "-o", "addr", "show"]).lines {
            // "2: eth0    inet 10.0.0.2/24 brd 10.0.0.255 scope global eth0\..."
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard fields.count > 3, let inet = fields.firstIndex(of: "inet"), inet + 1 < fields.count,
                fields[inet + 1].split(separator: "/").first.map(String.init) == address
            else { continue }
            let name = fields[1].split(separator: "@").first.map(String.init) ?? fields[1]
            return link(named: name) ?? Link(name: name, mtu: 1500, mac: nil)
        }
        return nil
    }

    /// A link's MTU and MAC from netlink (`ip -o link show dev NAME`), not sysfs, which shows the
    /// network namespace of whoever mounted it rather than the agent's.
    static func link(named name: String) -> Link? {
        let shown = IPRoute2.ip(["-o", "link", "show", "dev", name])
        guard shown.ok else { return nil }
        let fields = shown.output.split(whereSeparator: { $0 == " " || $0 == "\\" || $0 == "\n" }).map(String.init)
        func after(_ key: String) -> String? {
            fields.firstIndex(of: key).flatMap { $0 + 1 < fields.count ? fields[$0 + 1] : nil }
        }
        return Link(name: name, mtu: after("mtu").flatMap { Int($0) } ?? 1500, mac: after("link/ether"))
    }

    /// Whether the kernel reaches `address` without a gateway (`ip route get` names no `via`), and not
    /// through our own VXLAN device.
    static func isOnLink(_ address: IPv4Address) -> Bool {
        let route = IPRoute2.ip(["-4", "route", "get", address.description])
        return route.ok && !route.output.contains(" via ") && !route.output.contains(PodRoutePlan.vxlanDevice)
    }
}

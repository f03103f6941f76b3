#if canImport(Glibc)
import Glibc
#endif
import BerthNetwork
import BerthOS

/// A container's network: what `--network` asked for, set up before the runtime creates the container
/// and torn down on every path that ends it (stop, exit, failed start, rm).
///
/// `none` gives the container a namespace of its own with only loopback (made by the runtime);
/// `host` none at all; `container:NAME` the other container's; anything else is a network (the default
/// `bridge` or a user network): a namespace pinned under `<run>/netns/<id>`, attached through CNI with
/// the published ports.
struct ContainerNetworking: Sendable {
    let layout: EngineLayout
    let manager: NetworkManager

    init(layout: EngineLayout, configuration: EngineConfiguration) {
        self.layout = layout
        var store = NetworkStore(root: layout.networks)
        // dockerd's `bip` is the gateway with its prefix (172.17.0.1/16): the default network's subnet.
        if let bip = configuration.bridgeIP, let subnet = IPv4Subnet(bip, strict: false) {
            store.defaultSubnet = subnet
        }
        self.manager = NetworkManager(
            store: store,
            cni: CNI(pluginDirectories: CNI.defaultPluginDirectories, cacheDirectory: layout.networks + "/cni/results"),
            ports: PortAllocator(directory: layout.networks + "/ports"))
    }

    struct Setup {
        /// A namespace to join (nil: the runtime makes a new, empty one, or none with `sharesHost`).
        var namespacePath: String?
        var sharesHost: Bool
        /// What `host-gateway` in --add-host stands for.
        var hostGateway: String?
    }

    /// The bridge's gateway, read from the network store only when an --add-host asks for it.
    private func hostGateway(_ record: ContainerRecord) -> String? {
        record.configuration.extraHosts.contains { $0.contains("host-gateway") }
            ? manager.hostGatewayAddress() : nil
    }

    func setUp(_ record: inout ContainerRecord) throws(EngineError) -> Setup {
        // A pod member's network is its sandbox's, attached once when the sandbox was made.
        if let pod = record.configuration.pod {
            let host = pod.hostNamespaces.contains("network")
            return Setup(namespacePath: host ? nil : pod.namespacePaths["network"], sharesHost: host, hostGateway: nil)
        }
        let mode = record.configuration.networkMode
        switch mode {
        case "none" where record.configuration.networksDisconnected != true:
            return Setup(namespacePath: nil, sharesHost: false, hostGateway: hostGateway(record))
        case "host":
            return Setup(namespacePath: nil, sharesHost: true, hostGateway: "127.0.0.1")
        case _ where mode.hasPrefix("container:"):
            let other = String(mode.dropFirst("container:".count))
            let peer = try? Engine.readRecord(layout, other)
            guard let peer, peer.state.status == .running || peer.state.status == .paused, peer.state.pid > 0 else {
                throw .conflict("cannot join network namespace of a non running container: \(other)")
            }
            return Setup(
                namespacePath: "/proc/\(peer.state.pid)/ns/net", sharesHost: false, hostGateway: hostGateway(record))
        default:
            let path = layout.networkNamespace(record.id)
            do {
                try FileSystem.makeDirectories(FileSystem.parent(of: path), mode: 0o755)
                try NetworkNamespace.create(at: path)
            } catch { throw .system(error, context: "creating the network namespace of \(record.shortID)") }
            do {
                let ports = try requestedPorts(record)
                let configuration = record.configuration
                let endpoints = configuration.additionalEndpoints ?? [:]
                let attachments = try manager.attach(
                    containerID: record.id, netnsPath: path,
                    networks: NetworkConnection.configuredNetworks(configuration),
                    ports: ports, staticIP: configuration.ipAddress,
                    staticIPs: endpoints.compactMapValues(\.ipAddress))
                record.networks = attachments.enumerated().map { index, attachment in
                    Self.recorded(
                        attachment,
                        aliases: index == 0
                            ? configuration.networkAliases : endpoints[attachment.network]?.aliases ?? [])
                }
                record.nextInterfaceIndex = attachments.count
                // Resolved: a host port asked as 0 or as a range is the one taken now.
                record.publishedPorts =
                    attachments.first?.ports.map { mapping in
                        ContainerConfiguration.PortBinding(
                            containerPort: mapping.containerPort, proto: mapping.proto,
                            hostIP: mapping.hostIP, hostPort: mapping.hostPort)
                    } ?? []
            } catch {
                try? NetworkNamespace.remove(at: path)
                throw .network("\(error)")
            }
            return Setup(namespacePath: path, sharesHost: false, hostGateway: hostGateway(record))
        }
    }

    /// `-p` as asked (ports resolved at a previous start kept, so a restart keeps its host ports), plus
    /// every exposed port with `-P`.
    func requestedPorts(_ record: ContainerRecord) throws(NetworkError) -> [PortMapping] {
        var bindings = record.configuration.portBindings
        if !record.publishedPorts.isEmpty { bindings = record.publishedPorts }
        var ports = bindings.map {
            PortMapping(
                hostIP: $0.hostIP, hostPort: $0.hostPort, hostPortEnd: $0.hostPortEnd, containerPort: $0.containerPort,
                proto: $0.proto)
        }
        if record.configuration.publishAllPorts && record.publishedPorts.isEmpty {
            let exposed = record.exposedPorts
            let covered = Set(ports.map { "\($0.containerPort)/\($0.proto)" })
            ports += try PortMapping.publishAll(
                exposedPorts: exposed.filter { !covered.contains($0) && !covered.contains($0 + "/tcp") })
        }
        return ports
    }

    /// An attachment as the record keeps it (`10.89.0.5/16`).
    static func recorded(_ attachment: Attachment, aliases: [String]) -> ContainerRecord.NetworkAttachment {
        ContainerRecord.NetworkAttachment(
            network: attachment.network, networkID: attachment.networkID, interface: attachment.interface,
            address: attachment.ipAddress.map { "\($0)/\(attachment.prefixLength ?? 32)" } ?? "",
            gateway: attachment.gateway ?? "", macAddress: attachment.macAddress ?? "",
            aliases: aliases)
    }

    /// CNI DEL on every network, the namespace unpinned; tolerant of what is already gone.
    func tearDown(_ record: inout ContainerRecord) {
        if record.configuration.pod != nil { return }
        let path = layout.networkNamespace(record.id)
        if !record.networks.isEmpty || FileSystem.exists(path) {
            try? manager.detach(containerID: record.id, netnsPath: path)
            try? NetworkNamespace.remove(at: path)
        }
        record.networks = []
        record.nextInterfaceIndex = nil
    }
}

extension Engine {
    /// A record by ID or name, without the liveness refresh (for lookups from inside other operations).
    static func readRecord(_ layout: EngineLayout, _ reference: String) throws(EngineError) -> ContainerRecord {
        if let record = RecordFile.read(ContainerRecord.self, layout.record(reference)) { return record }
        for id in (try? FileSystem.listSubdirectories(layout.containers)) ?? [] {
            if let record = RecordFile.read(ContainerRecord.self, layout.record(id)),
                record.name == reference || id.hasPrefix(reference)
            {
                return record
            }
        }
        throw .noSuchContainer(reference)
    }

    /// The networks of this engine.
    public var networks: NetworkManager { networking.manager }
}

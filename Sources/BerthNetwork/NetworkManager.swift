import BerthOS

/// One container's place on one network, as `docker inspect` shows it under `NetworkSettings.Networks`.
public struct Attachment: Codable, Sendable, Equatable {
    public var network: String
    public var networkID: String
    /// The interface inside the container: `eth0`, `eth1` … in the order the networks were given.
    public var interface: String
    public var ipAddress: String?
    public var prefixLength: Int?
    public var gateway: String?
    public var macAddress: String?
    /// The published ports with their host ports resolved (only on the network that carries them, the first).
    public var ports: [PortMapping]

    public init(
        network: String, networkID: String, interface: String, ipAddress: String?, prefixLength: Int?,
        gateway: String?, macAddress: String?, ports: [PortMapping]
    ) {
        self.network = network
        self.networkID = networkID
        self.interface = interface
        self.ipAddress = ipAddress
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.macAddress = macAddress
        self.ports = ports
    }
}

/// The engine's one door into networking: attach a container's (pinned) network namespace to networks,
/// detach it, check it. Layout under `root` (e.g. /var/lib/berth/network): the ``NetworkStore``'s files,
/// `cni/results/` (the ADD cache), `ports/` (host port reservations).
public final class NetworkManager: Sendable {
    public let store: NetworkStore
    public let cni: CNI
    public let ports: PortAllocator

    public init(
        root: String, configDirectories: [String] = ["/etc/cni/net.d"],
        pluginDirectories: [String] = CNI.defaultPluginDirectories
    ) {
        store = NetworkStore(root: root, configDirectories: configDirectories)
        cni = CNI(pluginDirectories: pluginDirectories, cacheDirectory: "\(root)/cni/results")
        ports = PortAllocator(directory: "\(root)/ports")
    }

    public init(store: NetworkStore, cni: CNI, ports: PortAllocator) {
        self.store = store
        self.cni = cni
        self.ports = ports
    }

    /// Attaches the namespace at `netnsPath` to each network in order (`eth0`, `eth1` …). `ports` are
    /// published on the first network (host port 0 and host ranges are resolved here and returned in
    /// the first attachment: pass those back on a restart to keep them). `staticIP` (`--ip`) and
    /// `macAddress` apply to the first network too. If any step fails, everything already added is
    /// deleted again (veth, lease, iptables rules, port reservations) before the error is thrown.
    ///
    /// `staticIPs` are `--ip` values of the later networks by name (joined with `network connect --ip`).
    public func attach(
        containerID: String, netnsPath: String, networks: [String], ports requested: [PortMapping] = [],
        staticIP: String? = nil, macAddress: String? = nil,
        staticIPs: [String: String] = [:]
    ) throws(NetworkError) -> [Attachment] {
        var resolved: [(Network, NetworkConfigList)] = []
        for name in networks {
            let network = try store.inspect(name)
            resolved.append((network, try store.configList(for: network)))
            try NetworkRules.ensure(network, markerDirectory: store.rulesDirectory)
        }
        let firstCapabilities = Set(resolved.first?.1.plugins.flatMap(\.capabilities) ?? [])
        var staticAddress: String?
        if let staticIP, let first = resolved.first?.0 {
            guard firstCapabilities.contains("ips") else {
                throw .invalidOption(
                    option: "--ip", value: staticIP, reason: "network \(first.name) does not take static addresses")
            }
            staticAddress = try Self.staticAddress(staticIP, on: first)
        }
        if let macAddress, let first = resolved.first?.0 {
            guard firstCapabilities.contains("mac") else {
                throw .invalidOption(
                    option: "--mac-address", value: macAddress,
                    reason: "network \(first.name) does not take MAC addresses")
            }
            try Self.validateMAC(macAddress)
        }
        var laterAddresses: [Int: String] = [:]
        for (index, (network, list)) in resolved.enumerated().dropFirst() {
            guard let wanted = staticIPs[network.name] else { continue }
            guard list.plugins.flatMap(\.capabilities).contains("ips") else {
                throw .invalidOption(
                    option: "--ip", value: wanted, reason: "network \(network.name) does not take static addresses")
            }
            laterAddresses[index] = try Self.staticAddress(wanted, on: network)
        }
        // Ports are published only where a plugin maps them (not on an internal network, as docker).
        let publishable = firstCapabilities.contains("portMappings") && !requested.isEmpty
        let published = publishable ? try ports.allocate(requested, containerID: containerID) : []
        var attachments: [Attachment] = []
        var added: [(NetworkConfigList, String)] = []
        do {
            for (index, (network, list)) in resolved.enumerated() {
                let ifName = "eth\(index)"
                var capabilities: [String: JSON] = [:]
                if index == 0 {
                    if !published.isEmpty { capabilities["portMappings"] = .array(published.map(\.capabilityEntry)) }
                    if let staticAddress { capabilities["ips"] = [.string(staticAddress)] }
                    if let macAddress { capabilities["mac"] = .string(macAddress) }
                } else if let address = laterAddresses[index] {
                    capabilities["ips"] = [.string(address)]
                }
                let chain = Self.chain(list, of: network, capabilityArgs: capabilities)
                let result = try cni.add(
                    network: chain, containerID: containerID, netnsPath: netnsPath, ifName: ifName,
                    capabilityArgs: capabilities)
                added.append((chain, ifName))
                let address = result.ipv4(on: ifName)
                attachments.append(
                    Attachment(
                        network: network.name, networkID: network.id, interface: ifName, ipAddress: address?.ip,
                        prefixLength: address?.prefixLength, gateway: address?.gateway ?? network.gateway,
                        macAddress: result.containerInterface(ifName)?.interface.mac, ports: index == 0 ? published : []
                    ))
            }
        } catch {
            for (list, ifName) in added.reversed() {
                try? cni.del(network: list, containerID: containerID, netnsPath: netnsPath, ifName: ifName)
            }
            if !published.isEmpty { try? ports.release(containerID: containerID) }
            throw error
        }
        return attachments
    }

    /// The plugins one attachment to a network of Berth's own runs: `portmap` and `tuning` are there for
    /// a capability only (published ports, a MAC address), and an attachment without it would run them
    /// for nothing at ADD and again at DEL — two of a pod sandbox's four programs, a third of its start.
    /// The chain used is the one cached with the attachment, so its DEL runs the same plugins. A network
    /// from a CNI configuration file runs as written.
    static func chain(_ list: NetworkConfigList, of network: Network, capabilityArgs: [String: JSON])
        -> NetworkConfigList
    {
        guard network.configFile == nil else { return list }
        var trimmed = list
        trimmed.plugins = list.plugins.filter { plugin in
            switch plugin.type {
            case "portmap": capabilityArgs["portMappings"] != nil
            case "tuning": capabilityArgs["mac"] != nil
            default: true
            }
        }
        return trimmed
    }

    /// Detaches the container from `networks` (every network it is attached to when empty), using the
    /// cached ADD of each attachment; a network without a cache entry gets a DEL with its current
    /// configuration on the interface its position implies, so a crash mid-attach is cleaned up too.
    /// Idempotent: detaching twice succeeds. Every DEL is attempted; the first error is thrown.
    public func detach(containerID: String, netnsPath: String, networks: [String] = []) throws(NetworkError) {
        let cached = cni.cachedEntries(containerID: containerID)
            .filter { networks.isEmpty || networks.contains($0.network.name) }
        var firstError: NetworkError?
        for entry in cached.reversed() {
            do {
                try cni.del(
                    network: entry.network, containerID: containerID, netnsPath: netnsPath, ifName: entry.ifName)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        // The reservations belong to the attachment that published them (the first network): detaching
        // only another network (`network disconnect`) must leave them to it.
        var releasesPorts = networks.isEmpty || cached.contains { $0.capabilityArgs["portMappings"] != nil }
        let done = Set(cached.map(\.network.name))
        for (index, name) in networks.enumerated().reversed() where !done.contains(name) {
            if index == 0 { releasesPorts = true }
            guard let network = try? store.inspect(name), network.isAttachable,
                let list = try? store.configList(for: network)
            else { continue }
            do {
                try cni.del(network: list, containerID: containerID, netnsPath: netnsPath, ifName: "eth\(index)")
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if releasesPorts {
            do { try ports.release(containerID: containerID) } catch { if firstError == nil { firstError = error } }
        }
        if let firstError { throw firstError }
    }

    /// Attaches the namespace of a running container to one more network on `interface` (`network
    /// connect`): no ports (they stay on the first network), `staticIP` (`--ip`) if the network takes
    /// one. A failed ADD is undone by ``CNI/add(network:containerID:netnsPath:ifName:capabilityArgs:args:)``
    /// itself, so nothing (veth, lease, cache entry) is left.
    public func attach(
        containerID: String, netnsPath: String, network name: String, interface ifName: String,
        staticIP: String? = nil
    ) throws(NetworkError) -> Attachment {
        let network = try store.inspect(name)
        guard network.isAttachable else {
            throw .notAttachable(network: network.name, reason: "it is not a CNI network")
        }
        let list = try store.configList(for: network)
        var capabilities: [String: JSON] = [:]
        if let staticIP {
            guard list.plugins.flatMap(\.capabilities).contains("ips") else {
                throw .invalidOption(
                    option: "--ip", value: staticIP, reason: "network \(network.name) does not take static addresses")
            }
            capabilities["ips"] = [.string(try Self.staticAddress(staticIP, on: network))]
        }
        try NetworkRules.ensure(network, markerDirectory: store.rulesDirectory)
        let result = try cni.add(
            network: list, containerID: containerID, netnsPath: netnsPath, ifName: ifName,
            capabilityArgs: capabilities)
        let address = result.ipv4(on: ifName)
        return Attachment(
            network: network.name, networkID: network.id, interface: ifName, ipAddress: address?.ip,
            prefixLength: address?.prefixLength, gateway: address?.gateway ?? network.gateway,
            macAddress: result.containerInterface(ifName)?.interface.mac, ports: [])
    }

    /// Detaches one attachment (`network disconnect`): DEL with its cached ADD (else with the network's
    /// current configuration on `interface`), its host ports released only if it is the attachment that
    /// published them. Idempotent.
    public func detach(containerID: String, netnsPath: String, network name: String, interface ifName: String)
        throws(NetworkError)
    {
        let cached = cni.cachedEntry(network: name, containerID: containerID, ifName: ifName)
        var list = cached?.network
        if list == nil, let network = try? store.inspect(name), network.isAttachable {
            list = try? store.configList(for: network)
        }
        if let list {
            try cni.del(network: list, containerID: containerID, netnsPath: netnsPath, ifName: ifName)
        }
        if cached?.capabilityArgs["portMappings"] != nil {
            try ports.release(containerID: containerID)
        }
    }

    /// CNI CHECK of each attachment of the container (to `networks`, or all): throws the first plugin
    /// that finds its part missing or changed.
    public func check(containerID: String, netnsPath: String, networks: [String] = []) throws(NetworkError) {
        let cached = cni.cachedEntries(containerID: containerID)
            .filter { networks.isEmpty || networks.contains($0.network.name) }
        for name in networks where !cached.contains(where: { $0.network.name == name }) {
            throw .notAttached(network: name, containerID: containerID, ifName: "?")
        }
        for entry in cached {
            try cni.check(network: entry.network, containerID: containerID, netnsPath: netnsPath, ifName: entry.ifName)
        }
    }

    /// What `--add-host NAME:host-gateway` stands for: the default `bridge` network's gateway address
    /// (docker's default), the host's address on berth0.
    public func hostGatewayAddress() -> String? {
        (try? store.inspect("bridge"))?.gateway
    }

    /// The attachments recorded for a container (from the ADD cache), e.g. after an engine restart.
    public func attachments(containerID: String) -> [Attachment] {
        cni.cachedEntries(containerID: containerID).map { entry in
            let result = entry.parsedResult
            let address = result?.ipv4(on: entry.ifName)
            let network = try? store.inspect(entry.network.name)
            let published =
                entry.capabilityArgs["portMappings"]?.array?.compactMap { value -> PortMapping? in
                    guard let host = value["hostPort"].int, let container = value["containerPort"].int,
                        let hostPort = UInt16(exactly: host), let containerPort = UInt16(exactly: container)
                    else { return nil }
                    return PortMapping(
                        hostIP: value["hostIP"].string ?? "", hostPort: hostPort, containerPort: containerPort,
                        proto: value["protocol"].string ?? "tcp")
                } ?? []
            return Attachment(
                network: entry.network.name, networkID: network?.id ?? "", interface: entry.ifName,
                ipAddress: address?.ip, prefixLength: address?.prefixLength, gateway: address?.gateway,
                macAddress: result?.containerInterface(entry.ifName)?.interface.mac, ports: published)
        }
    }

    /// `--mac-address`: six colon-separated hex pairs, unicast (docker's check).
    static func validateMAC(_ text: String) throws(NetworkError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }),
            let first = UInt8(parts[0], radix: 16)
        else {
            throw .invalidOption(
                option: "--mac-address", value: text, reason: "not a MAC address like 02:42:ac:11:00:02")
        }
        guard first & 1 == 0 else {
            throw .invalidOption(option: "--mac-address", value: text, reason: "a multicast address")
        }
    }

    /// `--ip` as host-local's `ips` capability wants it (CIDR with the network's prefix), checked to lie
    /// inside the network's subnet.
    public static func staticAddress(_ text: String, on network: Network) throws(NetworkError) -> String {
        guard let address = IPv4Address(text) else {
            throw .invalidOption(option: "--ip", value: text, reason: "not an IPv4 address")
        }
        guard let subnet = network.subnet.flatMap({ IPv4Subnet($0, strict: false) }) else { return text }
        guard subnet.contains(address), address != subnet.first, address != subnet.last else {
            throw .invalidOption(
                option: "--ip", value: text, reason: "not a host address of network \(network.name)'s subnet \(subnet)")
        }
        return "\(address)/\(subnet.prefixLength)"
    }
}

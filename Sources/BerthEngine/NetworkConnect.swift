import BerthNetwork
import BerthOS

/// `network connect` and `network disconnect`, as docker's.
///
/// A stopped container only has its configuration changed: it joins or leaves at its next start. A
/// running one is changed now, in its pinned namespace: one CNI ADD on the next interface name (or one
/// DEL of that attachment), its record and configuration (so a restart re-attaches the same), its
/// /etc/hosts, and a `network connect|disconnect` event. The rules deciding what is allowed, which
/// interface comes next and which network becomes the first are in ``NetworkConnection``, apart from
/// the doing, so they are tested without root.
extension Engine {
    /// Joins `network`, with `ipAddress` (`--ip`) and `aliases` (`--alias`) on it.
    public func connect(_ reference: String, to network: String, ipAddress: String? = nil, aliases: [String] = [])
        throws(EngineError)
    {
        try locked(container: reference) { id throws(EngineError) in
            var record = try lookup(id)
            let found: Network
            do throws(NetworkError) { found = try networks.store.inspect(network) } catch {
                throw Self.engineError(error)
            }
            try NetworkConnection.refuseRemoval(record)
            let path = layout.networkNamespace(record.id)
            // A container waiting out a restart back-off has no namespace now: it joins at that restart.
            let live = record.state.status == .running || record.state.status == .paused
            let pinned = live && NetworkNamespace.isPinned(path)
            let emptied = record.configuration.networksDisconnected == true
            if let refusal = NetworkConnection.connectRefusal(
                mode: record.configuration.networkMode, hasEmptiedNamespace: emptied,
                network: found, ipAddress: ipAddress, aliases: aliases)
            {
                throw .conflict(refusal)
            }
            if let ipAddress {
                do { _ = try NetworkManager.staticAddress(ipAddress, on: found) } catch { throw .network("\(error)") }
            }
            let settings = ContainerConfiguration.EndpointSettings(ipAddress: ipAddress, aliases: aliases)
            let joined = NetworkConnection.configuredNetworks(record.configuration).contains(found.name)
            guard live else {
                // docker leaves a stopped container already configured for the network as it is.
                if joined { return }
                NetworkConnection.add(found.name, settings, to: &record.configuration)
                try save(record)
                return
            }
            if joined || record.networks.contains(where: { $0.networkID == found.id }) {
                throw .conflict("endpoint with name \(record.name) already exists in network \(found.name)")
            }
            guard pinned else {
                throw .conflict("container \(record.name) has no network namespace of its own to connect: restart it")
            }
            let index = NetworkConnection.nextInterfaceIndex(
                inUse: record.networks.map(\.interface), counter: record.nextInterfaceIndex)
            let ifName = "eth\(index)"
            let attachment: Attachment
            do {
                attachment = try networks.attach(
                    containerID: record.id, netnsPath: path, network: found.name, interface: ifName,
                    staticIP: ipAddress)
            } catch { throw .network("\(error)") }
            var updated = record
            updated.networks.append(ContainerNetworking.recorded(attachment, aliases: aliases))
            updated.nextInterfaceIndex = index + 1
            NetworkConnection.add(found.name, settings, to: &updated.configuration)
            // Nothing half-made: if the hosts file or the record cannot be written, the ADD is undone.
            do throws(EngineError) {
                try rewriteHosts(updated)
                try save(updated)
            } catch {
                try? networks.detach(containerID: record.id, netnsPath: path, network: found.name, interface: ifName)
                try? rewriteHosts(record)
                throw error
            }
            networkEvents("connect", updated, [updated.networks[updated.networks.count - 1]], driver: found.driver)
        }
    }

    /// Leaves `network`. `force` (docker's `-f`) forgets the attachment even if its DEL fails (the
    /// cached ADD stays, so the DEL is tried again when the container stops) or the network is gone.
    public func disconnect(_ reference: String, from network: String, force: Bool = false) throws(EngineError) {
        try locked(container: reference) { id throws(EngineError) in
            var record = try lookup(id)
            try NetworkConnection.refuseRemoval(record)
            let found = try? networks.store.inspect(network)
            let name = found?.name ?? network
            let live = record.state.status == .running || record.state.status == .paused
            guard live, let found else {
                if live && !force { throw .noSuchNetwork(network) }
                let attached = record.networks.firstIndex { $0.network == name }
                guard NetworkConnection.remove(name, from: &record.configuration) || attached != nil else {
                    if found == nil { throw .noSuchNetwork(network) }
                    throw .conflict("container \(record.id) is not connected to the network \(name)")
                }
                if let attached {
                    // Forced off a network that no longer exists: DEL from what the cache remembers.
                    let gone = record.networks.remove(at: attached)
                    try? networks.detach(
                        containerID: record.id, netnsPath: layout.networkNamespace(record.id), network: gone.network,
                        interface: gone.interface)
                    if gone.interface == "eth0" { record.publishedPorts = [] }
                    try? rewriteHosts(record)
                }
                try save(record)
                return
            }
            if record.configuration.networkMode == "host" && found.driver == "host" {
                throw .conflict(NetworkConnection.hostNetwork)
            }
            guard
                let index = record.networks.firstIndex(where: { $0.networkID == found.id || $0.network == found.name })
            else {
                throw .conflict("container \(record.id) is not connected to network \(found.name)")
            }
            let attachment = record.networks[index]
            do {
                try networks.detach(
                    containerID: record.id, netnsPath: layout.networkNamespace(record.id), network: attachment.network,
                    interface: attachment.interface)
            } catch {
                guard force else {
                    throw .network("container \(record.id) failed to leave network \(found.name): \(error)")
                }
            }
            record.networks.remove(at: index)
            // The published ports were on eth0 (the first network at start): its DEL released them.
            if attachment.interface == "eth0" { record.publishedPorts = [] }
            _ = NetworkConnection.remove(found.name, from: &record.configuration)
            try? rewriteHosts(record)
            try save(record)
            networkEvents("disconnect", record, [attachment], driver: found.driver)
        }
    }

    /// `network connect|disconnect` events in docker's shape (Actor the network's ID; attributes container,
    /// name, type), one per attachment: written by connect and disconnect, and, as dockerd does, by a start
    /// for each network it attached and by the end of a run for each it detaches.
    func networkEvents(
        _ action: String, _ record: ContainerRecord, _ attachments: [ContainerRecord.NetworkAttachment],
        driver: String? = nil
    ) {
        guard !attachments.isEmpty else { return }
        // One read of the definitions for all (a start's path is measured), none when the caller knows.
        let drivers =
            driver != nil
            ? [:] : Dictionary(((try? networks.store.list()) ?? []).map { ($0.id, $0.driver) }) { a, _ in a }
        for attachment in attachments {
            let type = driver ?? drivers[attachment.networkID] ?? "bridge"
            events.append(
                type: "network", action: action, id: attachment.networkID,
                attributes: ["container": record.id, "name": attachment.network, "type": type])
        }
    }

    /// Rewrites a running container's /etc/hosts for its current attachments, as its start wrote it. In
    /// place, not by rename: the file is bind-mounted into the container, which sees only this inode.
    func rewriteHosts(_ record: ContainerRecord) throws(EngineError) {
        let path = layout.container(record.id) + "/hosts"
        guard FileSystem.exists(path) else { return }
        let addresses = record.networks.map { $0.address.split(separator: "/").first.map(String.init) ?? $0.address }
        let contents: String
        do {
            contents = try HostsFile.build(
                hostname: record.hostname, domainname: record.configuration.domainname, addresses: addresses,
                extraHosts: record.configuration.extraHosts, hostGateway: networks.hostGatewayAddress())
        } catch { throw .invalidArgument(what: "network options", reason: "\(error)") }
        do { try FileSystem.writeFile(path, contents) } catch { throw .system(error, context: "writing \(path)") }
    }
}

/// The rules of `network connect/disconnect`, with docker's messages (moby's runconfig errors).
enum NetworkConnection {
    static let sharedNetwork =
        "container sharing network namespace with another container or host cannot be connected to any other network"
    static let hostNetwork = "container cannot be disconnected from host network or connected to host network"
    static let noNetwork =
        "container cannot be connected to multiple networks with one of the networks in private (none) mode"
    static let addressOnPredefined = "user specified IP address is supported on user defined networks only"
    static let aliasOnPredefined = "network-scoped alias is supported only for containers in user defined networks"

    /// The network `networkMode` names, nil for `none`, `host` and `container:NAME`.
    static func primaryNetwork(_ mode: String) -> String? {
        if mode == "none" || mode == "host" || mode.hasPrefix("container:") { return nil }
        return mode == "default" ? "bridge" : mode
    }

    /// The networks a start attaches, in interface order.
    static func configuredNetworks(_ configuration: ContainerConfiguration) -> [String] {
        (primaryNetwork(configuration.networkMode).map { [$0] } ?? []) + configuration.additionalNetworks
    }

    /// Why docker refuses to connect a container in `mode` to `network`, nil if it may.
    /// `hasEmptiedNamespace`: the container's networks were all disconnected (its mode is `none` now, but it
    /// was never a `--network none` container).
    static func connectRefusal(
        mode: String, hasEmptiedNamespace: Bool, network: Network, ipAddress: String?, aliases: [String]
    ) -> String? {
        if mode.hasPrefix("container:") { return sharedNetwork }
        if network.driver == "host" && mode != "host" { return hostNetwork }
        if mode == "host" { return sharedNetwork }
        if network.driver == "null" || (mode == "none" && !hasEmptiedNamespace) { return noNetwork }
        let userDefined = !Network.predefinedNames.contains(network.name)
        if ipAddress != nil && !userDefined { return addressOnPredefined }
        if !aliases.isEmpty && !userDefined { return aliasOnPredefined }
        return nil
    }

    /// A removed container cannot be connected or disconnected (docker's errRemovalContainer).
    static func refuseRemoval(_ record: ContainerRecord) throws(EngineError) {
        if record.state.status == .removing || record.state.status == .dead {
            throw .conflict(
                "Container \(record.id) is marked for removal and cannot be connected or disconnected to the network")
        }
    }

    /// The index of the interface a connect adds: past every interface in use and past the container's
    /// counter (docker's sandbox counts up and never reuses a name while the container runs).
    static func nextInterfaceIndex(inUse: [String], counter: Int?) -> Int {
        let used = inUse.compactMap { $0.hasPrefix("eth") ? Int($0.dropFirst(3)) : nil }
        return max(counter ?? 0, (used.max() ?? -1) + 1)
    }

    /// Adds `network` to the configuration: after the others, or as the first if there is none.
    static func add(
        _ network: String, _ settings: ContainerConfiguration.EndpointSettings,
        to configuration: inout ContainerConfiguration
    ) {
        if primaryNetwork(configuration.networkMode) == nil {
            configuration.networksDisconnected = nil
            configuration.networkMode = network
            configuration.ipAddress = settings.ipAddress
            configuration.networkAliases = settings.aliases
            return
        }
        configuration.additionalNetworks.append(network)
        if settings != .init() {
            configuration.additionalEndpoints = (configuration.additionalEndpoints ?? [:]).merging([network: settings])
            { $1 }
        }
    }

    /// Removes `network` from the configuration; false if it was not there. Leaving the first network
    /// makes the next one first (with its `--ip` and aliases), as docker's container keeps its other
    /// networks; leaving the last one leaves `none` (loopback only), marked as left so that it may join
    /// again. Published ports stay asked for:
    /// they are published on whichever network is first at the next start.
    static func remove(_ network: String, from configuration: inout ContainerConfiguration) -> Bool {
        if let index = configuration.additionalNetworks.firstIndex(of: network) {
            configuration.additionalNetworks.remove(at: index)
            configuration.additionalEndpoints?[network] = nil
            if configuration.additionalEndpoints?.isEmpty == true { configuration.additionalEndpoints = nil }
            return true
        }
        guard primaryNetwork(configuration.networkMode) == network else { return false }
        if configuration.additionalNetworks.isEmpty {
            configuration.networksDisconnected = true
            configuration.networkMode = "none"
            configuration.ipAddress = nil
            configuration.networkAliases = []
            return true
        }
        let next = configuration.additionalNetworks.removeFirst()
        let settings = configuration.additionalEndpoints?[next]
        configuration.additionalEndpoints?[next] = nil
        if configuration.additionalEndpoints?.isEmpty == true { configuration.additionalEndpoints = nil }
        configuration.networkMode = next
        configuration.ipAddress = settings?.ipAddress
        configuration.networkAliases = settings?.aliases ?? []
        return true
    }
}

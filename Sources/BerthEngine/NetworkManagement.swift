import BerthNetwork

/// Creating, listing users of, removing and pruning networks, as docker's `network create/rm/prune`,
/// with the `network create|destroy` events dockerd writes. Shared by the `berth` CLI and the Docker
/// API, so both refuse the same things with the same words. Attaching containers is in
/// NetworkConnect.swift.
extension Engine {
    /// Containers attached to `network`, or configured for it while stopped (they would attach at their
    /// next start, so the network may not go).
    public func containers(using network: Network) -> [ContainerRecord] {
        list().filter { r in
            r.networks.contains { $0.networkID == network.id }
                || (!r.state.running && NetworkConnection.configuredNetworks(r.configuration).contains(network.name))
        }
    }

    /// The running containers' endpoints on `network` (what `network inspect` shows as Containers).
    public func endpoints(on network: Network) -> [(
        container: ContainerRecord, attachment: ContainerRecord.NetworkAttachment
    )] {
        list().flatMap { r in r.networks.filter { $0.networkID == network.id }.map { (r, $0) } }
    }

    /// `network create`: a bridge network with the given or an automatic subnet.
    public func createNetwork(
        name: String, subnet: String? = nil, gateway: String? = nil, internal: Bool = false,
        labels: [String: String] = [:]
    ) throws(EngineError) -> Network {
        let network: Network
        do {
            network = try networks.store.create(
                name: name, subnet: subnet, gateway: gateway, internal: `internal`, labels: labels)
        } catch { throw Self.engineError(error) }
        events.append(
            type: "network", action: "create", id: network.id,
            attributes: ["name": network.name, "type": network.driver])
        return network
    }

    /// `network rm`: refused while a container uses the network (docker's "has active endpoints"), and for
    /// the predefined ones (``NetworkError/predefinedNetwork(_:)`` in the cause).
    @discardableResult
    public func removeNetwork(_ nameOrID: String) throws(EngineError) -> Network {
        try locked { () throws(EngineError) -> Network in
            let network: Network
            do throws(NetworkError) { network = try networks.store.inspect(nameOrID) } catch {
                throw Self.engineError(error)
            }
            if !containers(using: network).isEmpty {
                throw .conflict(
                    "error while removing network: network \(network.name) id \(network.id) has active endpoints")
            }
            do throws(NetworkError) { try networks.store.remove(network.id) } catch { throw Self.engineError(error) }
            events.append(
                type: "network", action: "destroy", id: network.id,
                attributes: ["name": network.name, "type": network.driver])
            return network
        }
    }

    /// `network prune`: every network of Berth's own (not predefined, not from a CNI configuration
    /// directory) that no container uses and that `include` accepts.
    public func pruneNetworks(where include: (Network) -> Bool = { _ in true }) -> [Network] {
        let candidates = ((try? networks.store.list()) ?? []).filter {
            !Network.predefinedNames.contains($0.name) && $0.configFile == nil && include($0)
        }
        return candidates.compactMap { network in try? removeNetwork(network.id) }
    }

    /// The network layer's error as the engine reports it: what docker answers 404, 409 or 400 for
    /// keeps that meaning; the rest is a network failure.
    static func engineError(_ error: NetworkError) -> EngineError {
        switch error {
        case .noSuchNetwork(let name): return .noSuchNetwork(name)
        case .networkExists, .predefinedNetwork, .subnetOverlap: return .conflict("\(error)")
        case .invalidNetworkName, .invalidOption, .invalidPort:
            return .invalidArgument(what: "network", reason: "\(error)")
        default: return .network("\(error)")
        }
    }
}

extension ContainerRecord.NetworkAttachment {
    /// A 64-hex endpoint ID for this container on this network: Berth keeps no endpoint objects, so it
    /// is made of the two IDs (unique per pair, stable while the attachment lasts).
    public func endpointID(container: String) -> String { String(container.prefix(32)) + String(networkID.prefix(32)) }
}

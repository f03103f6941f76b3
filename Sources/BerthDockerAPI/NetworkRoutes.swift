import BerthEngine
import BerthNetwork
import BerthOS
import FoundationEssentials
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// The network endpoints: list, inspect, create, remove, connect, disconnect, prune, over the engine's
/// networks (the predefined `bridge`, `host` and `none`, and the user's bridge networks).
extension DockerAPI {
    /// A network as dockerd's `GET /networks/{id}` shows it (API 1.47).
    struct NetworkResource: Encodable {
        struct IPAMSection: Encodable {
            struct Pool: Encodable { var Subnet: String; var Gateway: String }
            var Driver = "default"
            var Options: [String: String]? = nil
            var Config: [Pool]

            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: Keys.self)
                try c.encode(Driver, forKey: .Driver)
                try c.encode(Options, forKey: .Options)
                try c.encode(Config, forKey: .Config)
            }
            enum Keys: String, CodingKey { case Driver, Options, Config }
        }
        struct Endpoint: Encodable {
            var Name: String
            var EndpointID: String
            var MacAddress: String
            var IPv4Address: String
            var IPv6Address = ""
        }
        var Name: String
        var Id: String
        var Created: String
        var Scope: String
        var Driver: String
        var EnableIPv6 = false
        var IPAM: IPAMSection
        var Internal: Bool
        var Attachable = false
        var Ingress = false
        var ConfigFrom = ["Network": ""]
        var ConfigOnly = false
        var Containers: [String: Endpoint]
        var Options: [String: String]
        var Labels: [String: String]
    }

    func networkResource(_ network: Network, withContainers: Bool) -> NetworkResource {
        var containers: [String: NetworkResource.Endpoint] = [:]
        if withContainers {
            for (record, attachment) in engine.endpoints(on: network) {
                containers[record.id] = .init(
                    Name: record.name, EndpointID: attachment.endpointID(container: record.id),
                    MacAddress: attachment.macAddress, IPv4Address: attachment.address)
            }
        }
        var options: [String: String] = [:]
        if let bridge = network.bridge { options["com.docker.network.bridge.name"] = bridge }
        return NetworkResource(
            Name: network.name, Id: network.id, Created: network.created, Scope: network.scope, Driver: network.driver,
            IPAM: .init(Config: network.subnet.map { [.init(Subnet: $0, Gateway: network.gateway ?? "")] } ?? []),
            Internal: network.internal, Containers: containers, Options: options, Labels: network.labels)
    }

    private func allNetworks() throws -> [Network] {
        do { return try engine.networks.store.list() } catch { throw DockerAPIError(.internalServerError, "\(error)") }
    }

    private func network(_ reference: String) throws -> Network {
        do { return try engine.networks.store.inspect(reference) } catch {
            if case .noSuchNetwork = error { throw DockerAPIError.notFound("network \(reference) not found") }
            throw DockerAPIError(.internalServerError, "\(error)")
        }
    }

    func routeNetworks(_ method: HTTPMethod, _ parts: [String], _ request: APIRequest, _ response: ResponseWriter)
        throws -> Bool
    {
        switch (method, parts.count) {
        case (.GET, 0): try listNetworks(request, response)
        case (.POST, 1) where parts[0] == "create": try createNetwork(request, response)
        case (.POST, 1) where parts[0] == "prune": try pruneNetworks(request, response)
        case (.GET, 1): response.json(networkResource(try network(parts[0]), withContainers: true))
        case (.DELETE, 1): try removeNetwork(parts[0], response)
        case (.POST, 2) where parts[1] == "connect": try connectNetwork(parts[0], request, response)
        case (.POST, 2) where parts[1] == "disconnect": try disconnectNetwork(parts[0], request, response)
        default: return false
        }
        return true
    }

    func listNetworks(_ request: APIRequest, _ response: ResponseWriter) throws {
        let filters = try Filters.parse(request.value("filters"))
        try filters.allow(["name", "id", "driver", "label", "type", "scope", "dangling"])
        for type in filters.values("type") where type != "custom" && type != "builtin" {
            throw DockerAPIError.badRequest("invalid filter: 'type'='\(type)'")
        }
        let users = Set(
            engine.list().flatMap { record in
                record.networks.map(\.networkID)
                    + (record.state.running
                        ? [] : [record.configuration.networkMode] + record.configuration.additionalNetworks)
            })
        let selected = try allNetworks().filter { n in
            let builtin = Network.predefinedNames.contains(n.name)
            return filters.matches("name") { n.name.contains($0) }
                && filters.matches("id") { n.id.hasPrefix($0) }
                && filters.matches("driver") { $0 == n.driver }
                && filters.matches("scope") { $0 == n.scope }
                && filters.matches("type") { ($0 == "builtin") == builtin }
                && filters.matches("dangling") { wanted in
                    let unused = !builtin && !users.contains(n.id) && !users.contains(n.name)
                    return (wanted == "true" || wanted == "1") == unused
                }
                && filters.matchesLabel(n.labels)
        }
        response.json(selected.map { networkResource($0, withContainers: false) })
    }

    struct NetworkCreateRequest: Decodable {
        struct IPAMSection: Decodable {
            struct Pool: Decodable {
                var Subnet: String?; var Gateway: String?; var IPRange: String?;
                var AuxiliaryAddresses: [String: String]?
            }
            var Driver: String?
            var Config: [Pool]?
        }
        var Name: String
        var Driver: String?
        var Internal: Bool?
        var EnableIPv6: Bool?
        var IPAM: IPAMSection?
        var Labels: [String: String]?
    }

    func createNetwork(_ request: APIRequest, _ response: ResponseWriter) throws {
        let body = try decodeJSON(NetworkCreateRequest.self, request.body)
        if let driver = body.Driver, !driver.isEmpty, driver != "bridge" {
            throw DockerAPIError.notFound("plugin \"\(driver)\" not found")
        }
        if body.EnableIPv6 == true { throw unsupported("IPv6 networks (EnableIPv6)") }
        if let driver = body.IPAM?.Driver, !driver.isEmpty, driver != "default" {
            throw DockerAPIError.notFound("plugin \"\(driver)\" not found")
        }
        let pools = body.IPAM?.Config ?? []
        if pools.count > 1 { throw unsupported("more than one IPAM pool") }
        if let pool = pools.first, pool.IPRange?.isEmpty == false || pool.AuxiliaryAddresses?.isEmpty == false {
            throw unsupported("IPAM IPRange and AuxiliaryAddresses")
        }
        if Network.predefinedNames.contains(body.Name) {
            throw DockerAPIError(.forbidden, "operation is not permitted on predefined \(body.Name) network ")
        }
        let created = try engine.createNetwork(
            name: body.Name, subnet: pools.first?.Subnet.flatMap { $0.isEmpty ? nil : $0 },
            gateway: pools.first?.Gateway.flatMap { $0.isEmpty ? nil : $0 },
            internal: body.Internal ?? false, labels: body.Labels ?? [:])
        response.json(["Id": created.id, "Warning": ""], status: .created)
    }

    /// dockerd answers 403 both for a predefined network and for one with active endpoints.
    func removeNetwork(_ reference: String, _ response: ResponseWriter) throws {
        let found = try network(reference)
        if Network.predefinedNames.contains(found.name) || found.configFile != nil {
            throw DockerAPIError(.forbidden, "\(found.name) is a pre-defined network and cannot be removed")
        }
        do throws(EngineError) {
            try engine.removeNetwork(found.id)
        } catch {
            if case .conflict(let message) = error { throw DockerAPIError(.forbidden, message) }
            throw error
        }
        response.send(.noContent)
    }

    struct NetworkConnectRequest: Decodable {
        struct EndpointSection: Decodable {
            struct IPAMSection: Decodable { var IPv4Address: String?; var IPv6Address: String? }
            var Aliases: [String]?
            var IPAMConfig: IPAMSection?
        }
        var Container: String
        var EndpointConfig: EndpointSection?
    }

    func connectNetwork(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let body = try decodeJSON(NetworkConnectRequest.self, request.body)
        if body.EndpointConfig?.IPAMConfig?.IPv6Address?.isEmpty == false { throw unsupported("IPv6 addresses") }
        let found = try network(reference)
        let container = try engine.lookup(body.Container)
        let address = body.EndpointConfig?.IPAMConfig?.IPv4Address.flatMap { $0.isEmpty ? nil : $0 }
        try engine.connect(container.id, to: found.id, ipAddress: address, aliases: body.EndpointConfig?.Aliases ?? [])
        hub.notify()
        response.send(.ok)
    }

    struct NetworkDisconnectRequest: Decodable {
        var Container: String
        var Force: Bool?
    }

    func disconnectNetwork(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let body = try decodeJSON(NetworkDisconnectRequest.self, request.body)
        let container = try engine.lookup(body.Container)
        let force = body.Force ?? false
        // A forced disconnect may name a network that is gone: the engine forgets it then.
        let name = force ? ((try? network(reference))?.name ?? reference) : try network(reference).name
        try engine.disconnect(container.id, from: name, force: force)
        hub.notify()
        response.send(.ok)
    }

    func pruneNetworks(_ request: APIRequest, _ response: ResponseWriter) throws {
        let filters = try Filters.parse(request.value("filters"))
        try filters.allow(["label", "label!", "until"])
        let until = try filters.values("until").first.map { try PruneFilters.until($0) }
        let removed = engine.pruneNetworks { n in
            filters.matchesLabel(n.labels) && PruneFilters.labelAbsent(filters.values("label!"), n.labels)
                && (until.map { limit in (Timestamp.parse(n.created)?.seconds).map { Double($0) < limit } ?? false }
                    ?? true)
        }
        response.json(["NetworksDeleted": removed.map(\.name)])
    }
}

/// What the prune endpoints' filters share: `until` (a time before which the object was made) and
/// `label!` (objects without the label).
enum PruneFilters {
    /// `until`: Unix seconds (with a fraction), RFC 3339, or a duration before now (`10m`, `1h30m`).
    static func until(_ text: String) throws(DockerAPIError) -> Double {
        if let seconds = Double(text) { return seconds }
        if let parsed = Timestamp.parse(text) { return Double(parsed.seconds) }
        var total = 0.0
        var number = ""
        for c in text {
            if c.isNumber || c == "." { number.append(c); continue }
            guard let value = Double(number) else { throw .badRequest("invalid filter 'until=\(text)'") }
            switch c {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            default: throw .badRequest("invalid filter 'until=\(text)'")
            }
            number = ""
        }
        guard number.isEmpty, total > 0 else { throw .badRequest("invalid filter 'until=\(text)'") }
        return Double(time(nil)) - total
    }

    /// `label!=key` or `label!=key=value`: none of them may hold.
    static func labelAbsent(_ values: [String], _ labels: [String: String]) -> Bool {
        !values.contains { label in
            let kv = label.split(separator: "=", maxSplits: 1).map(String.init)
            guard let value = labels[kv[0]] else { return false }
            return kv.count == 1 || value == kv[1]
        }
    }
}

/// A request body as `T`; malformed JSON is docker's 400.
func decodeJSON<T: Decodable>(_ type: T.Type, _ body: [UInt8]) throws(DockerAPIError) -> T {
    do {
        return try JSONDecoder().decode(T.self, from: Data(body.isEmpty ? Array("{}".utf8) : body))
    } catch let error as DecodingError {
        throw .badRequest(ContainerCreateRequest.describe(error))
    } catch {
        throw .badRequest("invalid JSON: \(error)")
    }
}

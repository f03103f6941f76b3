/// discovery.k8s.io/v1 EndpointSlice (upstream pkg/registry/discovery/endpointslice/strategy.go): written
/// by the EndpointSlice controllers, or by hand. Defaults and validation are upstream's
/// (pkg/apis/discovery/v1/defaults.go, pkg/apis/discovery/validation): the address type, the endpoints
/// with their addresses, zone, deprecated topology and hints, and the ports.
struct EndpointSliceStrategy: ResourceStrategy {
    static let addressTypes = ["FQDN", "IPv4", "IPv6"]
    static let portProtocols = ["SCTP", "TCP", "UDP"]
    static let maxEndpoints = 1000
    static let maxAddresses = 100
    static let maxPorts = 100
    static let maxTopologyLabels = 16
    static let maxZoneHints = 8

    /// SetDefaults_EndpointPort: a port without a name has the empty one, without a protocol TCP.
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        guard let ports = obj["ports"].array else { return }
        obj["ports"] = .array(
            ports.map { port in
                guard port.object != nil else { return port }
                var port = port
                if port["name"].isNull { port["name"] = "" }
                if port["protocol"].isNull { port["protocol"] = "TCP" }
                return port
            })
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "AddressType"), .init(name: "Ports"), .init(name: "Endpoints"),
            Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let ports = (obj["ports"].array ?? []).compactMap { $0["port"].int.map(String.init) }.joined(separator: ",")
        let addrs = (obj["endpoints"].array ?? []).flatMap { ($0["addresses"].array ?? []).compactMap(\.string) }
        return [
            Tables.nameCell(obj), .string(obj["addressType"].string ?? ""), .string(ports.isEmpty ? "<unset>" : ports),
            .string(addrs.isEmpty ? "<unset>" : addrs.prefix(3).joined(separator: ",")), Tables.ageCell(obj),
        ]
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let addressType = obj["addressType"]
        if (addressType.string ?? "").isEmpty {
            errs.append(FieldChecks.required("addressType"))
        } else {
            errs += FieldChecks.supported(addressType, Self.addressTypes, "addressType")
        }
        let endpoints = obj["endpoints"].array ?? []
        if endpoints.count > Self.maxEndpoints {
            errs.append(
                .init(
                    "endpoints", "FieldValueTooMany",
                    "Too many: \(endpoints.count): must have at most \(Self.maxEndpoints) items"))
            return errs
        }
        let allowLoopback = EndpointsStrategy.isAPIServerEndpoints(obj)
        for (i, endpoint) in endpoints.enumerated() {
            let at = "endpoints[\(i)]"
            let addresses = endpoint["addresses"].array ?? []
            if addresses.isEmpty {
                errs.append(FieldChecks.required("\(at).addresses", "must contain at least 1 address"))
            } else if addresses.count > Self.maxAddresses {
                errs.append(
                    .init(
                        "\(at).addresses", "FieldValueTooMany",
                        "Too many: \(addresses.count): must have at most \(Self.maxAddresses) items"))
            }
            for (j, value) in addresses.enumerated() {
                let path = "\(at).addresses[\(j)]", address = value.string ?? ""
                // Unknown address types are refused above; their addresses are not looked at.
                switch addressType.string {
                case "IPv4":
                    errs += FieldChecks.ipv4(address, path)
                    errs += FieldChecks.endpointIP(address, path, allowLoopback: allowLoopback)
                case "IPv6":
                    errs += FieldChecks.ipv6(address, path)
                    errs += FieldChecks.endpointIP(address, path, allowLoopback: allowLoopback)
                case "FQDN": errs += FieldChecks.fullyQualifiedDomainName(address, path)
                default: break
                }
            }
            if let node = endpoint["nodeName"].string { errs += FieldChecks.dns1123Subdomain(node, "\(at).nodeName") }
            if let hostname = endpoint["hostname"].string {
                errs += FieldChecks.dns1123Label(hostname, "\(at).hostname")
            }
            let topology = endpoint["deprecatedTopology"].object ?? [:]
            if topology.count > Self.maxTopologyLabels {
                errs.append(
                    .init(
                        "\(at).deprecatedTopology", "FieldValueTooMany",
                        "Too many: \(topology.count): must have at most \(Self.maxTopologyLabels) items"))
            }
            errs += FieldChecks.labels(endpoint["deprecatedTopology"], "\(at).deprecatedTopology")
            if let zone = endpoint["zone"].string {
                errs += FieldChecks.labels(["topology.kubernetes.io/zone": .string(zone)], "\(at).zone")
            }
            if !endpoint["hints"].isNull { errs += Self.validateHints(endpoint["hints"], "\(at).hints") }
        }
        return errs + Self.validatePorts(obj["ports"].array ?? [])
    }

    /// validateHints: at most eight zones, each named once, each name a label value.
    static func validateHints(_ hints: JSON, _ path: String) -> [APIError.Cause] {
        let zones = hints["forZones"].array ?? []
        if zones.count > maxZoneHints {
            return [
                .init(
                    "\(path).forZones", "FieldValueTooMany",
                    "Too many: \(zones.count): must have at most \(maxZoneHints) items")
            ]
        }
        var errs: [APIError.Cause] = []
        var seen: Set<String> = []
        for (i, zone) in zones.enumerated() {
            let at = "\(path).forZones[\(i)].name"
            let name = zone["name"].string ?? ""
            if !seen.insert(name).inserted {
                errs.append(.init(at, "FieldValueDuplicate", "Duplicate value: \"\(name)\""))
            }
            errs += FieldChecks.labelValue(zone["name"], at)
        }
        return errs
    }

    /// validatePorts: at most 100, names DNS labels and unique (the empty one too), a supported protocol,
    /// appProtocol a qualified name.
    static func validatePorts(_ ports: [JSON]) -> [APIError.Cause] {
        if ports.count > maxPorts {
            return [
                .init("ports", "FieldValueTooMany", "Too many: \(ports.count): must have at most \(maxPorts) items")
            ]
        }
        var errs: [APIError.Cause] = []
        var names: Set<String> = []
        for (i, port) in ports.enumerated() {
            let at = "ports[\(i)]"
            let name = port["name"].string ?? ""
            if !name.isEmpty { errs += FieldChecks.dns1123Label(name, "\(at).name") }
            if !names.insert(name).inserted {
                errs.append(.init("\(at).name", "FieldValueDuplicate", "Duplicate value: \"\(name)\""))
            }
            if port["protocol"].isNull {
                errs.append(FieldChecks.required("\(at).protocol"))
            } else {
                errs += FieldChecks.supported(port["protocol"], portProtocols, "\(at).protocol")
            }
            if let appProtocol = port["appProtocol"].string {
                errs += FieldChecks.qualifiedName(appProtocol, "\(at).appProtocol")
            }
        }
        return errs
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        FieldChecks.immutable(obj["addressType"], old["addressType"], "addressType")
    }
}

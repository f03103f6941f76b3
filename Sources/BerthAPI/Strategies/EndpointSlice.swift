/// discovery.k8s.io/v1 EndpointSlice (upstream pkg/registry/discovery/endpointslice/strategy.go): written
/// by the EndpointSlice controllers, or by hand. Validation is upstream's ValidateEndpointSlice for the
/// address type and the endpoints (pkg/apis/discovery/validation); ports, topology and hints are not
/// checked yet.
struct EndpointSliceStrategy: ResourceStrategy {
    static let addressTypes = ["FQDN", "IPv4", "IPv6"]
    static let maxEndpoints = 1000
    static let maxAddresses = 100

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
        }
        return errs
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        FieldChecks.immutable(obj["addressType"], old["addressType"], "addressType")
    }
}

/// What a chain of CNI plugins reports after ADD (spec 1.0 "Success"): the interfaces made, the IP
/// addresses with their gateways, routes and DNS. `json` is the document exactly as the last plugin
/// printed it; it is what goes to the next plugin, to DEL and CHECK as `prevResult`, and into the cache,
/// so keys this type does not model survive.
public struct CNIResult: Sendable, Equatable {
    public struct Interface: Sendable, Equatable {
        public var name: String
        public var mac: String?
        /// The netns path for an interface inside the container; nil for one on the host.
        public var sandbox: String?
        public var mtu: Int?
    }

    public struct IPConfig: Sendable, Equatable {
        /// CIDR notation, e.g. `10.89.0.2/16`.
        public var address: String
        public var gateway: String?
        /// Index into ``interfaces``.
        public var interface: Int?

        /// The address without its prefix length.
        public var ip: String { String(address.split(separator: "/").first ?? "") }
        public var prefixLength: Int? { address.split(separator: "/").dropFirst().first.flatMap { Int($0) } }
    }

    public struct Route: Sendable, Equatable {
        public var destination: String
        public var gateway: String?
    }

    public struct DNS: Sendable, Equatable {
        public var nameservers: [String] = []
        public var domain: String?
        public var search: [String] = []
        public var options: [String] = []
    }

    public var cniVersion: String
    public var interfaces: [Interface]
    public var ips: [IPConfig]
    public var routes: [Route]
    public var dns: DNS
    public var json: JSON

    /// Parses a result document. Results of versions 0.3.x/0.4.0 have the same shape plus an `ips[].version`
    /// that is ignored; 0.1/0.2's `ip4`/`ip6` objects are read too.
    public init(json: JSON, source: String = "CNI result") throws(NetworkError) {
        guard let object = json.object else {
            throw .invalidConfiguration(source: source, reason: "a result must be a JSON object")
        }
        self.json = json
        cniVersion = object["cniVersion"]?.string ?? ""
        interfaces = []
        for entry in object["interfaces"]?.array ?? [] {
            guard let name = entry["name"].string else {
                throw .invalidConfiguration(source: source, reason: "an interface has no name")
            }
            let sandbox = entry["sandbox"].string
            interfaces.append(
                Interface(
                    name: name, mac: entry["mac"].string,
                    sandbox: sandbox?.isEmpty == true ? nil : sandbox,
                    mtu: entry["mtu"].int.map { Int($0) }))
        }
        ips = []
        for entry in object["ips"]?.array ?? [] {
            guard let address = entry["address"].string, address.contains("/") else {
                throw .invalidConfiguration(source: source, reason: "an IP entry has no address in CIDR notation")
            }
            ips.append(
                IPConfig(
                    address: address, gateway: entry["gateway"].string,
                    interface: entry["interface"].int.map { Int($0) }))
        }
        for legacy in ["ip4", "ip6"] {
            if let entry = object[legacy], let address = entry["ip"].string {
                ips.append(IPConfig(address: address, gateway: entry["gateway"].string, interface: nil))
            }
        }
        routes = []
        for entry in object["routes"]?.array ?? [] {
            guard let destination = entry["dst"].string else {
                throw .invalidConfiguration(source: source, reason: "a route has no dst")
            }
            routes.append(Route(destination: destination, gateway: entry["gw"].string))
        }
        dns = DNS()
        if let entry = object["dns"] {
            dns.nameservers = entry["nameservers"].array?.compactMap(\.string) ?? []
            dns.domain = entry["domain"].string
            dns.search = entry["search"].array?.compactMap(\.string) ?? []
            dns.options = entry["options"].array?.compactMap(\.string) ?? []
        }
    }

    /// The interface named `ifName` inside the container (the one with a sandbox), if reported.
    public func containerInterface(_ ifName: String) -> (index: Int, interface: Interface)? {
        for (index, interface) in interfaces.enumerated() where interface.name == ifName && interface.sandbox != nil {
            return (index, interface)
        }
        for (index, interface) in interfaces.enumerated() where interface.name == ifName { return (index, interface) }
        return nil
    }

    /// The first IPv4 address on `ifName` (or on no particular interface), as docker shows one address.
    public func ipv4(on ifName: String) -> IPConfig? {
        let index = containerInterface(ifName)?.index
        let v4 = ips.filter { !$0.address.contains(":") }
        return v4.first { $0.interface == index } ?? v4.first { $0.interface == nil } ?? v4.first
    }
}

import BerthDNS
import BerthKube

/// The names of the cluster domain as the Kubernetes DNS specification gives them, made from Services
/// and EndpointSlices: a snapshot the server answers from without a lock or an allocation per lookup
/// beyond the answer, rebuilt whenever either kind changes.
public struct ClusterZone: Sendable {
    public struct NamedPort: Sendable, Equatable {
        public var name: String
        /// `tcp`, `udp`, `sctp`.
        public var transport: String
        public var port: UInt16
    }

    public struct Endpoint: Sendable, Equatable {
        public var address: IPv4Address
        /// The pod's hostname when the Service is its subdomain, else nil (its name is then the
        /// address with dashes, as CoreDNS answers it).
        public var hostname: String?
        public var ports: [NamedPort]

        /// The label this endpoint has under its Service.
        public var label: String { hostname ?? address.description.replacingCharacter(".", with: "-") }
    }

    public struct Service: Sendable {
        public var clusterIP: IPv4Address?
        public var externalName: String?
        public var ports: [NamedPort]
        /// Ready endpoints (headless Services answer with them).
        public var endpoints: [Endpoint]
        public var isHeadless: Bool { clusterIP == nil && externalName == nil }
    }

    /// `cluster.local` as labels.
    public let domain: [String]
    /// By `name.namespace`.
    public private(set) var services: [String: Service] = [:]
    public private(set) var namespaces: Set<String> = []
    /// PTR names of cluster IPs and of headless Services' endpoints.
    public private(set) var reverse: [IPv4Address: String] = [:]

    public init(domain: String) {
        self.domain = domain.lowercased().split(separator: ".").map(String.init)
    }

    public init(domain: String, services: [CoreV1.Service], slices: [DiscoveryV1.EndpointSlice]) {
        self.init(domain: domain)
        let zone = self.domain.joined(separator: ".")
        var slicesByService: [String: [DiscoveryV1.EndpointSlice]] = [:]
        for slice in slices where slice.addressType == "IPv4" {
            guard let service = slice.metadata.labels["kubernetes.io/service-name"],
                let namespace = slice.metadata.namespace
            else { continue }
            slicesByService[service + "." + namespace, default: []].append(slice)
        }
        for service in services {
            guard let name = service.metadata.name?.lowercased() else { continue }
            let namespace = (service.metadata.namespace ?? "default").lowercased()
            let key = name + "." + namespace
            namespaces.insert(namespace)
            let ports = service.spec.ports.map {
                NamedPort(
                    name: ($0.name ?? "").lowercased(), transport: ($0.protocol?.rawValue ?? "TCP").lowercased(),
                    port: UInt16(clamping: $0.port))
            }
            if service.spec.type == .externalName {
                let target = (service.spec.externalName ?? "").lowercased()
                self.services[key] = Service(
                    clusterIP: nil, externalName: target.hasSuffix(".") ? String(target.dropLast()) : target,
                    ports: ports, endpoints: [])
                continue
            }
            let clusterIP = service.spec.clusterIP.flatMap { IPv4Address($0) }
            var endpoints: [Endpoint] = []
            var seen: Set<IPv4Address> = []
            for slice in slicesByService[key] ?? [] {
                let slicePorts = slice.ports.compactMap { port -> NamedPort? in
                    guard let number = port.port else { return nil }
                    return NamedPort(
                        name: (port.name ?? "").lowercased(),
                        transport: (port.protocol?.rawValue ?? "TCP").lowercased(), port: UInt16(clamping: number))
                }
                for endpoint in slice.endpoints where endpoint.conditions.ready ?? true {
                    guard let address = endpoint.addresses.first.flatMap({ IPv4Address($0) }),
                        seen.insert(address).inserted
                    else { continue }
                    endpoints.append(
                        Endpoint(address: address, hostname: endpoint.hostname?.lowercased(), ports: slicePorts))
                }
            }
            endpoints.sort { $0.address < $1.address }
            let entry = Service(clusterIP: clusterIP, externalName: nil, ports: ports, endpoints: endpoints)
            self.services[key] = entry
            if let clusterIP {
                reverse[clusterIP] = "\(key).svc.\(zone)"
            } else {
                for endpoint in endpoints where reverse[endpoint.address] == nil {
                    reverse[endpoint.address] = "\(endpoint.label).\(key).svc.\(zone)"
                }
            }
        }
    }
}

extension String {
    /// Every `character` as `replacement` (`10.0.0.5` ↔ `10-0-0-5`, the spec's address labels).
    func replacingCharacter(_ character: Character, with replacement: Character) -> String {
        String(map { $0 == character ? replacement : $0 })
    }
}

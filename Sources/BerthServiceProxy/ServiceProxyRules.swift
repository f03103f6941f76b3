/// What the proxy's nftables table holds for a set of Service ports: the layout of kube-proxy's
/// nftables mode, so what an operator knows from `nft list table ip kube-proxy` reads the same here.
///
/// - `services` (from prerouting and output): one verdict-map lookup on destination address, protocol
///   and port (`service-ips`) and one on the node port (`service-nodeports`): O(1) in the number of
///   Services, however many there are.
/// - `service-…` chains: one per Service port, choosing an endpoint at random (`numgen`), or the one
///   a client's ClientIP affinity remembers; `endpoint-…` chains DNAT to one endpoint.
/// - `external-…` chains for node ports, external and load-balancer addresses: masqueraded (the reply
///   must come back through this node), or, with externalTrafficPolicy Local, kept to local endpoints
///   with the client's address intact.
/// - Ports without endpoints are rejected at once (`no-endpoint-…` maps, filter hooks), as kube-proxy
///   does, rather than left to time out; other ports of a cluster IP too.
public enum ServiceProxyRules {
    public struct Settings: Sendable, Equatable {
        /// The table's name, in the `ip` family.
        public var table = "berth-proxy"
        /// Pods' addresses (kube-proxy's --cluster-cidr): traffic from elsewhere to a cluster IP is
        /// masqueraded so replies return through the proxy; nil: only hairpin traffic is.
        public var clusterCIDR: String?
        /// The node's addresses node ports answer on (kube-proxy's default `--nodeport-addresses primary`).
        public var nodeIPs: [String] = []
        /// The packet mark meaning "masquerade me" (kube-proxy's bit 14).
        public var masqueradeMark: UInt32 = 0x4000

        public init() {}
    }

    public static func ruleset(_ ports: [ProxiedServicePort], settings: Settings) -> NFTablesRuleset {
        var r = NFTablesRuleset(table: settings.table, comment: "rules for the Berth service proxy")
        let mark = "0x" + String(settings.masqueradeMark, radix: 16)
        r.baseChains = [
            .init(
                name: "nat-prerouting", declaration: "type nat hook prerouting priority dstnat",
                rules: ["jump services"]),
            .init(name: "nat-output", declaration: "type nat hook output priority -100", rules: ["jump services"]),
            .init(
                name: "nat-postrouting", declaration: "type nat hook postrouting priority srcnat",
                rules: ["jump masquerading"]),
            .init(
                name: "filter-input", declaration: "type filter hook input priority -10",
                rules: ["ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"]),
            .init(
                name: "filter-forward", declaration: "type filter hook forward priority -10",
                rules: ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"]),
            .init(
                name: "filter-output", declaration: "type filter hook output priority -10",
                rules: ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"]),
        ]
        r.chains = [
            "mark-for-masquerade": ["meta mark set meta mark | \(mark)"],
            "masquerading": [
                "meta mark & \(mark) == 0 return", "meta mark set meta mark ^ \(mark)", "masquerade fully-random",
            ],
            "services": [
                "ip daddr . meta l4proto . th dport vmap @service-ips",
                "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
            ],
            "service-endpoints-check": ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"],
            "nodeport-endpoints-check": [
                "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"
            ],
            "cluster-ips-check": ["ip daddr @cluster-ips reject comment \"no such port on this cluster IP\""],
            "reject-chain": ["reject"],
        ]
        var clusterIPs: Set<String> = []
        var serviceIPs: [String] = []
        var serviceNodePorts: [String] = []
        var noEndpointServices: [String] = []
        var noEndpointNodePorts: [String] = []
        for port in ports {
            guard let clusterIP = port.clusterIP else { continue }
            clusterIPs.insert(clusterIP)
            let base = chainBase(port.qualifiedName)
            let proto = port.transport.rawValue
            let serviceChain = "service-" + base
            let externalChain = "external-" + base
            // Endpoint chains, one per endpoint (its own DNAT, the hairpin masquerade, the affinity entry).
            var endpointChains: [ProxiedServicePort.Endpoint: String] = [:]
            for endpoint in Set(port.endpoints + port.localEndpoints).sorted() {
                let name = chainBase(port.qualifiedName + "__" + endpoint.ip + "/" + String(endpoint.port))
                let chain = "endpoint-" + name
                endpointChains[endpoint] = chain
                var rules = ["ip saddr \(endpoint.ip) jump mark-for-masquerade"]
                if let timeout = port.affinityTimeout {
                    let set = "affinity-" + name
                    r.collections[set] = .init(
                        kind: .set, declaration: "type ipv4_addr ; flags dynamic,timeout ; timeout \(timeout)s",
                        elements: [])
                    rules.append("update @\(set) { ip saddr }")
                }
                rules.append("meta l4proto \(proto) dnat to \(endpoint.ip):\(endpoint.port)")
                r.chains[chain] = rules
            }
            func dispatch(_ endpoints: [ProxiedServicePort.Endpoint]) -> [String] {
                var rules: [String] = []
                if port.affinityTimeout != nil {
                    for endpoint in endpoints {
                        let chain = endpointChains[endpoint]!
                        rules.append("ip saddr @affinity-\(chain.dropFirst("endpoint-".count)) goto \(chain)")
                    }
                }
                if endpoints.count == 1 {
                    rules.append("goto \(endpointChains[endpoints[0]]!)")
                } else if !endpoints.isEmpty {
                    let choices = endpoints.enumerated().map { "\($0.offset) : goto \(endpointChains[$0.element]!)" }
                    rules.append("numgen random mod \(endpoints.count) vmap { \(choices.joined(separator: ", ")) }")
                }
                return rules
            }
            let internalEndpoints = port.internalPolicyLocal ? port.localEndpoints : port.endpoints
            let clusterKey = "\(clusterIP) . \(proto) . \(port.port)"
            if port.endpoints.isEmpty {
                noEndpointServices.append(clusterKey + " : goto reject-chain")
            } else if internalEndpoints.isEmpty {
                // internalTrafficPolicy Local and none here: dropped, as kube-proxy does.
                noEndpointServices.append(clusterKey + " : drop")
            } else {
                var rules: [String] = []
                if let cidr = settings.clusterCIDR {
                    rules.append(
                        "ip daddr \(clusterIP) \(proto) dport \(port.port) ip saddr != \(cidr) jump mark-for-masquerade"
                    )
                }
                r.chains[serviceChain] = rules + dispatch(internalEndpoints)
                serviceIPs.append(clusterKey + " : goto " + serviceChain)
            }
            guard port.isExternallyReachable else { continue }
            if port.endpoints.isEmpty {
                for address in port.externalAddresses {
                    noEndpointServices.append("\(address) . \(proto) . \(port.port) : goto reject-chain")
                }
                if let nodePort = port.nodePort {
                    noEndpointNodePorts.append("\(proto) . \(nodePort) : goto reject-chain")
                }
                continue
            }
            var external: [String] = []
            if port.externalPolicyLocal {
                // The client's address is kept, so only this node's endpoints; traffic from pods and
                // from the node itself is short-circuited to the whole Service, as kube-proxy does.
                let local = port.localEndpoints
                if r.chains[serviceChain] != nil {
                    if let cidr = settings.clusterCIDR { external.append("ip saddr \(cidr) goto \(serviceChain)") }
                    external.append("fib saddr type local jump mark-for-masquerade")
                    external.append("fib saddr type local goto \(serviceChain)")
                }
                external += local.isEmpty ? ["drop"] : dispatch(local)
            } else {
                external.append("jump mark-for-masquerade")
                external += dispatch(port.endpoints)
            }
            r.chains[externalChain] = external
            for address in port.externalAddresses {
                serviceIPs.append("\(address) . \(proto) . \(port.port) : goto \(externalChain)")
            }
            if let nodePort = port.nodePort {
                serviceNodePorts.append("\(proto) . \(nodePort) : goto \(externalChain)")
            }
        }
        let serviceKey = "type ipv4_addr . inet_proto . inet_service : verdict"
        let nodePortKey = "type inet_proto . inet_service : verdict"
        r.collections["cluster-ips"] = .init(kind: .set, declaration: "type ipv4_addr", elements: clusterIPs.sorted())
        r.collections["nodeport-ips"] = .init(
            kind: .set, declaration: "type ipv4_addr", elements: Set(settings.nodeIPs).sorted())
        r.collections["service-ips"] = .init(kind: .map, declaration: serviceKey, elements: unique(serviceIPs))
        r.collections["service-nodeports"] = .init(
            kind: .map, declaration: nodePortKey, elements: unique(serviceNodePorts))
        r.collections["no-endpoint-services"] = .init(
            kind: .map, declaration: serviceKey, elements: unique(noEndpointServices))
        r.collections["no-endpoint-nodeports"] = .init(
            kind: .map, declaration: nodePortKey, elements: unique(noEndpointNodePorts))
        return r
    }

    /// A map takes one verdict per key: where two Services claim one address and port (an external IP
    /// given twice), the first in name order keeps it. Sorted, so equal inputs compare equal.
    static func unique(_ elements: [String]) -> [String] {
        var seen: Set<Substring> = []
        var result: [String] = []
        for element in elements {
            let key = element[..<(element.range(of: " : ")?.lowerBound ?? element.endIndex)]
            if seen.insert(key).inserted { result.append(element) }
        }
        return result.sorted()
    }

    /// A chain's name after its kind: a hash of the whole name (names are unique even when cut) and
    /// the readable name, cut so the chain's name stays within nft's limit; as kube-proxy names them.
    static func chainBase(_ name: String) -> String {
        hash(name) + "-" + String(name.prefix(180))
    }

    /// FNV-1a 64 of `text` in base32 (A–Z, 2–7), 8 characters: a name nft accepts as an identifier.
    static func hash(_ text: String) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var result = ""
        for _ in 0..<8 {
            result.append(alphabet[Int(value & 31)])
            value >>= 5
        }
        return result
    }
}

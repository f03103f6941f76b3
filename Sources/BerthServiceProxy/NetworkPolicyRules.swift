import BerthAPI
import BerthKube
import BerthNetwork

/// NetworkPolicies as nftables rules for the pods of one node (networking.k8s.io/v1 semantics):
///
/// - A pod no policy selects for a direction is not isolated in it: everything passes.
/// - A pod some policy selects for Ingress (or Egress) takes, in that direction, only what one of the
///   selecting policies' rules allows; the rest is dropped. Rules add up across policies.
/// - A rule's peers (pods by podSelector in the policy's namespace, or in the namespaces a
///   namespaceSelector picks, or an ipBlock less its excepts) and ports (number, range with endPort,
///   or a name resolved against the pod that has the port) each narrow it; none means any.
/// - Replies to allowed connections pass (the rules are stateful: conntrack's established).
///
/// Isolated pods' addresses are keys of two verdict maps looked up once per new connection, so a node
/// with many pods and policies costs one lookup per direction for traffic to or from pods no policy
/// selects. Traffic is seen after the service proxy's DNAT, so a policy on a pod holds for its Services.
public enum NetworkPolicyRules {
    public static let table = "berth-policy"

    public static func ruleset(
        policies: [NetworkingV1.NetworkPolicy], pods: [CoreV1.Pod], namespaces: [CoreV1.Namespace], nodeName: String
    ) -> NFTablesRuleset {
        var r = NFTablesRuleset(table: table, comment: "NetworkPolicies of this node's pods")
        r.baseChains = [
            .init(
                name: "forward", declaration: "type filter hook forward priority filter",
                rules: [
                    "ct state established,related accept",
                    "ip daddr vmap @ingress-pods",
                    "ip saddr vmap @egress-pods",
                ])
        ]
        let model = Model(pods: pods, namespaces: namespaces)
        var ingressElements: [String] = []
        var egressElements: [String] = []
        for pod in pods where pod.spec.nodeName == nodeName {
            guard let ip = Model.address(pod) else { continue }
            let namespace = pod.metadata.namespace ?? "default"
            let selecting = policies.filter { policy in
                (policy.metadata.namespace ?? "default") == namespace
                    && LabelSelector(object: policy.spec.podSelector.kubeJSON()).matches(pod.metadata.labels)
            }
            let name = namespace + "/" + (pod.metadata.name ?? "")
            // One chain per isolated direction: every selecting policy's rules for it, then drop.
            for direction in [Direction.ingress, .egress] {
                let isolating = selecting.filter(direction == .ingress ? Self.isolatesIngress : Self.isolatesEgress)
                if isolating.isEmpty { continue }
                let chain = direction.chainPrefix + ServiceProxyRules.chainBase(name)
                var rules: [String] = []
                for policy in isolating {
                    let policyRules =
                        direction == .ingress
                        ? policy.spec.ingress.map { ($0.from, $0.ports) } : policy.spec.egress.map { ($0.to, $0.ports) }
                    for (peers, ports) in policyRules {
                        rules += model.rules(
                            peers: peers, ports: ports, policyNamespace: namespace, target: pod, direction: direction)
                    }
                }
                r.chains[chain] = rules + ["drop"]
                if direction == .ingress {
                    ingressElements.append("\(ip) : jump \(chain)")
                } else {
                    egressElements.append("\(ip) : jump \(chain)")
                }
            }
        }
        r.collections["ingress-pods"] = .init(
            kind: .map, declaration: "type ipv4_addr : verdict", elements: ServiceProxyRules.unique(ingressElements))
        r.collections["egress-pods"] = .init(
            kind: .map, declaration: "type ipv4_addr : verdict", elements: ServiceProxyRules.unique(egressElements))
        return r
    }

    /// policyTypes, or — when left out — Ingress always and Egress when the policy has egress rules.
    static func isolatesIngress(_ policy: NetworkingV1.NetworkPolicy) -> Bool {
        policy.spec.policyTypes.isEmpty || policy.spec.policyTypes.contains { $0.rawValue == "Ingress" }
    }

    static func isolatesEgress(_ policy: NetworkingV1.NetworkPolicy) -> Bool {
        policy.spec.policyTypes.isEmpty
            ? !policy.spec.egress.isEmpty : policy.spec.policyTypes.contains { $0.rawValue == "Egress" }
    }

    enum Direction {
        case ingress, egress
        /// The address the peer is: the source of what comes in, the destination of what goes out.
        var peerField: String { self == .ingress ? "ip saddr" : "ip daddr" }
        var chainPrefix: String { self == .ingress ? "ingress-" : "egress-" }
    }

    /// The cluster's pods and namespaces, indexed for peer selection.
    struct Model {
        var podsByNamespace: [String: [CoreV1.Pod]] = [:]
        var namespaceLabels: [String: [String: String]] = [:]

        init(pods: [CoreV1.Pod], namespaces: [CoreV1.Namespace]) {
            for pod in pods where Self.address(pod) != nil {
                podsByNamespace[pod.metadata.namespace ?? "default", default: []].append(pod)
            }
            for namespace in namespaces {
                let name = namespace.metadata.name ?? ""
                // The API server sets this label; a namespace read before it did still has its name.
                namespaceLabels[name] = namespace.metadata.labels.merging(
                    ["kubernetes.io/metadata.name": name], uniquingKeysWith: { current, _ in current })
            }
        }

        /// A pod's IPv4 address while it may send or receive: running on the pod network (a host-network
        /// pod is the node's address, not the pod's), not finished.
        static func address(_ pod: CoreV1.Pod) -> String? {
            if pod.spec.hostNetwork == true { return nil }
            if let phase = pod.status.phase, phase == .succeeded || phase == .failed { return nil }
            let addresses = pod.status.podIPs.map(\.ip) + [pod.status.podIP ?? ""]
            return addresses.first { IPv4Address($0) != nil }
        }

        /// The pods a peer's selectors pick (none for an ipBlock peer).
        func pods(of peer: NetworkingV1.NetworkPolicyPeer, policyNamespace: String) -> [CoreV1.Pod] {
            guard peer.ipBlock == nil else { return [] }
            let namespaces: [String]
            if let selector = peer.namespaceSelector {
                let matcher = LabelSelector(object: selector.kubeJSON())
                namespaces = namespaceLabels.filter { matcher.matches($0.value) }.map(\.key).sorted()
            } else {
                namespaces = [policyNamespace]
            }
            let podMatcher = peer.podSelector.map { LabelSelector(object: $0.kubeJSON()) }
            return namespaces.flatMap { podsByNamespace[$0] ?? [] }.filter {
                podMatcher?.matches($0.metadata.labels) ?? true
            }
        }

        /// The nft rules (each ending in `return`: allowed) for one policy rule.
        func rules(
            peers: [NetworkingV1.NetworkPolicyPeer], ports: [NetworkingV1.NetworkPolicyPort], policyNamespace: String,
            target: CoreV1.Pod, direction: Direction
        ) -> [String] {
            let named = ports.contains { if case .string = $0.port { true } else { false } }
            // Named ports are the numbers of the pod that has them: the target for ingress, each peer
            // pod for egress (a peer given as an ipBlock has no names to resolve).
            if direction == .egress && named {
                let numbered = ports.filter { if case .string = $0.port { false } else { true } }
                let names = ports.filter { if case .string = $0.port { true } else { false } }
                var result: [String] = []
                if !numbered.isEmpty {
                    result += rules(
                        peers: peers, ports: numbered, policyNamespace: policyNamespace, target: target,
                        direction: direction)
                }
                let destinations =
                    peers.isEmpty
                    ? podsByNamespace.keys.sorted().flatMap { podsByNamespace[$0] ?? [] }
                    : peers.filter { $0.ipBlock == nil }.flatMap { pods(of: $0, policyNamespace: policyNamespace) }
                for pod in destinations {
                    guard let ip = Self.address(pod) else { continue }
                    for port in Self.portClauses(names, resolvingAgainst: pod) {
                        result.append(Self.join("\(direction.peerField) \(ip)", port))
                    }
                }
                return result
            }
            let sources = addressClauses(peers, policyNamespace: policyNamespace, direction: direction)
            let portClauses = Self.portClauses(ports, resolvingAgainst: direction == .ingress ? target : nil)
            var result: [String] = []
            for source in sources {
                for port in portClauses { result.append(Self.join(source, port)) }
            }
            return result
        }

        /// The address matches of a rule's peers: "" for any (no peers), a set of pod addresses, and
        /// each ipBlock with its excepts. Peers that pick no pod match nothing (no clause).
        func addressClauses(
            _ peers: [NetworkingV1.NetworkPolicyPeer], policyNamespace: String, direction: Direction
        ) -> [String] {
            if peers.isEmpty { return [""] }
            var clauses: [String] = []
            var addresses: Set<String> = []
            for peer in peers {
                if let block = peer.ipBlock {
                    guard IPv4Subnet(block.cidr, strict: false) != nil else { continue }
                    var clause = "\(direction.peerField) \(block.cidr)"
                    let excepts = block.except.filter { IPv4Subnet($0, strict: false) != nil }
                    if !excepts.isEmpty {
                        clause += " \(direction.peerField) != { \(excepts.joined(separator: ", ")) }"
                    }
                    clauses.append(clause)
                } else {
                    for pod in pods(of: peer, policyNamespace: policyNamespace) {
                        if let ip = Self.address(pod) { addresses.insert(ip) }
                    }
                }
            }
            if !addresses.isEmpty {
                clauses.append("\(direction.peerField) { \(addresses.sorted().joined(separator: ", ")) }")
            }
            return clauses
        }

        /// The port matches of a rule: "" for any (no ports), else one per protocol with its numbers and
        /// ranges; a named port the pod does not have matches nothing.
        static func portClauses(_ ports: [NetworkingV1.NetworkPolicyPort], resolvingAgainst pod: CoreV1.Pod?)
            -> [String]
        {
            if ports.isEmpty { return [""] }
            var byProtocol: [String: [String]] = [:]
            var anyPort: Set<String> = []
            for port in ports {
                let proto = (port.protocol?.rawValue ?? "TCP").lowercased()
                guard ["tcp", "udp", "sctp"].contains(proto) else { continue }
                switch port.port {
                case nil:
                    anyPort.insert(proto)
                case .int(let number)?:
                    if let end = port.endPort, end > number {
                        byProtocol[proto, default: []].append("\(number)-\(end)")
                    } else {
                        byProtocol[proto, default: []].append("\(number)")
                    }
                case .string(let name)?:
                    guard let pod,
                        // Sidecars (restartPolicy Always init containers) serve ports like containers.
                        let number =
                            (pod.spec.containers + pod.spec.initContainers.filter({ $0.restartPolicy == .always }))
                            .flatMap(\.ports).first(where: {
                                $0.name == name && ($0.protocol?.rawValue ?? "TCP").lowercased() == proto
                            })?.containerPort
                    else { continue }
                    byProtocol[proto, default: []].append("\(number)")
                }
            }
            var clauses = anyPort.sorted().map { "meta l4proto \($0)" }
            for (proto, numbers) in byProtocol.sorted(by: { $0.key < $1.key }) where !anyPort.contains(proto) {
                clauses.append("\(proto) dport { \(Array(Set(numbers)).sorted().joined(separator: ", ")) }")
            }
            return clauses
        }

        static func join(_ address: String, _ port: String) -> String {
            [address, port, "return"].filter { !$0.isEmpty }.joined(separator: " ")
        }
    }
}

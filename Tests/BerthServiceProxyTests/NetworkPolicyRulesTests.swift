import BerthKube
import Testing

@testable import BerthServiceProxy

/// NetworkPolicy semantics as rules: who is isolated, which peers and ports each rule admits.
struct NetworkPolicyRulesTests {
    static func pod(
        _ name: String, namespace: String = "default", ip: String, node: String = "a", labels: [String: String],
        ports: [(String, Int32)] = []
    ) -> CoreV1.Pod {
        var pod = CoreV1.Pod()
        pod.metadata.name = name
        pod.metadata.namespace = namespace
        pod.metadata.labels = labels
        pod.spec.nodeName = node
        var container = CoreV1.Container(name: "c")
        container.ports = ports.map { CoreV1.ContainerPort(name: $0.0, containerPort: $0.1) }
        pod.spec.containers = [container]
        pod.status.phase = .running
        pod.status.podIP = ip
        return pod
    }

    static func namespace(_ name: String, labels: [String: String] = [:]) -> CoreV1.Namespace {
        var namespace = CoreV1.Namespace()
        namespace.metadata.name = name
        namespace.metadata.labels = labels
        return namespace
    }

    static func policy(
        _ name: String, selecting: [String: String], edit: (inout NetworkingV1.NetworkPolicySpec) -> Void
    ) -> NetworkingV1.NetworkPolicy {
        var policy = NetworkingV1.NetworkPolicy()
        policy.metadata.name = name
        policy.metadata.namespace = "default"
        policy.spec.podSelector.matchLabels = selecting
        edit(&policy.spec)
        return policy
    }

    static let pods = [
        pod("web", ip: "10.244.0.5", labels: ["app": "web"], ports: [("http", 8080)]),
        pod("client", ip: "10.244.0.6", labels: ["role": "client"]),
        pod("other", ip: "10.244.1.7", node: "b", labels: ["role": "other"]),
        pod("monitor", namespace: "ops", ip: "10.244.1.8", node: "b", labels: ["role": "monitor"]),
    ]
    static let namespaces = [namespace("default"), namespace("ops", labels: ["team": "ops"])]

    static func rules(_ policies: [NetworkingV1.NetworkPolicy]) -> NFTablesRuleset {
        NetworkPolicyRules.ruleset(policies: policies, pods: pods, namespaces: namespaces, nodeName: "a")
    }

    static var webIngress: String { "ingress-" + ServiceProxyRules.chainBase("default/web") }

    @Test func podsNoPolicySelectsAreNotIsolated() {
        let r = Self.rules([])
        #expect(r.collections["ingress-pods"]?.elements == [])
        #expect(r.collections["egress-pods"]?.elements == [])
        #expect(r.chains.isEmpty)
    }

    @Test func aPolicyWithoutRulesDeniesItsPodsIngress() {
        let r = Self.rules([Self.policy("deny", selecting: ["app": "web"]) { _ in }])
        #expect(r.collections["ingress-pods"]?.elements == ["10.244.0.5 : jump \(Self.webIngress)"])
        #expect(r.chains[Self.webIngress] == ["drop"])
        // Egress is not isolated by a policy that has no egress rules and no policyTypes.
        #expect(r.collections["egress-pods"]?.elements == [])
    }

    @Test func peersArePodsNamespacesAndBlocksAndPortsNarrowThem() {
        let r = Self.rules([
            Self.policy("allow", selecting: ["app": "web"]) { spec in
                var fromClients = NetworkingV1.NetworkPolicyIngressRule()
                var clients = NetworkingV1.NetworkPolicyPeer()
                clients.podSelector = MetaV1.LabelSelector(matchLabels: ["role": "client"])
                fromClients.from = [clients]
                fromClients.ports = [NetworkingV1.NetworkPolicyPort(protocol: .tcp, port: .string("http"))]
                var fromOps = NetworkingV1.NetworkPolicyIngressRule()
                var ops = NetworkingV1.NetworkPolicyPeer()
                ops.namespaceSelector = MetaV1.LabelSelector(matchLabels: ["team": "ops"])
                var block = NetworkingV1.NetworkPolicyPeer()
                block.ipBlock = NetworkingV1.IPBlock(cidr: "192.168.0.0/16", except: ["192.168.1.0/24"])
                fromOps.from = [ops, block]
                fromOps.ports = [NetworkingV1.NetworkPolicyPort(protocol: .tcp, port: .int(9000), endPort: 9100)]
                spec.ingress = [fromClients, fromOps]
            }
        ])
        #expect(
            r.chains[Self.webIngress] == [
                "ip saddr { 10.244.0.6 } tcp dport { 8080 } return",
                "ip saddr 192.168.0.0/16 ip saddr != { 192.168.1.0/24 } tcp dport { 9000-9100 } return",
                "ip saddr { 10.244.1.8 } tcp dport { 9000-9100 } return",
                "drop",
            ])
    }

    @Test func egressNamedPortsResolveAgainstEachDestination() {
        let r = Self.rules([
            Self.policy("out", selecting: ["role": "client"]) { spec in
                spec.policyTypes = [NetworkingV1.PolicyType(rawValue: "Egress")]
                var toWeb = NetworkingV1.NetworkPolicyEgressRule()
                var web = NetworkingV1.NetworkPolicyPeer()
                web.podSelector = MetaV1.LabelSelector(matchLabels: ["app": "web"])
                toWeb.to = [web]
                toWeb.ports = [NetworkingV1.NetworkPolicyPort(protocol: .tcp, port: .string("http"))]
                var dns = NetworkingV1.NetworkPolicyEgressRule()
                dns.ports = [NetworkingV1.NetworkPolicyPort(protocol: .udp, port: .int(53))]
                spec.egress = [toWeb, dns]
            }
        ])
        let chain = "egress-" + ServiceProxyRules.chainBase("default/client")
        #expect(r.collections["egress-pods"]?.elements == ["10.244.0.6 : jump \(chain)"])
        #expect(
            r.chains[chain] == ["ip daddr 10.244.0.5 tcp dport { 8080 } return", "udp dport { 53 } return", "drop"])
        // The policy isolates no one's ingress.
        #expect(r.collections["ingress-pods"]?.elements == [])
    }

    @Test func onlyThisNodesPodsAndPodNetworkPodsAreIsolated() {
        var hostPod = Self.pod("host", ip: "192.0.2.10", labels: ["app": "web"])
        hostPod.spec.hostNetwork = true
        let r = NetworkPolicyRules.ruleset(
            policies: [Self.policy("deny", selecting: [:]) { _ in }], pods: Self.pods + [hostPod],
            namespaces: Self.namespaces, nodeName: "a")
        #expect(r.collections["ingress-pods"]?.elements.count == 2)
        #expect(r.collections["ingress-pods"]?.elements.allSatisfy { !$0.hasPrefix("192.0.2.10") } == true)
    }
}

import BerthKube
import BerthOS
import BerthTestSupport
import Foundation
import Testing

@testable import BerthServiceProxy

/// The transactions nft itself accepts: applied in a network namespace of the test's own (its tables
/// are that namespace's, so the host's firewall is never touched), full and then partial.
@Suite(.serialized, .enabled(if: isRealRoot && NFTables() != nil, "needs real root and nft(8)"))
struct NFTablesTransactionTests {
    typealias Rules = ServiceProxyRulesTests

    /// Runs `body` with nft inside a new network namespace, removed afterwards.
    func inNamespace(_ body: (NFTables) throws -> Void) throws {
        let name = "berth-nft-test-\(getpid())"
        let ip = ChildProcess.lookup("ip", path: "/usr/sbin:/sbin:/usr/bin:/bin") ?? "/usr/sbin/ip"
        _ = try ChildProcess.run(ip, arguments: ["ip", "netns", "add", name], environment: [])
        defer { _ = try? ChildProcess.run(ip, arguments: ["ip", "netns", "delete", name], environment: []) }
        try body(NFTables(command: [ip, "netns", "exec", name] + NFTables()!.command))
    }

    @Test func fullAndPartialSyncsAreAcceptedAndLeaveWhatTheyDescribe() throws {
        try inNamespace { nft in
            let services = [
                Rules.service("web", type: .nodePort) {
                    $0.spec.ports[0].nodePort = 30080
                    $0.spec.sessionAffinity = .clientIP
                },
                Rules.service("local", clusterIP: "10.96.0.22", type: .loadBalancer) {
                    $0.spec.ports[0].nodePort = 30081
                    $0.spec.externalTrafficPolicy = .local
                    $0.spec.internalTrafficPolicy = .local
                    $0.status.loadBalancer.ingress = [CoreV1.LoadBalancerIngress(ip: "192.168.1.10")]
                },
                Rules.service("empty", clusterIP: "10.96.0.23", type: .nodePort) { $0.spec.ports[0].nodePort = 30082 },
                Rules.service(
                    "dns", clusterIP: "10.96.0.10",
                    ports: [
                        CoreV1.ServicePort(name: "dns", protocol: .udp, port: 53),
                        CoreV1.ServicePort(name: "dns-tcp", protocol: .tcp, port: 53),
                    ]),
            ]
            var dnsSlice = Rules.slice("dns", port: 53, portName: "dns", [("10.244.0.3", "a", true)])
            dnsSlice.ports = [
                DiscoveryV1.EndpointPort(name: "dns", protocol: .udp, port: 53),
                DiscoveryV1.EndpointPort(name: "dns-tcp", protocol: .tcp, port: 53),
            ]
            let first = ServiceProxyRules.ruleset(
                ProxiedServices.build(
                    services: services,
                    slices: [
                        Rules.slice("web", [("10.244.0.5", "a", true), ("10.244.1.6", "b", true)]),
                        Rules.slice("local", [("10.244.1.7", "b", true)]), dnsSlice,
                    ], nodeName: "a"), settings: Rules.settings)
            try nft.apply(first.transaction(from: nil))
            // Again from nothing: the table is replaced, not added to.
            try nft.apply(first.transaction(from: nil))
            let second = ServiceProxyRules.ruleset(
                ProxiedServices.build(
                    services: Array(services.dropLast()),
                    slices: [Rules.slice("web", [("10.244.0.9", "a", true)])], nodeName: "a"),
                settings: Rules.settings)
            try nft.apply(second.transaction(from: first))
            let listed = try nft.run(["list", "table", "ip", "berth-proxy"], input: [])
            #expect(listed.contains("10.244.0.9:8080"))
            #expect(!listed.contains("10.244.0.5"))
            #expect(!listed.contains("10.96.0.10"))
            #expect(listed.contains("tcp . 30082 : goto reject-chain"))
            #expect(nft.hasChain(table: "berth-proxy", chain: "services"))
            // What nft refuses comes back in its own words.
            var broken = second
            broken.chains["services"] = ["ip daddr 10.96.0.300 accept"]
            #expect(throws: NFTables.Failure.self) { try nft.apply(broken.transaction(from: second)) }
            try nft.deleteTable("berth-proxy")
            #expect(!nft.hasChain(table: "berth-proxy", chain: "services"))
        }
    }

    @Test func networkPolicyRulesAreAcceptedToo() throws {
        try inNamespace { nft in
            typealias P = NetworkPolicyRulesTests
            let deny = NetworkPolicyRules.ruleset(
                policies: [P.policy("deny", selecting: [:]) { _ in }], pods: P.pods, namespaces: P.namespaces,
                nodeName: "a")
            try nft.apply(deny.transaction(from: nil))
            let allow = NetworkPolicyRules.ruleset(
                policies: [
                    P.policy("allow", selecting: ["app": "web"]) { spec in
                        spec.policyTypes = [.init(rawValue: "Ingress"), .init(rawValue: "Egress")]
                        var rule = NetworkingV1.NetworkPolicyIngressRule()
                        var block = NetworkingV1.NetworkPolicyPeer()
                        block.ipBlock = NetworkingV1.IPBlock(cidr: "10.0.0.0/8", except: ["10.1.0.0/16"])
                        var clients = NetworkingV1.NetworkPolicyPeer()
                        clients.podSelector = MetaV1.LabelSelector(matchLabels: ["role": "client"])
                        rule.from = [block, clients]
                        rule.ports = [
                            NetworkingV1.NetworkPolicyPort(protocol: .tcp, port: .int(80), endPort: 90),
                            NetworkingV1.NetworkPolicyPort(protocol: .udp),
                        ]
                        spec.ingress = [rule]
                        var out = NetworkingV1.NetworkPolicyEgressRule()
                        out.ports = [NetworkingV1.NetworkPolicyPort(protocol: .udp, port: .int(53))]
                        spec.egress = [out]
                    }
                ], pods: P.pods, namespaces: P.namespaces, nodeName: "a")
            try nft.apply(allow.transaction(from: deny))
            let listed = try nft.listTable(NetworkPolicyRules.table)
            #expect(listed.contains("tcp dport 80-90"), "\(listed)")
            #expect(listed.contains("10.244.0.5 : jump ingress-"))
        }
    }
}

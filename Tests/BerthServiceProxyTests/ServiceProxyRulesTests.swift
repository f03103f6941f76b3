import BerthKube
import BerthNetwork
import BerthOS
import BerthTestSupport
import Foundation
import Testing

@testable import BerthServiceProxy

/// Services and EndpointSlices to kube-proxy's nftables layout, and each sync's transaction holding
/// only what changed.
struct ServiceProxyRulesTests {
    static func service(
        _ name: String, clusterIP: String = "10.96.0.20", type: CoreV1.ServiceType = .clusterIP,
        ports: [CoreV1.ServicePort] = [CoreV1.ServicePort(name: "http", port: 80)],
        edit: (inout CoreV1.Service) -> Void = { _ in }
    ) -> CoreV1.Service {
        var service = CoreV1.Service()
        service.metadata.name = name
        service.metadata.namespace = "default"
        service.spec.clusterIP = clusterIP
        service.spec.type = type
        service.spec.ports = ports
        edit(&service)
        return service
    }

    static func slice(
        _ service: String, port: Int32 = 8080, portName: String = "http",
        _ endpoints: [(ip: String, node: String, ready: Bool?)]
    ) -> DiscoveryV1.EndpointSlice {
        var slice = DiscoveryV1.EndpointSlice()
        slice.metadata.name = service + "-" + String(port)
        slice.metadata.namespace = "default"
        slice.metadata.labels = [ProxiedServices.serviceNameLabel: service]
        slice.addressType = "IPv4"
        slice.ports = [DiscoveryV1.EndpointPort(name: portName, protocol: .tcp, port: port)]
        slice.endpoints = endpoints.map {
            var endpoint = DiscoveryV1.Endpoint()
            endpoint.addresses = [$0.ip]
            endpoint.nodeName = $0.node
            endpoint.conditions.ready = $0.ready
            return endpoint
        }
        return slice
    }

    static var settings: ServiceProxyRules.Settings {
        var settings = ServiceProxyRules.Settings()
        settings.nodeIPs = ["192.168.1.10"]
        settings.clusterCIDR = "10.244.0.0/16"
        return settings
    }

    @Test func onlyReadyEndpointsServeAndEachSliceGivesItsOwnPort() {
        let ports = ProxiedServices.build(
            services: [
                Self.service("web"), Self.service("headless", clusterIP: "None"),
                Self.service("external", type: .externalName),
            ],
            slices: [
                Self.slice("web", port: 8080, [("10.244.0.5", "a", true), ("10.244.0.6", "b", false)]),
                // A second slice for pods whose named port is another number.
                Self.slice("web", port: 9090, [("10.244.0.7", "a", nil)]),
                Self.slice("headless", [("10.244.0.9", "a", true)]),
            ],
            nodeName: "a")
        #expect(ports.map(\.qualifiedName) == ["default/web/tcp/http"])
        #expect(
            ports[0].endpoints == [
                .init(ip: "10.244.0.5", port: 8080, isLocal: true), .init(ip: "10.244.0.7", port: 9090, isLocal: true),
            ])
    }

    @Test func terminatingButServingEndpointsServeWhenNoneIsReady() {
        var terminating = Self.slice("web", [("10.244.0.5", "a", false)])
        terminating.endpoints[0].conditions.serving = true
        terminating.endpoints[0].conditions.terminating = true
        let ports = ProxiedServices.build(services: [Self.service("web")], slices: [terminating], nodeName: "a")
        #expect(ports[0].endpoints.map(\.ip) == ["10.244.0.5"])
    }

    @Test func aClusterIPServiceIsOneMapElementAndARandomChoiceOfEndpoints() {
        let ports = ProxiedServices.build(
            services: [Self.service("web")],
            slices: [Self.slice("web", [("10.244.0.5", "a", true), ("10.244.1.6", "b", true)])], nodeName: "a")
        let rules = ServiceProxyRules.ruleset(ports, settings: Self.settings)
        let base = ServiceProxyRules.chainBase("default/web/tcp/http")
        #expect(rules.collections["service-ips"]?.elements == ["10.96.0.20 . tcp . 80 : goto service-\(base)"])
        #expect(rules.collections["cluster-ips"]?.elements == ["10.96.0.20"])
        let chain = try! #require(rules.chains["service-\(base)"])
        #expect(chain[0] == "ip daddr 10.96.0.20 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade")
        #expect(chain[1].hasPrefix("numgen random mod 2 vmap { 0 : goto endpoint-"))
        let endpoint = try! #require(
            rules.chains["endpoint-" + ServiceProxyRules.chainBase("default/web/tcp/http__10.244.0.5/8080")])
        #expect(
            endpoint == ["ip saddr 10.244.0.5 jump mark-for-masquerade", "meta l4proto tcp dnat to 10.244.0.5:8080"])
        #expect(rules.collections["service-nodeports"]?.elements == [])
    }

    @Test func aServiceWithoutEndpointsIsRejectedAtOnce() {
        let ports = ProxiedServices.build(
            services: [Self.service("web", type: .nodePort) { $0.spec.ports[0].nodePort = 30080 }], slices: [],
            nodeName: "a")
        let rules = ServiceProxyRules.ruleset(ports, settings: Self.settings)
        #expect(rules.collections["service-ips"]?.elements == [])
        #expect(rules.collections["no-endpoint-services"]?.elements == ["10.96.0.20 . tcp . 80 : goto reject-chain"])
        #expect(rules.collections["no-endpoint-nodeports"]?.elements == ["tcp . 30080 : goto reject-chain"])
        #expect(rules.chains.keys.allSatisfy { !$0.hasPrefix("service-") || $0.hasPrefix("service-endpoints") })
    }

    @Test func nodePortsAndExternalAddressesAreMasqueradedOrKeptLocal() {
        let slices = [Self.slice("web", [("10.244.0.5", "a", true), ("10.244.1.6", "b", true)])]
        let cluster = ServiceProxyRules.ruleset(
            ProxiedServices.build(
                services: [
                    Self.service("web", type: .loadBalancer) {
                        $0.spec.ports[0].nodePort = 30080
                        $0.status.loadBalancer.ingress = [CoreV1.LoadBalancerIngress(ip: "192.168.1.10")]
                    }
                ], slices: slices, nodeName: "a"), settings: Self.settings)
        let base = ServiceProxyRules.chainBase("default/web/tcp/http")
        #expect(cluster.collections["service-nodeports"]?.elements == ["tcp . 30080 : goto external-\(base)"])
        #expect(
            cluster.collections["service-ips"]?.elements.contains("192.168.1.10 . tcp . 80 : goto external-\(base)")
                == true)
        #expect(cluster.chains["external-\(base)"]?.first == "jump mark-for-masquerade")
        #expect(cluster.chains["external-\(base)"]?.last?.hasPrefix("numgen random mod 2") == true)

        let local = ServiceProxyRules.ruleset(
            ProxiedServices.build(
                services: [
                    Self.service("web", type: .nodePort) {
                        $0.spec.ports[0].nodePort = 30080
                        $0.spec.externalTrafficPolicy = .local
                    }
                ], slices: slices, nodeName: "a"), settings: Self.settings)
        let localEndpoint = "endpoint-" + ServiceProxyRules.chainBase("default/web/tcp/http__10.244.0.5/8080")
        #expect(
            local.chains["external-\(base)"] == [
                "ip saddr 10.244.0.0/16 goto service-\(base)", "fib saddr type local jump mark-for-masquerade",
                "fib saddr type local goto service-\(base)", "goto \(localEndpoint)",
            ])
    }

    @Test func clientIPAffinityRemembersEachClientsEndpoint() {
        let ports = ProxiedServices.build(
            services: [
                Self.service("web") {
                    $0.spec.sessionAffinity = .clientIP
                    $0.spec.sessionAffinityConfig = CoreV1.SessionAffinityConfig(
                        clientIP: CoreV1.ClientIPConfig(timeoutSeconds: 60))
                }
            ], slices: [Self.slice("web", [("10.244.0.5", "a", true)])], nodeName: "a")
        let rules = ServiceProxyRules.ruleset(ports, settings: Self.settings)
        let name = ServiceProxyRules.chainBase("default/web/tcp/http__10.244.0.5/8080")
        #expect(rules.collections["affinity-\(name)"]?.declaration.contains("timeout 60s") == true)
        #expect(rules.chains["endpoint-\(name)"]?.contains("update @affinity-\(name) { ip saddr }") == true)
        let service = rules.chains["service-" + ServiceProxyRules.chainBase("default/web/tcp/http")] ?? []
        #expect(service.contains("ip saddr @affinity-\(name) goto endpoint-\(name)"))
    }

    @Test func aSyncSendsOnlyWhatChanged() {
        let services = [Self.service("web"), Self.service("api", clusterIP: "10.96.0.21")]
        let before = ServiceProxyRules.ruleset(
            ProxiedServices.build(
                services: services,
                slices: [
                    Self.slice("web", [("10.244.0.5", "a", true)]), Self.slice("api", [("10.244.0.8", "a", true)]),
                ],
                nodeName: "a"), settings: Self.settings)
        #expect(before.transaction(from: before) == "")
        let full = before.transaction(from: nil)
        #expect(full.hasPrefix("add table ip berth-proxy\ndelete table ip berth-proxy\n"))
        #expect(full.contains("add chain ip berth-proxy nat-prerouting { type nat hook prerouting priority dstnat ; }"))

        // web's endpoint moves: its chains change, api's are not mentioned.
        let after = ServiceProxyRules.ruleset(
            ProxiedServices.build(
                services: services,
                slices: [
                    Self.slice("web", [("10.244.0.6", "a", true)]), Self.slice("api", [("10.244.0.8", "a", true)]),
                ],
                nodeName: "a"), settings: Self.settings)
        let delta = after.transaction(from: before)
        let web = ServiceProxyRules.chainBase("default/web/tcp/http")
        let oldEndpoint = "endpoint-" + ServiceProxyRules.chainBase("default/web/tcp/http__10.244.0.5/8080")
        #expect(delta.contains("flush chain ip berth-proxy service-\(web)\n"))
        #expect(delta.contains("delete chain ip berth-proxy \(oldEndpoint)\n"))
        #expect(!delta.contains("api"))
        #expect(!delta.contains("delete table"))
        // Deleted after the rule that pointed at it was flushed.
        let flush = delta.range(of: "flush chain ip berth-proxy service-\(web)")!.lowerBound
        #expect(delta.range(of: "delete chain ip berth-proxy \(oldEndpoint)")!.lowerBound > flush)
    }

    @Test func udpFlowsToEndpointsThatWentAreCleared() {
        func port(_ endpoints: [String]) -> ProxiedServicePort {
            ProxiedServicePort(
                namespace: "kube-system", name: "dns", portName: "dns", transport: .udp, port: 53,
                clusterIP: "10.96.0.10", nodePort: nil, externalAddresses: [], affinityTimeout: nil,
                externalPolicyLocal: false, internalPolicyLocal: false,
                endpoints: endpoints.map { .init(ip: $0, port: 53, isLocal: true) }, localEndpoints: [])
        }
        #expect(
            ConntrackCleanup.deletions(before: [port(["10.244.0.2", "10.244.0.3"])], after: [port(["10.244.0.3"])]) == [
                ["-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53", "--dst-nat", "10.244.0.2"]
            ])
        #expect(
            ConntrackCleanup.deletions(before: [port([])], after: [port(["10.244.0.3"])]) == [
                ["-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53"]
            ])
        #expect(ConntrackCleanup.deletions(before: [port(["10.244.0.3"])], after: [port(["10.244.0.3"])]).isEmpty)
        // A port new to the proxy (a Service made again on the same address) clears what went un-NATed.
        #expect(
            ConntrackCleanup.deletions(before: [], after: [port(["10.244.0.3"])]) == [
                ["-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53"]
            ])
        // The same address on another port is another endpoint.
        var moved = port(["10.244.0.3"])
        moved.endpoints[0].port = 5353
        #expect(ConntrackCleanup.deletions(before: [port(["10.244.0.3"])], after: [moved]).count == 1)
    }

    @Test func aNodeWhoseOnlyPodTerminatesKeepsServingLocalTrafficThroughIt() {
        var slice = Self.slice("web", [("10.244.0.5", "a", false), ("10.244.1.6", "b", true)])
        slice.endpoints[0].conditions.serving = true
        slice.endpoints[0].conditions.terminating = true
        let ports = ProxiedServices.build(
            services: [
                Self.service("web", type: .nodePort) {
                    $0.spec.externalTrafficPolicy = .local
                    $0.spec.ports[0].nodePort = 30080
                }
            ], slices: [slice],
            nodeName: "a")
        #expect(ports[0].endpoints.map(\.ip) == ["10.244.1.6"])
        #expect(ports[0].localEndpoints.map(\.ip) == ["10.244.0.5"])
        let rules = ServiceProxyRules.ruleset(ports, settings: Self.settings)
        let external = rules.chains["external-" + ServiceProxyRules.chainBase("default/web/tcp/http")] ?? []
        #expect(
            external.last == "goto endpoint-" + ServiceProxyRules.chainBase("default/web/tcp/http__10.244.0.5/8080"))
    }

    @Test func namesAreHashedAndCut() {
        #expect(ServiceProxyRules.hash("default/web/tcp/http").count == 8)
        #expect(ServiceProxyRules.hash("a") != ServiceProxyRules.hash("b"))
        let long = String(repeating: "x", count: 400)
        #expect(ServiceProxyRules.chainBase(long).count == 8 + 1 + 180)
        #expect(IPv4Address("10.0.0.1") != nil && IPv4Address("10.0.0.256") == nil && IPv4Address("1.2.3") == nil)
    }
}

import BerthAPI
import BerthClusterDNS
import BerthControl
import BerthJSON
import BerthKube
import BerthNetwork
import BerthServiceProxy
import Foundation
import Logging

/// What a node runs for the cluster's Services beside its pods: the service proxy (kube-proxy's job)
/// and the cluster DNS (CoreDNS's), both reading one pair of informers on Services and EndpointSlices.
/// Their failures become Warning events on the Node, where `kubectl describe node` shows them.
struct NodeNetworkServices: Sendable {
    let services: Informer<CoreV1.Service>
    let slices: Informer<DiscoveryV1.EndpointSlice>
    /// Warning events on the Node for what the node cannot do.
    let report: @Sendable (String) -> Void
    let proxy: ServiceProxy?
    let dns: ClusterDNS?
    /// NetworkPolicies, with the policies' informer (the enforcer runs those of pods and namespaces
    /// once a policy exists).
    let policy: (NetworkPolicyEnforcer, [any RunnableInformer])?

    static func make(
        configuration: AgentConfiguration, sources: any ObjectSourceProvider, events: EventRecorder, logger: Logger
    ) -> NodeNetworkServices? {
        let dnsAddress = configuration.serveClusterDNS ? configuration.clusterDNS.first : nil
        guard configuration.proxyServices || dnsAddress != nil || configuration.enforceNetworkPolicies else {
            return nil
        }
        let services = Informer(
            source: sources.source(CoreV1.Service.self, resource: ResourceType.of(CoreV1.Service.self)),
            name: "node-services", logger: logger)
        let slices = Informer(
            source: sources.source(
                DiscoveryV1.EndpointSlice.self, resource: ResourceType.of(DiscoveryV1.EndpointSlice.self)),
            name: "node-endpointslices", logger: logger)
        let node = configuration.nodeReference
        var proxy: ServiceProxy?
        if configuration.proxyServices {
            var settings = ServiceProxy.Configuration(nodeName: configuration.nodeName)
            settings.rules.clusterCIDR = configuration.clusterCIDR
            settings.rules.nodeIPs = [configuration.internalIP]
            // The node answers the DNS address itself: no rule may take it elsewhere or reject it.
            settings.locallyServedAddresses = Set(dnsAddress.map { [$0] } ?? [])
            let recorder = events.component("berth-proxy")
            proxy = ServiceProxy(configuration: settings, services: services, slices: slices, logger: logger) {
                recorder.record(node, type: "Warning", reason: "SyncProxyRulesFailed", message: $0)
            }
        }
        var dns: ClusterDNS?
        if let dnsAddress {
            var settings = ClusterDNS.Configuration(address: dnsAddress)
            settings.domain = configuration.clusterDomain
            // The node's resolvers (IPv4: the forwarder's), never the cluster address itself.
            let resolvConf = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
            settings.upstreams = ResolvConf.parse(resolvConf).nameservers.filter {
                IPv4Address($0) != nil && $0 != dnsAddress
            }
            let recorder = events.component("berth-dns")
            dns = ClusterDNS(configuration: settings, services: services, slices: slices, logger: logger) {
                recorder.record(node, type: "Warning", reason: "ClusterDNSFailed", message: $0)
            }
        }
        var policy: (NetworkPolicyEnforcer, [any RunnableInformer])?
        if configuration.enforceNetworkPolicies {
            let policies = Informer(
                source: sources.source(
                    NetworkingV1.NetworkPolicy.self, resource: ResourceType.of(NetworkingV1.NetworkPolicy.self)),
                name: "node-networkpolicies", logger: logger)
            let pods = Informer(
                source: sources.source(CoreV1.Pod.self, resource: ResourceType.of(CoreV1.Pod.self)),
                name: "node-policy-pods", logger: logger)
            let namespaces = Informer(
                source: sources.source(CoreV1.Namespace.self, resource: ResourceType.of(CoreV1.Namespace.self)),
                name: "node-policy-namespaces", logger: logger)
            let recorder = events.component("berth-network-policy")
            let enforcer = NetworkPolicyEnforcer(
                nodeName: configuration.nodeName, policies: policies, pods: pods, namespaces: namespaces, logger: logger
            ) { recorder.record(node, type: "Warning", reason: "NetworkPolicySyncFailed", message: $0) }
            policy = (enforcer, [policies])
        }
        let recorder = events.component("berth-agent")
        return NodeNetworkServices(
            services: services, slices: slices,
            report: { recorder.record(node, type: "Warning", reason: "NodeNetworking", message: $0) }, proxy: proxy,
            dns: dns, policy: policy)
    }

    func run() async {
        if proxy != nil || policy != nil, let problem = BridgeNetfilter.ensure() {
            report(problem)
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await services.run() }
            group.addTask { await slices.run() }
            if let proxy { group.addTask { await proxy.run() } }
            if let dns { group.addTask { await dns.run() } }
            if let (enforcer, informers) = policy {
                for informer in informers { group.addTask { await informer.run() } }
                group.addTask { await enforcer.run() }
            }
            await group.waitForAll()
        }
    }
}

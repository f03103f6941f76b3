import BerthKube
import BerthNetwork

/// One port of one Service as the proxy routes it (kube-proxy's ServicePort): where clients send
/// (cluster IP, external IPs, load-balancer IPs, the node port) and the endpoints behind it.
public struct ProxiedServicePort: Sendable, Equatable {
    public struct Endpoint: Sendable, Hashable, Comparable {
        public var ip: String
        public var port: Int
        /// Whether the endpoint runs on this node (for the Local traffic policies).
        public var isLocal: Bool

        /// By address and port: the same endpoints make the same rules.
        public static func < (a: Self, b: Self) -> Bool { (a.ip, a.port) < (b.ip, b.port) }
    }

    public enum TransportProtocol: String, Sendable, Equatable {
        case tcp, udp, sctp
    }

    public var namespace: String
    public var name: String
    public var portName: String
    public var transport: TransportProtocol
    public var port: Int
    public var clusterIP: String?
    public var nodePort: Int?
    /// spec.externalIPs and status.loadBalancer.ingress IPs: reached as the node port is.
    public var externalAddresses: [String]
    /// ClientIP affinity's timeout in seconds, nil without affinity.
    public var affinityTimeout: Int?
    public var externalPolicyLocal: Bool
    public var internalPolicyLocal: Bool
    /// Ready endpoints, or — when none is ready — those still serving while they terminate (as
    /// kube-proxy falls back to), sorted so the same input makes the same rules.
    public var endpoints: [Endpoint]
    /// This node's endpoints, with the same fallback made for them alone (kube-proxy's local scope: a
    /// node whose only pod is terminating keeps serving through it while a new one is ready elsewhere).
    public var localEndpoints: [Endpoint] = []

    /// `namespace/name/protocol/portName`, the proxy's name for it (kube-proxy's ServicePortName).
    public var qualifiedName: String { "\(namespace)/\(name)/\(transport.rawValue)/\(portName)" }

    /// Whether anything outside the cluster IP reaches it (a node port, external or LB addresses).
    public var isExternallyReachable: Bool { nodePort != nil || !externalAddresses.isEmpty }
}

/// Services and EndpointSlices (the API's objects) as the ports the proxy programs.
public enum ProxiedServices {
    /// The label an EndpointSlice names its Service with.
    public static let serviceNameLabel = "kubernetes.io/service-name"

    public static func build(
        services: [CoreV1.Service], slices: [DiscoveryV1.EndpointSlice], nodeName: String
    ) -> [ProxiedServicePort] {
        var slicesByService: [String: [DiscoveryV1.EndpointSlice]] = [:]
        for slice in slices where slice.addressType == "IPv4" {
            guard let service = slice.metadata.labels[serviceNameLabel], let namespace = slice.metadata.namespace
            else { continue }
            slicesByService[namespace + "/" + service, default: []].append(slice)
        }
        var result: [ProxiedServicePort] = []
        for service in services {
            let spec = service.spec
            // ExternalName is DNS only; a headless Service has no virtual IP to program.
            if spec.type == .externalName { continue }
            let clusterIP = spec.clusterIP.flatMap { $0.isEmpty || $0 == "None" ? nil : $0 }
            guard clusterIP.map({ IPv4Address($0) != nil }) ?? true else { continue }
            if clusterIP == nil { continue }
            let namespace = service.metadata.namespace ?? "default"
            let name = service.metadata.name ?? ""
            let serviceSlices = slicesByService[namespace + "/" + name] ?? []
            let external =
                (spec.externalIPs + service.status.loadBalancer.ingress.compactMap(\.ip)).filter {
                    IPv4Address($0) != nil
                }
            let affinity: Int? =
                spec.sessionAffinity == .clientIP
                ? Int(spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800) : nil
            for servicePort in spec.ports {
                guard
                    let transport = ProxiedServicePort.TransportProtocol(
                        rawValue: (servicePort.protocol?.rawValue ?? "TCP").lowercased())
                else { continue }
                let portName = servicePort.name ?? ""
                var ready: Set<ProxiedServicePort.Endpoint> = []
                var terminating: Set<ProxiedServicePort.Endpoint> = []
                for slice in serviceSlices {
                    // Each slice carries the port numbers of its own endpoints (a named targetPort
                    // resolves per pod): the port of the same name and protocol.
                    guard
                        let slicePort = slice.ports.first(where: {
                            ($0.name ?? "") == portName
                                && ($0.protocol?.rawValue ?? "TCP").lowercased()
                                    == transport.rawValue
                        }), let number = slicePort.port
                    else { continue }
                    for endpoint in slice.endpoints {
                        guard let ip = endpoint.addresses.first, IPv4Address(ip) != nil else { continue }
                        let entry = ProxiedServicePort.Endpoint(
                            ip: ip, port: Int(number), isLocal: endpoint.nodeName == nodeName)
                        let conditions = endpoint.conditions
                        if conditions.ready ?? true {
                            ready.insert(entry)
                        } else if conditions.serving == true && conditions.terminating == true {
                            terminating.insert(entry)
                        }
                    }
                }
                let endpoints = (ready.isEmpty ? terminating : ready).sorted()
                let readyHere = ready.filter(\.isLocal)
                let localEndpoints = (readyHere.isEmpty ? terminating.filter(\.isLocal) : readyHere).sorted()
                result.append(
                    ProxiedServicePort(
                        namespace: namespace, name: name, portName: portName, transport: transport,
                        port: Int(servicePort.port), clusterIP: clusterIP,
                        nodePort: servicePort.nodePort.flatMap { $0 > 0 ? Int($0) : nil },
                        externalAddresses: external, affinityTimeout: affinity,
                        externalPolicyLocal: spec.externalTrafficPolicy == .local,
                        internalPolicyLocal: spec.internalTrafficPolicy == .local, endpoints: endpoints,
                        localEndpoints: localEndpoints))
            }
        }
        return result.sorted { $0.qualifiedName < $1.qualifiedName }
    }
}

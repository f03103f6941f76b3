import BerthAPI
import BerthKube
import Foundation
import Logging

/// One port of an endpoint (core/v1 EndpointPort and discovery/v1 EndpointPort have the same fields).
struct EndpointPort: Hashable, Comparable, Sendable {
    var name: String
    var port: Int32
    var proto: String
    var appProtocol: String?

    /// The "no ports" sentinel of a headless Service without ports.
    static let none = EndpointPort(name: "", port: -1, proto: "", appProtocol: nil)

    init(name: String, port: Int32, proto: String, appProtocol: String?) {
        self.name = name
        self.port = port
        self.proto = proto
        self.appProtocol = appProtocol
    }

    /// From a Service port, with the pod's resolved target port.
    init(_ servicePort: CoreV1.ServicePort, port: Int32) {
        self.init(
            name: servicePort.name ?? "", port: port, proto: servicePort.protocol?.rawValue ?? "TCP",
            appProtocol: servicePort.appProtocol)
    }

    static func < (a: EndpointPort, b: EndpointPort) -> Bool {
        (a.name, a.port, a.proto, a.appProtocol ?? "") < (b.name, b.port, b.proto, b.appProtocol ?? "")
    }

    /// core/v1 form: an empty name is omitted.
    var core: CoreV1.EndpointPort {
        CoreV1.EndpointPort(
            name: name.isEmpty ? nil : name, port: port, protocol: CoreV1.IPProtocol(rawValue: proto),
            appProtocol: appProtocol)
    }

    /// discovery/v1 form: the name is always written ("" when the Service port has none), as upstream
    /// writes it.
    var discovery: DiscoveryV1.EndpointPort {
        DiscoveryV1.EndpointPort(
            name: name, protocol: CoreV1.IPProtocol(rawValue: proto), port: port, appProtocol: appProtocol)
    }
}

/// What of a pod can change its endpoints: a pod update touching none of it is ignored.
struct PodEndpointFields: Equatable {
    var labels: [String: String]
    var deleting: Bool
    var ip: String?
    var ready: Bool
    var phase: CoreV1.PodPhase?
    var node: String?
    var hostname: String?
    var subdomain: String?
    var ports: [[CoreV1.ContainerPort]]

    init(_ pod: CoreV1.Pod) {
        labels = pod.metadata.labels
        deleting = pod.isTerminating
        ip = ServiceBackends.podIP(pod)
        ready = pod.isReady
        phase = pod.status.phase
        node = pod.spec.nodeName
        hostname = pod.spec.hostname
        subdomain = pod.spec.subdomain
        ports = pod.spec.containers.map(\.ports)
    }
}

/// What the Endpoints and EndpointSlice controllers share: which pods back a Service, on which ports,
/// and which Services a pod change concerns.
enum ServiceBackends {
    /// Index of Services and of pods by namespace (both controllers register the same function).
    static let namespaceIndex = "ep-namespace"

    static func addIndexes(services: Informer<CoreV1.Service>, pods: Informer<CoreV1.Pod>) {
        services.addIndex(namespaceIndex) { [$0.metadata.namespace ?? ""] }
        pods.addIndex(namespaceIndex) { [$0.metadata.namespace ?? ""] }
    }

    /// The Service's selector, or nil when it has none: an empty selector does not survive a round trip
    /// through the API upstream (omitempty), so it means "no selector" too.
    static func selector(_ svc: CoreV1.Service) -> [String: String]? {
        svc.spec.selector.isEmpty ? nil : svc.spec.selector
    }

    static func selects(_ selector: [String: String], _ pod: CoreV1.Pod) -> Bool {
        selector.allSatisfy { pod.metadata.labels[$0.key] == $0.value }
    }

    /// Pods of `namespace` matching `selector`, sorted by name so results are reproducible.
    static func pods(
        in namespace: String, selectedBy selector: [String: String], from pods: Informer<CoreV1.Pod>
    ) -> [CoreV1.Pod] {
        pods.byIndex(namespaceIndex, namespace).filter { selects(selector, $0) }
            .sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
    }

    static func hasClusterIP(_ svc: CoreV1.Service) -> Bool {
        let ip = svc.spec.clusterIP ?? ""
        return !ip.isEmpty && ip != "None"
    }

    /// Upstream's ShouldPodBeInEndpoints: not terminal, has an IP, and not terminating unless asked.
    static func eligible(_ pod: CoreV1.Pod, includeTerminating: Bool) -> Bool {
        if pod.isFinished { return false }
        if podIP(pod) == nil { return false }
        if !includeTerminating && pod.isTerminating { return false }
        return true
    }

    static func podIP(_ pod: CoreV1.Pod) -> String? {
        if let ip = pod.status.podIP, !ip.isEmpty { return ip }
        if let ip = pod.status.podIPs.first?.ip, !ip.isEmpty { return ip }
        return nil
    }

    static func targetRef(_ pod: CoreV1.Pod) -> CoreV1.ObjectReference {
        CoreV1.ObjectReference(
            kind: "Pod", namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid)
    }

    /// A pod's DNS hostname under a headless Service: set when its subdomain names the Service.
    static func hostname(_ pod: CoreV1.Pod, serviceName: String) -> String? {
        guard let h = pod.spec.hostname, !h.isEmpty, pod.spec.subdomain == serviceName else { return nil }
        return h
    }

    /// Upstream's FindPort: a numeric targetPort as is; a named one looked up among the pod's container
    /// ports (same name and protocol). Nil when the pod does not offer the named port.
    static func resolvePort(_ pod: CoreV1.Pod, _ servicePort: CoreV1.ServicePort) -> Int32? {
        // An unset targetPort decodes as the integer 0 (Go's zero value): it means "the Service's port".
        let name: String
        switch servicePort.targetPort {
        case .int(let number): return number == 0 ? servicePort.port : number
        case .string(let text): name = text
        }
        if name.isEmpty { return servicePort.port }
        let proto = servicePort.protocol ?? .tcp
        for container in pod.spec.containers {
            for port in container.ports where port.name == name && (port.protocol ?? .tcp) == proto {
                return port.containerPort
            }
        }
        return nil
    }

    /// Keys of the Services whose endpoints a pod change may alter (those selecting the old or new pod).
    static func servicesAffected(
        by event: InformerEvent<CoreV1.Pod>, services: Informer<CoreV1.Service>
    ) -> Set<String> {
        var pods: [CoreV1.Pod]
        switch event {
        case .added(let pod), .deleted(let pod): pods = [pod]
        case .updated(let old, let new):
            if PodEndpointFields(old) == PodEndpointFields(new) { return [] }
            pods = [old, new]
        }
        var keys: Set<String> = []
        for pod in pods {
            for svc in services.byIndex(namespaceIndex, pod.metadata.namespace ?? "") {
                if let sel = selector(svc), selects(sel, pod) { keys.insert(svc.cacheKey) }
            }
        }
        return keys
    }

    /// Orders addresses by IP, numerically for IPv4, then by the pod's name.
    static func ipLess(_ a: (ip: String, name: String), _ b: (ip: String, name: String)) -> Bool {
        if a.ip != b.ip {
            if let p = ipv4(a.ip), let q = ipv4(b.ip) { return p < q }
            return a.ip < b.ip
        }
        return a.name < b.name
    }

    static func ipLess(_ a: CoreV1.EndpointAddress, _ b: CoreV1.EndpointAddress) -> Bool {
        ipLess((a.ip, a.targetRef?.name ?? ""), (b.ip, b.targetRef?.name ?? ""))
    }

    static func ipLess(_ a: DiscoveryV1.Endpoint, _ b: DiscoveryV1.Endpoint) -> Bool {
        ipLess((a.addresses.first ?? "", a.targetRef?.name ?? ""), (b.addresses.first ?? "", b.targetRef?.name ?? ""))
    }

    static func ipv4(_ s: String) -> UInt32? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard let b = UInt8(p) else { return nil }
            v = v << 8 | UInt32(b)
        }
        return v
    }

    /// The address and port default/kubernetes points at: this server's bind address (loopback when it
    /// listens on every address, or on a name rather than an IPv4 address).
    static func apiServerAddress(_ server: APIServer) -> (ip: String, port: Int64) {
        let host = server.config.host
        let ip = host != "0.0.0.0" && ipv4(host) != nil ? host : "127.0.0.1"
        return (ip, Int64(server.config.port))
    }

    /// Conflicts and stale caches are routine (the key is simply retried); anything else is worth a warning.
    static func logSyncError(_ logger: Logger, controller: String, key: String, _ error: any Error) {
        if Task.isCancelled { return }  // stopping (no longer leader, or shutting down)
        if let e = error as? APIError, [404, 409].contains(e.code) {
            logger.debug("\(controller) sync retried", metadata: ["key": "\(key)", "error": "\(e)"])
        } else {
            logger.warning("\(controller) sync failed", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }
}

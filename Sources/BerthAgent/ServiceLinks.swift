import BerthKube

/// The kubelet's service environment variables (getServiceEnvVarMap and envvars.FromServices): every
/// container learns the API server's address from the `kubernetes` Service of `default` —
/// `KUBERNETES_SERVICE_HOST`/`_PORT`, which client-go's in-cluster configuration requires — and, while
/// the pod's `enableServiceLinks` is on (the default), the docker-link variables of each Service of its
/// own namespace that has a cluster IP (`WEB_SERVICE_HOST`, `WEB_PORT_80_TCP_ADDR` …).
enum ServiceLinks {
    /// The Services of `default` whose variables every pod gets.
    static let masterServices: Set<String> = ["kubernetes"]

    static func environment(for pod: CoreV1.Pod, services: [CoreV1.Service]) -> [String: String] {
        let namespace = pod.metadata.namespace ?? "default"
        let links = pod.spec.enableServiceLinks ?? true
        var chosen: [String: CoreV1.Service] = [:]
        for service in services where hasClusterIP(service) {
            let name = service.metadata.name ?? ""
            let serviceNamespace = service.metadata.namespace ?? "default"
            if serviceNamespace == "default" && masterServices.contains(name) {
                if chosen[name] == nil { chosen[name] = service }
            } else if serviceNamespace == namespace && links {
                chosen[name] = service
            }
        }
        var variables: [String: String] = [:]
        for service in chosen.values { variables.merge(Self.variables(service)) { $1 } }
        return variables
    }

    /// A ClusterIP that is set and not `None` (headless Services and ExternalNames have none).
    static func hasClusterIP(_ service: CoreV1.Service) -> Bool {
        let ip = service.spec.clusterIP ?? ""
        return !ip.isEmpty && ip != "None"
    }

    /// envvars.FromServices for one Service.
    static func variables(_ service: CoreV1.Service) -> [String: String] {
        let prefix = variableName(service.metadata.name ?? "")
        let ip = service.spec.clusterIP ?? ""
        let ports = service.spec.ports
        guard let first = ports.first else { return [prefix + "_SERVICE_HOST": ip] }
        var out = [prefix + "_SERVICE_HOST": ip, prefix + "_SERVICE_PORT": String(first.port)]
        for port in ports where !(port.name ?? "").isEmpty {
            out[prefix + "_SERVICE_PORT_" + variableName(port.name ?? "")] = String(port.port)
        }
        // Docker's link variables; the first port is also the plain `_PORT`.
        let host = ip.contains(":") ? "[\(ip)]" : ip
        for (i, port) in ports.enumerated() {
            let proto = (port.protocol?.rawValue ?? "TCP")
            let url = "\(proto.lowercased())://\(host):\(port.port)"
            if i == 0 { out[prefix + "_PORT"] = url }
            let portPrefix = "\(prefix)_PORT_\(port.port)_\(proto.uppercased())"
            out[portPrefix] = url
            out[portPrefix + "_PROTO"] = proto.lowercased()
            out[portPrefix + "_PORT"] = String(port.port)
            out[portPrefix + "_ADDR"] = ip
        }
        return out
    }

    /// makeEnvVariableName: upper case, `-` as `_`.
    static func variableName(_ name: String) -> String {
        name.replacingOccurrences(of: "-", with: "_").uppercased()
    }
}

extension NodeAgent {
    /// The Services a pod's link variables come from: `default`'s and the pod's namespace's, from the
    /// node's Service informer when it runs (the service proxy's), else asked of the API server.
    func servicesForLinks(_ pod: CoreV1.Pod) async throws -> [CoreV1.Service] {
        // A hollow node's containers never run: no variables to give them, no lists to ask for.
        if configuration.hollow { return [] }
        let namespace = pod.metadata.namespace ?? "default"
        let namespaces = namespace == "default" ? ["default"] : ["default", namespace]
        if let informer = networkServices?.services, informer.hasSynced {
            return namespaces.flatMap { informer.list(namespace: $0) }
        }
        var services: [CoreV1.Service] = []
        for n in namespaces { services += try await client.list(CoreV1.Service.self, namespace: n) }
        return services
    }
}

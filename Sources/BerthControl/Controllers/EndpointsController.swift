import BerthAPI
import Foundation
import Logging

/// The endpoints controller: keeps core/v1 Endpoints (named like their Service) listing the addresses of
/// the pods a Service selects, as kube-controller-manager's endpoint controller does.
///
/// Pods that are terminal (Succeeded/Failed), terminating or without an IP are left out (terminating
/// ones stay when the Service publishes not-ready addresses); ready pods go to `addresses`, the others
/// to `notReadyAddresses`. Each pod yields one address per Service port it resolves (a named
/// targetPort must name a container port of that pod), and addresses are grouped into subsets by the
/// port sets they offer, the way upstream's RepackSubsets does. Services without a selector are left to
/// whoever writes their Endpoints, except default/kubernetes, whose Endpoints the API server itself keeps
/// upstream: here this controller writes it (this server's address and port). Endpoints have no owner,
/// so the ownerReferences GC cannot remove them: this controller deletes them with their Service.
struct EndpointsController: ControlLoop {
    let name = "endpoints-controller"
    let queue = WorkQueue(name: "endpoints")
    let client: LocalClient
    let services: UntypedInformer
    let pods: UntypedInformer
    let endpoints: UntypedInformer
    let logger: Logger
    let workers: Int
    let apiServerAddress: (ip: String, port: Int64)

    /// Upstream truncates Endpoints above this many addresses (EndpointSlices have no such limit).
    static let maxCapacity = 1000
    static let overCapacityAnnotation = "endpoints.kubernetes.io/over-capacity"
    static let headlessLabel = "service.kubernetes.io/headless"
    static let skipMirrorLabel = "endpointslice.kubernetes.io/skip-mirror"
    /// The annotation upstream's leader election once put on Endpoints; such objects are not leftovers.
    static let leaderAnnotation = "control-plane.alpha.kubernetes.io/leader"

    init(_ ctx: ControllerContext) {
        client = ctx.localClient("endpoint-controller")
        logger = ctx.logger
        workers = ctx.config.workers
        apiServerAddress = ctx.facts.address
        services = ctx.informers.informer(Registry.services)
        pods = ctx.informers.informer(Registry.pods)
        endpoints = ctx.informers.informer(Registry.endpoints)
        ServiceBackends.addIndexes(services: services, pods: pods)
        let (queue, services) = (self.queue, self.services)
        // Handlers must not wait: each key is added by a task of its own.
        services.onChange { e in
            let key = UntypedInformer.key(e.object)
            Task { await queue.add(key) }
        }
        pods.onChange { e in
            for key in ServiceBackends.servicesAffected(by: e, services: services) { Task { await queue.add(key) } }
        }
        // Our own writes need no second look; a deleted Endpoints of a live Service is written again.
        endpoints.onChange { e in
            if case .deleted(let ep) = e {
                let key = UntypedInformer.key(ep)
                Task { await queue.add(key) }
            }
        }
    }

    func run() async {
        // Endpoints whose Service went away while no controller ran: a sync of their key deletes them.
        for ep in endpoints.list() where ep["metadata"]["annotations"][Self.leaderAnnotation].isNull {
            await queue.add(UntypedInformer.key(ep))
        }
        let logger = self.logger
        await runWorkers(
            queue, count: workers, sync: { try await sync($0) },
            onError: { key, error in
                ServiceBackends.logSyncError(logger, controller: "endpoints", key: key, error)
            })
    }

    func sync(_ key: String) async throws {
        let (namespace, name) = Objects.split(key)
        guard let svc = services.get(key) else {
            // The Service is gone: so are its Endpoints. Deleted whether or not the cache shows them (as
            // upstream does): Endpoints written a moment ago may not be in the cache yet.
            do { try await client.delete(Registry.endpoints, namespace: namespace, name: name) } catch let e as APIError
                where e.code == 404
            {}
            return
        }
        let desired: JSON
        if key == "default/kubernetes" {
            desired = apiServerEndpoints()
        } else {
            guard let selector = ServiceBackends.selector(svc), svc["spec"]["type"].string != "ExternalName" else {
                return
            }
            desired = endpointsObject(for: svc, selector: selector)
        }
        try await write(desired, namespace: namespace, name: name)
    }

    /// Creates or updates the Endpoints when its labels, subsets or capacity annotation differ.
    private func write(_ desired: JSON, namespace: String, name: String) async throws {
        guard var current = endpoints.get(namespace: namespace, name: name) else {
            var obj = desired
            obj["apiVersion"] = "v1"
            obj["kind"] = "Endpoints"
            obj["metadata"]["name"] = .string(name)
            obj["metadata"]["namespace"] = .string(namespace)
            try await client.create(Registry.endpoints, obj)
            return
        }
        let same =
            Self.subsets(current) == Self.subsets(desired)
            && current["metadata"]["labels"].stringMap == desired["metadata"]["labels"].stringMap
            && current["metadata"]["annotations"][Self.overCapacityAnnotation]
                == desired["metadata"]["annotations"][Self.overCapacityAnnotation]
        if same { return }
        current["metadata"]["labels"] = desired["metadata"]["labels"]
        current["metadata"]["annotations"][Self.overCapacityAnnotation] =
            desired["metadata"]["annotations"][Self.overCapacityAnnotation]
        if current["metadata"]["annotations"].object?.isEmpty == true { current["metadata"]["annotations"] = .null }
        current["subsets"] = desired["subsets"]
        try await client.update(Registry.endpoints, current)
    }

    private static func subsets(_ ep: JSON) -> [JSON] { ep["subsets"].array ?? [] }

    /// default/kubernetes: this API server, as upstream's endpoint reconciler publishes it. The skip-mirror
    /// label keeps an EndpointSlice mirroring controller away (the slice is written directly).
    func apiServerEndpoints() -> JSON {
        let (ip, port) = apiServerAddress
        return [
            "metadata": ["labels": .strings([Self.skipMirrorLabel: "true"])],
            "subsets": [
                [
                    "addresses": [["ip": .string(ip)]],
                    "ports": [["name": "https", "port": .int(port), "protocol": "TCP"]],
                ]
            ],
        ]
    }

    /// The Endpoints a selector Service should have now (metadata carries only labels and annotations).
    func endpointsObject(for svc: JSON, selector: [String: String]) -> JSON {
        let publishNotReady = svc["spec"]["publishNotReadyAddresses"].bool == true
        let svcPorts = svc["spec"]["ports"].array ?? []
        let headless = !ServiceBackends.hasClusterIP(svc)
        let svcName = svc["metadata"]["name"].string ?? ""
        // Port → the addresses (by pod) offering it, each with its readiness.
        var byPort: [EndpointPort: [String: (address: JSON, ready: Bool)]] = [:]
        for pod in ServiceBackends.pods(in: svc["metadata"]["namespace"].string ?? "", selectedBy: selector, from: pods)
        where ServiceBackends.eligible(pod, includeTerminating: publishNotReady) {
            guard let ip = ServiceBackends.podIP(pod) else { continue }
            var address: JSON = ["ip": .string(ip), "targetRef": ServiceBackends.targetRef(pod)]
            if let node = pod["spec"]["nodeName"].string, !node.isEmpty { address["nodeName"] = .string(node) }
            if let hostname = ServiceBackends.hostname(pod, serviceName: svcName) {
                address["hostname"] = .string(hostname)
            }
            let ready = publishNotReady || Objects.isReady(pod)
            let id = ip + "/" + (pod["metadata"]["uid"].string ?? "")
            if svcPorts.isEmpty {
                // A headless Service may have no ports: its addresses still count (a sentinel port).
                if headless { byPort[.none, default: [:]][id] = (address, ready) }
                continue
            }
            for sp in svcPorts {
                guard let port = ServiceBackends.resolvePort(pod, sp) else { continue }
                byPort[EndpointPort(sp, port: port), default: [:]][id] = (address, ready)
            }
        }
        var subsets = Self.repack(byPort)
        let truncated = subsets.reduce(0, { $0 + $1.count }) > Self.maxCapacity
        if truncated { subsets = Self.truncate(subsets, to: Self.maxCapacity) }
        var labels = svc["metadata"]["labels"].stringMap
        if headless { labels[Self.headlessLabel] = "" } else { labels[Self.headlessLabel] = nil }
        var obj: JSON = ["metadata": [:]]
        if !labels.isEmpty { obj["metadata"]["labels"] = .strings(labels) }
        if truncated { obj["metadata"]["annotations"] = .strings([Self.overCapacityAnnotation: "truncated"]) }
        let json = subsets.map(\.json)
        obj["subsets"] = json.isEmpty ? .null : .array(json)
        return obj
    }

    /// A subset while it is built: addresses (ready and not) sharing one set of ports.
    struct Subset {
        var ready: [JSON]
        var notReady: [JSON]
        var ports: [EndpointPort]
        var count: Int { ready.count + notReady.count }
        var json: JSON {
            var s: JSON = [:]
            if !ready.isEmpty { s["addresses"] = .array(ready) }
            if !notReady.isEmpty { s["notReadyAddresses"] = .array(notReady) }
            let p = ports.filter { $0 != .none }.map(\.json)
            if !p.isEmpty { s["ports"] = .array(p) }
            return s
        }
    }

    /// Upstream's RepackSubsets: ports offered by exactly the same addresses share a subset. Addresses are
    /// sorted by IP, ports by name and number, subsets by their first address, so equal input gives equal
    /// output and unchanged Services are never rewritten.
    static func repack(_ byPort: [EndpointPort: [String: (address: JSON, ready: Bool)]]) -> [Subset] {
        var groups: [String: (addresses: [String: (address: JSON, ready: Bool)], ports: [EndpointPort])] = [:]
        for (port, addrs) in byPort {
            let key = addrs.map { $0.key + ($0.value.ready ? "+" : "-") }.sorted().joined(separator: ",")
            groups[key, default: (addrs, [])].ports.append(port)
        }
        var subsets: [Subset] = groups.values.map { g in
            let sorted = g.addresses.sorted { ServiceBackends.ipLess($0.value.address, $1.value.address) }
            return Subset(
                ready: sorted.filter(\.value.ready).map(\.value.address),
                notReady: sorted.filter { !$0.value.ready }.map(\.value.address),
                ports: g.ports.sorted())
        }
        subsets.sort { a, b in
            let (x, y) = (a.ready.first ?? a.notReady.first ?? .null, b.ready.first ?? b.notReady.first ?? .null)
            if x != y { return ServiceBackends.ipLess(x, y) }
            return a.ports.lexicographicallyPrecedes(b.ports)
        }
        return subsets
    }

    /// Upstream's truncateEndpoints: keeps `limit` addresses, ready ones first, spread over the subsets in
    /// proportion to their sizes.
    static func truncate(_ subsets: [Subset], to limit: Int) -> [Subset] {
        var out = subsets
        let totalReady = subsets.reduce(0) { $0 + $1.ready.count }
        let totalNotReady = subsets.reduce(0) { $0 + $1.notReady.count }
        let readyBudget = min(totalReady, limit)
        let notReadyBudget = min(totalNotReady, limit - readyBudget)
        func shares(_ counts: [Int], _ total: Int, _ budget: Int) -> [Int] {
            guard total > 0 else { return counts.map { _ in 0 } }
            var s = counts.map { $0 * budget / total }
            var left = budget - s.reduce(0, +)
            for i in s.indices where left > 0 && s[i] < counts[i] { s[i] += 1; left -= 1 }
            return s
        }
        let r = shares(subsets.map(\.ready.count), totalReady, readyBudget)
        let n = shares(subsets.map(\.notReady.count), totalNotReady, notReadyBudget)
        for i in out.indices {
            out[i].ready = Array(out[i].ready.prefix(r[i]))
            out[i].notReady = Array(out[i].notReady.prefix(n[i]))
        }
        return out.filter { $0.count > 0 }
    }
}

/// One port of an endpoint (core/v1 EndpointPort and discovery/v1 EndpointPort have the same fields).
struct EndpointPort: Hashable, Comparable, Sendable {
    var name: String
    var port: Int64
    var proto: String
    var appProtocol: String?

    /// The "no ports" sentinel of a headless Service without ports.
    static let none = EndpointPort(name: "", port: -1, proto: "", appProtocol: nil)

    init(name: String, port: Int64, proto: String, appProtocol: String?) {
        self.name = name; self.port = port; self.proto = proto; self.appProtocol = appProtocol
    }
    /// From a Service port, with the pod's resolved target port.
    init(_ servicePort: JSON, port: Int64) {
        self.init(
            name: servicePort["name"].string ?? "", port: port, proto: servicePort["protocol"].string ?? "TCP",
            appProtocol: servicePort["appProtocol"].string)
    }
    static func < (a: EndpointPort, b: EndpointPort) -> Bool {
        (a.name, a.port, a.proto, a.appProtocol ?? "") < (b.name, b.port, b.proto, b.appProtocol ?? "")
    }
    /// core/v1 form: an empty name is omitted.
    var json: JSON {
        var p: JSON = ["port": .int(port), "protocol": .string(proto)]
        if !name.isEmpty { p["name"] = .string(name) }
        if let appProtocol { p["appProtocol"] = .string(appProtocol) }
        return p
    }
}

/// What the Endpoints and EndpointSlice controllers share: which pods back a Service, on which ports,
/// and which Services a pod change concerns.
enum ServiceBackends {
    /// Index of Services and of pods by namespace (both controllers register the same function).
    static let namespaceIndex = "ep-namespace"

    static func addIndexes(services: UntypedInformer, pods: UntypedInformer) {
        let byNamespace: @Sendable (JSON) -> [String] = { [$0["metadata"]["namespace"].string ?? ""] }
        services.addIndex(namespaceIndex, byNamespace)
        pods.addIndex(namespaceIndex, byNamespace)
    }

    /// The Service's selector, or nil when it has none: an empty selector does not survive a round trip
    /// through the API upstream (omitempty), so it means "no selector" too.
    static func selector(_ svc: JSON) -> [String: String]? {
        let s = svc["spec"]["selector"].stringMap
        return s.isEmpty ? nil : s
    }

    static func selects(_ selector: [String: String], _ pod: JSON) -> Bool {
        let labels = pod["metadata"]["labels"].object ?? [:]
        return selector.allSatisfy { labels[$0.key]?.string == $0.value }
    }

    /// Pods of `namespace` matching `selector`, sorted by name so results are reproducible.
    static func pods(in namespace: String, selectedBy selector: [String: String], from pods: UntypedInformer) -> [JSON]
    {
        pods.byIndex(namespaceIndex, namespace).filter { selects(selector, $0) }
            .sorted { ($0["metadata"]["name"].string ?? "") < ($1["metadata"]["name"].string ?? "") }
    }

    static func hasClusterIP(_ svc: JSON) -> Bool {
        let ip = svc["spec"]["clusterIP"].string ?? ""
        return !ip.isEmpty && ip != "None"
    }

    /// Upstream's ShouldPodBeInEndpoints: not terminal, has an IP, and not terminating unless asked.
    static func eligible(_ pod: JSON, includeTerminating: Bool) -> Bool {
        let phase = pod["status"]["phase"].string ?? ""
        if phase == "Succeeded" || phase == "Failed" { return false }
        if podIP(pod) == nil { return false }
        if !includeTerminating && !pod["metadata"]["deletionTimestamp"].isNull { return false }
        return true
    }

    static func podIP(_ pod: JSON) -> String? {
        if let ip = pod["status"]["podIP"].string, !ip.isEmpty { return ip }
        if let ip = pod["status"]["podIPs"][0]["ip"].string, !ip.isEmpty { return ip }
        return nil
    }

    static func targetRef(_ pod: JSON) -> JSON {
        [
            "kind": "Pod", "namespace": pod["metadata"]["namespace"], "name": pod["metadata"]["name"],
            "uid": pod["metadata"]["uid"],
        ]
    }

    /// A pod's DNS hostname under a headless Service: set when its subdomain names the Service.
    static func hostname(_ pod: JSON, serviceName: String) -> String? {
        guard let h = pod["spec"]["hostname"].string, !h.isEmpty, pod["spec"]["subdomain"].string == serviceName else {
            return nil
        }
        return h
    }

    /// Upstream's FindPort: a numeric targetPort as is; a named one looked up among the pod's container
    /// ports (same name and protocol). Nil when the pod does not offer the named port.
    static func resolvePort(_ pod: JSON, _ servicePort: JSON) -> Int64? {
        let target = servicePort["targetPort"].isNull ? servicePort["port"] : servicePort["targetPort"]
        if let n = target.int { return n }
        guard let name = target.string else { return nil }
        if name.isEmpty { return servicePort["port"].int }
        let proto = servicePort["protocol"].string ?? "TCP"
        for c in pod["spec"]["containers"].array ?? [] {
            for p in c["ports"].array ?? [] where p["name"].string == name && (p["protocol"].string ?? "TCP") == proto {
                if let n = p["containerPort"].int { return n }
            }
        }
        return nil
    }

    /// What of a pod can change its endpoints: a pod update touching none of it is ignored.
    static func endpointFields(_ pod: JSON) -> JSON {
        [
            "labels": pod["metadata"]["labels"], "deleting": .bool(!pod["metadata"]["deletionTimestamp"].isNull),
            "ip": podIP(pod).map(JSON.string) ?? .null, "ready": .bool(Objects.isReady(pod)),
            "phase": pod["status"]["phase"],
            "node": pod["spec"]["nodeName"], "hostname": pod["spec"]["hostname"], "subdomain": pod["spec"]["subdomain"],
            "ports": .array((pod["spec"]["containers"].array ?? []).map { $0["ports"] }),
        ]
    }

    /// Keys of the Services whose endpoints a pod change may alter (those selecting the old or new pod).
    static func servicesAffected(by e: UntypedInformerEvent, services: UntypedInformer) -> Set<String> {
        var pods: [JSON]
        switch e {
        case .added(let p), .deleted(let p): pods = [p]
        case .updated(let old, let new):
            if endpointFields(old) == endpointFields(new) { return [] }
            pods = [old, new]
        }
        var keys: Set<String> = []
        for pod in pods {
            let ns = pod["metadata"]["namespace"].string ?? ""
            for svc in services.byIndex(namespaceIndex, ns) {
                if let sel = selector(svc), selects(sel, pod) { keys.insert(UntypedInformer.key(svc)) }
            }
        }
        return keys
    }

    /// Orders addresses (core/v1 address or discovery/v1 endpoint objects) by IP, numerically for IPv4.
    static func ipLess(_ a: JSON, _ b: JSON) -> Bool {
        let x = a["ip"].string ?? a["addresses"][0].string ?? ""
        let y = b["ip"].string ?? b["addresses"][0].string ?? ""
        if x != y {
            if let p = ipv4(x), let q = ipv4(y) { return p < q }
            return x < y
        }
        return (a["targetRef"]["name"].string ?? "") < (b["targetRef"]["name"].string ?? "")
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

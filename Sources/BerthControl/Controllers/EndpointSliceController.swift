import BerthAPI
import Foundation
import Logging

/// The EndpointSlice controller: discovery.k8s.io/v1 EndpointSlices for every Service with a selector
/// (what kube-proxy and cluster DNS read), as kube-controller-manager's endpointslice controller does.
///
/// Unlike Endpoints, slices keep terminating pods (ready false, serving as the pod's readiness,
/// terminating true), so proxies can drain connections. Pods offering the same resolved ports share
/// slices of at most 100 endpoints, owned by the Service (so the API's garbage collector removes them
/// with it). A reconcile keeps each endpoint in the slice that already holds it, fills free room before
/// adding slices, and only writes slices whose content changed, so one pod change rewrites one slice.
/// New slices get names derived from the Service's UID and a small index rather than generateName, so
/// a controller working from a stale cache collides with its own earlier create (AlreadyExists, retried)
/// instead of making a duplicate. A Service with no endpoints keeps one empty placeholder slice, as
/// upstream. default/kubernetes, whose slice upstream's API server writes, gets its slice here too.
struct EndpointSliceController: ControlLoop {
    let name = "endpointslice-controller"
    let queue = WorkQueue(name: "endpointslices")
    let client: LocalClient
    let services: UntypedInformer
    let pods: UntypedInformer
    let slices: UntypedInformer
    let nodes: UntypedInformer
    let logger: Logger
    let workers: Int
    let apiServerAddress: (ip: String, port: Int64)

    static let maxEndpointsPerSlice = 100
    static let serviceNameLabel = "kubernetes.io/service-name"
    static let managedByLabel = "endpointslice.kubernetes.io/managed-by"
    static let managedBy = "endpointslice-controller.k8s.io"
    static let zoneLabel = "topology.kubernetes.io/zone"
    /// Slices managed by this controller, by "namespace/service".
    static let serviceIndex = "eps-service"

    init(_ ctx: ControllerContext) {
        client = ctx.localClient("endpointslice-controller")
        logger = ctx.logger
        workers = ctx.config.workers
        apiServerAddress = ctx.facts.address
        services = ctx.informers.informer(Registry.services)
        pods = ctx.informers.informer(Registry.pods)
        slices = ctx.informers.informer(Registry.endpointSlices)
        nodes = ctx.informers.informer(Registry.nodes)
        ServiceBackends.addIndexes(services: services, pods: pods)
        slices.addIndex(Self.serviceIndex) { s in
            let labels = s["metadata"]["labels"].stringMap
            guard labels[Self.managedByLabel] == Self.managedBy, let svc = labels[Self.serviceNameLabel] else {
                return []
            }
            return [(s["metadata"]["namespace"].string ?? "") + "/" + svc]
        }
        let (queue, services) = (self.queue, self.services)
        // Handlers must not wait: each key is added by a task of its own.
        services.onChange { e in
            let key = UntypedInformer.key(e.object)
            Task { await queue.add(key) }
        }
        pods.onChange { e in
            for key in ServiceBackends.servicesAffected(by: e, services: services) { Task { await queue.add(key) } }
        }
        // Our own writes need no second look; a slice someone deleted is made again.
        slices.onChange { e in
            guard case .deleted(let s) = e, let svc = s["metadata"]["labels"][Self.serviceNameLabel].string else {
                return
            }
            let key = (s["metadata"]["namespace"].string ?? "") + "/" + svc
            Task { await queue.add(key) }
        }
        // Zones come from nodes: a node appearing or changing zone refreshes every selector Service
        // (rare, and cheaper than tracking which Services have pods on which node).
        nodes.onChange { e in
            let changed: Bool
            switch e {
            case .added(let n): changed = n["metadata"]["labels"][Self.zoneLabel] != .null
            case .updated(let old, let new):
                changed = old["metadata"]["labels"][Self.zoneLabel] != new["metadata"]["labels"][Self.zoneLabel]
            case .deleted: changed = false
            }
            guard changed else { return }
            for svc in services.list() where ServiceBackends.selector(svc) != nil {
                let key = UntypedInformer.key(svc)
                Task { await queue.add(key) }
            }
        }
    }

    func run() async {
        let logger = self.logger
        await runWorkers(
            queue, count: workers, sync: { try await sync($0) },
            onError: { key, error in
                ServiceBackends.logSyncError(logger, controller: "endpointslice", key: key, error)
            })
    }

    func sync(_ key: String) async throws {
        let namespace = Objects.split(key).namespace
        let existing = slices.byIndex(Self.serviceIndex, key)
            .sorted { ($0["metadata"]["name"].string ?? "") < ($1["metadata"]["name"].string ?? "") }
        guard let svc = services.get(key) else {
            // The garbage collector removes owned slices too; whichever is first wins.
            try await delete(existing)
            return
        }
        if key == "default/kubernetes" {
            try await syncAPIServerSlice()
            return
        }
        guard let selector = ServiceBackends.selector(svc), svc["spec"]["type"].string != "ExternalName" else {
            try await delete(existing)
            return
        }
        let uid = svc["metadata"]["uid"].string ?? ""
        // Slices of an earlier Service of the same name are not ours to reuse.
        let (mine, stale) = existing.reduce(into: ([JSON](), [JSON]())) { acc, s in
            if Self.ownerUID(s) == uid { acc.0.append(s) } else { acc.1.append(s) }
        }
        let plan = reconcile(
            svc: svc, desired: desiredEndpoints(svc, selector: selector, namespace: namespace), existing: mine)
        // Upstream's order: endpoints appear in their new slice before they leave the old one, so none is
        // ever missing; and a create that fails (a slice the cache did not show yet) stops the rest.
        for s in plan.create { try await client.create(Registry.endpointSlices, s) }
        for s in plan.update { try await client.update(Registry.endpointSlices, s) }
        try await delete(stale + plan.delete)
    }

    /// Desired endpoints grouped by their port set (the key is the ports' JSON text, sorted).
    struct Group {
        var ports: [EndpointPort]
        /// Endpoint objects by pod UID.
        var endpoints: [String: JSON]
    }

    func desiredEndpoints(_ svc: JSON, selector: [String: String], namespace: String) -> [String: Group] {
        let publishNotReady = svc["spec"]["publishNotReadyAddresses"].bool == true
        let svcPorts = svc["spec"]["ports"].array ?? []
        let svcName = svc["metadata"]["name"].string ?? ""
        var groups: [String: Group] = [:]
        for pod in ServiceBackends.pods(in: namespace, selectedBy: selector, from: pods)
        where ServiceBackends.eligible(pod, includeTerminating: true) {
            // The slices are IPv4 (the cluster is single-stack): other addresses are skipped.
            guard let ip = ServiceBackends.podIP(pod), ServiceBackends.ipv4(ip) != nil else { continue }
            let serving = publishNotReady || Objects.isReady(pod)
            let terminating = !pod["metadata"]["deletionTimestamp"].isNull
            // Never ready while terminating, unless the Service publishes not-ready addresses.
            let ready = publishNotReady || (serving && !terminating)
            var ep: JSON = [
                "addresses": [.string(ip)],
                "conditions": ["ready": .bool(ready), "serving": .bool(serving), "terminating": .bool(terminating)],
                "targetRef": ServiceBackends.targetRef(pod),
            ]
            if let node = pod["spec"]["nodeName"].string, !node.isEmpty {
                ep["nodeName"] = .string(node)
                if let zone = nodes.get(node)?["metadata"]["labels"][Self.zoneLabel].string {
                    ep["zone"] = .string(zone)
                }
            }
            if let hostname = ServiceBackends.hostname(pod, serviceName: svcName) { ep["hostname"] = .string(hostname) }
            let ports = svcPorts.compactMap { sp in
                ServiceBackends.resolvePort(pod, sp).map { EndpointPort(sp, port: $0) }
            }.sorted()
            let key = JSON.array(ports.map(Self.sliceJSON)).text
            groups[key, default: Group(ports: ports, endpoints: [:])].endpoints[pod["metadata"]["uid"].string ?? ip] =
                ep
        }
        return groups
    }

    struct Plan {
        var create: [JSON] = []
        var update: [JSON] = []
        var delete: [JSON] = []
    }

    /// Maps desired endpoints onto existing slices (sorted by name) with as few writes as possible.
    func reconcile(svc: JSON, desired: [String: Group], existing: [JSON]) -> Plan {
        var plan = Plan()
        var remaining = desired.mapValues { $0.endpoints }
        // Each existing slice keeps the endpoints it has that are still wanted, in its order, refreshed.
        var kept: [(slice: JSON, group: String, endpoints: [JSON])] = []
        for s in existing {
            let group = JSON.array(s["ports"].array ?? []).text
            guard desired[group] != nil else { plan.delete.append(s); continue }
            var eps: [JSON] = []
            for old in s["endpoints"].array ?? [] {
                let id = old["targetRef"]["uid"].string ?? old["addresses"][0].string ?? ""
                if let new = remaining[group]?.removeValue(forKey: id) { eps.append(new) }
            }
            kept.append((s, group, eps))
        }
        // New endpoints fill free room first (in IP order), then new slices.
        var fresh: [(group: String, endpoints: [JSON])] = []
        for group in remaining.keys.sorted() {
            var eps = remaining[group]!.values.sorted(by: ServiceBackends.ipLess)[...]
            for i in kept.indices where kept[i].group == group && !eps.isEmpty {
                let room = Self.maxEndpointsPerSlice - kept[i].endpoints.count
                guard room > 0 else { continue }
                kept[i].endpoints += eps.prefix(room)
                eps = eps.dropFirst(room)
            }
            while !eps.isEmpty {
                fresh.append((group, Array(eps.prefix(Self.maxEndpointsPerSlice))))
                eps = eps.dropFirst(Self.maxEndpointsPerSlice)
            }
        }
        // Slices left empty go, except that a Service without endpoints keeps one placeholder.
        let anyEndpoints = desired.values.contains { !$0.endpoints.isEmpty }
        var placeholderKept = false
        for k in kept {
            if k.endpoints.isEmpty {
                if !anyEndpoints && !placeholderKept {
                    placeholderKept = true
                    if let s = refreshed(k.slice, svc: svc, ports: [], endpoints: []) { plan.update.append(s) }
                } else {
                    plan.delete.append(k.slice)
                }
                continue
            }
            if let s = refreshed(k.slice, svc: svc, ports: desired[k.group]!.ports, endpoints: k.endpoints) {
                plan.update.append(s)
            }
        }
        if !anyEndpoints && !placeholderKept {
            if let reuse = plan.delete.first {
                plan.delete.removeFirst()
                if let s = refreshed(reuse, svc: svc, ports: [], endpoints: []) { plan.update.append(s) }
            } else {
                fresh.append(("", []))
            }
        }
        var taken = Set(existing.compactMap { $0["metadata"]["name"].string })
        var index = 0
        for f in fresh {
            var name: String
            repeat {
                name = Self.sliceName(svc, index: index)
                index += 1
            } while taken.contains(name)
            taken.insert(name)
            var s: JSON = [
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": ["name": .string(name), "namespace": svc["metadata"]["namespace"]],
                "addressType": "IPv4",
            ]
            s = refreshed(
                s, svc: svc, ports: f.group.isEmpty ? [] : desired[f.group]!.ports, endpoints: f.endpoints, force: true)!
            plan.create.append(s)
        }
        return plan
    }

    /// `slice` with the given content and the Service's labels and owner; nil when nothing changed.
    func refreshed(_ slice: JSON, svc: JSON, ports: [EndpointPort], endpoints: [JSON], force: Bool = false) -> JSON? {
        var s = slice
        var labels = svc["metadata"]["labels"].stringMap
        labels[Self.serviceNameLabel] = svc["metadata"]["name"].string ?? ""
        labels[Self.managedByLabel] = Self.managedBy
        if ServiceBackends.hasClusterIP(svc) {
            labels[EndpointsController.headlessLabel] = nil
        } else {
            labels[EndpointsController.headlessLabel] = ""
        }
        s["metadata"]["labels"] = .strings(labels)
        s["metadata"]["ownerReferences"] = [
            [
                "apiVersion": "v1", "kind": "Service", "name": svc["metadata"]["name"], "uid": svc["metadata"]["uid"],
                "controller": true, "blockOwnerDeletion": true,
            ]
        ]
        s["addressType"] = "IPv4"
        s["endpoints"] = .array(endpoints)
        s["ports"] = .array(ports.map(Self.sliceJSON))
        if !force && Self.content(s) == Self.content(slice) { return nil }
        return s
    }

    /// The parts of a slice this controller owns (missing lists count as empty).
    static func content(_ s: JSON) -> JSON {
        [
            "labels": s["metadata"]["labels"], "owners": s["metadata"]["ownerReferences"], "type": s["addressType"],
            "endpoints": .array(s["endpoints"].array ?? []), "ports": .array(s["ports"].array ?? []),
        ]
    }

    /// discovery/v1 ports always carry a name ("" when the Service port has none), as upstream writes them.
    static func sliceJSON(_ p: EndpointPort) -> JSON {
        var j = p.json
        j["name"] = .string(p.name)
        return j
    }

    static func ownerUID(_ slice: JSON) -> String? { Objects.controllerUID(slice).first }

    /// "<service>-<5 letters>": a stable hash of the Service's UID and the slice's index.
    static func sliceName(_ svc: JSON, index: Int) -> String {
        var h = Objects.fnv64("\(svc["metadata"]["uid"].string ?? "")/\(index)".utf8)
        let alphabet = Objects.safeAlphabet
        var suffix = ""
        for _ in 0..<5 {
            suffix.append(alphabet[Int(h % UInt64(alphabet.count))])
            h /= UInt64(alphabet.count)
        }
        return (svc["metadata"]["name"].string ?? "") + "-" + suffix
    }

    private func delete(_ slices: [JSON]) async throws {
        for s in slices {
            do {
                try await client.delete(
                    Registry.endpointSlices, namespace: s["metadata"]["namespace"].string,
                    name: s["metadata"]["name"].string ?? "", uid: s["metadata"]["uid"].string)
            } catch let e as APIError where e.code == 404 {}
        }
    }

    /// default/kubernetes's slice, named like the Service and without an owner, as upstream's API server
    /// writes it.
    func syncAPIServerSlice() async throws {
        let (ip, port) = apiServerAddress
        var desired: JSON = [
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": [
                "name": "kubernetes", "namespace": "default", "labels": .strings([Self.serviceNameLabel: "kubernetes"]),
            ],
            "addressType": "IPv4",
            "endpoints": [["addresses": [.string(ip)], "conditions": ["ready": true]]],
            "ports": [["name": "https", "port": .int(port), "protocol": "TCP"]],
        ]
        guard var current = slices.get(namespace: "default", name: "kubernetes") else {
            try await client.create(Registry.endpointSlices, desired)
            return
        }
        desired["metadata"]["ownerReferences"] = current["metadata"]["ownerReferences"]
        if Self.content(current) == Self.content(desired) { return }
        current["metadata"]["labels"] = desired["metadata"]["labels"]
        for f in ["addressType", "endpoints", "ports"] { current[f] = desired[f] }
        try await client.update(Registry.endpointSlices, current)
    }
}

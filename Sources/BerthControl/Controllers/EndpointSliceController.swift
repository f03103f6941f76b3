import BerthAPI
import BerthKube
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
    let client: any KubeClient
    let services: Informer<CoreV1.Service>
    let pods: Informer<CoreV1.Pod>
    let slices: Informer<DiscoveryV1.EndpointSlice>
    let nodes: Informer<CoreV1.Node>
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
        client = ctx.client("endpointslice-controller")
        logger = ctx.logger
        workers = ctx.config.workers
        apiServerAddress = ctx.facts.address
        services = ctx.informers.informer(CoreV1.Service.self)
        pods = ctx.informers.informer(CoreV1.Pod.self)
        slices = ctx.informers.informer(DiscoveryV1.EndpointSlice.self)
        nodes = ctx.informers.informer(CoreV1.Node.self)
        ServiceBackends.addIndexes(services: services, pods: pods)
        slices.addIndex(Self.serviceIndex) { slice in
            let labels = slice.metadata.labels
            guard labels[Self.managedByLabel] == Self.managedBy, let svc = labels[Self.serviceNameLabel] else {
                return []
            }
            return [(slice.metadata.namespace ?? "") + "/" + svc]
        }
        let (queue, services) = (self.queue, self.services)
        // Handlers must not wait: each key is added by a task of its own.
        services.onChange { event in
            let key = event.object.cacheKey
            Task { await queue.add(key) }
        }
        pods.onChange { event in
            for key in ServiceBackends.servicesAffected(by: event, services: services) {
                Task { await queue.add(key) }
            }
        }
        // Our own writes need no second look; a slice someone deleted is made again.
        slices.onChange { event in
            guard case .deleted(let slice) = event, let svc = slice.metadata.labels[Self.serviceNameLabel] else {
                return
            }
            let key = (slice.metadata.namespace ?? "") + "/" + svc
            Task { await queue.add(key) }
        }
        // Zones come from nodes: a node appearing or changing zone refreshes every selector Service
        // (rare, and cheaper than tracking which Services have pods on which node).
        nodes.onChange { event in
            let changed: Bool
            switch event {
            case .added(let node): changed = node.metadata.labels[Self.zoneLabel] != nil
            case .updated(let old, let new):
                changed = old.metadata.labels[Self.zoneLabel] != new.metadata.labels[Self.zoneLabel]
            case .deleted: changed = false
            }
            guard changed else { return }
            for svc in services.list() where ServiceBackends.selector(svc) != nil {
                let key = svc.cacheKey
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
            .sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
        guard let svc = services.get(key) else {
            // The garbage collector removes owned slices too; whichever is first wins.
            try await delete(existing)
            return
        }
        if key == "default/kubernetes" {
            try await syncAPIServerSlice()
            return
        }
        guard let selector = ServiceBackends.selector(svc), svc.spec.type != .externalName else {
            try await delete(existing)
            return
        }
        let uid = svc.metadata.uid ?? ""
        // Slices of an earlier Service of the same name are not ours to reuse.
        let mine = existing.filter { $0.controllerRef?.uid == uid }
        let stale = existing.filter { $0.controllerRef?.uid != uid }
        let plan = reconcile(
            svc: svc, desired: desiredEndpoints(svc, selector: selector, namespace: namespace), existing: mine)
        // Upstream's order: endpoints appear in their new slice before they leave the old one, so none is
        // ever missing; and a create that fails (a slice the cache did not show yet) stops the rest.
        for slice in plan.create { _ = try await client.create(slice) }
        for slice in plan.update { _ = try await client.update(slice) }
        try await delete(stale + plan.delete)
    }

    /// Desired endpoints grouped by their port set (keyed by ``groupKey(_:)``).
    struct Group {
        var ports: [EndpointPort]
        /// Endpoints by pod UID.
        var endpoints: [String: DiscoveryV1.Endpoint]
    }

    /// The key of a port set: the ports' JSON text, as written in a slice. Groups are visited in this
    /// key's order, which decides which group a new slice (and so its name's index) goes to first.
    static func groupKey(_ ports: [DiscoveryV1.EndpointPort]) -> String {
        JSON.array(ports.map { $0.kubeJSON() }).text
    }

    func desiredEndpoints(_ svc: CoreV1.Service, selector: [String: String], namespace: String) -> [String: Group] {
        let publishNotReady = svc.spec.publishNotReadyAddresses == true
        let svcName = svc.metadata.name ?? ""
        var groups: [String: Group] = [:]
        for pod in ServiceBackends.pods(in: namespace, selectedBy: selector, from: pods)
        where ServiceBackends.eligible(pod, includeTerminating: true) {
            // The slices are IPv4 (the cluster is single-stack): other addresses are skipped.
            guard let ip = ServiceBackends.podIP(pod), ServiceBackends.ipv4(ip) != nil else { continue }
            let serving = publishNotReady || pod.isReady
            let terminating = pod.isTerminating
            // Never ready while terminating, unless the Service publishes not-ready addresses.
            let ready = publishNotReady || (serving && !terminating)
            var endpoint = DiscoveryV1.Endpoint(
                addresses: [ip],
                conditions: DiscoveryV1.EndpointConditions(ready: ready, serving: serving, terminating: terminating),
                targetRef: ServiceBackends.targetRef(pod))
            if let node = pod.spec.nodeName, !node.isEmpty {
                endpoint.nodeName = node
                endpoint.zone = nodes.get(node)?.metadata.labels[Self.zoneLabel]
            }
            endpoint.hostname = ServiceBackends.hostname(pod, serviceName: svcName)
            let ports = svc.spec.ports.compactMap { servicePort in
                ServiceBackends.resolvePort(pod, servicePort).map { EndpointPort(servicePort, port: $0) }
            }.sorted()
            groups[Self.groupKey(ports.map(\.discovery)), default: Group(ports: ports, endpoints: [:])]
                .endpoints[pod.metadata.uid ?? ip] = endpoint
        }
        return groups
    }

    struct Plan {
        var create: [DiscoveryV1.EndpointSlice] = []
        var update: [DiscoveryV1.EndpointSlice] = []
        var delete: [DiscoveryV1.EndpointSlice] = []
    }

    /// Maps desired endpoints onto existing slices (sorted by name) with as few writes as possible.
    func reconcile(
        svc: CoreV1.Service, desired: [String: Group], existing: [DiscoveryV1.EndpointSlice]
    ) -> Plan {
        var plan = Plan()
        var remaining = desired.mapValues { $0.endpoints }
        // Each existing slice keeps the endpoints it has that are still wanted, in its order, refreshed.
        var kept: [(slice: DiscoveryV1.EndpointSlice, group: String, endpoints: [DiscoveryV1.Endpoint])] = []
        for slice in existing {
            let group = Self.groupKey(slice.ports)
            guard desired[group] != nil else {
                plan.delete.append(slice)
                continue
            }
            var endpoints: [DiscoveryV1.Endpoint] = []
            for old in slice.endpoints {
                let id = old.targetRef?.uid ?? old.addresses.first ?? ""
                if let new = remaining[group]?.removeValue(forKey: id) { endpoints.append(new) }
            }
            kept.append((slice, group, endpoints))
        }
        // New endpoints fill free room first (in IP order), then new slices.
        var fresh: [(group: String, endpoints: [DiscoveryV1.Endpoint])] = []
        for group in remaining.keys.sorted() {
            var endpoints = remaining[group]!.values.sorted(by: ServiceBackends.ipLess)[...]
            for i in kept.indices where kept[i].group == group && !endpoints.isEmpty {
                let room = Self.maxEndpointsPerSlice - kept[i].endpoints.count
                guard room > 0 else { continue }
                kept[i].endpoints += endpoints.prefix(room)
                endpoints = endpoints.dropFirst(room)
            }
            while !endpoints.isEmpty {
                fresh.append((group, Array(endpoints.prefix(Self.maxEndpointsPerSlice))))
                endpoints = endpoints.dropFirst(Self.maxEndpointsPerSlice)
            }
        }
        // Slices left empty go, except that a Service without endpoints keeps one placeholder.
        let anyEndpoints = desired.values.contains { !$0.endpoints.isEmpty }
        var placeholderKept = false
        for k in kept {
            if k.endpoints.isEmpty {
                if !anyEndpoints && !placeholderKept {
                    placeholderKept = true
                    if let slice = refreshed(k.slice, svc: svc, ports: [], endpoints: []) { plan.update.append(slice) }
                } else {
                    plan.delete.append(k.slice)
                }
                continue
            }
            if let slice = refreshed(k.slice, svc: svc, ports: desired[k.group]!.ports, endpoints: k.endpoints) {
                plan.update.append(slice)
            }
        }
        if !anyEndpoints && !placeholderKept {
            if let reuse = plan.delete.first {
                plan.delete.removeFirst()
                if let slice = refreshed(reuse, svc: svc, ports: [], endpoints: []) { plan.update.append(slice) }
            } else {
                fresh.append(("", []))
            }
        }
        var taken = Set(existing.compactMap(\.metadata.name))
        var index = 0
        for f in fresh {
            var name: String
            repeat {
                name = Self.sliceName(svc, index: index)
                index += 1
            } while taken.contains(name)
            taken.insert(name)
            var slice = DiscoveryV1.EndpointSlice()
            slice.metadata.name = name
            slice.metadata.namespace = svc.metadata.namespace
            slice.addressType = "IPv4"
            slice = refreshed(
                slice, svc: svc, ports: f.group.isEmpty ? [] : desired[f.group]!.ports, endpoints: f.endpoints,
                force: true)!
            plan.create.append(slice)
        }
        return plan
    }

    /// `slice` with the given content and the Service's labels and owner; nil when nothing changed.
    func refreshed(
        _ slice: DiscoveryV1.EndpointSlice, svc: CoreV1.Service, ports: [EndpointPort],
        endpoints: [DiscoveryV1.Endpoint], force: Bool = false
    ) -> DiscoveryV1.EndpointSlice? {
        var s = slice
        var labels = svc.metadata.labels
        labels[Self.serviceNameLabel] = svc.metadata.name ?? ""
        labels[Self.managedByLabel] = Self.managedBy
        labels[EndpointsController.headlessLabel] = ServiceBackends.hasClusterIP(svc) ? nil : ""
        s.metadata.labels = labels
        s.metadata.ownerReferences = [svc.controllerOwnerReference]
        s.addressType = "IPv4"
        s.endpoints = endpoints
        s.ports = ports.map(\.discovery)
        if !force && Content(s) == Content(slice) { return nil }
        return s
    }

    /// The parts of a slice this controller owns.
    struct Content: Equatable {
        var labels: [String: String]
        var owners: [MetaV1.OwnerReference]
        var addressType: String
        var endpoints: [DiscoveryV1.Endpoint]
        var ports: [DiscoveryV1.EndpointPort]

        init(_ slice: DiscoveryV1.EndpointSlice) {
            labels = slice.metadata.labels
            owners = slice.metadata.ownerReferences
            addressType = slice.addressType
            endpoints = slice.endpoints
            ports = slice.ports
        }
    }

    /// "<service>-<5 letters>": a stable hash of the Service's UID and the slice's index.
    static func sliceName(_ svc: CoreV1.Service, index: Int) -> String {
        var h = Objects.fnv64("\(svc.metadata.uid ?? "")/\(index)".utf8)
        let alphabet = Objects.safeAlphabet
        var suffix = ""
        for _ in 0..<5 {
            suffix.append(alphabet[Int(h % UInt64(alphabet.count))])
            h /= UInt64(alphabet.count)
        }
        return (svc.metadata.name ?? "") + "-" + suffix
    }

    private func delete(_ slices: [DiscoveryV1.EndpointSlice]) async throws {
        for slice in slices {
            do {
                try await client.delete(
                    DiscoveryV1.EndpointSlice.self, namespace: slice.metadata.namespace,
                    name: slice.metadata.name ?? "", uid: slice.metadata.uid)
            } catch let e as APIError where e.code == 404 {}
        }
    }

    /// default/kubernetes's slice, named like the Service and without an owner, as upstream's API server
    /// writes it.
    func syncAPIServerSlice() async throws {
        let (ip, port) = apiServerAddress
        var desired = DiscoveryV1.EndpointSlice()
        desired.metadata.name = "kubernetes"
        desired.metadata.namespace = "default"
        desired.metadata.labels = [Self.serviceNameLabel: "kubernetes"]
        desired.addressType = "IPv4"
        desired.endpoints = [
            DiscoveryV1.Endpoint(addresses: [ip], conditions: DiscoveryV1.EndpointConditions(ready: true))
        ]
        desired.ports = [DiscoveryV1.EndpointPort(name: "https", protocol: .tcp, port: Int32(port))]
        guard var current = slices.get(namespace: "default", name: "kubernetes") else {
            _ = try await client.create(desired)
            return
        }
        desired.metadata.ownerReferences = current.metadata.ownerReferences
        if Content(current) == Content(desired) { return }
        current.metadata.labels = desired.metadata.labels
        current.addressType = desired.addressType
        current.endpoints = desired.endpoints
        current.ports = desired.ports
        _ = try await client.update(current)
    }
}

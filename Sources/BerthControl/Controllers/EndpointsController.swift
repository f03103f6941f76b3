import BerthAPI
import BerthKube
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
    let client: any KubeClient
    let services: Informer<CoreV1.Service>
    let pods: Informer<CoreV1.Pod>
    let endpoints: Informer<CoreV1.Endpoints>
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
        client = ctx.client("endpoint-controller")
        logger = ctx.logger
        workers = ctx.config.workers
        apiServerAddress = ctx.facts.address
        services = ctx.informers.informer(CoreV1.Service.self)
        pods = ctx.informers.informer(CoreV1.Pod.self)
        endpoints = ctx.informers.informer(CoreV1.Endpoints.self)
        ServiceBackends.addIndexes(services: services, pods: pods)
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
        // Our own writes need no second look; a deleted Endpoints of a live Service is written again.
        endpoints.onChange { event in
            if case .deleted(let gone) = event {
                let key = gone.cacheKey
                Task { await queue.add(key) }
            }
        }
    }

    func run() async {
        // Endpoints whose Service went away while no controller ran: a sync of their key deletes them.
        for leftover in endpoints.list() where leftover.metadata.annotations[Self.leaderAnnotation] == nil {
            await queue.add(leftover.cacheKey)
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
            do {
                try await client.delete(CoreV1.Endpoints.self, namespace: namespace, name: name)
            } catch let e as APIError where e.code == 404 {}
            return
        }
        let desired: CoreV1.Endpoints
        if key == "default/kubernetes" {
            desired = apiServerEndpoints()
        } else {
            guard let selector = ServiceBackends.selector(svc), svc.spec.type != .externalName else { return }
            desired = endpointsObject(for: svc, selector: selector)
        }
        try await write(desired, namespace: namespace, name: name)
    }

    /// Creates or updates the Endpoints when its labels, subsets or capacity annotation differ.
    private func write(_ desired: CoreV1.Endpoints, namespace: String, name: String) async throws {
        guard var current = endpoints.get(namespace: namespace, name: name) else {
            var fresh = desired
            fresh.metadata.name = name
            fresh.metadata.namespace = namespace
            _ = try await client.create(fresh)
            return
        }
        let capacity = desired.metadata.annotations[Self.overCapacityAnnotation]
        let same =
            current.subsets == desired.subsets && current.metadata.labels == desired.metadata.labels
            && current.metadata.annotations[Self.overCapacityAnnotation] == capacity
        if same { return }
        current.metadata.labels = desired.metadata.labels
        current.metadata.annotations[Self.overCapacityAnnotation] = capacity
        current.subsets = desired.subsets
        _ = try await client.update(current)
    }

    /// default/kubernetes: this API server, as upstream's endpoint reconciler publishes it. The skip-mirror
    /// label keeps an EndpointSlice mirroring controller away (the slice is written directly).
    func apiServerEndpoints() -> CoreV1.Endpoints {
        let (ip, port) = apiServerAddress
        var endpoints = CoreV1.Endpoints()
        endpoints.metadata.labels = [Self.skipMirrorLabel: "true"]
        endpoints.subsets = [
            CoreV1.EndpointSubset(
                addresses: [CoreV1.EndpointAddress(ip: ip)],
                ports: [CoreV1.EndpointPort(name: "https", port: Int32(port), protocol: .tcp)])
        ]
        return endpoints
    }

    /// The Endpoints a selector Service should have now (metadata carries only labels and annotations).
    func endpointsObject(for svc: CoreV1.Service, selector: [String: String]) -> CoreV1.Endpoints {
        let publishNotReady = svc.spec.publishNotReadyAddresses == true
        let headless = !ServiceBackends.hasClusterIP(svc)
        let svcName = svc.metadata.name ?? ""
        // Port → the addresses (by pod) offering it, each with its readiness.
        var byPort: [EndpointPort: [String: (address: CoreV1.EndpointAddress, ready: Bool)]] = [:]
        for pod in ServiceBackends.pods(in: svc.metadata.namespace ?? "", selectedBy: selector, from: pods)
        where ServiceBackends.eligible(pod, includeTerminating: publishNotReady) {
            guard let ip = ServiceBackends.podIP(pod) else { continue }
            var address = CoreV1.EndpointAddress(ip: ip, targetRef: ServiceBackends.targetRef(pod))
            if let node = pod.spec.nodeName, !node.isEmpty { address.nodeName = node }
            address.hostname = ServiceBackends.hostname(pod, serviceName: svcName)
            let ready = publishNotReady || pod.isReady
            let id = ip + "/" + (pod.metadata.uid ?? "")
            if svc.spec.ports.isEmpty {
                // A headless Service may have no ports: its addresses still count (a sentinel port).
                if headless { byPort[.none, default: [:]][id] = (address, ready) }
                continue
            }
            for servicePort in svc.spec.ports {
                guard let port = ServiceBackends.resolvePort(pod, servicePort) else { continue }
                byPort[EndpointPort(servicePort, port: port), default: [:]][id] = (address, ready)
            }
        }
        var subsets = Self.repack(byPort)
        let truncated = subsets.reduce(0, { $0 + $1.count }) > Self.maxCapacity
        if truncated { subsets = Self.truncate(subsets, to: Self.maxCapacity) }
        var endpoints = CoreV1.Endpoints()
        endpoints.metadata.labels = svc.metadata.labels
        endpoints.metadata.labels[Self.headlessLabel] = headless ? "" : nil
        // The EndpointSlice controller writes this Service's slices: the mirroring controller keeps away.
        endpoints.metadata.labels[Self.skipMirrorLabel] = "true"
        if truncated { endpoints.metadata.annotations = [Self.overCapacityAnnotation: "truncated"] }
        endpoints.subsets = subsets.map(\.subset)
        return endpoints
    }

    /// A subset while it is built: addresses (ready and not) sharing one set of ports.
    struct Subset {
        var ready: [CoreV1.EndpointAddress]
        var notReady: [CoreV1.EndpointAddress]
        var ports: [EndpointPort]
        var count: Int { ready.count + notReady.count }
        var subset: CoreV1.EndpointSubset {
            CoreV1.EndpointSubset(
                addresses: ready, notReadyAddresses: notReady, ports: ports.filter { $0 != .none }.map(\.core))
        }
    }

    /// Upstream's RepackSubsets: ports offered by exactly the same addresses share a subset. Addresses are
    /// sorted by IP, ports by name and number, subsets by their first address, so equal input gives equal
    /// output and unchanged Services are never rewritten.
    static func repack(_ byPort: [EndpointPort: [String: (address: CoreV1.EndpointAddress, ready: Bool)]]) -> [Subset] {
        var groups:
            [String: (addresses: [String: (address: CoreV1.EndpointAddress, ready: Bool)], ports: [EndpointPort])] =
                [:]
        for (port, addrs) in byPort {
            let key = addrs.map { $0.key + ($0.value.ready ? "+" : "-") }.sorted().joined(separator: ",")
            groups[key, default: (addrs, [])].ports.append(port)
        }
        var subsets: [Subset] = groups.values.map { group in
            let sorted = group.addresses.sorted { ServiceBackends.ipLess($0.value.address, $1.value.address) }
            return Subset(
                ready: sorted.filter(\.value.ready).map(\.value.address),
                notReady: sorted.filter { !$0.value.ready }.map(\.value.address),
                ports: group.ports.sorted())
        }
        subsets.sort { a, b in
            let (x, y) = (a.ready.first ?? a.notReady.first, b.ready.first ?? b.notReady.first)
            if x != y { return ServiceBackends.ipLess(x ?? .init(), y ?? .init()) }
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

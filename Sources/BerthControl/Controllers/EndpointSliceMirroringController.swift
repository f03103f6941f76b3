import BerthAPI
import BerthKube
import Foundation
import Logging

/// The EndpointSlice mirroring controller (kube-controller-manager's endpointslicemirroring): the
/// Endpoints that users write themselves, for Services without a selector, are copied into
/// EndpointSlices — what the node agent programs Service rules from, and what cluster DNS reads — so a
/// selector-less Service pointing at hand-picked addresses works like any other.
///
/// Endpoints labelled `endpointslice.kubernetes.io/skip-mirror: "true"` (everything the endpoints
/// controller writes: the EndpointSlice controller covers those Services) or carrying a leader-election
/// record are not mirrored, nor are Endpoints whose Service is missing or has a selector; their mirrored
/// slices are deleted. Each distinct set of ports (and address family) becomes one slice, owned by the
/// Endpoints (so the garbage collector removes it with them), with the Endpoints' labels and
/// annotations, and at most 1000 addresses per subset, as upstream; skipped addresses are reported
/// in events on the Endpoints.
struct EndpointSliceMirroringController: ControlLoop {
    let name = "endpointslice-mirroring-controller"
    let queue = WorkQueue(name: "endpointslicemirroring")
    let client: any KubeClient
    let services: Informer<CoreV1.Service>
    let endpoints: Informer<CoreV1.Endpoints>
    let slices: Informer<DiscoveryV1.EndpointSlice>
    let events: ComponentRecorder
    let logger: Logger
    let workers: Int

    static let managedBy = "endpointslicemirroring-controller.k8s.io"
    static let maxEndpointsPerSubset = 1000
    /// Mirrored slices by "namespace/endpoints-name".
    static let endpointsIndex = "epsm-endpoints"
    /// Annotations that describe the Endpoints object itself, not its addresses: not copied.
    static let uncopiedAnnotations: Set<String> = [
        "endpoints.kubernetes.io/last-change-trigger-time", "kubectl.kubernetes.io/last-applied-configuration",
    ]

    init(_ ctx: ControllerContext) {
        client = ctx.client("endpointslicemirroring-controller")
        events = ctx.events.component("endpointslicemirroring-controller")
        logger = ctx.logger
        workers = ctx.config.workers
        services = ctx.informers.informer(CoreV1.Service.self)
        endpoints = ctx.informers.informer(CoreV1.Endpoints.self)
        slices = ctx.informers.informer(DiscoveryV1.EndpointSlice.self)
        slices.addIndex(Self.endpointsIndex) { Self.mirroredKey($0).map { [$0] } ?? [] }
        let queue = self.queue
        // Handlers must not wait: each key is added by a task of its own.
        endpoints.onChange { event in
            let relevant: Bool
            switch event {
            case .added(let e), .deleted(let e): relevant = Self.shouldMirror(e)
            case .updated(let old, let new): relevant = Self.shouldMirror(old) || Self.shouldMirror(new)
            }
            guard relevant else { return }
            let key = event.object.cacheKey
            Task { await queue.add(key) }
        }
        // A Service matters when it appears or goes without a selector, or gains or loses one.
        services.onChange { event in
            let relevant: Bool
            switch event {
            case .added(let s), .deleted(let s): relevant = s.spec.selector.isEmpty
            case .updated(let old, let new): relevant = old.spec.selector.isEmpty != new.spec.selector.isEmpty
            }
            guard relevant else { return }
            let key = event.object.cacheKey
            Task { await queue.add(key) }
        }
        // Someone else changing or deleting a mirrored slice: it is put right.
        slices.onChange { event in
            let touched: [DiscoveryV1.EndpointSlice]
            switch event {
            case .added(let s), .deleted(let s): touched = [s]
            case .updated(let old, let new): touched = [old, new]
            }
            for key in Set(touched.compactMap(Self.mirroredKey)) { Task { await queue.add(key) } }
        }
    }

    /// "namespace/endpoints-name" of a slice this controller mirrored; nil for any other slice.
    static func mirroredKey(_ slice: DiscoveryV1.EndpointSlice) -> String? {
        let labels = slice.metadata.labels
        guard labels[EndpointSliceController.managedByLabel] == managedBy,
            let name = labels[EndpointSliceController.serviceNameLabel]
        else { return nil }
        return (slice.metadata.namespace ?? "") + "/" + name
    }

    /// Upstream's shouldMirror (the Service is checked apart).
    static func shouldMirror(_ e: CoreV1.Endpoints) -> Bool {
        e.metadata.labels[EndpointsController.skipMirrorLabel] != "true"
            && e.metadata.annotations[EndpointsController.leaderAnnotation] == nil
    }

    func run() async {
        // Endpoints written while no controller ran, and slices whose Endpoints went meanwhile.
        for e in endpoints.list() where Self.shouldMirror(e) { await queue.add(e.cacheKey) }
        for key in Set(slices.list().compactMap(Self.mirroredKey)) { await queue.add(key) }
        let logger = self.logger
        await runWorkers(
            queue, count: workers, sync: { try await sync($0) },
            onError: { key, error in
                ServiceBackends.logSyncError(logger, controller: "endpointslicemirroring", key: key, error)
            })
    }

    func sync(_ key: String) async throws {
        let existing = slices.byIndex(Self.endpointsIndex, key)
            .sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
        guard let mirrored = endpoints.get(key), Self.shouldMirror(mirrored), let svc = services.get(key),
            svc.spec.selector.isEmpty
        else {
            try await delete(existing)
            return
        }
        let desired = Self.desiredSlices(mirrored)
        if desired.invalid > 0 {
            events.record(
                mirrored, type: "Warning", reason: "InvalidIPAddress",
                message: "Skipped \(desired.invalid) invalid IP addresses when mirroring to EndpointSlices")
        }
        if desired.skipped > desired.invalid {
            events.record(
                mirrored, type: "Warning", reason: "TooManyAddressesToMirror",
                message:
                    "A max of \(Self.maxEndpointsPerSubset) addresses can be mirrored to EndpointSlices per Endpoints subset. \(desired.skipped) addresses were skipped"
            )
        }
        let plan = Self.reconcile(mirrored, desired: desired.slices, existing: existing)
        // A deleted Endpoints (being finalized) gets no new slices.
        if mirrored.metadata.deletionTimestamp == nil {
            for slice in plan.create { _ = try await client.create(slice) }
        }
        for slice in plan.update { _ = try await client.update(slice) }
        try await delete(plan.delete)
    }

    /// One slice's worth of content: an address family and a set of ports, with its endpoints.
    struct DesiredSlice: Equatable {
        var addressType: String
        var ports: [DiscoveryV1.EndpointPort]
        var endpoints: [DiscoveryV1.Endpoint]
        /// Family and ports as text: slices with the same key hold the same kind of endpoints.
        var key: String { Self.key(addressType, ports) }
        static func key(_ addressType: String, _ ports: [DiscoveryV1.EndpointPort]) -> String {
            addressType + " " + JSON.array(ports.map { $0.kubeJSON() }).text
        }
    }

    /// The slices the Endpoints' subsets make (keyed and ordered by ``DesiredSlice/key``), and how
    /// many addresses were left out: all skipped, and those of them that were not IPs.
    static func desiredSlices(_ e: CoreV1.Endpoints) -> (slices: [DesiredSlice], skipped: Int, invalid: Int) {
        var byKey: [String: DesiredSlice] = [:]
        var seen: [String: Set<String>] = [:]
        var skipped = 0, invalid = 0
        for subset in e.subsets {
            let ports = subset.ports.map { p in
                DiscoveryV1.EndpointPort(
                    name: p.name ?? "", protocol: p.protocol ?? .tcp, port: p.port, appProtocol: p.appProtocol)
            }.sorted { ($0.name ?? "", $0.port ?? 0) < ($1.name ?? "", $1.port ?? 0) }
            var added = 0
            let total = subset.addresses.count + subset.notReadyAddresses.count
            let all = subset.addresses.map { ($0, true) } + subset.notReadyAddresses.map { ($0, false) }
            for (address, ready) in all {
                if added >= maxEndpointsPerSubset { break }
                guard let (ip, family) = normalized(address.ip) else {
                    invalid += 1
                    continue
                }
                added += 1
                var endpoint = DiscoveryV1.Endpoint(
                    addresses: [ip], conditions: DiscoveryV1.EndpointConditions(ready: ready),
                    targetRef: address.targetRef)
                endpoint.nodeName = address.nodeName
                if let hostname = address.hostname, !hostname.isEmpty { endpoint.hostname = hostname }
                let key = DesiredSlice.key(family, ports)
                let identity = endpoint.kubeJSON().text
                guard seen[key, default: []].insert(identity).inserted else { continue }
                byKey[key, default: DesiredSlice(addressType: family, ports: ports, endpoints: [])].endpoints
                    .append(endpoint)
            }
            skipped += total - added
        }
        // One slice per key holds at most as many endpoints as one subset may bring.
        let slices = byKey.keys.sorted().map { key -> DesiredSlice in
            var slice = byKey[key]!
            if slice.endpoints.count > maxEndpointsPerSubset {
                skipped += slice.endpoints.count - maxEndpointsPerSubset
                slice.endpoints = Array(slice.endpoints.prefix(maxEndpointsPerSubset))
            }
            return slice
        }
        return (slices, skipped, invalid)
    }

    /// The address in its canonical text and its family ("IPv4"/"IPv6"); nil when it is not an IP.
    static func normalized(_ text: String) -> (String, String)? {
        var v4 = in_addr()
        var v6 = in6_addr()
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if inet_pton(AF_INET, text, &v4) == 1, inet_ntop(AF_INET, &v4, &buffer, socklen_t(buffer.count)) != nil {
            return (Self.text(buffer), "IPv4")
        }
        if inet_pton(AF_INET6, text, &v6) == 1, inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) != nil {
            return (Self.text(buffer), "IPv6")
        }
        return nil
    }

    /// A NUL-terminated C string's text.
    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    struct Plan {
        var create: [DiscoveryV1.EndpointSlice] = []
        var update: [DiscoveryV1.EndpointSlice] = []
        var delete: [DiscoveryV1.EndpointSlice] = []
    }

    /// Each desired slice goes into the first existing slice of its key (rewritten only when it differs);
    /// other slices go, or are reused for new keys instead of creating while deleting, as upstream's
    /// recycling does.
    static func reconcile(_ e: CoreV1.Endpoints, desired: [DesiredSlice], existing: [DiscoveryV1.EndpointSlice])
        -> Plan
    {
        var plan = Plan()
        var byKey: [String: [DiscoveryV1.EndpointSlice]] = [:]
        for slice in existing { byKey[DesiredSlice.key(slice.addressType, slice.ports), default: []].append(slice) }
        var unplaced: [DesiredSlice] = []
        for want in desired {
            guard var current = byKey[want.key], !current.isEmpty else {
                unplaced.append(want)
                continue
            }
            let first = current.removeFirst()
            plan.delete += current
            byKey[want.key] = nil
            let refreshed = filled(first, from: e, with: want)
            if Content(refreshed) != Content(first) { plan.update.append(refreshed) }
        }
        plan.delete += byKey.keys.sorted().flatMap { byKey[$0]! }
        for want in unplaced {
            if !plan.delete.isEmpty {
                plan.update.append(filled(plan.delete.removeFirst(), from: e, with: want))
            } else {
                var fresh = DiscoveryV1.EndpointSlice()
                fresh.metadata.generateName = (e.metadata.name ?? "") + "-"
                fresh.metadata.namespace = e.metadata.namespace
                plan.create.append(filled(fresh, from: e, with: want))
            }
        }
        return plan
    }

    /// `slice` with the Endpoints' labels, annotations and ownership, and `content`.
    static func filled(_ slice: DiscoveryV1.EndpointSlice, from e: CoreV1.Endpoints, with content: DesiredSlice)
        -> DiscoveryV1.EndpointSlice
    {
        var s = slice
        var labels = e.metadata.labels
        labels[EndpointSliceController.serviceNameLabel] = e.metadata.name ?? ""
        labels[EndpointSliceController.managedByLabel] = managedBy
        s.metadata.labels = labels
        s.metadata.annotations = e.metadata.annotations.filter { !uncopiedAnnotations.contains($0.key) }
        s.metadata.ownerReferences = [e.controllerOwnerReference]
        s.addressType = content.addressType
        s.ports = content.ports
        s.endpoints = content.endpoints
        return s
    }

    /// What this controller writes in a slice.
    struct Content: Equatable {
        var labels: [String: String]
        var annotations: [String: String]
        var owners: [MetaV1.OwnerReference]
        var addressType: String
        var ports: [DiscoveryV1.EndpointPort]
        var endpoints: [DiscoveryV1.Endpoint]
        init(_ s: DiscoveryV1.EndpointSlice) {
            labels = s.metadata.labels
            annotations = s.metadata.annotations
            owners = s.metadata.ownerReferences
            addressType = s.addressType
            ports = s.ports
            endpoints = s.endpoints
        }
    }

    private func delete(_ gone: [DiscoveryV1.EndpointSlice]) async throws {
        for slice in gone {
            do {
                try await client.delete(
                    DiscoveryV1.EndpointSlice.self, namespace: slice.metadata.namespace,
                    name: slice.metadata.name ?? "", uid: slice.metadata.uid)
            } catch let e as APIError where e.code == 404 {}
        }
    }
}

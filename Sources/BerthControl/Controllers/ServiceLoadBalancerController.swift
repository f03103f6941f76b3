import BerthAPI
import BerthJSON
import BerthKube
import Logging

/// Gives LoadBalancer Services their external addresses on a cluster with no cloud (k3s's ServiceLB):
/// the InternalIPs of the Ready nodes, where every node's service proxy takes the Service's port on its
/// own address. A Service with a `loadBalancerClass` belongs to another implementation and is left
/// alone; one that stops being a LoadBalancer loses the addresses (as the cloud service controller
/// clears them).
struct ServiceLoadBalancerController: ControlLoop {
    let name = "service-lb-controller"
    let client: any KubeClient
    let services: Informer<CoreV1.Service>
    let nodes: Informer<CoreV1.Node>
    let queue = WorkQueue(name: "service-lb")
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("service-lb-controller")
        services = ctx.informers.informer(CoreV1.Service.self)
        nodes = ctx.informers.informer(CoreV1.Node.self)
        logger = ctx.logger
        let queue = self.queue
        let services = self.services
        services.onChange { event in
            guard case .deleted = event else {
                let service = event.object
                if service.spec.type == .loadBalancer || !service.status.loadBalancer.ingress.isEmpty {
                    Task { await queue.add(service.cacheKey) }
                }
                return
            }
        }
        // A node joining, leaving or changing readiness changes every LoadBalancer's addresses; the sync
        // of one that did not change costs a comparison.
        nodes.onChange { _ in
            let keys = services.list().filter { $0.spec.type == .loadBalancer }.map(\.cacheKey)
            Task { for key in keys { await queue.add(key) } }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 1, sync: sync,
            onError: { key, error in
                logger.debug("service-lb sync failed", metadata: ["service": "\(key)", "error": "\(error)"])
            })
    }

    /// The addresses a LoadBalancer Service gets: each Ready node's InternalIP, in order.
    static func ingressAddresses(_ nodes: [CoreV1.Node]) -> [String] {
        let ready = nodes.filter { node in
            node.metadata.deletionTimestamp == nil
                && node.status.conditions.contains { $0.type.rawValue == "Ready" && $0.status.rawValue == "True" }
        }
        let addresses = ready.compactMap { node in
            node.status.addresses.first(where: { $0.type.rawValue == "InternalIP" })?.address
        }
        return Array(Set(addresses)).sorted()
    }

    func sync(_ key: String) async throws {
        guard let service = services.get(key) else { return }
        let managed = service.spec.type == .loadBalancer && (service.spec.loadBalancerClass ?? "").isEmpty
        if !managed && service.spec.loadBalancerClass != nil { return }
        let wanted = managed ? Self.ingressAddresses(nodes.list()) : []
        let current = service.status.loadBalancer.ingress.compactMap(\.ip)
        guard current != wanted else { return }
        let ingress: [JSON] = wanted.map { ["ip": .string($0), "ipMode": "VIP"] }
        // A merge patch removes with null.
        let patch: JSON = ["status": ["loadBalancer": ["ingress": wanted.isEmpty ? .null : .array(ingress)]]]
        do {
            try await client.mergePatch(
                ResourceType.of(CoreV1.Service.self), namespace: service.metadata.namespace,
                name: service.metadata.name ?? "", patch, subresource: "status")
        } catch let error as APIError where error.code == 404 {}
    }
}

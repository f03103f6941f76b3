import BerthAPI
import BerthKube
import Logging

/// kube-controller-manager's resourcequota controller: each ResourceQuota's status is its hard limits
/// and what the namespace's objects use of them, counted again whenever the quota changes, a pod,
/// Service, ConfigMap or Secret of its namespace comes, changes or goes, and every 30 s for the rest
/// (the `count/<resource>.<group>` of other kinds). The admission charges creates as they come; this
/// is what gives back what deleted and finished objects used, and corrects what a create that was
/// charged but never stored took.
struct ResourceQuotaController: ControlLoop {
    typealias Quota = CoreV1.ResourceQuota

    let name = "resourcequota-controller"
    /// Upstream recounts every 5 minutes; objects it does not watch are counted here this often.
    static let resync: Duration = .seconds(30)
    let client: any KubeClient
    let quotas: Informer<Quota>
    let pods: Informer<CoreV1.Pod>
    let services: Informer<CoreV1.Service>
    let queue = WorkQueue(name: "resourcequota")
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("resourcequota-controller")
        quotas = ctx.informers.informer(Quota.self)
        pods = ctx.informers.informer(CoreV1.Pod.self)
        services = ctx.informers.informer(CoreV1.Service.self)
        logger = ctx.logger
        let (quotas, queue) = (self.quotas, self.queue)
        quotas.onChange { event in
            if case .deleted = event { return }
            let quota = event.object
            // Its own status write comes back here: only a quota whose status is not its spec's is news.
            if quota.status.hard != quota.spec.hard || quota.status.used.count != quota.spec.hard.count {
                Task { await queue.add(quota.cacheKey) }
            }
        }
        /// Every quota of the namespace an object changed in.
        let recount: @Sendable (String?) -> Void = { namespace in
            guard let namespace else { return }
            let keys = quotas.list(namespace: namespace).map(\.cacheKey)
            if keys.isEmpty { return }
            // The queue holds a key once: a burst of pod updates is one recount per quota.
            Task { for key in keys { await queue.add(key) } }
        }
        pods.onChange { recount($0.object.metadata.namespace) }
        services.onChange { recount($0.object.metadata.namespace) }
        for resource in [ResourceType.of(CoreV1.ConfigMap.self), ResourceType.of(CoreV1.Secret.self)] {
            ctx.informers.metadataInformer(resource).onChange { event in
                if case .updated = event { return }
                recount(event.object.metadata.namespace)
            }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("resource quota sync failed", metadata: ["quota": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ key: String) async throws {
        guard let quota = quotas.get(key), let namespace = quota.metadata.namespace,
            quota.metadata.deletionTimestamp == nil
        else { return }
        let used = try await usage(of: quota, namespace: namespace)
        var status = CoreV1.ResourceQuotaStatus(hard: quota.spec.hard)
        for name in quota.spec.hard.keys { status.used[name] = Quantity(used.text(name)) }
        if quota.status != status {
            var updated = quota
            updated.status = status
            // The resourceVersion is the precondition: an admission's charge in between comes back as
            // a conflict, and the queue counts again.
            _ = try await client.updateStatus(updated)
        }
        // One pending recount per quota (the kinds no informer watches change unseen).
        await queue.addSoon(key, after: Self.resync)
    }

    /// What the namespace's objects that the quota selects use of its hard resources.
    func usage(of quota: Quota, namespace: String) async throws -> ResourceAmounts {
        let names = Set(quota.spec.hard.keys)
        let selector = quota.kubeJSON()
        var used = ResourceAmounts()
        for resource in Registry.stored where resource.namespaced {
            let tracked = QuotaUsage.tracked(names, by: resource)
            if tracked.isEmpty { continue }
            for object in try await objects(resource, namespace: namespace)
            where QuotaUsage.quota(selector, selects: object, resource) {
                used.add(QuotaUsage.usage(of: object, resource).masked(tracked))
            }
        }
        return used
    }

    /// The namespace's objects of `resource`, as much of each as its usage depends on: pods and
    /// Services whole (from the informers), claims whole, any other kind only counted.
    func objects(_ resource: ResourceType, namespace: String) async throws -> [JSON] {
        if resource.group.isEmpty {
            switch resource.plural {
            case "pods": return pods.list(namespace: namespace).map { $0.kubeJSON() }
            case "services": return services.list(namespace: namespace).map { $0.kubeJSON() }
            case "persistentvolumeclaims":
                return try await client.list(CoreV1.PersistentVolumeClaim.self, namespace: namespace).map {
                    $0.kubeJSON()
                }
            default: break
            }
        }
        return try await client.listMetadata(resource, namespace: namespace).map { _ in JSON.object([:]) }
    }
}

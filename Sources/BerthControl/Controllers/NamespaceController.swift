import BerthAPI
import BerthKube
import Foundation
import Logging

/// Empties deleted namespaces, like upstream's namespace controller. `DELETE namespaces/x` only marks a
/// namespace Terminating (with `server.config.namespaceController`); this loop then deletes every
/// namespaced object in it through the API — pods gracefully, so a pod bound to a node is only marked
/// and its node agent finishes it — reports what is left in the namespace's status conditions, and once
/// nothing remains removes the "kubernetes" finalizer (namespaces/finalize), which deletes the namespace.
///
/// It runs again whenever something in a terminating namespace is deleted or marked, and every few
/// seconds while the namespace waits (a safety net, like upstream's requeue estimate). Of the contents it
/// watches and reads only metadata: the same metadata informers the garbage collector keeps, and
/// uncached metadata lists for what is left, since a cache that lags would finalize a namespace early.
struct NamespaceController: ControlLoop {
    let name = "namespace-controller"
    let client: any KubeClient
    let namespaces: Informer<CoreV1.Namespace>
    let queue = WorkQueue(name: "namespace")
    let logger: Logger
    let workers: Int
    /// How long a namespace with content left waits before it is looked at again without an event.
    let recheck: Duration = .seconds(5)

    /// Every served type whose objects live in a namespace.
    static var namespacedTypes: [ResourceType] { Registry.stored.filter(\.namespaced) }

    /// The built-in namespaced types and the custom resources served now (one version each: a
    /// definition's versions share their objects). Custom kinds have no informer here: what is left of
    /// them is seen by the recheck.
    static func namespacedTypes(_ client: any KubeClient) async throws -> [ResourceType] {
        var seen = Set<String>()
        let custom = try await client.customResourceTypes().filter {
            $0.namespaced && seen.insert($0.keyPrefix).inserted
        }
        return namespacedTypes + custom
    }

    init(_ ctx: ControllerContext) {
        client = ctx.client("namespace-controller")
        namespaces = ctx.informers.informer(CoreV1.Namespace.self)
        logger = ctx.logger
        workers = max(1, min(ctx.config.workers, 4))
        let queue = self.queue, namespaces = self.namespaces
        namespaces.onChange { event in
            if case .deleted = event { return }
            guard event.object.isTerminating, let name = event.object.metadata.name else { return }
            Task { await queue.add(name) }
        }
        for r in Self.namespacedTypes {
            ctx.informers.metadataInformer(r).onChange { event in
                // Content of a terminating namespace going away (or being marked): look again.
                switch event {
                case .added: return
                case .updated(let old, let new): if old.isTerminating || !new.isTerminating { return }
                case .deleted: break
                }
                guard let namespace = event.object.metadata.namespace,
                    namespaces.get(namespace: nil, name: namespace)?.isTerminating == true
                else { return }
                Task { await queue.add(namespace) }
            }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: workers, sync: sync,
            onError: { key, error in
                logger.debug("namespace sync failed", metadata: ["namespace": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ name: String) async throws {
        guard let namespace = try await client.get(CoreV1.Namespace.self, namespace: nil, name: name),
            namespace.isTerminating, namespace.spec.finalizers.contains(.kubernetes)
        else { return }
        var failures: [String] = []
        let types = try await Self.namespacedTypes(client)
        for r in types {
            for object in try await client.listMetadata(r, namespace: name) where !object.isTerminating {
                do {
                    // Default options: pods get their grace period; Background propagation for the rest.
                    try await client.delete(
                        r, namespace: name, name: object.metadata.name ?? "", gracePeriod: nil,
                        uid: object.metadata.uid, propagation: nil)
                } catch let e as APIError where e.code == 404 || e.code == 409 {
                    // Gone already (garbage collected with its owner), or replaced: the next pass sees it.
                } catch {
                    failures.append("\(Self.groupResource(r)): \(error)")
                }
            }
        }
        // What is left: pods their node agents are still stopping, objects waiting on finalizers.
        var remaining: [String: Int] = [:], finalizers: [String: Int] = [:]
        for r in types {
            let items = try await client.listMetadata(r, namespace: name)
            if !items.isEmpty { remaining[Self.groupResource(r)] = items.count }
            for object in items {
                for finalizer in object.metadata.finalizers { finalizers[finalizer, default: 0] += 1 }
            }
        }
        if remaining.isEmpty && failures.isEmpty {
            try await client.finalizeNamespace(name: name)
            logger.debug("namespace finalized", metadata: ["namespace": "\(name)"])
            return
        }
        try await report(namespace, remaining: remaining, finalizers: finalizers, failures: failures)
        queue.add(name, after: failures.isEmpty ? recheck : .seconds(1))
    }

    /// "pods." for core types, "deployments.apps" otherwise (upstream's messages).
    static func groupResource(_ r: ResourceType) -> String { r.plural + "." + r.group }

    /// Upstream's namespace deletion conditions, in its order, for what is left.
    static func deletionConditions(remaining: [String: Int], finalizers: [String: Int], failures: [String])
        -> [CoreV1.NamespaceCondition]
    {
        func condition(_ type: CoreV1.NamespaceConditionType, _ on: Bool, _ reason: String, _ message: String)
            -> CoreV1.NamespaceCondition
        {
            CoreV1.NamespaceCondition(type: type, status: on ? .true : .false, reason: reason, message: message)
        }
        let left = remaining.sorted { $0.key < $1.key }.map { "\($0.key) has \($0.value) resource instances" }
            .joined(separator: ", ")
        let held = finalizers.sorted { $0.key < $1.key }.map { "\($0.key) in \($0.value) resource instances" }
            .joined(separator: ", ")
        return [
            condition(.deletionDiscoveryFailure, false, "ResourcesDiscovered", "All resources successfully discovered"),
            condition(
                .deletionGVParsingFailure, false, "ParsedGroupVersions", "All legacy kube types successfully parsed"),
            failures.isEmpty
                ? condition(
                    .deletionContentFailure, false, "ContentDeleted",
                    "All content successfully deleted, may be waiting on finalization")
                : condition(
                    .deletionContentFailure, true, "ContentDeletionFailed",
                    "Failed to delete all resource types, \(failures.count) remaining: \(failures.joined(separator: ", "))"
                ),
            remaining.isEmpty
                ? condition(.contentRemaining, false, "ContentRemoved", "All content successfully removed")
                : condition(.contentRemaining, true, "SomeResourcesRemain", "Some resources are remaining: \(left)"),
            finalizers.isEmpty
                ? condition(
                    .finalizersRemaining, false, "ContentHasNoFinalizers", "All content-preserving finalizers finished")
                : condition(
                    .finalizersRemaining, true, "SomeFinalizersRemain",
                    "Some content in the namespace has finalizers remaining: \(held)"),
        ]
    }

    /// Writes the deletion conditions into the namespace's status, only when they change. A condition
    /// keeps its lastTransitionTime while its status stays the same.
    func report(_ namespace: CoreV1.Namespace, remaining: [String: Int], finalizers: [String: Int], failures: [String])
        async throws
    {
        let wanted = Self.deletionConditions(remaining: remaining, finalizers: finalizers, failures: failures)
        let old = namespace.status.conditions
        func same(_ a: CoreV1.NamespaceCondition, _ b: CoreV1.NamespaceCondition) -> Bool {
            a.type == b.type && a.status == b.status && a.reason == b.reason && a.message == b.message
        }
        if old.count == wanted.count && zip(old, wanted).allSatisfy(same) && namespace.status.phase == .terminating {
            return
        }
        let now = MetaV1.Time.now()
        var updated = namespace
        updated.status.phase = .terminating
        updated.status.conditions = wanted.map { condition in
            var condition = condition
            let previous = old.first { $0.type == condition.type }
            condition.lastTransitionTime =
                previous?.status == condition.status ? (previous?.lastTransitionTime ?? now) : now
            return condition
        }
        _ = try await client.updateStatus(updated)
    }
}

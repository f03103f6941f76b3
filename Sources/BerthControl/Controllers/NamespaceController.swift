import BerthAPI
import Foundation
import Logging

/// Empties deleted namespaces, like upstream's namespace controller. `DELETE namespaces/x` only marks a
/// namespace Terminating (with `server.config.namespaceController`); this loop then deletes every
/// namespaced object in it through the API — pods gracefully, so a pod bound to a node is only marked
/// and its node agent finishes it — reports what is left in the namespace's status conditions, and once
/// nothing remains removes the "kubernetes" finalizer (namespaces/finalize), which deletes the namespace.
///
/// It runs again whenever something in a terminating namespace is deleted or marked, and every few
/// seconds while the namespace waits (a safety net, like upstream's requeue estimate).
struct NamespaceController: ControlLoop {
    let name = "namespace-controller"
    let client: LocalClient
    let namespaces: UntypedInformer
    let queue = WorkQueue(name: "namespace")
    let logger: Logger
    let workers: Int
    /// How long a namespace with content left waits before it is looked at again without an event.
    let recheck: Duration = .seconds(5)

    /// Every served type whose objects live in a namespace.
    static var namespacedTypes: [ResourceType] { Registry.all.filter(\.namespaced) }

    init(_ ctx: ControllerContext) {
        client = ctx.localClient("namespace-controller")
        namespaces = ctx.informers.informer(Registry.namespaces)
        logger = ctx.logger
        workers = max(1, min(ctx.config.workers, 4))
        let queue = self.queue, namespaces = self.namespaces
        namespaces.onChange { e in
            if case .deleted = e { return }
            guard Objects.isTerminating(e.object), let name = e.object["metadata"]["name"].string else { return }
            Task { await queue.add(name) }
        }
        for r in Self.namespacedTypes {
            ctx.informers.informer(r).onChange { e in
                // Content of a terminating namespace going away (or being marked): look again.
                switch e {
                case .added: return
                case .updated(let old, let new): if Objects.isTerminating(old) || !Objects.isTerminating(new) { return }
                case .deleted: break
                }
                guard let ns = e.object["metadata"]["namespace"].string, let n = namespaces.get(ns),
                    Objects.isTerminating(n)
                else { return }
                Task { await queue.add(ns) }
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
        guard let ns = try await client.get(Registry.namespaces, namespace: nil, name: name), Objects.isTerminating(ns),
            (ns["spec"]["finalizers"].array ?? []).contains("kubernetes")
        else { return }
        var failures: [String] = []
        for r in Self.namespacedTypes {
            for obj in try await client.list(r, namespace: name).items where !Objects.isTerminating(obj) {
                do {
                    // Default options: pods get their grace period; Background propagation for the rest.
                    try await client.delete(
                        r, namespace: name, name: obj["metadata"]["name"].string ?? "",
                        uid: obj["metadata"]["uid"].string)
                } catch let e as APIError where e.code == 404 || e.code == 409 {
                    // Gone already (garbage collected with its owner), or replaced: the next pass sees it.
                } catch {
                    failures.append("\(Self.groupResource(r)): \(error)")
                }
            }
        }
        // What is left: pods their node agents are still stopping, objects waiting on finalizers.
        var remaining: [String: Int] = [:], finalizers: [String: Int] = [:]
        for r in Self.namespacedTypes {
            let items = try await client.list(r, namespace: name).items
            if !items.isEmpty { remaining[Self.groupResource(r)] = items.count }
            for obj in items {
                for f in obj["metadata"]["finalizers"].array ?? [] {
                    if let f = f.string { finalizers[f, default: 0] += 1 }
                }
            }
        }
        if remaining.isEmpty && failures.isEmpty {
            try await client.finalizeNamespace(name: name)
            logger.debug("namespace finalized", metadata: ["namespace": "\(name)"])
            return
        }
        try await report(ns, remaining: remaining, finalizers: finalizers, failures: failures)
        queue.add(name, after: failures.isEmpty ? recheck : .seconds(1))
    }

    /// "pods." for core types, "deployments.apps" otherwise (upstream's messages).
    static func groupResource(_ r: ResourceType) -> String { r.plural + "." + r.group }

    /// Upstream's namespace deletion conditions, written only when they change.
    func report(_ ns: JSON, remaining: [String: Int], finalizers: [String: Int], failures: [String]) async throws {
        func condition(_ type: String, _ on: Bool, _ reason: String, _ message: String) -> JSON {
            [
                "type": .string(type), "status": on ? "True" : "False", "reason": .string(reason),
                "message": .string(message),
            ]
        }
        let left = remaining.sorted { $0.key < $1.key }.map { "\($0.key) has \($0.value) resource instances" }.joined(
            separator: ", ")
        let fins = finalizers.sorted { $0.key < $1.key }.map { "\($0.key) in \($0.value) resource instances" }.joined(
            separator: ", ")
        let wanted: [JSON] = [
            condition(
                "NamespaceDeletionDiscoveryFailure", false, "ResourcesDiscovered",
                "All resources successfully discovered"),
            condition(
                "NamespaceDeletionGroupVersionParsingFailure", false, "ParsedGroupVersions",
                "All legacy kube types successfully parsed"),
            failures.isEmpty
                ? condition(
                    "NamespaceDeletionContentFailure", false, "ContentDeleted",
                    "All content successfully deleted, may be waiting on finalization")
                : condition(
                    "NamespaceDeletionContentFailure", true, "ContentDeletionFailed",
                    "Failed to delete all resource types, \(failures.count) remaining: \(failures.joined(separator: ", "))"
                ),
            remaining.isEmpty
                ? condition("NamespaceContentRemaining", false, "ContentRemoved", "All content successfully removed")
                : condition(
                    "NamespaceContentRemaining", true, "SomeResourcesRemain", "Some resources are remaining: \(left)"),
            finalizers.isEmpty
                ? condition(
                    "NamespaceFinalizersRemaining", false, "ContentHasNoFinalizers",
                    "All content-preserving finalizers finished")
                : condition(
                    "NamespaceFinalizersRemaining", true, "SomeFinalizersRemain",
                    "Some content in the namespace has finalizers remaining: \(fins)"),
        ]
        let old = ns["status"]["conditions"].array ?? []
        func same(_ a: JSON, _ b: JSON) -> Bool {
            ["type", "status", "reason", "message"].allSatisfy { a[$0] == b[$0] }
        }
        if old.count == wanted.count && zip(old, wanted).allSatisfy(same)
            && ns["status"]["phase"].string == "Terminating"
        {
            return
        }
        let now = APITime.string()
        var updated = ns
        updated["status"]["phase"] = "Terminating"
        updated["status"]["conditions"] = .array(
            wanted.map { c in
                var c = c
                let previous = old.first { $0["type"] == c["type"] }
                c["lastTransitionTime"] =
                    previous?["status"] == c["status"]
                    ? (previous?["lastTransitionTime"] ?? .string(now)) : .string(now)
                return c
            })
        try await client.updateStatus(Registry.namespaces, updated)
    }
}

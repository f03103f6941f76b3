import BerthStore
import Foundation
import Logging
import ServiceLifecycle

/// Writes each FlowSchema's `Dangling` condition (whether the priority level it names exists), as
/// kube-apiserver's APF configuration controller does; `kubectl get flowschemas` shows it as MISSINGPL.
struct FlowSchemaStatusController: Service {
    let store: any KVStore
    let logger: Logger

    func run() async throws {
        try await reconcileOnChanges(
            store, prefix: FlowController.prefix, what: "flow schema status", logger: logger, reconcile)
    }

    /// Brings every schema's condition up to date; returns the revision the lists were read at.
    func reconcile() async throws -> Int64 {
        let levels = try await store.list(
            prefix: Registry.priorityLevelConfigurations.keyPrefix, startAfter: nil, limit: 0, revision: nil)
        let names = Set(levels.items.compactMap { try? JSON.parse($0.value)["metadata"]["name"].string })
        let schemas = try await store.list(
            prefix: Registry.flowSchemas.keyPrefix, startAfter: nil, limit: 0, revision: levels.revision)
        for kv in schemas.items {
            guard var obj = try? JSON.parse(kv.value) else { continue }
            let level = obj["spec"]["priorityLevelConfiguration"]["name"].string ?? ""
            let found = names.contains(level)
            let message =
                found
                ? "This FlowSchema references the PriorityLevelConfiguration object named \"\(level)\" and it exists"
                : "This FlowSchema references the PriorityLevelConfiguration object named \"\(level)\" but there is no such object"
            var status = obj["status"]
            let before = status
            StatusConditions.set(&status, "Dangling", !found, found ? "Found" : "NotFound", message)
            guard status != before else { continue }
            obj["status"] = status
            _ = try? await store.update(kv.key, value: obj.serialized(), expectedRevision: kv.modRevision)
        }
        return max(levels.revision, schemas.revision)
    }

}

import BerthStore
import Foundation
import Logging
import ServiceLifecycle

/// Writes each ValidatingAdmissionPolicy's status as upstream's validating admission policy status
/// controller does: once per generation, `observedGeneration` and `typeChecking.expressionWarnings`
/// (PolicyTypeChecker). Upstream sets no conditions there, so neither does Berth. Every API server
/// runs it; a write that lost a race to another's is simply dropped (the winner wrote the same).
struct ValidatingAdmissionPolicyStatusController: Service {
    let store: any KVStore
    let registry: CustomResourceRegistry
    let logger: Logger

    func run() async throws {
        try await reconcileOnChanges(
            store, prefix: Registry.validatingAdmissionPolicies.keyPrefix, what: "validating admission policy status",
            logger: logger, reconcile)
    }

    /// Type-checks every policy whose generation is newer than its status; returns the revision the
    /// policies were read at.
    func reconcile() async throws -> Int64 {
        let page = try await store.list(
            prefix: Registry.validatingAdmissionPolicies.keyPrefix, startAfter: nil, limit: 0, revision: nil)
        let checker = PolicyTypeChecker(types: registry.all)
        for kv in page.items {
            guard var policy = try? JSON.parse(kv.value), let status = Self.status(policy, checker) else { continue }
            policy["status"] = status
            do {
                _ = try await store.update(kv.key, value: policy.serialized(), expectedRevision: kv.modRevision)
            } catch StoreError.conflict, StoreError.notFound {
                // Changed meanwhile: its watch event brings the next pass.
            }
        }
        return page.revision
    }

    /// The status `policy` should have, nil when its status already describes its generation.
    static func status(_ policy: JSON, _ checker: PolicyTypeChecker) -> JSON? {
        let generation = policy["metadata"]["generation"].int ?? 0
        guard generation > (policy["status"]["observedGeneration"].int ?? 0) else { return nil }
        var status = policy["status"].object == nil ? JSON.object([:]) : policy["status"]
        status["observedGeneration"] = .int(generation)
        let warnings = checker.check(policy)
        var typeChecking: JSON = [:]
        if !warnings.isEmpty {
            typeChecking["expressionWarnings"] = .array(
                warnings.map { ["fieldRef": .string($0.fieldRef), "warning": .string($0.warning)] })
        }
        status["typeChecking"] = typeChecking
        return status
    }
}

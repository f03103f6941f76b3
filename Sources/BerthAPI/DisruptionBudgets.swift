import BerthStore
import Foundation

/// The budget check of pods/eviction (upstream pkg/registry/core/pod/storage/eviction.go): an eviction
/// of a running pod that a PodDisruptionBudget selects takes one of the budget's allowed disruptions —
/// recorded in its status (`disruptionsAllowed` down by one, the pod in `disruptedPods`, written with
/// its resourceVersion so two evictions cannot take the same one) — or is refused with 429 when none is
/// left, which `kubectl drain` retries until the disruption controller finds the pods back.
enum DisruptionBudgets {
    /// Upstream's cap on disruptedPods entries not yet seen deleted.
    static let maxDisruptedPods = 2000

    static func admitEviction(of pod: JSON, handler: Handler) async throws {
        let phase = pod["status"]["phase"].string ?? "Pending"
        // Nothing running to protect: terminal, pending and terminating pods go.
        if ["Succeeded", "Failed", "Pending"].contains(phase) || !pod["metadata"]["deletionTimestamp"].isNull {
            return
        }
        let namespace = pod["metadata"]["namespace"].string ?? ""
        let podName = pod["metadata"]["name"].string ?? ""
        let labels = pod["metadata"]["labels"].stringMap
        for _ in 0..<Handler.conflictRetries {
            let budgets = try await handler.storedObjects(Registry.podDisruptionBudgets, namespace: namespace)
                .filter { selects($0.object, labels) }
            guard let (kv, budget) = budgets.first else { return }
            if budgets.count > 1 {
                throw APIError.internalError(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
            }
            let budgetName = budget["metadata"]["name"].string ?? ""
            let status = budget["status"]
            if (status["observedGeneration"].int ?? 0) < (budget["metadata"]["generation"].int ?? 0) {
                throw tooManyRequests(
                    budgetName, "The disruption budget \(budgetName) is still being processed by the server.")
            }
            let healthy = status["currentHealthy"].int ?? 0, desired = status["desiredHealthy"].int ?? 0
            // An unready pod does not count toward the budget: evicting it costs nothing when the budget
            // is met (IfHealthyBudget, the default) or always (AlwaysAllow).
            if !isReady(pod) {
                if budget["spec"]["unhealthyPodEvictionPolicy"].string == "AlwaysAllow" || healthy >= desired { return }
            }
            let allowed = status["disruptionsAllowed"].int ?? 0
            if allowed < 0 { throw APIError.forbidden("pdb disruptions allowed is negative") }
            if (status["disruptedPods"].object ?? [:]).count > maxDisruptedPods {
                throw APIError.forbidden(
                    "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
            }
            if allowed == 0 {
                throw tooManyRequests(
                    budgetName,
                    "The disruption budget \(budgetName) needs \(desired) healthy pods and has \(healthy) currently")
            }
            var updated = budget
            updated["status"]["disruptionsAllowed"] = .int(allowed - 1)
            updated["status"]["disruptedPods"][podName] = .string(Handler.now())
            updated["metadata"]["resourceVersion"] = .null
            do {
                _ = try await handler.store.update(
                    kv.key, value: handler.encodeForStore(updated), expectedRevision: kv.modRevision)
                return
            } catch StoreError.conflict { continue }
        }
        throw APIError.conflict(Registry.podDisruptionBudgets, "")
    }

    /// policy/v1: a null selector selects nothing, an empty one every pod of the namespace.
    static func selects(_ budget: JSON, _ labels: [String: String]) -> Bool {
        let selector = budget["spec"]["selector"]
        if selector.isNull { return false }
        return LabelSelector(object: selector).matches(labels)
    }

    static func isReady(_ pod: JSON) -> Bool {
        (pod["status"]["conditions"].array ?? []).contains {
            $0["type"].string == "Ready" && $0["status"].string == "True"
        }
    }

    static func tooManyRequests(_ budget: String, _ cause: String) -> APIError {
        APIError(
            code: 429, reason: "TooManyRequests",
            message: "Cannot evict pod as it would violate the pod's disruption budget.",
            details: ["causes": [["reason": "DisruptionBudget", "message": .string(cause)]]])
    }
}

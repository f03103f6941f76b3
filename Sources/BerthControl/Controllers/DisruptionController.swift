import BerthAPI
import BerthKube
import Foundation
import Logging

/// The disruption controller (kube-controller-manager's): keeps each PodDisruptionBudget's status — the
/// pods it expects, how many of them are healthy (Ready, not being deleted), how many must be, and so
/// how many disruptions it allows now, with the DisruptionAllowed condition — which pods/eviction reads.
/// Evictions it has not yet seen through (a pod in `disruptedPods` still there) count as gone, until
/// the pod is deleted or two minutes pass, so two evictions cannot spend one disruption.
///
/// The number of pods expected is the number the budget selects (upstream reads the replica counts of
/// the pods' controllers for percentages and maxUnavailable; they agree once a rollout has settled).
struct DisruptionController: ControlLoop {
    let name = "disruption-controller"
    static let disruptedPodTimeout: TimeInterval = 120
    let client: any KubeClient
    let budgets: Informer<PolicyV1.PodDisruptionBudget>
    let pods: Informer<CoreV1.Pod>
    let queue = WorkQueue(name: "disruption")
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("disruption-controller")
        budgets = ctx.informers.informer(PolicyV1.PodDisruptionBudget.self)
        pods = ctx.informers.informer(CoreV1.Pod.self)
        logger = ctx.logger
        let (queue, budgets) = (self.queue, self.budgets)
        budgets.onChange { event in
            if case .deleted = event { return }
            let key = event.object.cacheKey
            Task { await queue.add(key) }
        }
        // A pod's change concerns the budgets of its namespace that select it (before or after).
        pods.onChange { event in
            guard let namespace = event.object.metadata.namespace else { return }
            var labels = event.object.metadata.labels
            if case .updated(let old, _) = event { labels.merge(old.metadata.labels) { new, _ in new } }
            let keys = budgets.list(namespace: namespace).filter { budget in
                budget.spec.selector != nil && LabelSelector(budget.spec.selector).matches(labels)
            }.map(\.cacheKey)
            guard !keys.isEmpty else { return }
            Task { for key in keys { await queue.add(key) } }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("disruption budget sync failed", metadata: ["budget": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ key: String) async throws {
        guard let budget = budgets.get(key), !budget.isTerminating else { return }
        let namespace = budget.metadata.namespace ?? ""
        // policy/v1: a null selector selects nothing, an empty one the whole namespace.
        let selected =
            budget.spec.selector == nil
            ? []
            : pods.list(namespace: namespace).filter { LabelSelector(budget.spec.selector).matches($0.metadata.labels) }
        let now = Date()
        var disrupted: [String: MetaV1.Time] = [:]
        for (podName, since) in budget.status.disruptedPods {
            // Still there and not yet being deleted, and recent: the eviction is still under way.
            guard let pod = selected.first(where: { $0.metadata.name == podName }), !pod.isTerminating,
                now.timeIntervalSince1970 - Double(since.secondsSince1970) < Self.disruptedPodTimeout
            else { continue }
            disrupted[podName] = since
        }
        let healthy = selected.filter { pod in
            pod.isReady && !pod.isTerminating && disrupted[pod.metadata.name ?? ""] == nil
        }.count
        let expected = selected.filter { !$0.isTerminating }.count
        let desired: Int
        // Percentages round up, as upstream scales both fields.
        if let minimum = budget.spec.minAvailable {
            desired = minimum.scaled(total: expected, roundUp: true) ?? 0
        } else if let maximum = budget.spec.maxUnavailable {
            desired = max(0, expected - (maximum.scaled(total: expected, roundUp: true) ?? 0))
        } else {
            desired = expected
        }
        var status = budget.status
        status.observedGeneration = budget.metadata.generation
        status.expectedPods = Int32(expected)
        status.currentHealthy = Int32(healthy)
        status.desiredHealthy = Int32(desired)
        status.disruptionsAllowed = Int32(max(0, healthy - desired))
        status.disruptedPods = disrupted
        let allowed = status.disruptionsAllowed > 0
        let reason = allowed ? "SufficientPods" : "InsufficientPods"
        var condition = status.conditions.first { $0.type == "DisruptionAllowed" } ?? MetaV1.Condition()
        let conditionStatus: MetaV1.ConditionStatus = allowed ? .true : .false
        if condition.status != conditionStatus || condition.reason != reason {
            condition = MetaV1.Condition(
                type: "DisruptionAllowed", status: conditionStatus, observedGeneration: budget.metadata.generation,
                lastTransitionTime: .now(), reason: reason, message: "")
        }
        condition.observedGeneration = budget.metadata.generation
        status.conditions = status.conditions.filter { $0.type != "DisruptionAllowed" } + [condition]
        // Entries waiting for their pods' deletion expire: look again then.
        if let oldest = disrupted.values.map(\.secondsSince1970).min() {
            let left = Self.disruptedPodTimeout - (now.timeIntervalSince1970 - Double(oldest)) + 1
            await queue.addSoon(key, after: .seconds(max(1, left)))
        }
        if status == budget.status { return }
        var updated = budget
        updated.status = status
        // The resourceVersion is the precondition (an eviction may have written the status meanwhile).
        _ = try await client.updateStatus(updated)
    }
}

import BerthAPI
import BerthKube
import Logging

/// Fills the rules of every ClusterRole with an aggregationRule from the ClusterRoles its selectors
/// match, as kube-controller-manager's clusterrole-aggregation controller does: `admin`, `edit` and
/// `view` are made of the `aggregate-to-*` roles, so a CRD's role labelled
/// `rbac.authorization.k8s.io/aggregate-to-view: "true"` adds to view. Rules come selector by selector,
/// matching roles in name order, each rule once; a change of any ClusterRole re-syncs every aggregated one.
struct ClusterRoleAggregationController: ControlLoop {
    let name = "clusterrole-aggregation"
    let client: any KubeClient
    let clusterRoles: Informer<RbacV1.ClusterRole>
    let queue = WorkQueue(name: "clusterrole-aggregation")
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("clusterrole-aggregation-controller")
        clusterRoles = ctx.informers.informer(RbacV1.ClusterRole.self)
        logger = ctx.logger
        let queue = self.queue
        let roles = clusterRoles
        clusterRoles.onChange { _ in
            let aggregated = roles.list().filter { $0.aggregationRule != nil }.compactMap(\.metadata.name)
            Task { for name in aggregated { await queue.add(name) } }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 1, sync: sync,
            onError: { key, error in
                logger.debug(
                    "clusterrole aggregation failed", metadata: ["clusterrole": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ name: String) async throws {
        guard var role = clusterRoles.get(namespace: nil, name: name), let rule = role.aggregationRule else { return }
        let rules = Self.aggregatedRules(rule, of: name, from: clusterRoles.list())
        guard rules != role.rules else { return }
        role.rules = rules
        // The resourceVersion is the precondition; a conflict comes back through the queue.
        _ = try await client.update(role)
    }

    /// The rules `rule`'s selectors gather from `roles` (the aggregated role itself left out).
    static func aggregatedRules(
        _ rule: RbacV1.AggregationRule, of name: String, from roles: [RbacV1.ClusterRole]
    ) -> [RbacV1.PolicyRule] {
        var rules: [RbacV1.PolicyRule] = []
        let sorted = roles.sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
        for selector in rule.clusterRoleSelectors {
            let matcher = LabelSelector(selector)
            for role in sorted where role.metadata.name != name && matcher.matches(role.metadata.labels) {
                for rule in role.rules where !rules.contains(rule) { rules.append(rule) }
            }
        }
        return rules
    }
}

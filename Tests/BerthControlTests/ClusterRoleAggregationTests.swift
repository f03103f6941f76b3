@testable import BerthAPI
import BerthKube
import Foundation
import Testing

@testable import BerthControl

extension ControlTests {
    /// The clusterrole-aggregation controller: admin, edit and view are made of the roles labelled to
    /// aggregate into them, so a CRD's viewer role labelled aggregate-to-view reaches view, edit and admin.
    @Suite("clusterrole aggregation", .serialized)
    struct ClusterRoleAggregationTests {
        @Test func rulesComeSelectorBySelectorInNameOrderEachOnce() {
            func role(_ name: String, _ labels: [String: String], _ resources: [String]) -> RbacV1.ClusterRole {
                var role = RbacV1.ClusterRole()
                role.metadata.name = name
                role.metadata.labels = labels
                var rule = RbacV1.PolicyRule()
                rule.verbs = ["get"]
                rule.apiGroups = [""]
                rule.resources = resources
                role.rules = [rule]
                return role
            }
            var selector = MetaV1.LabelSelector()
            selector.matchLabels = ["agg": "yes"]
            var aggregation = RbacV1.AggregationRule()
            aggregation.clusterRoleSelectors = [selector]
            let roles = [
                role("b", ["agg": "yes"], ["secrets"]), role("a", ["agg": "yes"], ["pods"]),
                role("c", ["agg": "no"], ["nodes"]), role("d", ["agg": "yes"], ["pods"]),
                role("self", ["agg": "yes"], ["everything"]),
            ]
            let rules = ClusterRoleAggregationController.aggregatedRules(aggregation, of: "self", from: roles)
            #expect(rules.map(\.resources) == [["pods"], ["secrets"]])
        }

        @Test func aRoleLabelledAggregateToViewReachesViewEditAndAdmin() async throws {
            try await withControlCluster { c in
                @Sendable func rules(_ name: String, _ items: [JSON]) -> [String] {
                    (named(items, name)?["rules"].array ?? []).flatMap {
                        ($0["resources"].array ?? []).compactMap(\.string)
                    }
                }
                // The bootstrap aggregates filled in: view reads pods, edit writes them, admin makes roles.
                try await c.waitFor(Registry.clusterRoles, "view, edit and admin aggregated") { items in
                    rules("view", items).contains("pods") && rules("edit", items).contains("pods/exec")
                        && rules("admin", items).contains("rolebindings") && rules("admin", items).contains("pods")
                }
                let widgets = """
                    apiVersion: rbac.authorization.k8s.io/v1
                    kind: ClusterRole
                    metadata:
                      name: widgets-view
                      labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
                    rules:
                    - {apiGroups: [example.com], resources: [widgets], verbs: [get, list, watch]}
                    """
                let made = try c.kubectl("apply", "-f", "-", stdin: widgets)
                #expect(made.ok, "\(made.stderr)")
                try await c.waitFor(Registry.clusterRoles, "widgets in view, edit and admin") { items in
                    ["view", "edit", "admin"].allSatisfy { rules($0, items).contains("widgets") }
                }
                // Taken out of the aggregate again when the label goes.
                let unlabelled = try c.kubectl(
                    "label", "clusterrole", "widgets-view", "rbac.authorization.k8s.io/aggregate-to-view-")
                #expect(unlabelled.ok, "\(unlabelled.stderr)")
                try await c.waitFor(Registry.clusterRoles, "widgets gone from view") { items in
                    !rules("view", items).contains("widgets") && rules("view", items).contains("pods")
                }
            }
        }
    }
}

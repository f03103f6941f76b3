@testable import BerthAPI
import Foundation
import Testing

/// RBAC's rule matching, coverage and messages, without a server.
extension APITests {
    @Suite("RBAC rules")
    struct RBACRuleTests {
        static let alice = UserInfo(name: "alice", groups: ["dev", "system:authenticated"])

        enum Method: String { case get = "GET", put = "PUT", patch = "PATCH", post = "POST", delete = "DELETE" }

        static func request(_ method: Method, _ path: String, _ query: [String: String] = [:])
            -> AuthorizationAttributes
        {
            AuthorizationAttributes(user: alice, method: method.rawValue, path: path, query: query)
        }

        @Test func requestsReadAsUpstreamsRequestInfo() {
            var a = Self.request(.get, "/api/v1/namespaces/default/pods")
            #expect(a.isResourceRequest && a.verb == "list" && a.resource == "pods" && a.namespace == "default")
            a = Self.request(.get, "/api/v1/namespaces/default/pods", ["watch": "true"])
            #expect(a.verb == "watch")
            a = Self.request(.get, "/api/v1/namespaces/default/pods", ["fieldSelector": "metadata.name=web"])
            #expect(a.verb == "list" && a.name == "web")
            a = Self.request(.get, "/api/v1/namespaces/default/pods/web/log")
            #expect(a.verb == "get" && a.name == "web" && a.subresource == "log")
            a = Self.request(.get, "/api/v1/namespaces/default/pods/web/exec")
            #expect(a.verb == "create" && a.subresource == "exec")
            a = Self.request(.delete, "/apis/apps/v1/namespaces/ns/deployments")
            #expect(a.verb == "deletecollection" && a.apiGroup == "apps" && a.namespace == "ns")
            a = Self.request(.get, "/api/v1/namespaces/kube-system")
            #expect(a.resource == "namespaces" && a.name == "kube-system" && a.namespace == "kube-system")
            a = Self.request(.put, "/api/v1/namespaces/x/finalize")
            #expect(a.verb == "update" && a.resource == "namespaces" && a.subresource == "finalize")
            a = Self.request(.patch, "/apis/rbac.authorization.k8s.io/v1/clusterroles/view")
            #expect(a.verb == "patch" && a.namespace.isEmpty && a.name == "view")
            for path in ["/api", "/apis", "/apis/apps", "/apis/apps/v1", "/version", "/openapi/v2", "/healthz"] {
                a = Self.request(.get, path)
                #expect(!a.isResourceRequest && a.verb == "get" && a.path == path, "\(path)")
            }
            #expect(Self.request(.get, "/api/v1").isResourceRequest == false)
        }

        @Test func rulesMatchVerbsGroupsResourcesSubresourcesAndNames() {
            let readPods = PolicyRule(verbs: ["get", "list"], apiGroups: [""], resources: ["pods"])
            #expect(readPods.allows(Self.request(.get, "/api/v1/namespaces/d/pods")))
            #expect(!readPods.allows(Self.request(.delete, "/api/v1/namespaces/d/pods/p")))
            #expect(!readPods.allows(Self.request(.get, "/api/v1/namespaces/d/pods/p/log")), "a subresource is its own")
            #expect(!readPods.allows(Self.request(.get, "/apis/apps/v1/namespaces/d/deployments")))
            let logs = PolicyRule(verbs: ["get"], apiGroups: [""], resources: ["pods/log"])
            #expect(logs.allows(Self.request(.get, "/api/v1/namespaces/d/pods/p/log")))
            #expect(!logs.allows(Self.request(.get, "/api/v1/namespaces/d/pods/p")))
            let anyScale = PolicyRule(verbs: ["*"], apiGroups: ["*"], resources: ["*/scale"])
            #expect(anyScale.allows(Self.request(.put, "/apis/apps/v1/namespaces/d/deployments/web/scale")))
            #expect(!anyScale.allows(Self.request(.put, "/apis/apps/v1/namespaces/d/deployments/web")))
            let named = PolicyRule(verbs: ["get"], apiGroups: [""], resources: ["configmaps"], resourceNames: ["app"])
            #expect(named.allows(Self.request(.get, "/api/v1/namespaces/d/configmaps/app")))
            #expect(!named.allows(Self.request(.get, "/api/v1/namespaces/d/configmaps/other")))
            #expect(!named.allows(Self.request(.get, "/api/v1/namespaces/d/configmaps")), "a list names nothing")
            let discovery = PolicyRule(verbs: ["get"], nonResourceURLs: ["/apis/*", "/version"])
            #expect(discovery.allows(Self.request(.get, "/apis/apps/v1")))
            #expect(discovery.allows(Self.request(.get, "/version")))
            #expect(!discovery.allows(Self.request(.get, "/version/x")))
            #expect(!discovery.allows(Self.request(.get, "/metrics")))
            #expect(!discovery.allows(Self.request(.get, "/api/v1/namespaces/d/pods")), "URL rules match no resource")
        }

        @Test func coverageBreaksRulesDownAndHonoursStarsAndSubresources() {
            let owner = [
                PolicyRule(verbs: ["get", "list"], apiGroups: [""], resources: ["pods", "*/status"]),
                PolicyRule(verbs: ["get"], nonResourceURLs: ["/healthz/*"]),
            ]
            #expect(
                PolicyRule.uncovered(by: owner, [PolicyRule(verbs: ["get"], apiGroups: [""], resources: ["pods"])])
                    .isEmpty)
            #expect(
                PolicyRule.uncovered(
                    by: owner, [PolicyRule(verbs: ["list"], apiGroups: [""], resources: ["services/status"])]
                )
                .isEmpty)
            #expect(
                PolicyRule.uncovered(
                    by: owner, [PolicyRule(verbs: ["get"], apiGroups: [""], resources: ["pods"], resourceNames: ["a"])]
                ).isEmpty)
            #expect(
                PolicyRule.uncovered(by: owner, [PolicyRule(verbs: ["get"], nonResourceURLs: ["/healthz/etcd"])])
                    .isEmpty)
            let missing = PolicyRule.uncovered(
                by: owner,
                [PolicyRule(verbs: ["get", "delete", "create"], apiGroups: ["", "apps"], resources: ["pods"])])
            #expect(missing.count == 5)
            let described = PolicyRule.compacted(missing).map(\.compactDescription)
            #expect(
                described == [
                    "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\" \"create\"]}",
                    "{APIGroups:[\"apps\"], Resources:[\"pods\"], Verbs:[\"get\" \"delete\" \"create\"]}",
                ])
            let all = BerthAPI.Handler.fullAuthority
            #expect(PolicyRule.uncovered(by: all, owner).isEmpty)
            #expect(!PolicyRule.uncovered(by: owner, all).isEmpty)
        }

        @Test func forbiddenMessagesAreKubeApiserversWords() {
            #expect(
                Self.request(.get, "/api/v1/namespaces/default/pods").forbiddenMessage()
                    == "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
            )
            #expect(
                Self.request(.delete, "/apis/apps/v1/namespaces/d/deployments/web").forbiddenMessage()
                    == "deployments.apps \"web\" is forbidden: User \"alice\" cannot delete resource \"deployments\" in API group \"apps\" in the namespace \"d\""
            )
            #expect(
                Self.request(.get, "/api/v1/nodes/n1/status").forbiddenMessage(
                    reason: "RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found")
                    == "nodes \"n1\" is forbidden: User \"alice\" cannot get resource \"nodes/status\" in API group \"\" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"
            )
            #expect(
                Self.request(.get, "/metrics").forbiddenMessage()
                    == "forbidden: User \"alice\" cannot get path \"/metrics\"")
        }

        @Test func bindingsApplyToUsersGroupsAndServiceAccountsAndSayWhoAllowed() {
            let policy = RBACPolicy(
                roles: [
                    [
                        "metadata": ["name": "reader", "namespace": "team"],
                        "rules": [["verbs": ["get"], "apiGroups": [""], "resources": ["pods"]]],
                    ]
                ],
                clusterRoles: [
                    [
                        "metadata": ["name": "nodes"],
                        "rules": [["verbs": ["list"], "apiGroups": [""], "resources": ["nodes"]]],
                    ]
                ],
                roleBindings: [
                    [
                        "metadata": ["name": "devs", "namespace": "team"],
                        "roleRef": ["kind": "Role", "name": "reader"],
                        "subjects": [["kind": "Group", "name": "dev"], ["kind": "ServiceAccount", "name": "ci"]],
                    ],
                    [
                        "metadata": ["name": "broken", "namespace": "team"],
                        "roleRef": ["kind": "ClusterRole", "name": "gone"],
                        "subjects": [["kind": "User", "name": "alice"]],
                    ],
                ],
                clusterRoleBindings: [
                    [
                        "metadata": ["name": "ops"], "roleRef": ["kind": "ClusterRole", "name": "nodes"],
                        "subjects": [["kind": "User", "name": "bob"]],
                    ]
                ])
            let allowed = policy.authorize(Self.request(.get, "/api/v1/namespaces/team/pods/p"))
            #expect(
                allowed
                    == .init(
                        allowed: true,
                        reason: "RBAC: allowed by RoleBinding \"devs/team\" of Role \"reader\" to Group \"dev\""))
            let elsewhere = policy.authorize(Self.request(.get, "/api/v1/namespaces/other/pods/p"))
            #expect(elsewhere == .init(allowed: false, reason: ""))
            let denied = policy.authorize(Self.request(.delete, "/api/v1/namespaces/team/pods/p"))
            #expect(
                denied
                    == .init(allowed: false, reason: "RBAC: clusterrole.rbac.authorization.k8s.io \"gone\" not found"))
            let ci = UserInfo(name: "system:serviceaccount:team:ci", groups: ["system:serviceaccounts"])
            #expect(
                policy.authorize(.init(user: ci, verb: "get", apiGroup: "", resource: "pods", namespace: "team")).reason
                    == "RBAC: allowed by RoleBinding \"devs/team\" of Role \"reader\" to ServiceAccount \"ci/team\"")
            let bob = UserInfo(name: "bob", groups: [])
            #expect(policy.authorize(.init(user: bob, verb: "list", apiGroup: "", resource: "nodes")).allowed)
            #expect(!policy.authorize(.init(user: Self.alice, verb: "list", apiGroup: "", resource: "nodes")).allowed)
            let (rules, errors) = policy.rules(for: Self.alice, namespace: "team")
            #expect(rules.count == 1 && errors.count == 1)
        }

        @Test func theBootstrapPolicyIsUpstreams() {
            let names = Set(BootstrapPolicy.clusterRoles.map(\.name))
            for wanted in [
                "cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user",
                "system:public-info-viewer", "system:node-proxier", "system:kube-scheduler",
                "system:kube-controller-manager", "system:node", "system:monitoring", "system:aggregate-to-view",
            ] {
                #expect(names.contains(wanted), "\(wanted)")
            }
            for binding in BootstrapPolicy.clusterRoleBindings {
                #expect(names.contains(binding.role), "\(binding.name)")
            }
            let view = BootstrapPolicy.object(BootstrapPolicy.clusterRoles.first { $0.name == "view" }!)
            #expect(
                view["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"][BootstrapPolicy.aggregateToView]
                    == "true")
            #expect(view["metadata"]["labels"][BootstrapPolicy.aggregateToEdit] == "true")
            #expect(view["metadata"]["annotations"][BootstrapPolicy.autoupdateAnnotation] == "true")
        }
    }
}

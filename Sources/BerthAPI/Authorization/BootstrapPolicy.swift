/// kube-apiserver's bootstrap RBAC policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy, as its
/// testdata/cluster-roles.yaml and cluster-role-bindings.yaml print it): the ClusterRoles and
/// ClusterRoleBindings every cluster starts with, made or brought up to date at every server start
/// (`APIServer.reconcileBootstrapPolicy`). Each carries `rbac.authorization.kubernetes.io/autoupdate:
/// "true"`; one a user set to "false" is left as the user made it.
enum BootstrapPolicy {
    static let autoupdateAnnotation = "rbac.authorization.kubernetes.io/autoupdate"
    static let bootstrappingLabel = "kubernetes.io/bootstrapping"
    static let aggregateToAdmin = "rbac.authorization.k8s.io/aggregate-to-admin"
    static let aggregateToEdit = "rbac.authorization.k8s.io/aggregate-to-edit"
    static let aggregateToView = "rbac.authorization.k8s.io/aggregate-to-view"

    struct Role {
        var name: String
        /// A Role of this namespace (namespace_policy.go's), nil for a ClusterRole.
        var namespace: String? = nil
        var rules: [PolicyRule]
        /// Labels beside `kubernetes.io/bootstrapping: rbac-defaults` (the aggregation labels).
        var labels: [String: String] = [:]
        /// The label that selects the ClusterRoles aggregated into this one (admin, edit, view).
        var aggregatesLabel: String? = nil
    }

    struct Binding {
        var name: String
        /// A RoleBinding of this namespace to the Role `role` there, nil for a ClusterRoleBinding.
        var namespace: String? = nil
        var role: String
        /// (kind, name): User or Group; a ServiceAccount as "namespace/name".
        var subjects: [(kind: String, name: String)]
    }

    // The verb sets upstream's policy.go names.
    static let read = ["get", "list", "watch"]
    static let write = ["create", "delete", "deletecollection", "patch", "update"]
    static let readWrite = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    static let eventWrites = ["create", "patch", "update"]
    static let certificates = "certificates.k8s.io"

    private static func rule(
        _ verbs: [String], _ groups: [String], _ resources: [String], names: [String] = []
    ) -> PolicyRule {
        PolicyRule(verbs: verbs, apiGroups: groups, resources: resources, resourceNames: names)
    }
    private static func urls(_ verbs: [String], _ urls: [String]) -> PolicyRule {
        PolicyRule(verbs: verbs, nonResourceURLs: urls)
    }

    static let clusterRoles: [Role] = [
        Role(name: "admin", rules: [], aggregatesLabel: aggregateToAdmin),
        Role(
            name: "cluster-admin",
            rules: [rule(["*"], ["*"], ["*"]), urls(["*"], ["*"])]),
        Role(name: "edit", rules: [], labels: [aggregateToAdmin: "true"], aggregatesLabel: aggregateToEdit),
        Role(name: "view", rules: [], labels: [aggregateToEdit: "true"], aggregatesLabel: aggregateToView),
        Role(
            name: "system:aggregate-to-admin",
            rules: [
                rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
                rule(readWrite, ["rbac.authorization.k8s.io"], ["rolebindings", "roles"]),
            ], labels: [aggregateToAdmin: "true"]),
        Role(
            name: "system:aggregate-to-edit",
            rules: [
                rule(
                    read, [""],
                    ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"]),
                rule(["impersonate"], [""], ["serviceaccounts"]),
                rule(write, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
                rule(["create"], [""], ["pods/eviction"]),
                rule(
                    write, [""],
                    [
                        "configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                        "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy",
                    ]),
                rule(["create"], [""], ["serviceaccounts/token"]),
                rule(
                    write, ["apps"],
                    [
                        "daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                        "replicasets/scale", "statefulsets", "statefulsets/scale",
                    ]),
                rule(write, ["autoscaling"], ["horizontalpodautoscalers"]),
                rule(write, ["batch"], ["cronjobs", "jobs"]),
                rule(
                    write, ["extensions"],
                    [
                        "daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses",
                        "networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale",
                    ]),
                rule(write, ["policy"], ["poddisruptionbudgets"]),
                rule(write, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
                rule(readWrite, ["coordination.k8s.io"], ["leases"]),
            ], labels: [aggregateToEdit: "true"]),
        Role(
            name: "system:aggregate-to-view",
            rules: [
                rule(
                    read, [""],
                    [
                        "configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
                        "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
                        "services/status",
                    ]),
                rule(
                    read, [""],
                    [
                        "bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                        "replicationcontrollers/status", "resourcequotas", "resourcequotas/status",
                    ]),
                rule(read, [""], ["namespaces"]),
                rule(read, ["discovery.k8s.io"], ["endpointslices"]),
                rule(
                    read, ["apps"],
                    [
                        "controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                        "deployments/status", "replicasets", "replicasets/scale", "replicasets/status",
                        "statefulsets", "statefulsets/scale", "statefulsets/status",
                    ]),
                rule(read, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
                rule(read, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
                rule(
                    read, ["extensions"],
                    [
                        "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
                        "ingresses", "ingresses/status", "networkpolicies", "replicasets", "replicasets/scale",
                        "replicasets/status", "replicationcontrollers/scale",
                    ]),
                rule(read, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
                rule(read, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
            ], labels: [aggregateToView: "true"]),
        Role(
            name: "system:auth-delegator",
            rules: [
                rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            ]),
        Role(
            name: "system:basic-user",
            rules: [
                rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
            ]),
        // The certificates API's roles (upstream binds none of them; kubeadm binds the node ones to its
        // bootstrap tokens and to system:nodes for renewal).
        Role(
            name: "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            rules: [rule(["create"], [certificates], ["certificatesigningrequests/nodeclient"])]),
        Role(
            name: "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            rules: [rule(["create"], [certificates], ["certificatesigningrequests/selfnodeclient"])]),
        Role(
            name: "system:certificates.k8s.io:kube-apiserver-client-approver",
            rules: [rule(["approve"], [certificates], ["signers"], names: ["kubernetes.io/kube-apiserver-client"])]),
        Role(
            name: "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            rules: [
                rule(["approve"], [certificates], ["signers"], names: ["kubernetes.io/kube-apiserver-client-kubelet"])
            ]),
        Role(
            name: "system:certificates.k8s.io:kubelet-serving-approver",
            rules: [rule(["approve"], [certificates], ["signers"], names: ["kubernetes.io/kubelet-serving"])]),
        Role(
            name: "system:certificates.k8s.io:legacy-unknown-approver",
            rules: [rule(["approve"], [certificates], ["signers"], names: ["kubernetes.io/legacy-unknown"])]),
        Role(
            name: "system:discovery",
            rules: [
                urls(
                    ["get"],
                    [
                        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
                        "/version", "/version/",
                    ])
            ]),
        Role(
            name: "system:kube-aggregator",
            rules: [rule(read, [""], ["endpoints", "services"])]),
        Role(
            name: "system:kube-controller-manager",
            rules: [
                rule(eventWrites, ["", "events.k8s.io"], ["events"]),
                rule(["create"], ["coordination.k8s.io"], ["leases"]),
                rule(["get", "update"], ["coordination.k8s.io"], ["leases"], names: ["kube-controller-manager"]),
                rule(["create"], [""], ["secrets", "serviceaccounts"]),
                rule(["delete"], [""], ["secrets"]),
                rule(["get"], [""], ["configmaps", "namespaces", "secrets", "serviceaccounts"]),
                rule(["update"], [""], ["secrets", "serviceaccounts"]),
                rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
                rule(["list", "watch"], ["*"], ["*"]),
                rule(["create"], [""], ["serviceaccounts/token"]),
            ]),
        Role(
            name: "system:kube-dns",
            rules: [rule(["list", "watch"], [""], ["endpoints", "services"])]),
        Role(
            name: "system:kube-scheduler",
            rules: [
                rule(eventWrites, ["", "events.k8s.io"], ["events"]),
                rule(["create"], ["coordination.k8s.io"], ["leases"]),
                rule(["get", "update"], ["coordination.k8s.io"], ["leases"], names: ["kube-scheduler"]),
                rule(read, [""], ["nodes"]),
                rule(["delete", "get", "list", "watch"], [""], ["pods"]),
                rule(["create"], [""], ["bindings", "pods/binding"]),
                rule(["patch", "update"], [""], ["pods/status"]),
                rule(read, [""], ["replicationcontrollers", "services"]),
                rule(read, ["apps", "extensions"], ["replicasets"]),
                rule(read, ["apps"], ["statefulsets"]),
                rule(read, ["policy"], ["poddisruptionbudgets"]),
                rule(read, [""], ["persistentvolumeclaims", "persistentvolumes"]),
                rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
                rule(read, ["storage.k8s.io"], ["csinodes"]),
                rule(read, [""], ["namespaces"]),
                rule(read, ["storage.k8s.io"], ["csidrivers"]),
                rule(read, ["storage.k8s.io"], ["csistoragecapacities"]),
            ]),
        Role(
            name: "system:monitoring",
            rules: [
                urls(
                    ["get"],
                    [
                        "/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis", "/readyz",
                        "/readyz/*",
                    ])
            ]),
        Role(
            name: "system:node",
            rules: [
                rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews", "subjectaccessreviews"]),
                rule(read, [""], ["services"]),
                rule(["create", "get", "list", "watch"], [""], ["nodes"]),
                rule(["patch", "update"], [""], ["nodes/status"]),
                rule(["patch", "update"], [""], ["nodes"]),
                rule(eventWrites, [""], ["events"]),
                rule(read, [""], ["pods"]),
                rule(["create", "delete"], [""], ["pods"]),
                rule(["patch", "update"], [""], ["pods/status"]),
                rule(["create"], [""], ["pods/eviction"]),
                rule(read, [""], ["configmaps", "secrets"]),
                rule(["get"], [""], ["persistentvolumeclaims", "persistentvolumes"]),
                rule(["get"], [""], ["endpoints"]),
                rule(["create", "get", "list", "watch"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
                rule(["create", "delete", "get", "patch", "update"], ["coordination.k8s.io"], ["leases"]),
                rule(["get"], ["storage.k8s.io"], ["volumeattachments"]),
                rule(["create"], [""], ["serviceaccounts/token"]),
                rule(["get", "patch", "update"], [""], ["persistentvolumeclaims/status"]),
                rule(read, ["storage.k8s.io"], ["csidrivers"]),
                rule(["create", "delete", "get", "patch", "update"], ["storage.k8s.io"], ["csinodes"]),
                rule(read, ["node.k8s.io"], ["runtimeclasses"]),
            ]),
        Role(
            name: "system:node-bootstrapper",
            rules: [rule(["create", "get", "list", "watch"], ["certificates.k8s.io"], ["certificatesigningrequests"])]),
        Role(
            name: "system:node-problem-detector",
            rules: [
                rule(["get"], [""], ["nodes"]),
                rule(["patch"], [""], ["nodes/status"]),
                rule(eventWrites, ["", "events.k8s.io"], ["events"]),
            ]),
        Role(
            name: "system:node-proxier",
            rules: [
                rule(["list", "watch"], [""], ["endpoints", "services"]),
                rule(read, [""], ["nodes"]),
                rule(eventWrites, ["", "events.k8s.io"], ["events"]),
                rule(["list", "watch"], ["discovery.k8s.io"], ["endpointslices"]),
            ]),
        Role(
            name: "system:persistent-volume-provisioner",
            rules: [
                rule(["create", "delete", "get", "list", "watch"], [""], ["persistentvolumes"]),
                rule(["get", "list", "update", "watch"], [""], ["persistentvolumeclaims"]),
                rule(read, ["storage.k8s.io"], ["storageclasses"]),
                rule(["watch"], [""], ["events"]),
                rule(eventWrites, ["", "events.k8s.io"], ["events"]),
            ]),
        Role(
            name: "system:public-info-viewer",
            rules: [urls(["get"], ["/healthz", "/livez", "/readyz", "/version", "/version/"])]),
        Role(
            name: "system:service-account-issuer-discovery",
            rules: [urls(["get"], ["/.well-known/openid-configuration", "/openid/v1/jwks"])]),
        Role(
            name: "system:volume-scheduler",
            rules: [
                rule(["get", "list", "patch", "update", "watch"], [""], ["persistentvolumes"]),
                rule(read, ["storage.k8s.io"], ["storageclasses"]),
                rule(["get", "list", "patch", "update", "watch"], [""], ["persistentvolumeclaims"]),
            ]),
    ]

    static let clusterRoleBindings: [Binding] = [
        Binding(name: "cluster-admin", role: "cluster-admin", subjects: [("Group", "system:masters")]),
        Binding(name: "system:basic-user", role: "system:basic-user", subjects: [("Group", "system:authenticated")]),
        Binding(name: "system:discovery", role: "system:discovery", subjects: [("Group", "system:authenticated")]),
        Binding(
            name: "system:kube-controller-manager", role: "system:kube-controller-manager",
            subjects: [("User", "system:kube-controller-manager")]),
        Binding(
            name: "system:kube-dns", role: "system:kube-dns", subjects: [("ServiceAccount", "kube-system/kube-dns")]),
        Binding(
            name: "system:kube-scheduler", role: "system:kube-scheduler", subjects: [("User", "system:kube-scheduler")]),
        Binding(name: "system:monitoring", role: "system:monitoring", subjects: [("Group", "system:monitoring")]),
        Binding(name: "system:node", role: "system:node", subjects: []),
        Binding(name: "system:node-proxier", role: "system:node-proxier", subjects: [("User", "system:kube-proxy")]),
        Binding(
            name: "system:public-info-viewer", role: "system:public-info-viewer",
            subjects: [("Group", "system:authenticated"), ("Group", "system:unauthenticated")]),
        Binding(
            name: "system:service-account-issuer-discovery", role: "system:service-account-issuer-discovery",
            subjects: [("Group", "system:serviceaccounts")]),
        Binding(
            name: "system:volume-scheduler", role: "system:volume-scheduler",
            subjects: [("User", "system:kube-scheduler")]
        ),
    ]

    /// The Roles and RoleBindings of kube-system and kube-public (upstream's namespace_policy.go): what
    /// the control plane's leader election, the extension API servers' authentication reader and the
    /// bootstrap-token controllers need.
    static let namespacedRoles: [Role] = [
        Role(
            name: "extension-apiserver-authentication-reader", namespace: "kube-system",
            rules: [
                rule(["get", "list", "watch"], [""], ["configmaps"], names: ["extension-apiserver-authentication"])
            ]),
        Role(
            name: "system::leader-locking-kube-controller-manager", namespace: "kube-system",
            rules: [
                rule(["watch"], [""], ["configmaps"]),
                rule(["get", "update"], [""], ["configmaps"], names: ["kube-controller-manager"]),
            ]),
        Role(
            name: "system::leader-locking-kube-scheduler", namespace: "kube-system",
            rules: [
                rule(["watch"], [""], ["configmaps"]),
                rule(["get", "update"], [""], ["configmaps"], names: ["kube-scheduler"]),
            ]),
        Role(
            name: "system:controller:bootstrap-signer", namespace: "kube-system",
            rules: [rule(["get", "list", "watch"], [""], ["secrets"])]),
        Role(
            name: "system:controller:cloud-provider", namespace: "kube-system",
            rules: [rule(["create", "get", "list", "watch"], [""], ["configmaps"])]),
        Role(
            name: "system:controller:token-cleaner", namespace: "kube-system",
            rules: [
                rule(["delete", "get", "list", "watch"], [""], ["secrets"]),
                rule(eventWrites, ["", "events.k8s.io"], ["events"]),
            ]),
        Role(
            name: "system:controller:bootstrap-signer", namespace: "kube-public",
            rules: [
                rule(["get", "list", "watch"], [""], ["configmaps"]),
                rule(["update"], [""], ["configmaps"], names: ["cluster-info"]),
                rule(eventWrites, ["", "events.k8s.io"], ["events"]),
            ]),
    ]

    static let namespacedRoleBindings: [Binding] = [
        Binding(
            name: "system::extension-apiserver-authentication-reader", namespace: "kube-system",
            role: "extension-apiserver-authentication-reader",
            subjects: [("User", "system:kube-controller-manager"), ("User", "system:kube-scheduler")]),
        Binding(
            name: "system::leader-locking-kube-controller-manager", namespace: "kube-system",
            role: "system::leader-locking-kube-controller-manager",
            subjects: [
                ("User", "system:kube-controller-manager"), ("ServiceAccount", "kube-system/kube-controller-manager"),
            ]),
        Binding(
            name: "system::leader-locking-kube-scheduler", namespace: "kube-system",
            role: "system::leader-locking-kube-scheduler",
            subjects: [("User", "system:kube-scheduler"), ("ServiceAccount", "kube-system/kube-scheduler")]),
        Binding(
            name: "system:controller:bootstrap-signer", namespace: "kube-system",
            role: "system:controller:bootstrap-signer", subjects: [("ServiceAccount", "kube-system/bootstrap-signer")]),
        Binding(
            name: "system:controller:cloud-provider", namespace: "kube-system",
            role: "system:controller:cloud-provider", subjects: [("ServiceAccount", "kube-system/cloud-provider")]),
        Binding(
            name: "system:controller:token-cleaner", namespace: "kube-system",
            role: "system:controller:token-cleaner", subjects: [("ServiceAccount", "kube-system/token-cleaner")]),
        Binding(
            name: "system:controller:bootstrap-signer", namespace: "kube-public",
            role: "system:controller:bootstrap-signer", subjects: [("ServiceAccount", "kube-system/bootstrap-signer")]),
    ]

    /// The rules an aggregated role starts with: those of the bootstrap roles carrying its label, in
    /// name order, each once (aggregated ones' own aggregates first), what the clusterrole-aggregation
    /// controller would fill in, so admin, edit and view work from the first request even where no
    /// controller runs.
    static func initialRules(of role: Role) -> [PolicyRule] {
        guard let label = role.aggregatesLabel else { return role.rules }
        var rules: [PolicyRule] = []
        for member in clusterRoles.sorted(by: { $0.name < $1.name }) where member.labels[label] == "true" {
            for rule in initialRules(of: member) where !rules.contains(rule) { rules.append(rule) }
        }
        return rules
    }

    static var metadataLabels: JSON { [bootstrappingLabel: "rbac-defaults"] }

    /// The ClusterRole as stored.
    static func object(_ role: Role) -> JSON {
        var labels = metadataLabels
        for (key, value) in role.labels { labels[key] = .string(value) }
        var obj: JSON = [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": role.namespace == nil ? "ClusterRole" : "Role",
            "metadata": [
                "name": .string(role.name), "labels": labels, "annotations": [autoupdateAnnotation: "true"],
            ],
            "rules": .array(initialRules(of: role).map(\.json)),
        ]
        if let namespace = role.namespace { obj["metadata"]["namespace"] = .string(namespace) }
        if let label = role.aggregatesLabel {
            obj["aggregationRule"] = ["clusterRoleSelectors": [["matchLabels": .object([label: "true"])]]]
        }
        return obj
    }

    /// The ClusterRoleBinding as stored.
    static func object(_ binding: Binding) -> JSON {
        let subjects: [JSON] = binding.subjects.map { subject in
            if subject.kind == "ServiceAccount" {
                let parts = subject.name.split(separator: "/", maxSplits: 1).map(String.init)
                return ["kind": "ServiceAccount", "namespace": .string(parts[0]), "name": .string(parts[1])]
            }
            return [
                "apiGroup": "rbac.authorization.k8s.io", "kind": .string(subject.kind), "name": .string(subject.name),
            ]
        }
        let namespaced = binding.namespace != nil
        var obj: JSON = [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": namespaced ? "RoleBinding" : "ClusterRoleBinding",
            "metadata": [
                "name": .string(binding.name), "labels": metadataLabels,
                "annotations": [autoupdateAnnotation: "true"],
            ],
            "roleRef": [
                "apiGroup": "rbac.authorization.k8s.io", "kind": namespaced ? "Role" : "ClusterRole",
                "name": .string(binding.role),
            ],
        ]
        if let namespace = binding.namespace { obj["metadata"]["namespace"] = .string(namespace) }
        if !subjects.isEmpty { obj["subjects"] = .array(subjects) }
        return obj
    }
}

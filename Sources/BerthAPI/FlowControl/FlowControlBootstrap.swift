import Foundation

/// The priority levels and flow schemas kube-apiserver makes at start (its apf bootstrap configuration,
/// values as in 1.32): the mandatory `exempt` and `catch-all` pairs, and the suggested ones that keep
/// nodes, leader election and the control plane ahead of workload traffic. Made when missing; one
/// whose `apf.kubernetes.io/autoupdate-spec` annotation is "true" has its spec put back at each start.
enum FlowControlBootstrap {
    static let autoupdateAnnotation = "apf.kubernetes.io/autoupdate-spec"

    static let allResources: JSON = [
        "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"],
    ]
    static let allNonResources: JSON = ["verbs": ["*"], "nonResourceURLs": ["*"]]

    static func group(_ name: String) -> JSON { ["kind": "Group", "group": ["name": .string(name)]] }
    static func user(_ name: String) -> JSON { ["kind": "User", "user": ["name": .string(name)]] }
    static func serviceAccount(_ namespace: String, _ name: String) -> JSON {
        ["kind": "ServiceAccount", "serviceAccount": ["namespace": .string(namespace), "name": .string(name)]]
    }
    static let everyone = [group("system:unauthenticated"), group("system:authenticated")]

    static func level(
        _ name: String, shares: Int64, lendable: Int64, queues: Int64? = nil, handSize: Int64 = 6,
        queueLength: Int64 = 50
    ) -> JSON {
        var limitResponse: JSON = ["type": "Reject"]
        if let queues {
            limitResponse = [
                "type": "Queue",
                "queuing": ["queues": .int(queues), "handSize": .int(handSize), "queueLengthLimit": .int(queueLength)],
            ]
        }
        return object(
            "PriorityLevelConfiguration", name,
            spec: [
                "type": "Limited",
                "limited": [
                    "nominalConcurrencyShares": .int(shares), "lendablePercent": .int(lendable),
                    "limitResponse": limitResponse,
                ],
            ])
    }

    static func schema(
        _ name: String, level: String, precedence: Int64, distinguisher: String?, subjects: [JSON],
        resourceRules: [JSON] = [allResources], nonResourceRules: [JSON] = [allNonResources]
    ) -> JSON {
        var rule: JSON = ["subjects": .array(subjects)]
        if !resourceRules.isEmpty { rule["resourceRules"] = .array(resourceRules) }
        if !nonResourceRules.isEmpty { rule["nonResourceRules"] = .array(nonResourceRules) }
        var spec: JSON = [
            "priorityLevelConfiguration": ["name": .string(level)], "matchingPrecedence": .int(precedence),
            "rules": [rule],
        ]
        if let distinguisher { spec["distinguisherMethod"] = ["type": .string(distinguisher)] }
        return object("FlowSchema", name, spec: spec)
    }

    static func object(_ kind: String, _ name: String, spec: JSON) -> JSON {
        [
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": .string(kind),
            "metadata": ["name": .string(name), "annotations": .object([autoupdateAnnotation: "true"])],
            "spec": spec,
        ]
    }

    static let levels: [JSON] = [
        object("PriorityLevelConfiguration", "exempt", spec: ["type": "Exempt", "exempt": [:]]),
        level("catch-all", shares: 5, lendable: 0),
        level("system", shares: 30, lendable: 33, queues: 64),
        level("node-high", shares: 40, lendable: 25, queues: 64),
        level("leader-election", shares: 10, lendable: 0, queues: 16, handSize: 4),
        level("workload-high", shares: 40, lendable: 50, queues: 128),
        level("workload-low", shares: 100, lendable: 90, queues: 128),
        level("global-default", shares: 20, lendable: 50, queues: 128),
    ]

    static let leaseRule: JSON = [
        "verbs": ["get", "create", "update"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
        "namespaces": ["*"],
    ]

    static let schemas: [JSON] = [
        schema("exempt", level: "exempt", precedence: 1, distinguisher: nil, subjects: [group("system:masters")]),
        schema(
            "probes", level: "exempt", precedence: 2, distinguisher: nil, subjects: everyone, resourceRules: [],
            nonResourceRules: [["verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]]]),
        schema(
            "system-leader-election", level: "leader-election", precedence: 100, distinguisher: "ByUser",
            subjects: [
                user("system:kube-controller-manager"), user("system:kube-scheduler"),
                serviceAccount("kube-system", "*"),
            ],
            resourceRules: [
                [
                    "verbs": ["get", "create", "update"], "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"], "namespaces": ["kube-system"],
                ]
            ], nonResourceRules: []),
        schema(
            "endpoint-controller", level: "workload-high", precedence: 150, distinguisher: "ByUser",
            subjects: [
                user("system:kube-controller-manager"), serviceAccount("kube-system", "endpoint-controller"),
                serviceAccount("kube-system", "endpointslicemirroring-controller"),
            ],
            resourceRules: [
                [
                    "verbs": ["get", "create", "update"], "apiGroups": [""], "resources": ["endpoints"],
                    "namespaces": ["*"],
                ]
            ], nonResourceRules: []),
        schema(
            "workload-leader-election", level: "leader-election", precedence: 200, distinguisher: "ByUser",
            subjects: [serviceAccount("kube-system", "*")], resourceRules: [leaseRule], nonResourceRules: []),
        schema(
            "system-node-high", level: "node-high", precedence: 400, distinguisher: "ByUser",
            subjects: [group("system:nodes")],
            resourceRules: [
                [
                    "verbs": ["*"], "apiGroups": [""], "resources": ["nodes", "nodes/status"], "clusterScope": true,
                ],
                ["verbs": ["*"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "namespaces": ["*"]],
            ], nonResourceRules: []),
        schema(
            "system-nodes", level: "system", precedence: 500, distinguisher: "ByUser",
            subjects: [group("system:nodes")]),
        schema(
            "kube-controller-manager", level: "workload-high", precedence: 800, distinguisher: "ByNamespace",
            subjects: [user("system:kube-controller-manager")]),
        schema(
            "kube-scheduler", level: "workload-high", precedence: 800, distinguisher: "ByNamespace",
            subjects: [user("system:kube-scheduler")]),
        schema(
            "kube-system-service-accounts", level: "workload-high", precedence: 900, distinguisher: "ByNamespace",
            subjects: [serviceAccount("kube-system", "*")]),
        schema(
            "service-accounts", level: "workload-low", precedence: 9000, distinguisher: "ByUser",
            subjects: [group("system:serviceaccounts")]),
        schema(
            "global-default", level: "global-default", precedence: 9900, distinguisher: "ByUser", subjects: everyone),
        schema("catch-all", level: "catch-all", precedence: 10000, distinguisher: "ByUser", subjects: everyone),
    ]
}

extension Handler {
    /// Makes the bootstrap configuration's missing objects and puts back the spec of those marked for it.
    func ensureFlowControlBootstrap() async throws {
        let call = Call(
            method: .put, path: "", query: [:], headers: [:], body: [], user: AdmissionAttributes.loopbackUser)
        for (r, objects) in [
            (Registry.priorityLevelConfigurations, FlowControlBootstrap.levels),
            (Registry.flowSchemas, FlowControlBootstrap.schemas),
        ] {
            for wanted in objects {
                let name = wanted["metadata"]["name"].string ?? ""
                guard var existing = try await storedObject(r, namespace: nil, name: name) else {
                    do { _ = try await createObject(r, namespace: nil, obj: wanted, dryRun: false) } catch let e
                        as APIError where e.code == 409
                    {}
                    continue
                }
                guard
                    existing["metadata"]["annotations"][FlowControlBootstrap.autoupdateAnnotation].string == "true"
                else { continue }
                var defaulted = wanted
                r.strategy.applyDefaults(&defaulted, creating: true)
                guard existing["spec"] != defaulted["spec"] else { continue }
                existing["spec"] = defaulted["spec"]
                do {
                    _ = try await updateObject(
                        r, namespace: nil, name: name, new: existing, subresource: nil, call: call)
                } catch let e as APIError where e.code == 409 {}
            }
        }
        await server.flowControl.invalidate()
    }
}

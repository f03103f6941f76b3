import BerthAPI
import Testing

/// What objects cost against a ResourceQuota and which quotas select them (upstream's evaluators).
@Suite("quota usage")
struct QuotaUsageTests {
    let pods = Registry.find(group: "", version: "v1", plural: "pods")!
    let services = Registry.find(group: "", version: "v1", plural: "services")!
    let deployments = Registry.find(group: "apps", version: "v1", plural: "deployments")!

    func pod(_ extra: JSON = [:], phase: String = "Running") -> JSON {
        var pod: JSON = [
            "metadata": ["name": "p"],
            "spec": [
                "containers": [
                    [
                        "name": "a",
                        "resources": ["requests": ["cpu": "250m", "memory": "64Mi"], "limits": ["memory": "128Mi"]],
                    ],
                    ["name": "b", "resources": ["requests": ["cpu": "250m", "memory": "64Mi"]]],
                ],
                "initContainers": [["name": "init", "resources": ["requests": ["cpu": "2"]]]],
            ],
            "status": ["phase": .string(phase)],
        ]
        for (key, value) in extra.object ?? [:] { pod["spec"][key] = value }
        return pod
    }

    @Test func aPodUsesItsContainersSumOrItsLargestInitContainer() {
        let usage = QuotaUsage.usage(of: pod(), pods)
        // cpu: max(250m + 250m, 2) = 2; memory: 128Mi requested in all, in the binary form it was written in.
        #expect(usage.text("requests.cpu") == "2" && usage.text("cpu") == "2")
        #expect(usage.text("requests.memory") == "128Mi" && usage.text("memory") == "128Mi")
        #expect(usage.text("limits.memory") == "128Mi" && usage.milli["limits.cpu"] == nil)
        #expect(usage.text("pods") == "1" && usage.text("count/pods") == "1")
        // A finished pod costs only its count.
        let done = QuotaUsage.usage(of: pod(phase: "Succeeded"), pods)
        #expect(done.names == ["count/pods"])
    }

    @Test func servicesCountLoadBalancersAndNodePorts() {
        let service: JSON = ["spec": ["type": "LoadBalancer", "ports": [["port": 80], ["port": 443]]]]
        let usage = QuotaUsage.usage(of: service, services)
        #expect(usage.text("services.loadbalancers") == "1" && usage.text("services.nodeports") == "2")
        var noPorts = service
        noPorts["spec"]["allocateLoadBalancerNodePorts"] = false
        #expect(QuotaUsage.usage(of: noPorts, services).milli["services.nodeports"] == nil)
        // Other kinds are counted by `count/<plural>.<group>` only.
        #expect(QuotaUsage.usage(of: [:], deployments).names == ["count/deployments.apps"])
        #expect(
            QuotaUsage.tracked(["count/deployments.apps", "pods", "cpu"], by: deployments) == ["count/deployments.apps"]
        )
        #expect(
            QuotaUsage.tracked(["requests.cpu", "services", "hugepages-2Mi"], by: pods) == [
                "requests.cpu", "hugepages-2Mi",
            ])
    }

    @Test func scopesSelectPodsOnly() {
        let terminating: JSON = ["spec": ["scopes": ["Terminating"], "hard": ["pods": "1"]]]
        #expect(!QuotaUsage.quota(terminating, selects: pod(), pods))
        #expect(QuotaUsage.quota(terminating, selects: pod(["activeDeadlineSeconds": 30]), pods))
        #expect(!QuotaUsage.quota(terminating, selects: [:], services))
        let priority: JSON = [
            "spec": [
                "scopeSelector": [
                    "matchExpressions": [["scopeName": "PriorityClass", "operator": "In", "values": ["high"]]]
                ]
            ]
        ]
        #expect(QuotaUsage.quota(priority, selects: pod(["priorityClassName": "high"]), pods))
        #expect(!QuotaUsage.quota(priority, selects: pod(["priorityClassName": "low"]), pods))
        let bestEffort: JSON = ["spec": ["scopes": ["BestEffort"]]]
        #expect(!QuotaUsage.quota(bestEffort, selects: pod(), pods))
        #expect(QuotaUsage.quota(bestEffort, selects: ["spec": ["containers": [["name": "c"]]]], pods))
        // An unscoped quota selects everything.
        #expect(QuotaUsage.quota(["spec": ["hard": ["services": "1"]]], selects: [:], services))
    }
}

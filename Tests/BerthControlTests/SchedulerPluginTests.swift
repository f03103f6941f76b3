import BerthAPI
import BerthKube
@testable import BerthControl
import Testing

/// The scheduler's filters and scores on hand-made nodes and pods — no server.
@Suite("scheduler plugins")
struct SchedulerPluginTests {
    static func node(
        _ name: String, cpu: String = "4", memory: String = "8Gi", pods: String = "110", labels: [String: String] = [:],
        taints: [JSON] = [], unschedulable: Bool = false, ready: Bool = true
    ) -> JSON {
        var l = labels
        l["kubernetes.io/hostname"] = name
        return [
            "metadata": ["name": .string(name), "labels": JSON.strings(l)],
            "spec": ["taints": .array(taints), "unschedulable": .bool(unschedulable)],
            "status": [
                "allocatable": ["cpu": .string(cpu), "memory": .string(memory), "pods": .string(pods)],
                "conditions": [["type": "Ready", "status": ready ? "True" : "False"]],
            ],
        ]
    }
    static func pod(
        _ name: String, ns: String = "default", labels: [String: String] = [:], cpu: String? = nil,
        spec extra: JSON = [:],
        node: String? = nil, rv: Int = 1
    ) -> JSON {
        var c: JSON = ["name": "c", "image": "busybox"]
        if let cpu { c["resources"] = ["requests": ["cpu": .string(cpu)]] }
        var spec: JSON = ["containers": [c]]
        for (k, v) in extra.object ?? [:] { spec[k] = v }
        if let node { spec["nodeName"] = .string(node) }
        return [
            "metadata": [
                "name": .string(name), "namespace": .string(ns), "labels": JSON.strings(labels),
                "uid": .string("uid-\(name)"),
                "resourceVersion": .string(String(rv)),
            ],
            "spec": spec, "status": ["phase": "Pending"],
        ]
    }

    /// A cache holding `nodes` and the already placed `pods`.
    static func cache(_ nodes: [JSON], placed: [JSON] = []) -> Scheduler.Cache {
        let c = Scheduler.Cache(schedulerName: "default-scheduler", percentage: 0)
        for n in nodes { c.nodeChanged(.added(n.typedNode)) }
        for p in placed { c.podChanged(.added(p.typedPod)) }
        return c
    }
    /// Schedules one pod; returns the node or the failure message.
    static func schedule(_ c: Scheduler.Cache, _ pod: JSON) -> (node: String?, message: String?) {
        c.podChanged(.added(pod.typedPod))
        let batch = c.popBatch(10)
        for key in batch {
            switch c.scheduleOne(key) {
            case .bound(_, let n): return (n, nil)
            case .unschedulable(_, let m), .preempting(_, let m, _): return (nil, m)
            case .none: continue
            }
        }
        return (nil, nil)
    }

    @Test func resourcesFitAndReasonCounts() {
        let c = Self.cache([Self.node("a", cpu: "1"), Self.node("b", cpu: "2"), Self.node("c", cpu: "500m")])
        let r = Self.schedule(c, Self.pod("p", cpu: "1500m"))
        #expect(r.node == "b")
        let big = Self.schedule(c, Self.pod("q", cpu: "1"))
        #expect(big.node == "a")  // b has 500m left, c 500m; only a fits
        let none = Self.schedule(c, Self.pod("r", cpu: "3"))
        #expect(none.node == nil)
        #expect(
            none.message
                == "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
        )
    }

    @Test func podCountLimit() {
        let c = Self.cache([Self.node("a", pods: "1")], placed: [Self.pod("x", node: "a")])
        #expect(
            Self.schedule(c, Self.pod("p")).message
                == "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        )
    }

    @Test func taintsAndTolerations() {
        let taint: JSON = ["key": "dedicated", "value": "gpu", "effect": "NoSchedule"]
        let c = Self.cache([Self.node("gpu", taints: [taint]), Self.node("cordoned", unschedulable: true)])
        let r = Self.schedule(c, Self.pod("p"))
        #expect(
            r.message
                == "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        )
        let tolerant = Self.pod(
            "q",
            spec: ["tolerations": [["key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"]]])
        #expect(Self.schedule(c, tolerant).node == "gpu")
    }

    @Test func notReadyNodesAreAvoided() {
        let c = Self.cache([Self.node("down", ready: false), Self.node("up")])
        for i in 0..<5 { #expect(Self.schedule(c, Self.pod("p\(i)")).node == "up") }
    }

    @Test func nodeSelectorAndAffinity() {
        let c = Self.cache([
            Self.node("a", labels: ["disk": "ssd", "zone": "z1"]),
            Self.node("b", labels: ["disk": "hdd", "zone": "z2"]),
            Self.node("c", labels: ["zone": "z3"]),
        ])
        #expect(Self.schedule(c, Self.pod("sel", spec: ["nodeSelector": ["disk": "ssd"]])).node == "a")
        let required: JSON = [
            "nodeAffinity": [
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    "nodeSelectorTerms": [
                        [
                            "matchExpressions": [
                                ["key": "zone", "operator": "In", "values": ["z2", "z3"]],
                                ["key": "disk", "operator": "DoesNotExist"],
                            ]
                        ]
                    ]
                ]
            ]
        ]
        #expect(Self.schedule(c, Self.pod("aff", spec: ["affinity": required])).node == "c")
        let preferred: JSON = [
            "nodeAffinity": [
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    [
                        "weight": 100,
                        "preference": ["matchExpressions": [["key": "disk", "operator": "In", "values": ["hdd"]]]],
                    ]
                ]
            ]
        ]
        #expect(Self.schedule(c, Self.pod("pref", spec: ["affinity": preferred])).node == "b")
        let impossible: JSON = [
            "nodeAffinity": [
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    "nodeSelectorTerms": [
                        ["matchExpressions": [["key": "zone", "operator": "In", "values": ["mars"]]]]
                    ]
                ]
            ]
        ]
        #expect(
            Self.schedule(c, Self.pod("none", spec: ["affinity": impossible])).message
                == "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        )
    }

    @Test func interPodAffinityAndAntiAffinity() {
        let nodes = [
            Self.node("a", labels: ["zone": "z1"]), Self.node("b", labels: ["zone": "z1"]),
            Self.node("c", labels: ["zone": "z2"]),
        ]
        let c = Self.cache(nodes, placed: [Self.pod("db", labels: ["app": "db"], node: "c")])
        let near: JSON = [
            "podAffinity": [
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    ["labelSelector": ["matchLabels": ["app": "db"]], "topologyKey": "zone"]
                ]
            ]
        ]
        #expect(Self.schedule(c, Self.pod("web", spec: ["affinity": near])).node == "c")
        let away: JSON = [
            "podAntiAffinity": [
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    ["labelSelector": ["matchLabels": ["app": "db"]], "topologyKey": "zone"]
                ]
            ]
        ]
        let r = Self.schedule(c, Self.pod("cache", spec: ["affinity": away]))
        #expect(r.node == "a" || r.node == "b")
        // Contradictory: must be with db and away from db in the same zones.
        let both: JSON = ["podAffinity": near["podAffinity"], "podAntiAffinity": away["podAntiAffinity"]]
        let x = Self.schedule(c, Self.pod("confused", spec: ["affinity": both]))
        #expect(x.node == nil)
        #expect(x.message?.hasPrefix("0/3 nodes are available:") == true)
        #expect(x.message?.contains("didn't match pod") == true)
    }

    @Test func existingPodsAntiAffinityIsRespected() {
        let lonely: JSON = [
            "podAntiAffinity": [
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    ["labelSelector": ["matchLabels": ["app": "web"]], "topologyKey": "kubernetes.io/hostname"]
                ]
            ]
        ]
        let c = Self.cache(
            [Self.node("a"), Self.node("b")],
            placed: [Self.pod("solo", labels: ["app": "solo"], spec: ["affinity": lonely], node: "a")])
        for i in 0..<3 { #expect(Self.schedule(c, Self.pod("web\(i)", labels: ["app": "web"])).node == "b") }
    }

    @Test func firstPodOfAnAffinityGroupMayGoAnywhere() {
        let c = Self.cache([Self.node("a", labels: ["zone": "z1"])])
        let selfAffinity: JSON = [
            "podAffinity": [
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    ["labelSelector": ["matchLabels": ["app": "web"]], "topologyKey": "zone"]
                ]
            ]
        ]
        #expect(Self.schedule(c, Self.pod("w", labels: ["app": "web"], spec: ["affinity": selfAffinity])).node == "a")
    }

    @Test func topologySpreadDoNotSchedule() {
        let c = Self.cache([
            Self.node("a", labels: ["zone": "z1"]), Self.node("b", labels: ["zone": "z2"]),
            Self.node("c", labels: ["zone": "z3"]),
        ])
        let spread: JSON = [
            [
                "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": ["matchLabels": ["app": "web"]],
            ]
        ]
        var perZone: [String: Int] = [:]
        for i in 0..<9 {
            let r = Self.schedule(
                c, Self.pod("w\(i)", labels: ["app": "web"], spec: ["topologySpreadConstraints": spread]))
            perZone[r.node ?? "none", default: 0] += 1
        }
        #expect(perZone == ["a": 3, "b": 3, "c": 3])
    }

    @Test func spreadWithMissingLabelIsExplained() {
        let c = Self.cache([Self.node("a")])
        let spread: JSON = [
            [
                "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": ["matchLabels": ["app": "web"]],
            ]
        ]
        #expect(
            Self.schedule(c, Self.pod("w", labels: ["app": "web"], spec: ["topologySpreadConstraints": spread])).message
                == "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label). preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )
    }

    @Test func leastAllocatedSpreadsLoad() {
        let c = Self.cache([Self.node("a"), Self.node("b")])
        var count: [String: Int] = [:]
        for i in 0..<10 { count[Self.schedule(c, Self.pod("p\(i)", cpu: "100m")).node ?? "none", default: 0] += 1 }
        #expect(count == ["a": 5, "b": 5])
    }

    @Test func otherSchedulersPodsAreLeftAlone() {
        let c = Self.cache([Self.node("a")])
        #expect(Self.schedule(c, Self.pod("p", spec: ["schedulerName": "other"])).node == nil)
        #expect(c.pendingCount == 0)
    }

    @Test func quantities() {
        #expect(Quantity.milli("100m") == 100)
        #expect(Quantity.units("1Gi") == 1 << 30)
    }
}

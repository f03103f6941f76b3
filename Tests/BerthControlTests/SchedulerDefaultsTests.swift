import BerthAPI
import BerthAgent
@testable import BerthControl
import Foundation
import Testing

/// kube-scheduler's defaults for pods that say little: resource scores count a pod without requests as
/// 100m CPU and 200 MiB, and pods that something selects (a ReplicaSet, a Service) are spread by the
/// system-default topology constraints (hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway).
///
/// The expected distributions are kube-scheduler's: worked out from its plugins' formulas
/// (NodeResourcesFit LeastAllocated on non-zero requests, NodeResourcesBalancedAllocation on real
/// requests and skipped for pods without any, PodTopologySpread with log(domains+2) weights and
/// min–max normalisation, TaintToleration; weights 1, 1, 2, 3), ties drawn at random. Where ties make
/// the exact nodes vary, the test states the counts as a multiset (the same for every draw).
@Suite("scheduler defaults")
struct SchedulerDefaultsTests {
    typealias P = SchedulerPluginTests

    static func node(_ name: String, zone: String?, cpu: String = "4", memory: String = "8Gi") -> JSON {
        P.node(name, cpu: cpu, memory: memory, labels: zone.map { ["topology.kubernetes.io/zone": $0] } ?? [:])
    }

    /// A pod of ReplicaSet `owner` (labels app=owner), with optional requests.
    static func member(_ owner: String, _ i: Int, cpu: String? = nil, memory: String? = nil) -> JSON {
        var pod = P.pod("\(owner)-\(i)", labels: ["app": owner])
        var requests: JSON = [:]
        if let cpu { requests["cpu"] = .string(cpu) }
        if let memory { requests["memory"] = .string(memory) }
        if requests.object?.isEmpty == false {
            pod["spec"]["containers"] = [["name": "c", "image": "busybox", "resources": ["requests": requests]]]
        }
        pod["metadata"]["ownerReferences"] = [
            [
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": .string(owner),
                "uid": .string("rs-\(owner)"), "controller": true,
            ]
        ]
        return pod
    }

    /// A cache whose ReplicaSets select app=<name>, and whose Services are `services` (selectors).
    static func cache(_ nodes: [JSON], services: [[String: String]] = []) -> Scheduler.Cache {
        let c = P.cache(nodes)
        c.spreadSources = DefaultSpreadSources(
            controllerSelector: { _, kind, group, name in
                kind == "ReplicaSet" && group == "apps"
                    ? LabelSelector(object: ["matchLabels": ["app": .string(name)]]) : nil
            },
            serviceSelectors: { _ in services })
        return c
    }

    /// Schedules `pods` in order; returns pods per node (every node listed).
    static func place(_ c: Scheduler.Cache, _ pods: [JSON], nodes: [String]) throws -> [String: Int] {
        var count = Dictionary(uniqueKeysWithValues: nodes.map { ($0, 0) })
        for pod in pods {
            let r = P.schedule(c, pod)
            let node = try #require(r.node, "\(pod["metadata"]["name"]) not placed: \(r.message ?? "")")
            // The cache has assumed the placement: the next pod sees it, as before binding completes.
            count[node, default: 0] += 1
        }
        return count
    }

    @Test func aReplicaSetWithoutRequestsSpreadsEvenly() throws {
        let names = (0..<50).map { String(format: "n%02d", $0) }
        let c = Self.cache(names.map { Self.node($0, zone: "zone-\($0.last!)") })
        let placed = try Self.place(c, (0..<100).map { Self.member("web", $0) }, nodes: names)
        #expect(placed.values.allSatisfy { $0 == 2 }, "100 pods on 50 nodes: 2 each, got \(placed)")
    }

    @Test func barePodsWithoutRequestsSpreadByTheirDefaultRequests() throws {
        // No owner, no Service: no default spreading — the non-zero requests alone spread them.
        let names = (0..<10).map { "n\($0)" }
        let c = Self.cache(names.map { Self.node($0, zone: nil) })
        let placed = try Self.place(c, (0..<30).map { P.pod("bare-\($0)") }, nodes: names)
        #expect(placed.values.allSatisfy { $0 == 3 }, "\(placed)")
    }

    @Test func zonesOfUnequalSizeBalanceZonesAndNodes() throws {
        // Zone a: one node; zone b: three. kube-scheduler: 3 in zone a, and 2, 2, 1 on zone b's nodes.
        let c = Self.cache([
            Self.node("a1", zone: "a"), Self.node("b1", zone: "b"), Self.node("b2", zone: "b"),
            Self.node("b3", zone: "b"),
        ])
        let placed = try Self.place(c, (0..<8).map { Self.member("web", $0) }, nodes: ["a1", "b1", "b2", "b3"])
        #expect(placed["a1"] == 3, "\(placed)")
        #expect(["b1", "b2", "b3"].map { placed[$0] ?? 0 }.sorted() == [1, 2, 2], "\(placed)")
    }

    @Test func aNodeFullOfRequestsGetsFewerPodsWithout() throws {
        // n2 holds a pod asking 3 of its 4 CPUs; then 6 pods without requests. kube-scheduler: n2 gets 1,
        // the others 2 and 3.
        let c = Self.cache([Self.node("n1", zone: "a"), Self.node("n2", zone: "a"), Self.node("n3", zone: "a")])
        var big = Self.member("big", 0, cpu: "3", memory: "1Gi")
        big["spec"]["nodeName"] = "n2"
        c.podChanged(.added(big.typedPod))
        let placed = try Self.place(c, (0..<6).map { Self.member("web", $0) }, nodes: ["n1", "n2", "n3"])
        #expect(placed["n2"] == 1, "\(placed)")
        #expect([placed["n1"] ?? 0, placed["n3"] ?? 0].sorted() == [2, 3], "\(placed)")
    }

    @Test func mixedWorkloadsWithAndWithoutRequests() throws {
        // 4 nodes in 2 zones: a database of 4 pods asking 1500m + 1 GiB, then 8 web pods without requests.
        // kube-scheduler: one db pod and two web pods per node.
        let names = ["n0", "n1", "n2", "n3"]
        let c = Self.cache(names.enumerated().map { Self.node($1, zone: "z\($0 % 2)") })
        let db = try Self.place(c, (0..<4).map { Self.member("db", $0, cpu: "1500m", memory: "1Gi") }, nodes: names)
        let web = try Self.place(c, (0..<8).map { Self.member("web", $0) }, nodes: names)
        #expect(db.values.allSatisfy { $0 == 1 }, "\(db)")
        #expect(web.values.allSatisfy { $0 == 2 }, "\(web)")
    }

    @Test func podsSelectedOnlyByAServiceAreSpreadToo() throws {
        // No owner, but a Service selects app=api: the default constraints use its selector.
        let names = (0..<4).map { "n\($0)" }
        let c = Self.cache(
            names.map { Self.node($0, zone: "a", cpu: "64", memory: "256Gi") }, services: [["app": "api"]])
        let pods = (0..<8).map { P.pod("api-\($0)", labels: ["app": "api"]) }
        let spread = try #require(c.lock.withLock { c.softSpread(for: PodInfo(pods[0])) })
        #expect(spread.constraints.map(\.topologyKey) == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"])
        #expect(spread.constraints.map(\.maxSkew) == [3, 5])
        #expect(spread.ownerUID == nil)
        let placed = try Self.place(c, pods, nodes: names)
        #expect(placed.values.allSatisfy { $0 == 2 }, "\(placed)")
    }

    @Test func ownConstraintsReplaceTheDefaults() throws {
        let c = Self.cache([Self.node("n0", zone: "a")])
        var pod = Self.member("web", 0)
        pod["spec"]["topologySpreadConstraints"] = [
            [
                "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": ["matchLabels": ["app": "web"]],
            ]
        ]
        #expect(
            c.lock.withLock { c.softSpread(for: PodInfo(pod)) } == nil,
            "only hard constraints of its own: no soft spreading at all")
        #expect(
            c.lock.withLock { c.softSpread(for: PodInfo(Self.member("web", 1))) } != nil, "no constraints: the defaults"
        )
        #expect(
            c.lock.withLock { c.softSpread(for: PodInfo(P.pod("lonely"))) } == nil, "nothing selects it: no defaults")
    }

    /// The per-owner zone counts the default zone term reads, kept as pods are placed and as nodes
    /// change zone, go and come, give the scores the walk over every node gives.
    @Test func zoneCountsKeptIncrementallyScoreAsTheWalkDoes() throws {
        let names = (0..<12).map { "n\($0)" } + ["bare"]
        let nodes = names.enumerated().map { i, name in Self.node(name, zone: name == "bare" ? nil : "z\(i % 3)") }
        let c = Self.cache(nodes)
        _ = try Self.place(
            c, (0..<40).map { Self.member("web", $0) } + (0..<9).map { Self.member("db", $0) }, nodes: names)
        func compare(_ when: String) throws {
            _ = c.popBatch(0)
            try c.lock.withLock {
                if c.nodeListDirty {
                    c.table.rebuild(
                        c.nodes.values.filter(\.exists).sorted { $0.name < $1.name }, keyCount: c.symbols.keyCount)
                    c.nodeListDirty = false
                }
                // The counts equal a recount from the existing nodes' pods.
                var recount: [String: [String: Int32]] = [:]
                for node in c.nodes.values where node.exists {
                    for pod in node.pods.values {
                        recount[pod.ownerUID, default: [:]][node.labels[SoftSpread.zoneKey] ?? "", default: 0] += 1
                    }
                }
                #expect(c.ownerZoneCounts == recount, "\(when)")
                for owner in ["web", "db"] {
                    let pod = PodInfo(Self.member(owner, 99).typedPod)
                    let spread = try #require(c.softSpread(for: pod))
                    let state = c.prepare(pod)
                    let feasible = Array(c.table.nodes.indices)
                    #expect(
                        c.spreadScores(pod, spread, feasible, state)
                            == c.spreadScores(pod, spread, feasible, state, domainCounts: false), "\(when), \(owner)")
                }
            }
        }
        try compare("placed")
        // n0 moves to a zone of its own, n1 goes, bare gets a zone, n1 comes back.
        var moved = Self.node("n0", zone: "z9")
        moved["metadata"]["resourceVersion"] = "2"
        c.nodeChanged(.updated(old: nodes[0].typedNode, new: moved.typedNode))
        c.nodeChanged(.deleted(nodes[1].typedNode))
        c.nodeChanged(.updated(old: nodes[12].typedNode, new: Self.node("bare", zone: "z1").typedNode))
        try compare("changed")
        c.nodeChanged(.added(nodes[1].typedNode))
        try compare("back")
    }

    @Test func leastAllocatedAndBalancedAllocationScores() {
        // Upstream's integer arithmetic: (cap − used) × 100 / cap per resource, averaged.
        #expect(Scheduler.Cache.leastAllocated(cap: (4000, 8192), used: (100, 200)) == (97 + 97) / 2)
        #expect(Scheduler.Cache.leastAllocated(cap: (4000, 8192), used: (5000, 200)) == (0 + 97) / 2)
        // 1 − |0.5 − 0.25| / 2 = 0.875
        #expect(Scheduler.Cache.balancedAllocation(cap: (4000, 8000), used: (2000, 2000)) == 87)
        #expect(Scheduler.Cache.balancedAllocation(cap: (4000, 8000), used: (2000, 4000)) == 100)
    }
}

extension ControlTests {
    @Suite(
        "scheduler defaults on hollow nodes",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    struct SchedulerDefaultsClusterTests {
        /// The report that found it: 100 replicas without requests on 50 hollow nodes all landed on one.
        @Test func kubectlCreateDeploymentSpreadsOverHollowNodes() async throws {
            let c = try await Cluster(hollowNodes: 50)
            defer { Task { await c.stop() } }
            try await c.waitFor(Registry.nodes, "50 nodes") { $0.count == 50 }
            #expect(try c.kubectl("create", "deployment", "web", "--image=busybox:1", "--replicas=100").ok)
            try await c.waitFor(Registry.pods, namespace: "default", timeout: .seconds(60), "100 bound pods") { pods in
                pods.filter { !($0["spec"]["nodeName"].string ?? "").isEmpty }.count == 100
            }
            let out = try c.kubectl("get", "pods", "-o", "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}")
            var perNode: [String: Int] = [:]
            for line in out.stdout.split(separator: "\n") { perNode[String(line), default: 0] += 1 }
            #expect(perNode.count == 50, "every node got pods: \(perNode.count) nodes used")
            #expect(perNode.values.allSatisfy { $0 == 2 }, "2 per node, as kube-scheduler places them: \(perNode)")
        }
    }
}

import BerthAPI
import BerthAgent
import BerthControl
import BerthStore
import Foundation
import Testing

extension ControlTests {
    @Suite("daemon sets") struct DaemonSetTests {
        static func daemonSet(
            _ name: String, nodeSelector: [String: String] = [:], strategy: JSON = .null,
            image: String = "busybox:1"
        ) -> JSON {
            var spec: JSON = ["containers": [["name": "agent", "image": .string(image)]]]
            if !nodeSelector.isEmpty { spec["nodeSelector"] = .strings(nodeSelector) }
            var ds: JSON = [
                "metadata": ["name": .string(name), "namespace": "default"],
                "spec": [
                    "selector": ["matchLabels": ["app": .string(name)]],
                    "template": ["metadata": ["labels": ["app": .string(name)]], "spec": spec],
                ],
            ]
            if strategy != .null { ds["spec"]["updateStrategy"] = strategy }
            return ds
        }

        /// The live (not terminating) pods of a DaemonSet, by the node they are for.
        static func podsByNode(_ items: [JSON], _ ds: String) -> [String: [JSON]] {
            var out: [String: [JSON]] = [:]
            for p in items
            where p["metadata"]["ownerReferences"][0]["name"].string == ds && p["metadata"]["deletionTimestamp"].isNull
            {
                let node =
                    p["spec"]["nodeName"].string
                    ?? p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                        "nodeSelectorTerms"][0]["matchFields"][0]["values"][0].string
                    ?? ""
                out[node, default: []].append(p)
            }
            return out
        }
        static func running(_ p: JSON) -> Bool {
            (p["status"]["conditions"].array ?? []).contains { $0["type"] == "Ready" && $0["status"] == "True" }
        }
        static func status(_ c: Cluster, _ name: String) async throws -> JSON {
            try await c.client.get(Registry.daemonSets, namespace: "default", name: name)?["status"] ?? .null
        }

        @Test func onePodPerEligibleNode() async throws {
            try await withFixtureCluster { c in
                try await ControllerFixtures.createNodes(
                    c.client,
                    [
                        ControllerFixtures.node("n1", labels: ["role": "worker"]),
                        ControllerFixtures.node(
                            "n2", labels: ["role": "worker"],
                            taints: [["key": "dedicated", "value": "db", "effect": "NoSchedule"]]),
                        ControllerFixtures.node(
                            "n3", labels: ["role": "worker"],
                            taints: [["key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"]]),
                        ControllerFixtures.node("n4"),
                    ])
                let kubelet = FixtureKubelet(c.client)
                defer { kubelet.stop() }
                let ds = try await c.client.create(
                    Registry.daemonSets, Self.daemonSet("agent", nodeSelector: ["role": "worker"]))
                try await c.waitFor(Registry.pods, namespace: "default", "pods on n1 and n3") { items in
                    let m = Self.podsByNode(items, "agent")
                    return Set(m.keys) == ["n1", "n3"] && m.values.allSatisfy { $0.count == 1 && Self.running($0[0]) }
                }
                let pods = Self.podsByNode(try await c.client.list(Registry.pods, namespace: "default").items, "agent")
                let pod = try #require(pods["n1"]?.first)
                let owner = pod["metadata"]["ownerReferences"][0]
                #expect(
                    owner == [
                        "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": ds["metadata"]["uid"],
                        "controller": true, "blockOwnerDeletion": true,
                    ])
                #expect(pod["metadata"]["name"].string?.hasPrefix("agent-") == true)
                let hash = try #require(pod["metadata"]["labels"]["controller-revision-hash"].string)
                #expect(
                    !hash.isEmpty && pods["n3"]?.first?["metadata"]["labels"]["controller-revision-hash"].string == hash
                )
                #expect(
                    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [
                        "nodeSelectorTerms": [
                            ["matchFields": [["key": "metadata.name", "operator": "In", "values": ["n1"]]]]
                        ]
                    ])
                let tolerations = Set(
                    (pod["spec"]["tolerations"].array ?? []).map {
                        "\($0["key"].string ?? ""):\($0["effect"].string ?? ""):\($0["tolerationSeconds"].int ?? -1)"
                    })
                #expect(
                    tolerations.isSuperset(of: [
                        "node.kubernetes.io/not-ready:NoExecute:-1", "node.kubernetes.io/unreachable:NoExecute:-1",
                        "node.kubernetes.io/unschedulable:NoSchedule:-1",
                        "node.kubernetes.io/disk-pressure:NoSchedule:-1",
                        "node.kubernetes.io/memory-pressure:NoSchedule:-1",
                        "node.kubernetes.io/pid-pressure:NoSchedule:-1",
                    ]))
                try await c.waitFor(Registry.daemonSets, namespace: "default", "status of agent") { items in
                    let s = Self.item(items, "agent")?["status"] ?? .null
                    return s["desiredNumberScheduled"] == 2 && s["currentNumberScheduled"] == 2 && s["numberReady"] == 2
                        && s["numberAvailable"] == 2 && s["updatedNumberScheduled"] == 2 && s["numberMisscheduled"] == 0
                        && s["numberUnavailable"].int ?? 0 == 0 && s["observedGeneration"] == 1
                }

                // n4 becomes a worker: it gets a pod. n1 stops being one: its pod goes.
                var n4 = try #require(try await c.client.get(Registry.nodes, namespace: nil, name: "n4"))
                n4["metadata"]["labels"]["role"] = "worker"
                try await c.client.update(Registry.nodes, n4)
                var n1 = try #require(try await c.client.get(Registry.nodes, namespace: nil, name: "n1"))
                n1["metadata"]["labels"]["role"] = .null
                try await c.client.update(Registry.nodes, n1)
                try await c.waitFor(Registry.pods, namespace: "default", "pods on n3 and n4") { items in
                    let m = Self.podsByNode(items, "agent")
                    return Set(m.keys) == ["n3", "n4"] && m.values.allSatisfy { $0.count == 1 }
                }
                // A NoExecute taint the pod does not tolerate evicts it; a duplicate pod is removed.
                var n3 = try #require(try await c.client.get(Registry.nodes, namespace: nil, name: "n3"))
                n3["spec"]["taints"] = [["key": "gpu", "effect": "NoExecute"]]
                try await c.client.update(Registry.nodes, n3)
                var dup = pods["n3"]![0]
                dup["metadata"] = [
                    "name": "agent-dup", "namespace": "default", "labels": dup["metadata"]["labels"],
                    "ownerReferences": dup["metadata"]["ownerReferences"],
                ]
                dup["spec"]["nodeName"] = "n4"
                dup["status"] = .null
                try await c.client.create(Registry.pods, dup)
                try await c.waitFor(Registry.pods, namespace: "default", "only n4, once") { items in
                    let m = Self.podsByNode(items, "agent")
                    return Set(m.keys) == ["n4"] && m["n4"]?.count == 1
                }
                try await c.waitFor(Registry.daemonSets, namespace: "default", "status after the moves") { items in
                    let s = Self.item(items, "agent")?["status"] ?? .null
                    return s["desiredNumberScheduled"] == 1 && s["currentNumberScheduled"] == 1
                        && s["numberMisscheduled"] == 0
                        && s["numberReady"] == 1
                }
                // Deleting the DaemonSet deletes its pods (owner references).
                try await c.client.delete(Registry.daemonSets, namespace: "default", name: "agent")
                try await c.waitFor(Registry.pods, namespace: "default", "pods deleted with the daemon set") {
                    Self.podsByNode($0, "agent").isEmpty
                }
            }
        }

        static func item(_ items: [JSON], _ name: String) -> JSON? {
            items.first { $0["metadata"]["name"].string == name }
        }

        @Test func rollingUpdateKeepsMaxUnavailable() async throws {
            try await withFixtureCluster { c in
                let names = (1...5).map { "r\($0)" }
                try await ControllerFixtures.createNodes(c.client, names.map { ControllerFixtures.node($0) })
                let kubelet = FixtureKubelet(c.client)
                defer { kubelet.stop() }
                try await c.client.create(Registry.daemonSets, Self.daemonSet("roll"))
                try await c.waitFor(Registry.daemonSets, namespace: "default", "roll available") { items in
                    let s = Self.item(items, "roll")?["status"] ?? .null
                    return s["numberAvailable"] == 5 && s["updatedNumberScheduled"] == 5
                }
                #expect(try c.kubectl("rollout", "status", "ds/roll", "--timeout=60s").ok)
                let oldHash = Self.podsByNode(
                    try await c.client.list(Registry.pods, namespace: "default").items, "roll")["r1"]?
                    .first?["metadata"]["labels"]["controller-revision-hash"].string

                // Watch every pod change during the rollout: never more than one node without an available pod.
                final class Worst: @unchecked Sendable { var value = 0; let lock = NSLock() }
                let worst = Worst()
                let client = c.client
                let monitor = Task {
                    guard let (_, rev) = try? await client.list(Registry.pods, namespace: "default"),
                        let events = try? await client.store.watch(
                            prefix: Registry.pods.prefix(namespace: "default"), afterRevision: rev)
                    else { return }
                    do {
                        for try await _ in events {
                            let items = (try? await client.list(Registry.pods, namespace: "default").items) ?? []
                            let m = Self.podsByNode(items, "roll")
                            let unavailable = names.filter { n in !(m[n] ?? []).contains(where: Self.running) }.count
                            worst.lock.withLock { worst.value = max(worst.value, unavailable) }
                        }
                    } catch {}
                }
                var ds = try #require(try await c.client.get(Registry.daemonSets, namespace: "default", name: "roll"))
                ds["spec"]["template"]["spec"]["containers"] = [["name": "agent", "image": "busybox:2"]]
                try await c.client.update(Registry.daemonSets, ds)
                try await c.waitFor(Registry.pods, namespace: "default", "every pod replaced") { items in
                    let m = Self.podsByNode(items, "roll")
                    return names.allSatisfy { n in
                        m[n]?.count == 1 && m[n]![0]["spec"]["containers"][0]["image"] == "busybox:2"
                            && Self.running(m[n]![0])
                    }
                }
                #expect(try c.kubectl("rollout", "status", "ds/roll", "--timeout=60s").ok)
                monitor.cancel()
                // The rollout went node by node: one node at a time was without its pod.
                #expect(worst.lock.withLock { worst.value } == 1)
                let s = try await Self.status(c, "roll")
                #expect(s["observedGeneration"] == 2 && s["updatedNumberScheduled"] == 5 && s["numberAvailable"] == 5)
                let newHash = Self.podsByNode(
                    try await c.client.list(Registry.pods, namespace: "default").items, "roll")["r1"]?
                    .first?["metadata"]["labels"]["controller-revision-hash"].string
                #expect(newHash != nil && newHash != oldHash)
            }
        }

        /// maxSurge 1, maxUnavailable 0: a new pod starts beside the old one a node at a time, and no node is
        /// ever without an available daemon pod.
        @Test func rollingUpdateWithSurgeKeepsEveryNodeServed() async throws {
            try await withFixtureCluster { c in
                let names = (1...4).map { "s\($0)" }
                try await ControllerFixtures.createNodes(c.client, names.map { ControllerFixtures.node($0) })
                let kubelet = FixtureKubelet(c.client)
                defer { kubelet.stop() }
                let strategy: JSON = ["type": "RollingUpdate", "rollingUpdate": ["maxSurge": 1, "maxUnavailable": 0]]
                try await c.client.create(Registry.daemonSets, Self.daemonSet("surge", strategy: strategy))
                try await c.waitFor(Registry.daemonSets, namespace: "default", "surge available") { items in
                    Self.item(items, "surge")?["status"]["numberAvailable"] == 4
                }
                final class Seen: @unchecked Sendable { var unavailable = 0; var mostOnANode = 0; let lock = NSLock() }
                let seen = Seen()
                let client = c.client
                // The pods as the store's event stream builds them, event by event: exact, not sampled.
                let monitor = Task {
                    guard let (initial, rev) = try? await client.list(Registry.pods, namespace: "default"),
                        let events = try? await client.store.watch(
                            prefix: Registry.pods.prefix(namespace: "default"), afterRevision: rev)
                    else { return }
                    var state: [String: JSON] = [:]
                    for pod in initial {
                        state[Registry.pods.key(namespace: "default", name: pod["metadata"]["name"].string ?? "")] = pod
                    }
                    do {
                        for try await event in events {
                            state[event.kv.key] = event.kind == .put ? try? JSON.parse(event.kv.value) : nil
                            let m = Self.podsByNode(Array(state.values), "surge")
                            let unavailable = names.filter { n in !(m[n] ?? []).contains(where: Self.running) }.count
                            let most = m.values.map(\.count).max() ?? 0
                            seen.lock.withLock {
                                seen.unavailable = max(seen.unavailable, unavailable)
                                seen.mostOnANode = max(seen.mostOnANode, most)
                            }
                        }
                    } catch {}
                }
                var ds = try #require(try await c.client.get(Registry.daemonSets, namespace: "default", name: "surge"))
                ds["spec"]["template"]["spec"]["containers"] = [["name": "agent", "image": "busybox:2"]]
                try await c.client.update(Registry.daemonSets, ds)
                try await c.waitFor(Registry.pods, namespace: "default", "every pod replaced") { items in
                    let m = Self.podsByNode(items, "surge")
                    return names.allSatisfy { n in
                        m[n]?.count == 1 && m[n]![0]["spec"]["containers"][0]["image"] == "busybox:2"
                            && Self.running(m[n]![0])
                    }
                }
                #expect(try c.kubectl("rollout", "status", "ds/surge", "--timeout=60s").ok)
                monitor.cancel()
                seen.lock.withLock {
                    #expect(seen.unavailable == 0, "a node was left without an available daemon pod")
                    #expect(seen.mostOnANode == 2, "the new pod started beside the old one")
                }
            }
        }

        @Test func percentAndOnDelete() async throws {
            try await withFixtureCluster { c in
                let names = (1...4).map { "m\($0)" }
                try await ControllerFixtures.createNodes(c.client, names.map { ControllerFixtures.node($0) })
                let kubelet = FixtureKubelet(c.client)
                defer { kubelet.stop() }
                try await c.client.create(Registry.daemonSets, Self.daemonSet("od", strategy: ["type": "OnDelete"]))
                try await c.waitFor(Registry.daemonSets, namespace: "default", "od available") { items in
                    (Self.item(items, "od")?["status"] ?? .null)["numberAvailable"] == 4
                }
                var ds = try #require(try await c.client.get(Registry.daemonSets, namespace: "default", name: "od"))
                ds["spec"]["template"]["spec"]["containers"] = [["name": "agent", "image": "busybox:2"]]
                try await c.client.update(Registry.daemonSets, ds)
                try await c.waitFor(Registry.daemonSets, namespace: "default", "new generation observed") { items in
                    let s = Self.item(items, "od")?["status"] ?? .null
                    return s["observedGeneration"] == 2 && s["updatedNumberScheduled"].int ?? 0 == 0
                }
                // OnDelete: nothing is replaced until a pod is deleted by hand.
                let before = Self.podsByNode(try await c.client.list(Registry.pods, namespace: "default").items, "od")
                #expect(names.allSatisfy { before[$0]?.first?["spec"]["containers"][0]["image"] == "busybox:1" })
                try await c.client.delete(
                    Registry.pods, namespace: "default", name: before["m1"]![0]["metadata"]["name"].string!)
                try await c.waitFor(Registry.daemonSets, namespace: "default", "one pod updated") { items in
                    let s = Self.item(items, "od")?["status"] ?? .null
                    return s["updatedNumberScheduled"] == 1 && s["numberAvailable"] == 4
                }
                let after = Self.podsByNode(try await c.client.list(Registry.pods, namespace: "default").items, "od")
                #expect(after["m1"]?.first?["spec"]["containers"][0]["image"] == "busybox:2")
                #expect(
                    ["m2", "m3", "m4"].allSatisfy {
                        after[$0]?.first?["metadata"]["uid"] == before[$0]?.first?["metadata"]["uid"]
                    })

                // Switching to RollingUpdate with 50 %: the other three are replaced.
                ds = try #require(try await c.client.get(Registry.daemonSets, namespace: "default", name: "od"))
                ds["spec"]["updateStrategy"] = ["type": "RollingUpdate", "rollingUpdate": ["maxUnavailable": "50%"]]
                try await c.client.update(Registry.daemonSets, ds)
                try await c.waitFor(Registry.daemonSets, namespace: "default", "all updated") { items in
                    let s = Self.item(items, "od")?["status"] ?? .null
                    return s["observedGeneration"] == 3 && s["updatedNumberScheduled"] == 4 && s["numberAvailable"] == 4
                }
                #expect(try c.kubectl("rollout", "status", "ds/od", "--timeout=60s").ok)
            }
        }

        /// End to end with hollow nodes and the real scheduler: the daemon pods are bound by the scheduler,
        /// run by the hollow nodes, and a Service over them gets their addresses and zones.
        @Test func onHollowNodes() async throws {
            let c = try await Cluster(hollowNodes: 3)
            do {
                try await c.client.create(Registry.daemonSets, Self.daemonSet("hollow-agent"))
                try await c.client.create(
                    Registry.services,
                    [
                        "metadata": ["name": "agents", "namespace": "default"],
                        "spec": ["selector": ["app": "hollow-agent"], "ports": [["port": 80]]],
                    ])
                try await c.waitFor(Registry.daemonSets, namespace: "default", "3 available") { items in
                    let s = Self.item(items, "hollow-agent")?["status"] ?? .null
                    return s["desiredNumberScheduled"] == 3 && s["numberAvailable"] == 3
                        && s["updatedNumberScheduled"] == 3
                }
                #expect(try c.kubectl("rollout", "status", "ds/hollow-agent", "--timeout=60s").ok)
                let pods = Self.podsByNode(
                    try await c.client.list(Registry.pods, namespace: "default").items, "hollow-agent")
                #expect(pods.count == 3 && pods.allSatisfy { $0.key.hasPrefix("hollow-") && $0.value.count == 1 })
                let ips = Set(pods.values.compactMap { $0[0]["status"]["podIP"].string })
                #expect(ips.count == 3)
                try await c.waitFor(Registry.endpoints, namespace: "default", "agents endpoints") { items in
                    let ep = Self.item(items, "agents")
                    return Set((ep?["subsets"][0]["addresses"].array ?? []).compactMap { $0["ip"].string }) == ips
                }
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "agents slice with zones") { items in
                    let eps = items.filter { $0["metadata"]["labels"]["kubernetes.io/service-name"] == "agents" }
                        .flatMap { $0["endpoints"].array ?? [] }
                    return eps.count == 3
                        && eps.allSatisfy { $0["zone"].string?.isEmpty == false && $0["conditions"]["ready"] == true }
                }
                // A rolling update on hollow nodes (graceful deletion finished by the node) completes.
                var ds = try #require(
                    try await c.client.get(Registry.daemonSets, namespace: "default", name: "hollow-agent"))
                ds["spec"]["template"]["spec"]["containers"] = [["name": "agent", "image": "busybox:2"]]
                try await c.client.update(Registry.daemonSets, ds)
                try await c.waitFor(Registry.daemonSets, namespace: "default", timeout: .seconds(20), "rolled out") {
                    items in
                    let s = Self.item(items, "hollow-agent")?["status"] ?? .null
                    return s["observedGeneration"] == 2 && s["updatedNumberScheduled"] == 3 && s["numberAvailable"] == 3
                }
                #expect(try c.kubectl("rollout", "status", "ds/hollow-agent", "--timeout=60s").ok)
            } catch {
                await c.stop()
                throw error
            }
            await c.stop()
        }
    }
}

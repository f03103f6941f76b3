import BerthAPI
import BerthControl
import BerthStore
import Foundation
import Testing

/// Nodes and a stand-in node agent that the endpoints and DaemonSet tests control directly, so they do
/// not depend on hollow nodes or on the scheduler.
enum ControllerFixtures {
    /// A Ready node with room for pods.
    static func node(_ name: String, labels: [String: String] = [:], taints: [JSON] = []) -> JSON {
        let now = APITime.string()
        var n: JSON = [
            "apiVersion": "v1", "kind": "Node",
            "metadata": [
                "name": .string(name),
                "labels": .strings(labels.merging(["kubernetes.io/hostname": name]) { a, _ in a }),
            ],
            "status": [
                "capacity": ["cpu": "8", "memory": "32Gi", "pods": "110"],
                "allocatable": ["cpu": "8", "memory": "32Gi", "pods": "110"],
                "conditions": [
                    [
                        "type": "Ready", "status": "True", "reason": "KubeletReady",
                        "lastHeartbeatTime": .string(now), "lastTransitionTime": .string(now),
                    ]
                ],
            ],
        ]
        if !taints.isEmpty { n["spec"]["taints"] = .array(taints) }
        return n
    }

    static func pod(
        _ name: String, namespace: String = "default", labels: [String: String], node: String?,
        ports: [JSON] = []
    ) -> JSON {
        var container: JSON = ["name": "c", "image": "busybox"]
        if !ports.isEmpty { container["ports"] = .array(ports) }
        var p: JSON = [
            "metadata": ["name": .string(name), "namespace": .string(namespace), "labels": .strings(labels)],
            "spec": ["containers": [container]],
        ]
        if let node { p["spec"]["nodeName"] = .string(node) }
        return p
    }

    /// Reports a pod Running at `ip`, Ready or not (what a node agent does).
    static func setRunning(
        _ client: LocalClient, namespace: String = "default", _ name: String, ip: String, ready: Bool,
        phase: String = "Running"
    ) async throws {
        for _ in 0..<10 {
            guard var p = try await client.get(Registry.pods, namespace: namespace, name: name) else {
                throw TimedOut(description: "no pod \(name)")
            }
            let now = APITime.string()
            p["status"]["phase"] = .string(phase)
            p["status"]["podIP"] = .string(ip)
            p["status"]["podIPs"] = [["ip": .string(ip)]]
            p["status"]["conditions"] = [
                ["type": "PodScheduled", "status": "True", "lastTransitionTime": .string(now)],
                ["type": "Ready", "status": ready ? "True" : "False", "lastTransitionTime": .string(now)],
            ]
            do { try await client.updateStatus(Registry.pods, p); return } catch let e as APIError where e.code == 409 {
                continue
            }
        }
        throw TimedOut(description: "status of \(name) kept conflicting")
    }

    static func createNodes(_ client: LocalClient, _ nodes: [JSON]) async throws {
        for n in nodes {
            let created = try await client.create(Registry.nodes, n)
            var s = created
            s["status"] = n["status"]
            try await client.updateStatus(Registry.nodes, s)
        }
    }
}

/// Plays the node agent for a test's own nodes: binds pods that carry a node affinity to one node (as
/// the scheduler would), reports bound pods Running and Ready with an IP, and finishes graceful deletions.
final class FixtureKubelet: @unchecked Sendable {
    let client: LocalClient
    let namespace: String
    private let lock = NSLock()
    private var next = 1
    private var ips: [String: String] = [:]
    private var task: Task<Void, Never>?

    init(_ client: LocalClient, namespace: String = "default") {
        self.client = client
        self.namespace = namespace
        task = Task { [self] in await self.run() }
    }

    func stop() { task?.cancel() }

    private func run() async {
        while !Task.isCancelled {
            do {
                let (items, rev) = try await client.list(Registry.pods, namespace: namespace)
                for p in items { await handle(p) }
                let events = try await client.store.watch(
                    prefix: Registry.pods.prefix(namespace: namespace), afterRevision: rev)
                for try await e in events where e.kind == .put {
                    if let p = try? client.decode(e.kv, Registry.pods) { await handle(p) }
                }
            } catch {
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    private func ip(for uid: String) -> String {
        lock.withLock {
            if let ip = ips[uid] { return ip }
            defer { next += 1 }
            let ip = "10.244.\(next / 250).\(next % 250 + 2)"
            ips[uid] = ip
            return ip
        }
    }

    private func handle(_ pod: JSON) async {
        let name = pod["metadata"]["name"].string ?? ""
        if !pod["metadata"]["deletionTimestamp"].isNull {
            try? await client.delete(
                Registry.pods, namespace: namespace, name: name, gracePeriod: 0, uid: pod["metadata"]["uid"].string)
            return
        }
        guard let node = pod["spec"]["nodeName"].string, !node.isEmpty else {
            let terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                "nodeSelectorTerms"]
            if let target = terms[0]["matchFields"][0]["values"][0].string {
                // The real scheduler may be first: a 409 then is fine.
                try? await client.bind(namespace: namespace, name: name, node: target)
            }
            return
        }
        if pod["status"]["phase"].string == "Running" { return }
        var p = pod
        let now = APITime.string()
        let ip = ip(for: pod["metadata"]["uid"].string ?? name)
        p["status"]["phase"] = "Running"
        p["status"]["podIP"] = .string(ip)
        p["status"]["podIPs"] = [["ip": .string(ip)]]
        p["status"]["conditions"] = [
            ["type": "PodScheduled", "status": "True", "lastTransitionTime": .string(now)],
            ["type": "Ready", "status": "True", "lastTransitionTime": .string(now)],
        ]
        _ = try? await client.updateStatus(Registry.pods, p)
    }
}

/// Starts a cluster whose node monitor leaves the tests' own (heartbeat-less) nodes alone.
func withFixtureCluster(_ body: (Cluster) async throws -> Void) async throws {
    let cluster = try await Cluster(control: { $0.nodeMonitorGracePeriod = .seconds(600) })
    do { try await body(cluster) } catch {
        await cluster.stop()
        throw error
    }
    await cluster.stop()
}

extension ControlTests {
    @Suite("endpoints and endpoint slices") struct EndpointsTests {
        /// (ip, port, ready) triples of an Endpoints object, for order-free comparisons.
        static func flatten(_ ep: JSON?) -> Set<String> {
            var out: Set<String> = []
            for s in ep?["subsets"].array ?? [] {
                for p in s["ports"].array ?? [] {
                    let port = "\(p["name"].string ?? ""):\(p["port"].int ?? 0)"
                    for a in s["addresses"].array ?? [] { out.insert("\(a["ip"].string ?? "") \(port) ready") }
                    for a in s["notReadyAddresses"].array ?? [] {
                        out.insert("\(a["ip"].string ?? "") \(port) notready")
                    }
                }
            }
            return out
        }
        static func item(_ items: [JSON], _ name: String) -> JSON? {
            items.first { $0["metadata"]["name"].string == name }
        }
        static func slices(_ items: [JSON], of svc: String) -> [JSON] {
            items.filter { $0["metadata"]["labels"]["kubernetes.io/service-name"].string == svc }
        }
        /// Pod name → endpoint of the slices of a Service.
        static func sliceEndpoints(_ items: [JSON], of svc: String) -> [String: JSON] {
            var out: [String: JSON] = [:]
            for s in slices(items, of: svc) {
                for e in s["endpoints"].array ?? [] { out[e["targetRef"]["name"].string ?? ""] = e }
            }
            return out
        }

        @Test func endpointsFollowPods() async throws {
            try await withFixtureCluster { c in
                try await ControllerFixtures.createNodes(
                    c.client, [ControllerFixtures.node("n1", labels: ["topology.kubernetes.io/zone": "zone-a"])])
                try await c.client.create(
                    Registry.services,
                    [
                        "metadata": ["name": "web", "namespace": "default", "labels": ["tier": "front"]],
                        "spec": [
                            "selector": ["app": "web"],
                            "ports": [
                                ["name": "http", "port": 80, "targetPort": "http"],
                                ["name": "metrics", "port": 9090, "targetPort": 9100],
                            ],
                        ],
                    ])
                let http: (Int64) -> JSON = { ["name": "http", "containerPort": .int($0)] }
                try await c.client.create(
                    Registry.pods, ControllerFixtures.pod("p1", labels: ["app": "web"], node: "n1", ports: [http(8080)])
                )
                try await c.client.create(
                    Registry.pods, ControllerFixtures.pod("p2", labels: ["app": "web"], node: "n1", ports: [http(8081)])
                )
                try await c.client.create(
                    Registry.pods, ControllerFixtures.pod("p3", labels: ["app": "web"], node: "n1"))  // no "http" port
                try await c.client.create(
                    Registry.pods,
                    ControllerFixtures.pod("other", labels: ["app": "db"], node: "n1", ports: [http(8080)]))
                try await c.client.create(
                    Registry.pods,
                    ControllerFixtures.pod("done", labels: ["app": "web"], node: "n1", ports: [http(8080)]))
                try await c.client.create(
                    Registry.pods,
                    ControllerFixtures.pod("noip", labels: ["app": "web"], node: "n1", ports: [http(8080)]))
                try await ControllerFixtures.setRunning(c.client, "p1", ip: "10.244.0.11", ready: true)
                try await ControllerFixtures.setRunning(c.client, "p2", ip: "10.244.0.12", ready: false)
                try await ControllerFixtures.setRunning(c.client, "p3", ip: "10.244.0.13", ready: true)
                try await ControllerFixtures.setRunning(c.client, "other", ip: "10.244.0.14", ready: true)
                try await ControllerFixtures.setRunning(
                    c.client, "done", ip: "10.244.0.15", ready: false, phase: "Succeeded")

                let expected: Set<String> = [
                    "10.244.0.11 http:8080 ready", "10.244.0.12 http:8081 notready",
                    "10.244.0.11 metrics:9100 ready", "10.244.0.12 metrics:9100 notready",
                    "10.244.0.13 metrics:9100 ready",
                ]
                try await c.waitFor(Registry.endpoints, namespace: "default", "endpoints of web") { items in
                    Self.flatten(Self.item(items, "web")) == expected
                }
                let ep = try #require(try await c.client.get(Registry.endpoints, namespace: "default", name: "web"))
                #expect(ep["metadata"]["labels"]["tier"] == "front")
                // Repacked like upstream: one subset per distinct port set, the shared port's subset has all three.
                let subsets = ep["subsets"].array ?? []
                #expect(subsets.count == 3)
                let metrics = try #require(subsets.first { $0["ports"][0]["name"] == "metrics" })
                #expect(metrics["addresses"].array?.compactMap { $0["ip"].string } == ["10.244.0.11", "10.244.0.13"])
                let p1 = try #require(metrics["addresses"].array?.first)
                #expect(p1["nodeName"] == "n1")
                #expect(
                    p1["targetRef"]["kind"] == "Pod" && p1["targetRef"]["name"] == "p1"
                        && p1["targetRef"]["namespace"] == "default")
                #expect(p1["targetRef"]["uid"].string?.isEmpty == false)
                #expect(metrics["ports"][0]["protocol"] == "TCP")

                // Slices: one per port set, owned by the Service, with conditions and the node's zone.
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "slices of web") { items in
                    Set(Self.sliceEndpoints(items, of: "web").keys) == ["p1", "p2", "p3"]
                }
                let all = try await c.client.list(Registry.endpointSlices, namespace: "default").items
                let slices = Self.slices(all, of: "web")
                #expect(slices.count == 3)
                let svc = try #require(try await c.client.get(Registry.services, namespace: "default", name: "web"))
                for s in slices {
                    #expect(s["addressType"] == "IPv4")
                    #expect(
                        s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
                            == "endpointslice-controller.k8s.io")
                    #expect(s["metadata"]["labels"]["tier"] == "front")
                    let owner = s["metadata"]["ownerReferences"][0]
                    #expect(
                        owner["kind"] == "Service" && owner["uid"] == svc["metadata"]["uid"]
                            && owner["controller"] == true
                            && owner["blockOwnerDeletion"] == true)
                }
                let eps = Self.sliceEndpoints(all, of: "web")
                #expect(eps["p1"]?["addresses"] == ["10.244.0.11"])
                #expect(eps["p1"]?["conditions"] == ["ready": true, "serving": true, "terminating": false])
                #expect(eps["p2"]?["conditions"] == ["ready": false, "serving": false, "terminating": false])
                #expect(eps["p1"]?["zone"] == "zone-a" && eps["p1"]?["nodeName"] == "n1")
                let p1Slice = try #require(
                    slices.first { ($0["endpoints"].array ?? []).contains { $0["targetRef"]["name"] == "p1" } })
                #expect(
                    Set((p1Slice["ports"].array ?? []).map { "\($0["name"].string ?? ""):\($0["port"].int ?? 0)" }) == [
                        "http:8080", "metrics:9100",
                    ])

                // p2 becomes ready; p1 starts terminating (it is on a node, so deletion is graceful).
                try await ControllerFixtures.setRunning(c.client, "p2", ip: "10.244.0.12", ready: true)
                try await c.client.delete(Registry.pods, namespace: "default", name: "p1")
                try await c.waitFor(Registry.endpoints, namespace: "default", "p1 gone from endpoints, p2 ready") {
                    items in
                    Self.flatten(Self.item(items, "web")) == [
                        "10.244.0.12 http:8081 ready", "10.244.0.12 metrics:9100 ready",
                        "10.244.0.13 metrics:9100 ready",
                    ]
                }
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "p1 terminating in its slice") {
                    items in
                    let e = Self.sliceEndpoints(items, of: "web")
                    return e["p1"]?["conditions"] == ["ready": false, "serving": true, "terminating": true]
                        && e["p2"]?["conditions"]["ready"] == true
                }
                // Relabelling a pod out of the selector drops it.
                var p3 = try #require(try await c.client.get(Registry.pods, namespace: "default", name: "p3"))
                p3["metadata"]["labels"]["app"] = "gone"
                try await c.client.update(Registry.pods, p3)
                try await c.waitFor(Registry.endpoints, namespace: "default", "p3 relabelled away") { items in
                    Self.flatten(Self.item(items, "web")) == [
                        "10.244.0.12 http:8081 ready", "10.244.0.12 metrics:9100 ready",
                    ]
                }

                // Deleting the Service deletes its Endpoints and (through the owner) its slices.
                try await c.client.delete(Registry.services, namespace: "default", name: "web")
                try await c.waitFor(Registry.endpoints, namespace: "default", "endpoints deleted with the service") {
                    Self.item($0, "web") == nil
                }
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "slices deleted with the service") {
                    Self.slices($0, of: "web").isEmpty
                }
            }
        }

        @Test func apiServerAndSelectorlessServices() async throws {
            try await withFixtureCluster { c in
                // default/kubernetes points at this server.
                try await c.waitFor(Registry.endpoints, namespace: "default", "kubernetes endpoints") { items in
                    Self.flatten(Self.item(items, "kubernetes")) == ["127.0.0.1 https:\(c.port) ready"]
                }
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "kubernetes slice") { items in
                    let s = Self.item(items, "kubernetes")
                    return s?["endpoints"][0]["addresses"] == ["127.0.0.1"]
                        && s?["ports"][0]["port"].int == Int64(c.port)
                        && s?["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
                }
                // A Service without a selector keeps the Endpoints its user writes.
                try await c.client.create(
                    Registry.services,
                    [
                        "metadata": ["name": "ext", "namespace": "default"],
                        "spec": ["ports": [["port": 5432]]],
                    ])
                let manual: JSON = [
                    ["addresses": [["ip": "192.0.2.10"]], "ports": [["port": 5432, "protocol": "TCP"]]]
                ]
                try await c.client.create(
                    Registry.endpoints, ["metadata": ["name": "ext", "namespace": "default"], "subsets": manual])
                // A selector Service with no pods gets empty Endpoints and one placeholder slice; it is
                // synced after "ext", so once it is done "ext" has been looked at.
                try await c.client.create(
                    Registry.services,
                    [
                        "metadata": ["name": "empty", "namespace": "default"],
                        "spec": ["selector": ["app": "none"], "ports": [["port": 80]]],
                    ])
                try await c.waitFor(Registry.endpoints, namespace: "default", "empty endpoints") { items in
                    Self.item(items, "empty") != nil && Self.item(items, "empty")?["subsets"].array?.isEmpty != false
                }
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "placeholder slice") { items in
                    let s = Self.slices(items, of: "empty")
                    return s.count == 1 && (s[0]["endpoints"].array ?? []).isEmpty
                }
                #expect(
                    try await c.client.get(Registry.endpoints, namespace: "default", name: "ext")?["subsets"] == manual)
                // …which the mirroring controller copies into a slice (EndpointSliceMirroringTests has more).
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "ext mirrored") { items in
                    let s = Self.slices(items, of: "ext")
                    return s.count == 1 && s[0]["endpoints"][0]["addresses"] == ["192.0.2.10"]
                        && s[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
                            == "endpointslicemirroring-controller.k8s.io"
                }
                // Endpoints deleted by hand come back.
                try await c.client.delete(Registry.endpoints, namespace: "default", name: "kubernetes")
                try await c.waitFor(Registry.endpoints, namespace: "default", "kubernetes endpoints restored") {
                    items in
                    Self.flatten(Self.item(items, "kubernetes")) == ["127.0.0.1 https:\(c.port) ready"]
                }
            }
        }

        @Test func slicesHoldAtMostOneHundred() async throws {
            try await withFixtureCluster { c in
                try await ControllerFixtures.createNodes(c.client, [ControllerFixtures.node("n1")])
                try await c.client.create(
                    Registry.services,
                    [
                        "metadata": ["name": "big", "namespace": "default"],
                        "spec": ["selector": ["app": "big"], "ports": [["port": 80, "targetPort": 8080]]],
                    ])
                let client = c.client
                try await Self.concurrently(0..<130) { i in
                    try await client.create(
                        Registry.pods, ControllerFixtures.pod("b\(i)", labels: ["app": "big"], node: "n1"))
                    try await ControllerFixtures.setRunning(
                        client, "b\(i)", ip: "10.244.\(i / 200).\(i % 200 + 2)", ready: true)
                }
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "130 endpoints in 2 slices") {
                    items in
                    let s = Self.slices(items, of: "big")
                    return Self.sliceEndpoints(items, of: "big").count == 130 && s.count == 2
                        && s.allSatisfy { ($0["endpoints"].array?.count ?? 0) <= 100 }
                }
                try await c.waitFor(Registry.endpoints, namespace: "default", "130 addresses") { items in
                    Self.flatten(Self.item(items, "big")).count == 130
                }
                let before = Self.slices(
                    try await c.client.list(Registry.endpointSlices, namespace: "default").items, of: "big")
                for s in before {
                    let name = s["metadata"]["name"].string ?? ""
                    #expect(name.hasPrefix("big-") && name.count == "big-".count + 5)
                }
                // Scaling down to 20 deletes the surplus slice; the other is kept (same name).
                try await Self.concurrently(20..<130) { i in
                    try await client.delete(Registry.pods, namespace: "default", name: "b\(i)", gracePeriod: 0)
                }
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "surplus slice deleted") { items in
                    Self.sliceEndpoints(items, of: "big").count == 20 && Self.slices(items, of: "big").count == 1
                }
                let after = Self.slices(
                    try await c.client.list(Registry.endpointSlices, namespace: "default").items, of: "big")
                #expect(
                    Set(before.compactMap { $0["metadata"]["name"].string }).isSuperset(
                        of: after.compactMap { $0["metadata"]["name"].string }))
                try await c.waitFor(Registry.endpoints, namespace: "default", "20 addresses") { items in
                    Self.flatten(Self.item(items, "big")).count == 20
                }
            }
        }

        /// Runs `body` for each item, 16 at a time.
        static func concurrently(_ items: Range<Int>, _ body: @escaping @Sendable (Int) async throws -> Void)
            async throws
        {
            try await withThrowingTaskGroup(of: Void.self) { g in
                for i in items {
                    if i - items.lowerBound >= 16 { try await g.next() }
                    g.addTask { try await body(i) }
                }
                try await g.waitForAll()
            }
        }
    }
}

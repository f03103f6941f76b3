import BerthKube
import Foundation
import Logging
import Testing

@testable import BerthAPI
@testable import BerthControl

/// A controller running against a ``FakeCluster``: its informers synced, its loop running until the
/// test ends. No server, no store, no root.
private struct FakeRig {
    let cluster = FakeCluster()
    let context: ControllerContext

    init(config: ControlPlaneConfig = ControlPlaneConfig(), facts: ServerFacts = ServerFacts()) {
        let logger = Logger(label: "fake-controller-test")
        let cluster = self.cluster
        context = ControllerContext(
            client: { _ in cluster }, informers: InformerFactory(provider: cluster, logger: logger),
            events: EventRecorder(), logger: logger, config: config, facts: facts)
    }

    /// Runs the informers (and `loop`, when given) until the returned task is cancelled.
    func start(_ loop: (any ControlLoop)? = nil) async -> Task<Void, Never> {
        let informers = context.informers
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await informers.run() }
                // As ControlPlane.runLeading: the loop starts once every informer has listed.
                await informers.waitForSync()
                if let loop { group.addTask { await loop.run() } }
            }
        }
        await informers.waitForSync()
        return task
    }
}

/// Polls until `condition` holds (the test's time limit bounds it).
private func eventually(_ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(20)
    while !condition() {
        if ContinuousClock.now > deadline { Issue.record("timed out waiting for \(what)"); return }
        try await Task.sleep(for: .milliseconds(20))
    }
}

private func fakeNode(
    _ name: String, labels: [String: String] = [:], taints: [CoreV1.Taint] = [], unschedulable: Bool? = nil,
    ready: CoreV1.ConditionStatus = .true, heartbeat: MetaV1.Time? = nil
) -> CoreV1.Node {
    var node = CoreV1.Node()
    node.metadata.name = name
    node.metadata.labels = labels
    node.spec.taints = taints
    node.spec.unschedulable = unschedulable
    node.status.conditions = [
        CoreV1.NodeCondition(
            type: .ready, status: ready, lastHeartbeatTime: heartbeat ?? MetaV1.Time(secondsSince1970: 1))
    ]
    return node
}

private func fakePod(
    _ name: String, namespace: String = "default", labels: [String: String] = ["app": "web"], ip: String? = nil,
    ready: Bool = true, node: String? = nil, ports: [CoreV1.ContainerPort] = [],
    tolerations: [CoreV1.Toleration] = []
) -> CoreV1.Pod {
    var pod = CoreV1.Pod()
    pod.metadata.name = name
    pod.metadata.namespace = namespace
    pod.metadata.labels = labels
    pod.spec.nodeName = node
    pod.spec.containers = [CoreV1.Container(name: "c", image: "nginx:1", ports: ports)]
    pod.spec.tolerations = tolerations
    pod.status.phase = .running
    pod.status.podIP = ip
    pod.status.conditions = [CoreV1.PodCondition(type: .ready, status: ready ? .true : .false)]
    return pod
}

private func fakeService(_ name: String, selector: [String: String], ports: [CoreV1.ServicePort]) -> CoreV1.Service {
    var svc = CoreV1.Service()
    svc.metadata.name = name
    svc.metadata.namespace = "default"
    svc.spec.selector = selector
    svc.spec.clusterIP = "10.96.0.10"
    svc.spec.ports = ports
    return svc
}

@Suite("service and node controllers on a fake cluster")
struct ServiceAndNodeControllerFakeTests {
    /// Two ready pods, one unready, one without an IP, one in another namespace: the named target port
    /// resolves to each pod's container port.
    private func seedWebService(_ cluster: FakeCluster) {
        let web = [CoreV1.ContainerPort(name: "web", containerPort: 8080, protocol: .tcp)]
        cluster.seed(
            fakeService(
                "web", selector: ["app": "web"], ports: [CoreV1.ServicePort(name: "http", port: 80, targetPort: "web")])
        )
        cluster.seed(
            fakePod("web-a", ip: "10.0.0.2", node: "n1", ports: web),
            fakePod("web-b", ip: "10.0.0.10", node: "n1", ports: web),
            fakePod("web-c", ip: "10.0.0.3", ready: false, node: "n1", ports: web),
            fakePod("web-pending", ports: web), fakePod("web-other", namespace: "other", ip: "10.0.0.4", ports: web),
            fakePod("db", labels: ["app": "db"], ip: "10.0.0.5", ports: web))
        cluster.seed(fakeNode("n1", labels: [EndpointSliceController.zoneLabel: "zone-a"]))
    }

    @Test(.timeLimit(.minutes(1)))
    func aServiceGetsOneSliceWithReadyAndNotReadyEndpointsAndPortsResolvedByName() async throws {
        let rig = FakeRig()
        seedWebService(rig.cluster)
        let controller = EndpointSliceController(rig.context)
        let run = await rig.start(controller)
        defer { run.cancel() }
        try await eventually("the web slice") { !rig.cluster.objects(DiscoveryV1.EndpointSlice.self).isEmpty }

        let slices = rig.cluster.objects(DiscoveryV1.EndpointSlice.self)
        #expect(slices.count == 1)
        let slice = try #require(slices.first)
        #expect(slice.metadata.name?.hasPrefix("web-") == true)
        #expect(slice.metadata.labels[EndpointSliceController.serviceNameLabel] == "web")
        #expect(slice.metadata.labels[EndpointSliceController.managedByLabel] == EndpointSliceController.managedBy)
        #expect(slice.metadata.ownerReferences.map(\.kind) == ["Service"])
        #expect(slice.addressType == "IPv4")
        #expect(slice.ports == [DiscoveryV1.EndpointPort(name: "http", protocol: .tcp, port: 8080)])
        // IP order, numerically: 10.0.0.2 before 10.0.0.3 before 10.0.0.10.
        #expect(slice.endpoints.map(\.addresses) == [["10.0.0.2"], ["10.0.0.3"], ["10.0.0.10"]])
        #expect(slice.endpoints.map { $0.conditions.ready } == [true, false, true])
        #expect(slice.endpoints.allSatisfy { $0.nodeName == "n1" && $0.zone == "zone-a" })
        #expect(slice.endpoints.map { $0.targetRef?.name } == ["web-a", "web-c", "web-b"])

        // A pod turning ready rewrites the slice in place (no new slice, the same name).
        rig.cluster.clearActions()
        var readyNow = try #require(rig.cluster.object(CoreV1.Pod.self, namespace: "default", name: "web-c"))
        readyNow.status.conditions = [CoreV1.PodCondition(type: .ready, status: .true)]
        _ = try await rig.cluster.updateStatus(readyNow)
        try await eventually("web-c ready in the slice") {
            rig.cluster.objects(DiscoveryV1.EndpointSlice.self).first?.endpoints.allSatisfy {
                $0.conditions.ready == true
            } == true
        }
        let writes = rig.cluster.actions.filter { $0.resource == "endpointslices" }
        #expect(writes.map(\.verb) == ["update"] && writes.first?.name == slice.metadata.name)
    }

    @Test(.timeLimit(.minutes(1)))
    func aServiceGetsEndpointsWithReadyAndNotReadyAddressesAndTheyGoWithIt() async throws {
        let rig = FakeRig(facts: ServerFacts(address: ("192.0.2.1", 6443)))
        seedWebService(rig.cluster)
        rig.cluster.seed(fakeService("kubernetes", selector: [:], ports: []))
        let controller = EndpointsController(rig.context)
        let run = await rig.start(controller)
        defer { run.cancel() }
        try await eventually("web and kubernetes Endpoints") {
            rig.cluster.objects(CoreV1.Endpoints.self).count == 2
        }

        let web = try #require(rig.cluster.object(CoreV1.Endpoints.self, namespace: "default", name: "web"))
        #expect(web.subsets.count == 1)
        let subset = try #require(web.subsets.first)
        #expect(subset.addresses.map(\.ip) == ["10.0.0.2", "10.0.0.10"])
        #expect(subset.notReadyAddresses.map(\.ip) == ["10.0.0.3"])
        #expect(subset.addresses.first?.targetRef?.kind == "Pod" && subset.addresses.first?.nodeName == "n1")
        #expect(subset.ports == [CoreV1.EndpointPort(name: "http", port: 8080, protocol: .tcp)])
        #expect(web.metadata.labels[EndpointsController.headlessLabel] == nil)

        // default/kubernetes points at the API server, and is skipped by slice mirroring.
        let api = try #require(rig.cluster.object(CoreV1.Endpoints.self, namespace: "default", name: "kubernetes"))
        #expect(api.subsets.first?.addresses.map(\.ip) == ["192.0.2.1"])
        #expect(api.subsets.first?.ports.first?.port == 6443)
        #expect(api.metadata.labels[EndpointsController.skipMirrorLabel] == "true")

        // The Service goes: so do its Endpoints (they have no owner for the garbage collector).
        try await rig.cluster.delete(CoreV1.Service.self, namespace: "default", name: "web")
        try await eventually("web Endpoints deleted") {
            rig.cluster.object(CoreV1.Endpoints.self, namespace: "default", name: "web") == nil
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aNodeWhoseLeaseStopsRenewingGoesUnknownItsPodsNotReadyAndUntoleratingOnesEvicted() async throws {
        var config = ControlPlaneConfig()
        config.nodeMonitorGracePeriod = .milliseconds(300)
        let rig = FakeRig(config: config)
        let cluster = rig.cluster
        cluster.seed(fakeNode("dead"), fakeNode("alive"))
        for name in ["dead", "alive"] {
            var lease = CoordinationV1.Lease()
            lease.metadata.name = name
            lease.metadata.namespace = "kube-node-lease"
            lease.spec.renewTime = MetaV1.MicroTime(microsecondsSince1970: 1_000_000)
            cluster.seed(lease)
        }
        // Tolerates unreachable for a while: stays, marked not ready. Tolerates nothing: evicted at once.
        let patient = CoreV1.Toleration(
            key: NodeLifecycleController.unreachable, operator: "Exists", effect: .noExecute, tolerationSeconds: 300)
        cluster.seed(
            fakePod("tolerant", ip: "10.0.0.2", node: "dead", tolerations: [patient]),
            fakePod("intolerant", ip: "10.0.0.3", node: "dead"), fakePod("elsewhere", ip: "10.0.0.4", node: "alive"))
        let controller = NodeLifecycleController(rig.context)
        let run = await rig.start()
        defer { run.cancel() }

        await controller.monitorAll()  // the first look: every heartbeat is fresh
        try await Task.sleep(for: .milliseconds(400))
        // Only "alive" renews its Lease in the meantime.
        var renewed = try #require(
            cluster.object(CoordinationV1.Lease.self, namespace: "kube-node-lease", name: "alive"))
        renewed.spec.renewTime = MetaV1.MicroTime(microsecondsSince1970: 2_000_000)
        let stored = try await cluster.update(renewed)
        let leases = rig.context.informers.informer(CoordinationV1.Lease.self)
        try await eventually("the renewal in the cache") {
            leases.get(namespace: "kube-node-lease", name: "alive")?.metadata.resourceVersion
                == stored.metadata.resourceVersion
        }
        await controller.monitorAll()

        let dead = try #require(cluster.object(CoreV1.Node.self, name: "dead"))
        let condition = try #require(NodeLifecycleController.condition(dead, .ready))
        #expect(condition.status == .unknown && condition.reason == "NodeStatusUnknown")
        #expect(
            Set(dead.spec.taints.map { "\($0.key):\($0.effect)" }) == [
                "\(NodeLifecycleController.unreachable):NoSchedule", "\(NodeLifecycleController.unreachable):NoExecute",
            ])
        #expect(dead.spec.taints.first { $0.effect == .noExecute }?.timeAdded != nil)
        let tolerant = try #require(cluster.object(CoreV1.Pod.self, namespace: "default", name: "tolerant"))
        #expect(tolerant.readyCondition?.status == .false)
        #expect(cluster.object(CoreV1.Pod.self, namespace: "default", name: "intolerant") == nil)

        let alive = try #require(cluster.object(CoreV1.Node.self, name: "alive"))
        #expect(NodeLifecycleController.condition(alive, .ready)?.status == .true && alive.spec.taints.isEmpty)
        #expect(cluster.object(CoreV1.Pod.self, namespace: "default", name: "elsewhere")?.isReady == true)
        #expect(!cluster.actions.contains { $0.resource != "leases" && ($0.name == "alive" || $0.name == "elsewhere") })
    }

    @Test(.timeLimit(.minutes(1)))
    func aDaemonSetPutsOnePodOnEachNodeItMayRunOn() async throws {
        let rig = FakeRig()
        let cluster = rig.cluster
        let dedicated = CoreV1.Taint(key: "dedicated", value: "db", effect: .noSchedule)
        let cordoned = CoreV1.Taint(key: "node.kubernetes.io/unschedulable", effect: .noSchedule)
        cluster.seed(
            fakeNode("n1"), fakeNode("n2"), fakeNode("tainted", taints: [dedicated]),
            fakeNode("cordoned", taints: [cordoned], unschedulable: true))
        var ds = AppsV1.DaemonSet()
        ds.metadata.name = "agent"
        ds.metadata.namespace = "default"
        ds.spec.selector = MetaV1.LabelSelector(matchLabels: ["app": "agent"])
        ds.spec.template.metadata.labels = ["app": "agent"]
        ds.spec.template.spec.containers = [CoreV1.Container(name: "agent", image: "busybox:1")]
        cluster.seed(ds)
        let controller = DaemonSetController(rig.context)
        let run = await rig.start(controller)
        defer { run.cancel() }
        try await eventually("three daemon pods and their status") {
            cluster.objects(CoreV1.Pod.self).count == 3
                && cluster.object(AppsV1.DaemonSet.self, namespace: "default", name: "agent")?.status
                    .currentNumberScheduled == 3
        }

        let stored = try #require(cluster.object(AppsV1.DaemonSet.self, namespace: "default", name: "agent"))
        let pods = cluster.objects(CoreV1.Pod.self)
        // Unbound, pinned by affinity: the scheduler binds them. The cordoned node gets one (the automatic
        // unschedulable toleration); the node tainted for someone else does not.
        #expect(Set(pods.compactMap(DaemonSetController.targetNode)) == ["n1", "n2", "cordoned"])
        #expect(pods.allSatisfy { $0.spec.nodeName == nil && $0.metadata.generateName == "agent-" })
        #expect(
            pods.allSatisfy { $0.controllerRef?.uid == stored.metadata.uid && $0.controllerRef?.kind == "DaemonSet" })
        let hash = DaemonSetController.templateHash(stored)
        #expect(pods.allSatisfy { $0.metadata.labels == ["app": "agent", DaemonSetController.hashLabel: hash] })
        #expect(
            pods.allSatisfy { pod in
                pod.spec.tolerations.contains {
                    $0.key == "node.kubernetes.io/unreachable" && $0.operator == "Exists" && $0.effect == .noExecute
                        && $0.tolerationSeconds == nil
                }
            })
        #expect(stored.status.desiredNumberScheduled == 3 && stored.status.numberMisscheduled == 0)
        #expect(stored.status.numberUnavailable == 3 && stored.status.updatedNumberScheduled == 3)
        #expect(stored.status.numberAvailable == nil)
    }

    /// The revision hash is what the pods' `controller-revision-hash` labels hold: it must come out of the
    /// typed template exactly as it came out of the stored JSON before, or an upgrade would roll every
    /// daemon pod. The stored form is what the API server's defaulting makes of what a client sent.
    @Test func theTemplateHashIsTheOneTheStoredJSONGave() throws {
        let sent: JSON = [
            "metadata": ["name": "agent", "namespace": "kube-system", "uid": "u-1", "generation": 3],
            "spec": [
                "selector": ["matchLabels": ["app": "agent"]],
                "template": [
                    // What client-go sends for an unset template timestamp.
                    "metadata": ["labels": ["app": "agent", "tier": "node"], "creationTimestamp": .null],
                    "spec": [
                        "hostNetwork": true, "serviceAccountName": "agent",
                        "nodeSelector": ["kubernetes.io/os": "linux"],
                        "tolerations": [["operator": "Exists", "effect": "NoSchedule"]],
                        "containers": [
                            [
                                "name": "agent", "image": "example.com/agent:1.2",
                                "args": ["--v=2", "--path=/var/log"],
                                "env": [
                                    ["name": "NODE", "valueFrom": ["fieldRef": ["fieldPath": "spec.nodeName"]]],
                                    ["name": "MODE", "value": "fast"],
                                ],
                                "ports": [["name": "metrics", "containerPort": 9100]],
                                "resources": ["limits": ["memory": "200Mi"], "requests": ["cpu": "100m"]],
                                "volumeMounts": [["name": "logs", "mountPath": "/var/log", "readOnly": true]],
                                "readinessProbe": [
                                    "httpGet": ["path": "/healthz", "port": "metrics"], "periodSeconds": 10,
                                ],
                                "securityContext": ["privileged": true],
                            ]
                        ],
                        "volumes": [["name": "logs", "hostPath": ["path": "/var/log", "type": "Directory"]]],
                    ],
                ],
            ],
        ]
        var stored = sent
        DaemonSetStrategy().applyDefaults(&stored, creating: true)
        // The hash as the controller computed it from the stored JSON before it read typed objects.
        let jsonBytes = stored["spec"]["template"].serialized()
        let alphabet = Objects.safeAlphabet
        let before = String(String(Objects.fnv32(jsonBytes)).utf8.map { alphabet[Int($0) % alphabet.count] })
        #expect(before == "8d4869fb9")

        let typed = try AppsV1.DaemonSet(kubeJSON: stored)
        #expect(DaemonSetController.storedForm(typed.spec.template) == stored["spec"]["template"])
        #expect(DaemonSetController.templateHash(typed) == before)

        // A collision count salts it, as before.
        var collided = typed
        collided.status.collisionCount = 2
        let salted = String(String(Objects.fnv32(jsonBytes + Array("2".utf8))).utf8.map { alphabet[Int($0) % 27] })
        #expect(DaemonSetController.templateHash(collided) == salted && salted != before)
    }
}

@testable import BerthAPI
import Foundation
import Testing

/// The per-kind strategies on their own, without a server: defaulting, validation, the update rules and
/// the spec/status split, as the generic request path applies them.
@Suite("resource strategies")
struct StrategyTests {
    static func type(_ plural: String) -> ResourceType { Registry.all.first { $0.plural == plural }! }
    static func context(_ plural: String, subresource: String? = nil, user: UserInfo? = nil) -> StrategyContext {
        StrategyContext(
            resource: type(plural), user: user, subresource: subresource, config: ServerConfig(dataDir: "/nonexistent"))
    }
    static let template: JSON = [
        "metadata": ["labels": ["app": "web"]], "spec": ["containers": [["name": "c", "image": "nginx"]]],
    ]
    static func deployment(replicas: Int64 = 1) -> JSON {
        [
            "metadata": ["name": "web", "namespace": "default", "generation": 1],
            "spec": ["replicas": .int(replicas), "selector": ["matchLabels": ["app": "web"]], "template": template],
        ]
    }

    @Test func everyServedKindHasItsOwnStrategy() {
        for r in Registry.all {
            #expect(!(r.strategy is DefaultStrategy), "\(r.kind) has a strategy file")
            #expect(
                r.strategy.tableColumns.count == r.strategy.tableCells(["metadata": ["name": "x"]]).count,
                "\(r.kind) cells match columns")
        }
    }

    @Test func podDefaultsAndAdmission() {
        let s = PodStrategy()
        var pod: JSON = [
            "metadata": ["name": "p"], "spec": ["nodeName": "n1", "containers": [["name": "c", "image": "busybox"]]],
        ]
        s.applyDefaults(&pod, creating: true)
        s.prepareForCreate(&pod, Self.context("pods"))
        #expect(pod["spec"]["restartPolicy"] == "Always" && pod["spec"]["containers"][0]["imagePullPolicy"] == "Always")
        #expect(pod["status"]["phase"] == "Pending" && pod["status"]["conditions"][0]["type"] == "PodScheduled")
        #expect(pod["spec"]["tolerations"].array?.count == 2, "DefaultTolerationSeconds admission")
    }

    /// The SetDefaults_* functions of k8s.io/kubernetes' core/v1 that no `+default=` marker states:
    /// probes, httpGet actions, field references, volume sources, Services by type.
    @Test func podAndServiceDefaultsBeyondTheMarkers() {
        var pod: JSON = [
            "metadata": ["name": "p"],
            "spec": [
                "hostNetwork": true,
                "containers": [
                    [
                        "name": "c", "image": "busybox", "ports": [["containerPort": 8080]],
                        "readinessProbe": ["httpGet": ["port": 8080]],
                        "lifecycle": ["preStop": ["httpGet": ["port": 8080, "path": "/quit"]]],
                        "env": [["name": "N", "valueFrom": ["fieldRef": ["fieldPath": "spec.nodeName"]]]],
                    ]
                ],
                "volumes": [
                    ["name": "bare"], ["name": "s", "secret": ["secretName": "x"]],
                    ["name": "h", "hostPath": ["path": "/tmp"]],
                    ["name": "p", "projected": ["sources": [["serviceAccountToken": ["path": "t"]]]]],
                ],
            ],
        ]
        PodStrategy().applyDefaults(&pod, creating: true)
        let c = pod["spec"]["containers"][0]
        #expect(
            c["readinessProbe"]
                == [
                    "httpGet": ["port": 8080, "path": "/", "scheme": "HTTP"], "timeoutSeconds": 1, "periodSeconds": 10,
                    "successThreshold": 1, "failureThreshold": 3,
                ])
        #expect(c["lifecycle"]["preStop"]["httpGet"] == ["port": 8080, "path": "/quit", "scheme": "HTTP"])
        #expect(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1")
        #expect(c["ports"][0]["hostPort"] == 8080, "hostNetwork: the host port is the container's")
        let volumes = pod["spec"]["volumes"]
        #expect(volumes[0] == ["name": "bare", "emptyDir": [:]])
        #expect(volumes[1]["secret"]["defaultMode"] == 420 && volumes[2]["hostPath"]["type"] == "")
        #expect(volumes[3]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600)
        #expect(pod["spec"]["enableServiceLinks"] == true)

        var lb: JSON = ["spec": ["type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [["port": 80]]]]
        ServiceStrategy().applyDefaults(&lb, creating: true)
        #expect(lb["spec"]["allocateLoadBalancerNodePorts"] == true)
        #expect(lb["spec"]["sessionAffinityConfig"] == ["clientIP": ["timeoutSeconds": 10800]])
        var alias: JSON = ["spec": ["type": "ExternalName", "externalName": "db.example.com"]]
        ServiceStrategy().applyDefaults(&alias, creating: true)
        #expect(alias["spec"]["ipFamilies"].isNull && alias["spec"]["internalTrafficPolicy"].isNull, "\(alias)")
    }

    /// Upstream's SetDefaults_Pod (a limit without a request requests the limit) and qos.GetPodQOS, for
    /// the cases kube-apiserver answers: what `kubectl get pod -o yaml` shows and the scheduler counts.
    @Test func podRequestsDefaultFromLimitsAndTheQoSClassIsComputed() {
        func created(_ containers: [JSON], initContainers: [JSON] = [], status: JSON = [:]) -> JSON {
            var pod: JSON = [
                "metadata": ["name": "p"], "spec": ["containers": .array(containers)], "status": status,
            ]
            if !initContainers.isEmpty { pod["spec"]["initContainers"] = .array(initContainers) }
            PodStrategy().applyDefaults(&pod, creating: true)
            PodStrategy().prepareForCreate(&pod, Self.context("pods"))
            return pod
        }
        func container(requests: JSON? = nil, limits: JSON? = nil) -> JSON {
            var c: JSON = ["name": "c", "image": "busybox"]
            if let requests { c["resources"]["requests"] = requests }
            if let limits { c["resources"]["limits"] = limits }
            return c
        }
        #expect(created([container()])["status"]["qosClass"] == "BestEffort")
        // The bench's pods: requests only.
        let burstable = created([container(requests: ["cpu": "10m", "memory": "16Mi"])])
        #expect(burstable["status"]["qosClass"] == "Burstable")
        // Limits alone become the requests too, and make the pod Guaranteed.
        let limited = created([container(limits: ["cpu": "500m", "memory": "64Mi"])])
        #expect(limited["spec"]["containers"][0]["resources"]["requests"] == ["cpu": "500m", "memory": "64Mi"])
        #expect(limited["status"]["qosClass"] == "Guaranteed")
        // Equal amounts written differently are equal.
        #expect(
            created([container(requests: ["cpu": "1", "memory": "1Gi"], limits: ["cpu": "1000m", "memory": "1024Mi"])])[
                "status"]["qosClass"] == "Guaranteed")
        // A request below its limit, a container without a memory limit, or an init container without
        // limits make it Burstable.
        #expect(
            created([container(requests: ["cpu": "100m"], limits: ["cpu": "200m", "memory": "1Gi"])])["status"][
                "qosClass"] == "Burstable")
        #expect(created([container(limits: ["cpu": "1"])])["status"]["qosClass"] == "Burstable")
        #expect(
            created(
                [container(limits: ["cpu": "1", "memory": "1Gi"])],
                initContainers: [container(requests: ["cpu": "1"])])["status"]["qosClass"] == "Burstable")
        // Only CPU and memory count: other resources leave an unlimited pod BestEffort.
        #expect(created([container(requests: ["ephemeral-storage": "1Gi"])])["status"]["qosClass"] == "BestEffort")
        // What a client claims is replaced on create.
        #expect(created([container()], status: ["qosClass": "Guaranteed"])["status"]["qosClass"] == "BestEffort")
    }

    @Test func validationKeepsUpstreamMessagesAndPaths() {
        var d = Self.deployment(replicas: -1)
        d["spec"]["template"]["metadata"]["labels"] = ["app": "other"]
        let errs = DeploymentStrategy().validate(d)
        #expect(errs.map(\.field) == ["spec.replicas", "spec.template.metadata.labels"])
        #expect(errs.first?.message == "Invalid value: -1: must be greater than or equal to 0")
        let svc: JSON = ["metadata": ["name": "s"], "spec": ["type": "Nope", "ports": [["port": 0]]]]
        #expect(ServiceStrategy().validate(svc).map(\.field) == ["spec.type", "spec.ports[0].port"])
        #expect(
            Validation.validate(["metadata": ["name": "a.b"]], Self.type("services")).first?.field == "metadata.name",
            "Service names are labels")
        #expect(
            Validation.validate(["metadata": ["name": "a.b"]], Self.type("configmaps")).isEmpty,
            "ConfigMap names are subdomains")
    }

    @Test func mainResourceIgnoresStatusAndStatusIgnoresSpec() throws {
        let s = DeploymentStrategy()
        var old = Self.deployment()
        s.applyDefaults(&old, creating: true)
        old["status"] = ["replicas": 1]
        var main = old
        main["spec"]["replicas"] = 3
        main["status"]["replicas"] = 99
        try s.prepareForUpdate(&main, old: old, Self.context("deployments"))
        #expect(main["spec"]["replicas"] == 3 && main["status"]["replicas"] == 1)
        #expect(s.generationChanged(old: old, new: main, Self.type("deployments")))

        var status = old
        status["spec"]["replicas"] = 7
        status["status"]["replicas"] = 2
        status["metadata"]["labels"] = ["changed": "yes"]
        try s.prepareForUpdate(&status, old: old, Self.context("deployments", subresource: "status"))
        #expect(status["spec"]["replicas"] == 1 && status["status"]["replicas"] == 2)
        #expect(
            status["metadata"]["labels"] == old["metadata"]["labels"], "a Deployment's status writer keeps its labels")
        #expect(!s.generationChanged(old: old, new: status, Self.type("deployments")))
    }

    @Test func workloadsDropStatusOnCreate() {
        var rs = Self.deployment()
        rs["status"] = ["replicas": 5]
        ReplicaSetStrategy().prepareForCreate(&rs, Self.context("replicasets"))
        #expect(rs["status"] == ["replicas": 0], "the zero status as Go writes it (replicas is not omitempty)")
    }

    @Test func podUpdateRules() throws {
        let s = PodStrategy()
        var old: JSON = [
            "metadata": ["name": "p", "ownerReferences": [["uid": "u-1"]]],
            "spec": ["nodeName": "n1", "containers": [["name": "c", "image": "a"]]], "status": ["phase": "Running"],
        ]
        s.applyDefaults(&old, creating: true)
        var image = old
        image["spec"]["containers"] = [["name": "c", "image": "b"]]
        #expect(s.validateUpdate(image, old: old, Self.context("pods")).isEmpty, "images may change")
        var restart = old
        restart["spec"]["restartPolicy"] = "Never"
        #expect(s.validateUpdate(restart, old: old, Self.context("pods")).first?.field == "spec")
        var status = old
        status["metadata"]["ownerReferences"] = .null
        try s.prepareForUpdate(&status, old: old, Self.context("pods", subresource: "status"))
        #expect(status["metadata"]["ownerReferences"][0]["uid"] == "u-1", "pods/status ignores ownerReferences")
        let other = UserInfo(name: "system:node:n2", groups: ["system:nodes"])
        #expect(throws: APIError.self) {
            try s.prepareForUpdate(&status, old: old, Self.context("pods", subresource: "status", user: other))
        }
    }

    @Test func immutableConfigAndSecretType() {
        let old: JSON = ["metadata": ["name": "c"], "immutable": true, "data": ["a": "1"]]
        var new = old
        new["data"] = ["a": "2"]
        #expect(ConfigMapStrategy().validateUpdate(new, old: old, Self.context("configmaps")).map(\.field) == ["data"])
        let secret: JSON = ["metadata": ["name": "s"], "type": "Opaque"]
        var retyped = secret
        retyped["type"] = "kubernetes.io/tls"
        #expect(SecretStrategy().validateUpdate(retyped, old: secret, Self.context("secrets")).map(\.field) == ["type"])
    }

    @Test func namespaceSpecChangesOnlyThroughFinalize() throws {
        let s = NamespaceStrategy()
        var old: JSON = ["metadata": ["name": "n"]]
        s.applyDefaults(&old, creating: true)
        #expect(old["spec"]["finalizers"] == ["kubernetes"])
        var put = old
        put["spec"]["finalizers"] = []
        try s.prepareForUpdate(&put, old: old, Self.context("namespaces"))
        #expect(put["spec"]["finalizers"] == ["kubernetes"])
        var finalize = old
        finalize["spec"]["finalizers"] = []
        try s.prepareForUpdate(&finalize, old: old, Self.context("namespaces", subresource: "finalize"))
        #expect(finalize["spec"]["finalizers"] == [])
    }

    @Test func serviceClusterIPIsKeptAndImmutable() throws {
        let s = ServiceStrategy()
        let old: JSON = [
            "metadata": ["name": "s"],
            "spec": [
                "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                "ports": [["port": 80, "nodePort": 30080]],
            ],
        ]
        var put: JSON = ["metadata": ["name": "s"], "spec": ["ports": [["port": 80]]]]
        try s.prepareForUpdate(&put, old: old, Self.context("services"))
        #expect(put["spec"]["clusterIP"] == "10.96.0.10" && put["spec"]["ports"][0]["nodePort"] == 30080)
        var moved = old
        moved["spec"]["clusterIP"] = "10.96.0.11"
        #expect(throws: APIError.self) { try s.prepareForUpdate(&moved, old: old, Self.context("services")) }
    }

    @Test func fieldLabelsComeFromTheStrategy() throws {
        #expect(try FieldSelector("spec.nodeName=n1", for: Self.type("pods")).matches(["spec": ["nodeName": "n1"]]))
        #expect(try FieldSelector("spec.unschedulable=false", for: Self.type("nodes")).matches([:]))
        #expect(throws: APIError.self) { try FieldSelector("spec.nodeName=n1", for: Self.type("configmaps")) }
    }

    @Test func gracefulDeletionIsThePodsOwn() throws {
        var running: JSON = [
            "spec": ["nodeName": "n1", "terminationGracePeriodSeconds": 12], "status": ["phase": "Running"],
        ]
        guard
            case .proceed(let grace) = try PodStrategy().planDeletion(&running, gracePeriod: nil, Self.context("pods"))
        else {
            Issue.record("a pod is deleted, not only marked"); return
        }
        #expect(grace == 12)
        var cm: JSON = ["metadata": ["name": "c"]]
        guard
            case .proceed(let none) = try ConfigMapStrategy().planDeletion(
                &cm, gracePeriod: 30, Self.context("configmaps"))
        else { return }
        #expect(none == 0)
    }

    @Test func finalizersCannotBeAddedToAnObjectBeingDeleted() {
        let old: JSON = ["metadata": ["name": "c", "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["a"]]]
        var new = old
        new["metadata"]["finalizers"] = ["a", "b"]
        #expect(Validation.metadataUpdate(new, old: old).first?.field == "metadata.finalizers")
        new["metadata"]["finalizers"] = .null
        #expect(Validation.metadataUpdate(new, old: old).isEmpty)
    }

    /// The generic request path names no kind: every kind's rules are in its strategy.
    @Test func crudNamesNoKind() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/BerthAPI/CRUD.swift")
        let text = try String(contentsOf: source, encoding: .utf8)
        for r in Registry.all {
            #expect(!text.contains("\"\(r.kind)\""), "CRUD.swift names \(r.kind)")
            #expect(!text.contains("\"\(r.plural)\""), "CRUD.swift names \(r.plural)")
        }
        #expect(!text.contains("kind =="), "CRUD.swift branches on a kind")
    }
}

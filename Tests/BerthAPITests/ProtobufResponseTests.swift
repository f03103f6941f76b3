@testable import BerthAPI
import Foundation
import Testing

/// Where `decoded` (an object read back from protobuf) differs from `original` (the same object in JSON):
/// every field it has must be the original's, and every field it lacks must be a zero the wire leaves out
/// (Go's omitempty: 0, "", false, [], {}). Paths name the differences.
func wireDifferences(_ original: JSON, _ decoded: JSON, _ path: String = "") -> [String] {
    func isZero(_ j: JSON) -> Bool {
        switch j {
        case .null, .bool(false), .string(""), .number("0"): return true
        case .array(let a): return a.isEmpty
        case .object(let o): return o.values.allSatisfy(isZero)
        default: return false
        }
    }
    switch (original, decoded) {
    case (.object(let a), .object(let b)):
        var out: [String] = []
        // TypeMeta has no protobuf field: an object embedded in another (a StatefulSet's claim templates)
        // loses its apiVersion and kind on the wire, as in Go.
        for (k, v) in a where b[k] == nil && !isZero(v) && k != "apiVersion" && k != "kind" {
            out.append("\(path).\(k) missing")
        }
        for (k, v) in b {
            guard let o = a[k] else { out.append("\(path).\(k) added"); continue }
            out += wireDifferences(o, v, "\(path).\(k)")
        }
        return out
    case (.array(let a), .array(let b)):
        guard a.count == b.count else { return ["\(path): \(a.count) items, \(b.count) decoded"] }
        return zip(a, b).enumerated().flatMap { wireDifferences($1.0, $1.1, "\(path)[\($0)]") }
    default:
        return original == decoded ? [] : ["\(path): \(original) became \(decoded)"]
    }
}

extension APITests {
    /// Responses in Kubernetes protobuf, as client-go's typed clients (kubectl describe, drain, auth can-i,
    /// run -i's watch; every Kubernetes component) ask for them first.
    @Suite("protobuf responses", .serialized)
    struct ProtobufResponseTests {
        @Test func writesTheBytesGoWrites() throws {
            let cm: JSON = [
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": [
                    "name": "cfg", "namespace": "default", "resourceVersion": "7",
                    "creationTimestamp": "2023-11-14T22:13:20Z", "labels": ["b": "2", "a": "1"],
                ],
                "data": ["k": "v"], "binaryData": ["bin": "//4AQQ=="], "immutable": false,
                "unknownToTheSchema": "dropped",
            ]
            // What k8s.io/api's generated Marshal writes for the same object: fields in number order, map
            // entries sorted, the envelope around it.
            let expected = ProtoWriter.envelope("v1", "ConfigMap") { o in
                o.message(1) { m in
                    m.string(1, "cfg"); m.string(3, "default"); m.string(6, "7")
                    m.message(8) {
                        $0.int(1, 1_700_000_000); $0.int(2, 0)
                    }
                    m.entry(11, "a", "1"); m.entry(11, "b", "2")
                }
                o.entry(2, "k", "v")
                o.message(3) { e in
                    e.string(1, "bin"); e.bytes(2, [0xff, 0xfe, 0x00, 0x41])
                }
                o.bool(4, false)
            }
            #expect(Protobuf.encodeObject(cm) == expected)
            #expect(Protobuf.unencodable(cm) == ["unknownToTheSchema"])

            // IntOrString both ways, a negative int32, a MicroTime, an inline struct, a map of lists.
            let svc: JSON = [
                "apiVersion": "v1", "kind": "Service", "metadata": ["name": "s"],
                "spec": ["ports": [["port": 80, "targetPort": "http"], ["port": 81, "targetPort": 8081]]],
            ]
            let svcBytes = ProtoWriter.envelope("v1", "Service") { o in
                o.message(1) { $0.string(1, "s") }
                o.message(2) { s in
                    s.message(1) { p in
                        p.int(3, 80);
                        p.message(4) {
                            $0.int(1, 1); $0.string(3, "http")
                        }
                    }
                    s.message(1) { p in
                        p.int(3, 81);
                        p.message(4) {
                            $0.int(1, 0); $0.int(2, 8081)
                        }
                    }
                }
            }
            #expect(Protobuf.encodeObject(svc) == svcBytes)
            let lease: JSON = [
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": ["name": "l"],
                "spec": ["renewTime": "2026-12-06T10:00:05.250000Z", "leaseTransitions": -1],
            ]
            let leaseBytes = ProtoWriter.envelope("coordination.k8s.io/v1", "Lease") { o in
                o.message(1) { $0.string(1, "l") }
                o.message(2) { s in
                    s.message(4) {
                        $0.int(1, 1_796_551_205); $0.int(2, 250_000_000)
                    }
                    s.int(5, -1)
                }
            }
            #expect(Protobuf.encodeObject(lease) == leaseBytes)
            let cmVolume: JSON = [
                "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "p"],
                "spec": ["volumes": [["name": "v", "configMap": ["name": "cfg"]]]],
            ]
            let decoded = try Protobuf.decodeObject(try #require(Protobuf.encodeObject(cmVolume)), kind: "Pod")
            #expect(decoded["spec"]["volumes"][0] == ["name": "v", "configMap": ["name": "cfg"]])
            let review: JSON = [
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "metadata": [:],
                "spec": ["user": "jane", "extra": ["scopes": ["a", "b"], "none": []]],
                "status": ["allowed": true],
            ]
            let back = try Protobuf.decodeObject(
                try #require(Protobuf.encodeObject(review)), kind: "SubjectAccessReview")
            #expect(back["spec"]["extra"] == ["scopes": ["a", "b"], "none": []], "\(back)")
            #expect(Protobuf.encodeObject(["apiVersion": "example.com/v1", "kind": "Widget"]) == nil)

            // metrics.k8s.io as the server builds it: a Duration is its nanoseconds on the wire.
            let podMetrics: JSON = [
                "apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                "metadata": ["name": "busy", "namespace": "default"], "timestamp": "2026-12-06T10:00:00Z",
                "window": "1m30.5s", "containers": [["name": "busy", "usage": ["cpu": "987m", "memory": "1Mi"]]],
            ]
            let metricsBytes = ProtoWriter.envelope("metrics.k8s.io/v1beta1", "PodMetrics") { o in
                o.message(1) {
                    $0.string(1, "busy"); $0.string(3, "default")
                }
                o.message(2) {
                    $0.int(1, 1_796_551_200); $0.int(2, 0)
                }
                o.message(3) { $0.int(1, 90_500_000_000) }
                o.message(4) { c in
                    c.string(1, "busy")
                    c.message(2) { e in
                        e.string(1, "cpu"); e.message(2) { $0.string(1, "987m") }
                    }
                    c.message(2) { e in
                        e.string(1, "memory"); e.message(2) { $0.string(1, "1Mi") }
                    }
                }
            }
            #expect(Protobuf.encodeObject(podMetrics) == metricsBytes)
            #expect(try Protobuf.decodeObject(metricsBytes, kind: "PodMetrics") == podMetrics)
        }

        /// A CRD's schema: fields whose JSON is a schema or something else (marshal.go's
        /// JSONSchemaPropsOr{Bool,Array,StringArray}), and any JSON as raw bytes (`default`, `enum`).
        @Test func schemaFormsAsGoMarshalsThem() throws {
            func definition(_ schema: JSON) -> JSON {
                [
                    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": ["name": "c"],
                    "spec": ["versions": [["name": "v1", "schema": ["openAPIV3Schema": schema]]]],
                ]
            }
            let crd = definition([
                "additionalProperties": false, "additionalItems": ["type": "string"],
                "items": [["type": "integer"], ["type": "string"]],
                "dependencies": ["a": ["b", "c"], "d": ["required": ["e"]]],
                "default": ["x": [1, "two"]], "enum": ["red", 7, ["k": true]],
            ])
            let expected = ProtoWriter.envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition") { o in
                o.message(1) { $0.string(1, "c") }
                o.message(2) { spec in
                    spec.message(7) { v in
                        v.string(1, "v1")
                        v.message(4) { validation in
                            validation.message(1) { p in
                                p.message(8) { $0.bytes(1, Array(#"{"x":[1,"two"]}"#.utf8)) }
                                p.message(20) { $0.bytes(1, Array(#""red""#.utf8)) }
                                p.message(20) { $0.bytes(1, Array("7".utf8)) }
                                p.message(20) { $0.bytes(1, Array(#"{"k":true}"#.utf8)) }
                                p.message(24) { items in
                                    items.message(2) { $0.string(5, "integer") }
                                    items.message(2) { $0.string(5, "string") }
                                }
                                p.message(30) { $0.bool(1, false) }
                                p.message(32) { e in
                                    e.string(1, "a")
                                    e.message(2) {
                                        $0.string(2, "b"); $0.string(2, "c")
                                    }
                                }
                                p.message(32) { e in
                                    e.string(1, "d")
                                    e.message(2) { $0.message(1) { $0.string(23, "e") } }
                                }
                                p.message(33) { a in
                                    a.bool(1, true)
                                    a.message(2) { $0.string(5, "string") }
                                }
                            }
                        }
                    }
                }
            }
            let bytes = try #require(Protobuf.encodeObject(crd))
            #expect(bytes == expected)
            #expect(Protobuf.unencodable(crd).isEmpty, "\(Protobuf.unencodable(crd))")
            let back = try Protobuf.decodeObject(bytes, kind: "CustomResourceDefinition")
            #expect(wireDifferences(crd, back).isEmpty, "\(wireDifferences(crd, back))")
            // The other branch of each: a schema for additionalProperties, one schema for items.
            let other = definition([
                "additionalProperties": ["type": "string"], "items": ["type": "integer"],
                "x-kubernetes-preserve-unknown-fields": false,
            ])
            let otherBack = try Protobuf.decodeObject(
                try #require(Protobuf.encodeObject(other)), kind: "CustomResourceDefinition")
            #expect(otherBack == other, "\(otherBack)")
            // A value no form allows is reported, not written.
            let wrong = definition(["additionalProperties": "yes"])
            #expect(
                Protobuf.unencodable(wrong) == ["spec.versions[0].schema.openAPIV3Schema.additionalProperties"])
        }

        @Test func listsStatusesAndWatchEvents() throws {
            let list: JSON = [
                "apiVersion": "v1", "kind": "ConfigMapList",
                "metadata": ["resourceVersion": "12", "continue": "abc", "remainingItemCount": 0],
                "items": [["metadata": ["name": "a"]], ["metadata": ["name": "b"], "data": ["x": "y"]]],
            ]
            let expected = ProtoWriter.envelope("v1", "ConfigMapList") { o in
                o.message(1) { m in
                    m.string(2, "12"); m.string(3, "abc"); m.int(4, 0)
                }
                o.message(2) { $0.message(1) { $0.string(1, "a") } }
                o.message(2) { i in
                    i.message(1) { $0.string(1, "b") }; i.entry(2, "x", "y")
                }
            }
            #expect(Protobuf.encodeObject(list) == expected)

            let status = APIError.gone("too old resource version: 5 (9)").status
            let statusBytes = try #require(Protobuf.encodeObject(status))
            var r = Protobuf.Reader(statusBytes[4...])
            var raw: ArraySlice<UInt8> = []
            while let (n, v) = try r.next() { if n == 2, case .bytes(let b) = v { raw = b } }
            let decodedStatus = try Protobuf.decode(raw, "Status", depth: 0)
            #expect(decodedStatus["code"] == 410 && decodedStatus["reason"] == "Expired", "\(decodedStatus)")

            // A watch frame: big-endian length, then WatchEvent{1 type, 2 RawExtension{1 object with envelope}}.
            let cm: JSON = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a"]]
            let frame = try #require(Protobuf.watchFrame(type: "ADDED", object: cm))
            let length = Int(frame[0]) << 24 | Int(frame[1]) << 16 | Int(frame[2]) << 8 | Int(frame[3])
            #expect(length == frame.count - 4)
            var event = ProtoWriter()
            event.string(1, "ADDED")
            event.message(2) { $0.bytes(1, Protobuf.encodeObject(cm)!) }
            #expect(Array(frame[4...]) == event.bytes)
        }

        /// Every built-in kind applied with kubectl, read back over HTTPS in JSON and in protobuf: the
        /// protobuf carries everything the JSON does; kubectl's typed clients read it; watches stream it.
        @Test func everyKindOverHTTPS() async throws {
            let s = try await TestServer()
            defer { Task { await s.stop() } }
            let applied = try s.kubectl("apply", "-f", fixturesDir + "/every-kind.yaml")
            #expect(applied.ok, "\(applied.stderr)")
            // A CSR needs a real request; and a node's status is the node's to write.
            let key = s.dir + "/csr.key", req = s.dir + "/csr.pem"
            let openssl = try run(
                "openssl",
                [
                    "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
                    "/O=wire/CN=pb", "-keyout", key, "-out", req,
                ])
            #expect(openssl.ok, "\(openssl.stderr)")
            let pem = try String(contentsOfFile: req, encoding: .utf8)
            let csr = try s.kubectl(
                "apply", "-f", "-",
                stdin: """
                    {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                     "metadata": {"name": "pb-csr"},
                     "spec": {"signerName": "example.com/signer", "usages": ["client auth"],
                              "request": "\(Data(pem.utf8).base64EncodedString())"}}
                    """)
            #expect(csr.ok, "\(csr.stderr)")
            var nodeStatus = try s.curl("GET", "/api/v1/nodes/n1").1
            nodeStatus["status"] = [
                "capacity": ["cpu": "4", "memory": "8Gi", "pods": "110"],
                "allocatable": ["cpu": "3500m", "memory": "7Gi", "pods": "110"],
                "conditions": [
                    [
                        "type": "Ready", "status": "True", "reason": "KubeletReady",
                        "lastHeartbeatTime": "2026-12-06T10:00:00Z", "lastTransitionTime": "2026-12-06T09:00:00Z",
                    ]
                ],
                "addresses": [["type": "InternalIP", "address": "10.0.0.5"], ["type": "Hostname", "address": "n1"]],
                "daemonEndpoints": ["kubeletEndpoint": ["Port": 10250]],
                "nodeInfo": [
                    "machineID": "m", "systemUUID": "u", "bootID": "b", "kernelVersion": "6.1", "osImage": "Debian",
                    "containerRuntimeVersion": "berth://1", "kubeletVersion": "v1.32.0", "kubeProxyVersion": "",
                    "operatingSystem": "linux", "architecture": "amd64",
                ],
                "images": [["names": ["busybox:latest"], "sizeBytes": 1_234_567]],
            ]
            let put = try s.curl("PUT", "/api/v1/nodes/n1/status", body: nodeStatus.text)
            #expect(put.0 == 200, "\(put.1)")

            let resources: [(path: String, apiVersion: String, kind: String)] =
                [
                    ("/api/v1/namespaces", "v1", "Namespace"), ("/api/v1/nodes", "v1", "Node"),
                    ("/api/v1/persistentvolumes", "v1", "PersistentVolume"),
                    ("/api/v1/componentstatuses", "v1", "ComponentStatus"),
                ]
                + [
                    "configmaps:ConfigMap", "secrets:Secret", "serviceaccounts:ServiceAccount", "services:Service",
                    "pods:Pod", "endpoints:Endpoints", "limitranges:LimitRange", "resourcequotas:ResourceQuota",
                    "persistentvolumeclaims:PersistentVolumeClaim", "replicationcontrollers:ReplicationController",
                    "podtemplates:PodTemplate", "events:Event",
                ].map(Self.split).map { ("/api/v1/namespaces/pb/\($0.0)", "v1", $0.1) }
                + [
                    "apps/v1 deployments:Deployment", "apps/v1 statefulsets:StatefulSet",
                    "events.k8s.io/v1 events:Event",
                    "apps/v1 daemonsets:DaemonSet", "apps/v1 controllerrevisions:ControllerRevision",
                    "batch/v1 jobs:Job", "batch/v1 cronjobs:CronJob",
                    "autoscaling/v2 horizontalpodautoscalers:HorizontalPodAutoscaler",
                    "autoscaling/v1 horizontalpodautoscalers:HorizontalPodAutoscaler",
                    "coordination.k8s.io/v1 leases:Lease", "discovery.k8s.io/v1 endpointslices:EndpointSlice",
                    "rbac.authorization.k8s.io/v1 roles:Role", "rbac.authorization.k8s.io/v1 rolebindings:RoleBinding",
                    "policy/v1 poddisruptionbudgets:PodDisruptionBudget", "networking.k8s.io/v1 ingresses:Ingress",
                    "networking.k8s.io/v1 networkpolicies:NetworkPolicy",
                    "storage.k8s.io/v1 csistoragecapacities:CSIStorageCapacity",
                ].map { Self.groupResource($0, namespace: "pb") }
                + [
                    "rbac.authorization.k8s.io/v1 clusterroles:ClusterRole",
                    "rbac.authorization.k8s.io/v1 clusterrolebindings:ClusterRoleBinding",
                    "scheduling.k8s.io/v1 priorityclasses:PriorityClass",
                    "networking.k8s.io/v1 ingressclasses:IngressClass", "storage.k8s.io/v1 storageclasses:StorageClass",
                    "storage.k8s.io/v1 csidrivers:CSIDriver", "storage.k8s.io/v1 csinodes:CSINode",
                    "storage.k8s.io/v1 volumeattachments:VolumeAttachment",
                    "node.k8s.io/v1 runtimeclasses:RuntimeClass",
                    "certificates.k8s.io/v1 certificatesigningrequests:CertificateSigningRequest",
                    "admissionregistration.k8s.io/v1 validatingadmissionpolicies:ValidatingAdmissionPolicy",
                    "admissionregistration.k8s.io/v1 validatingadmissionpolicybindings:ValidatingAdmissionPolicyBinding",
                    "admissionregistration.k8s.io/v1 mutatingwebhookconfigurations:MutatingWebhookConfiguration",
                    "admissionregistration.k8s.io/v1 validatingwebhookconfigurations:ValidatingWebhookConfiguration",
                    "flowcontrol.apiserver.k8s.io/v1 flowschemas:FlowSchema",
                    "flowcontrol.apiserver.k8s.io/v1 prioritylevelconfigurations:PriorityLevelConfiguration",
                    "apiextensions.k8s.io/v1 customresourcedefinitions:CustomResourceDefinition",
                ].map { Self.groupResource($0, namespace: nil) }
            for r in resources {
                let json = try s.curl("GET", r.path).1
                let items = json["items"].array ?? []
                #expect(!items.isEmpty, "\(r.path) lists nothing: \(json)")
                #expect(Protobuf.unencodable(json).isEmpty, "\(r.path): \(Protobuf.unencodable(json))")
                let (type, body) = try Self.fetch(s, r.path)
                #expect(type == Protobuf.mediaType, "\(r.path) answered \(type)")
                let (typeMeta, decodedItems) = try Self.decodeList(body, item: r.apiVersion, r.kind)
                #expect(typeMeta == "\(r.apiVersion) \(r.kind)List", "\(r.path)")
                #expect(decodedItems.count == items.count, "\(r.path)")
                for (original, decoded) in zip(items, decodedItems) {
                    let differences = wireDifferences(original, decoded)
                    #expect(differences.isEmpty, "\(r.path) \(original["metadata"]["name"]): \(differences)")
                }
                // One object, GET by name.
                if let name = items.first?["metadata"]["name"].string {
                    let (_, one) = try Self.fetch(s, r.path + "/" + name)
                    let object = try Protobuf.decodeObject(one, kind: r.kind, apiVersion: r.apiVersion)
                    let original = try s.curl("GET", r.path + "/" + name).1
                    #expect(wireDifferences(original, object).isEmpty, "\(r.path)/\(name)")
                }
            }
            // No protobuf form: custom resources (none upstream) answer JSON.
            let established = try s.kubectl(
                "wait", "--for=condition=Established", "crd/gadgets.pb.example.com", "--timeout=30s")
            #expect(established.ok, "\(established.stderr)")
            #expect(try Self.fetch(s, "/apis/pb.example.com/v1/namespaces/pb/gadgets").0 == "application/json")
            // Tables stay JSON whatever else is listed.
            #expect(
                try Self.fetch(
                    s, "/api/v1/namespaces/pb/pods",
                    accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/vnd.kubernetes.protobuf"
                ).0 == "application/json")

            // kubectl's typed clients (describe, auth can-i, create token) read protobuf answers.
            for (kind, name, phrases) in [
                ("pod", "full", ["busybox", "128Mi", "http-get http://:http/ delay=0s timeout=1s period=5s", "init:"]),
                ("node", "n1", ["Taints:             k=v:NoSchedule", "10.244.1.0/24", "InternalIP:  10.0.0.5"]),
                ("service", "web", ["NodePort", "ClientIP", "9090/TCP"]),
                ("deployment", "web", ["25% max unavailable", "1 max surge"]),
                ("statefulset", "db", ["Volume Claims", "MaxUnavailable:   1", "1Gi"]),
                ("cronjob", "nightly", ["0 3 * * *", "Forbid"]),
                ("job", "batch", ["Indexed", "Completions:"]),
                ("hpa", "web", ["Min replicas:", "cpu", "qps"]),
                ("ingress", "web", ["web.example", "pb-nginx"]),
                ("networkpolicy", "deny", ["10.0.0.0/8", "Except: 10.1.0.0/16", "8080-8090/TCP"]),
                ("pdb", "web", ["50%"]), ("resourcequota", "quota", ["Resource    Used  Hard"]),
                ("limitrange", "limits", ["500m"]), ("lease", "lock", ["me"]),
                ("priorityclass", "pb-high", ["100000"]), ("storageclass", "pb-fast", ["WaitForFirstConsumer"]),
                ("clusterrolebinding", "pb-view", ["viewers"]), ("role", "reader", ["pods/log"]),
                ("csr", "pb-csr", ["example.com/signer"]), ("configmap", "cfg", ["a b"]),
                ("secret", "creds", ["user:"]), ("serviceaccount", "robot", ["reg"]),
                ("endpointslice", "web-abc", ["10.1.2.3"]), ("pvc", "claim", ["manual"]),
                ("pv", "pv-local", ["5Gi", "Retain"]), ("namespace", "pb", ["team=wire"]),
                ("flowschema", "pb-flow", ["pb-level"]), ("runtimeclass", "pb-runc", ["runc"]),
            ] {
                let out = try s.kubectl("describe", kind, name, "-n", "pb")
                #expect(out.ok, "describe \(kind): \(out.stderr)")
                for phrase in phrases {
                    #expect(out.stdout.contains(phrase), "describe \(kind) \(name): \(phrase) in \(out.stdout)")
                }
            }
            let can = try s.kubectl("auth", "can-i", "list", "pods", "-n", "pb", "-v=8")
            #expect(
                can.stdout.contains("yes") && can.stderr.contains("Content-Type: application/vnd.kubernetes.protobuf"))
            let token = try s.kubectl("create", "token", "robot", "-n", "pb")
            #expect(token.ok && token.stdout.split(separator: ".").count == 3, "\(token.stderr)")

            // A protobuf watch: the current state as ADDED, the initial-events bookmark, framed as upstream.
            let (watchType, stream) = try Self.fetch(
                s,
                "/api/v1/namespaces/pb/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                    + "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")
            #expect(watchType == Protobuf.watchMediaType)
            let events = try Self.watchEvents(stream, kind: "ConfigMap")
            // (Periodic bookmarks may follow: the test server sends one a second.)
            #expect(events.prefix(2).map(\.type) == ["ADDED", "BOOKMARK"], "\(events)")
            #expect(events.dropFirst().allSatisfy { $0.type == "BOOKMARK" }, "\(events)")
            #expect(events.first?.object["data"]["a"] == "1")
            #expect(events.dropFirst().first?.object["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true")
            // A watch from a revision long gone ends with an ERROR frame holding a 410 Status.
            try await s.server.store.compact(revision: try await s.server.store.currentRevision())
            let (_, expired) = try Self.fetch(s, "/api/v1/namespaces/pb/configmaps?watch=1&resourceVersion=1")
            let error = try Self.watchEvents(expired, kind: "Status")
            #expect(error.first?.type == "ERROR" && error.first?.object["code"] == 410, "\(error)")
        }

        /// /openapi/v2 in gnostic's protobuf, which kubectl falls back to where OpenAPI v3 has no answer
        /// (a kind without PATCH) and then validates against; and `kubectl explain` in its v2 form.
        @Test func openAPIv2ForKubectl() async throws {
            let s = try await TestServer()
            defer { Task { await s.stop() } }
            let review = """
                apiVersion: authorization.k8s.io/v1
                kind: SelfSubjectAccessReview
                spec:
                  resourceAttributes: {verb: get, resource: pods}
                """
            let created = try s.kubectl("create", "-f", "-", "-o", "json", stdin: review)
            #expect(created.ok, "\(created.stderr)")
            #expect((try? JSON.parse(created.stdout))?["status"]["allowed"] == true, "\(created.stdout)")
            // kubectl's own validation, against the v2 document, names an unknown field.
            let bad = try s.kubectl(
                "create", "-f", "-",
                stdin: review.replacingOccurrences(of: "resource: pods}", with: "resource: pods, bogus: 1}"))
            #expect(!bad.ok)
            expectMentions(bad.stderr, ["unknown field \"bogus\"", "io.k8s.api.authorization.v1.ResourceAttributes"])

            let crd = """
                apiVersion: apiextensions.k8s.io/v1
                kind: CustomResourceDefinition
                metadata: {name: widgets.wire.example.com}
                spec:
                  group: wire.example.com
                  scope: Namespaced
                  names: {plural: widgets, singular: widget, kind: Widget}
                  versions:
                  - name: v1
                    served: true
                    storage: true
                    schema:
                      openAPIV3Schema:
                        type: object
                        properties:
                          spec:
                            type: object
                            description: what the widget is
                            required: [size]
                            properties:
                              size: {type: integer, minimum: 1, maximum: 10, description: how big}
                              color: {type: string, enum: [red, blue], default: red}
                """
            #expect(try s.kubectl("apply", "-f", "-", stdin: crd).ok)
            #expect(
                try s.kubectl("wait", "--for", "condition=established", "crd/widgets.wire.example.com", "--timeout=30s")
                    .ok)
            for (field, phrases) in [
                ("pods.spec.containers.image", ["KIND:     Pod", "FIELD:    image <string>"]),
                ("widgets.spec.size", ["KIND:     Widget", "FIELD:    size <integer>", "how big"]),
            ] {
                var out = try s.kubectl("explain", field, "--output=plaintext-openapiv2")
                // The custom kind reaches the cached document a moment after it is established.
                try await s.eventually("\(field) in /openapi/v2") {
                    out = try s.kubectl("explain", field, "--output=plaintext-openapiv2")
                    return out.ok
                }
                expectMentions(out.stdout, phrases)
            }
        }

        /// What client-go's metadata client asks for (the garbage collector's and quota's informers):
        /// objects as PartialObjectMetadata, lists as PartialObjectMetadataList, in protobuf or JSON.
        @Test func partialObjectMetadataForMetadataClients() async throws {
            let s = try await TestServer()
            defer { Task { await s.stop() } }
            #expect(
                try s.kubectl(
                    "create", "configmap", "big", "--from-literal=payload=\(String(repeating: "x", count: 4096))"
                ).ok)
            let path = "/api/v1/namespaces/default/configmaps"
            func accept(_ kind: String) -> String {
                "application/vnd.kubernetes.protobuf;as=\(kind);g=meta.k8s.io;v=v1,"
                    + "application/json;as=\(kind);g=meta.k8s.io;v=v1,application/json"
            }
            // JSON: kube-apiserver's conversion, items carrying their kind.
            let (jsonType, jsonBody) = try Self.fetch(
                s, path, accept: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
            let list = try JSON.parse(jsonBody)
            #expect(jsonType == "application/json")
            #expect(list["kind"] == "PartialObjectMetadataList" && list["apiVersion"] == "meta.k8s.io/v1", "\(list)")
            let item = (list["items"].array ?? []).first { $0["metadata"]["name"] == "big" }
            #expect(item?["kind"] == "PartialObjectMetadata" && item?["data"] == .null, "\(String(describing: item))")
            // Protobuf, as the metadata client lists first.
            let (type, body) = try Self.fetch(s, path, accept: accept("PartialObjectMetadataList"))
            #expect(type == Protobuf.mediaType)
            let (typeMeta, items) = try Self.decodeList(body, item: "meta.k8s.io/v1", "PartialObjectMetadata")
            #expect(typeMeta == "meta.k8s.io/v1 PartialObjectMetadataList")
            #expect(items.contains { $0["metadata"]["name"] == "big" } && body.count < 2048, "\(body.count) bytes")
            let (_, one) = try Self.fetch(s, path + "/big", accept: accept("PartialObjectMetadata"))
            let object = try Protobuf.decodeObject(one, kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1")
            #expect(object["kind"] == "PartialObjectMetadata" && object["metadata"]["name"] == "big", "\(object)")
            // A watch's objects convert too; Tables and plain JSON are untouched.
            let (_, stream) = try Self.fetch(
                s, path + "?watch=1&resourceVersion=0&timeoutSeconds=1", accept: accept("PartialObjectMetadata"))
            var r = Protobuf.Reader(stream[4...])
            var kinds: [String] = []
            while let (n, v) = try r.next() {
                if n == 2, case .bytes(let raw) = v {
                    var e = Protobuf.Reader(raw)
                    while let (en, ev) = try e.next() {
                        if en == 1, case .bytes(let inner) = ev {
                            kinds.append((try Protobuf.decodeObject(Array(inner), kind: ""))["kind"].string ?? "")
                        }
                    }
                }
            }
            #expect(kinds.first == "PartialObjectMetadata", "\(kinds)")
            #expect(
                try JSON.parse(try Self.fetch(s, path + "/big", accept: "application/json").1)["data"]["payload"]
                    .string?.count == 4096)
        }

        /// "apps/v1 deployments:Deployment" → its collection's path (in `namespace`), apiVersion and kind.
        static func groupResource(_ entry: String, namespace: String?) -> (String, String, String) {
            let gv = String(entry.split(separator: " ")[0])
            let (plural, kind) = split(String(entry.split(separator: " ")[1]))
            return ("/apis/\(gv)/" + (namespace.map { "namespaces/\($0)/" } ?? "") + plural, gv, kind)
        }

        static func split(_ s: String) -> (String, String) {
            let p = s.split(separator: ":")
            return (String(p[0]), String(p[1]))
        }

        /// A GET asking for protobuf first, as client-go does: the response's Content-Type and body.
        static func fetch(
            _ s: TestServer, _ path: String, accept: String = "application/vnd.kubernetes.protobuf, application/json"
        ) throws -> (String, [UInt8]) {
            let file = s.dir + "/response.bin"
            let out = try run(
                "/usr/bin/curl",
                [
                    "-s", "--cacert", s.dir + "/pki/ca.crt", "-H", "Authorization: Bearer \(s.token)", "-H",
                    "Accept: \(accept)", "-o", file, "-w", "%{content_type}", s.url + path,
                ])
            return (out.stdout, Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        }

        /// A protobuf list response → "apiVersion kind" of its envelope and its items as JSON.
        static func decodeList(_ body: [UInt8], item apiVersion: String, _ kind: String) throws -> (String, [JSON]) {
            #expect(Array(body.prefix(4)) == Protobuf.magic)
            var r = Protobuf.Reader(body[4...])
            var typeMeta = "", raw: ArraySlice<UInt8> = []
            while let (n, v) = try r.next() {
                guard case .bytes(let b) = v else { continue }
                if n == 1 {
                    var t = Protobuf.Reader(b)
                    var parts = ["", ""]
                    while let (tn, tv) = try t.next() {
                        if case .bytes(let s) = tv, tn <= 2 { parts[tn - 1] = String(decoding: s, as: UTF8.self) }
                    }
                    typeMeta = parts.joined(separator: " ")
                } else if n == 2 {
                    raw = b
                }
            }
            let message = try #require(Protobuf.rootMessage(apiVersion: apiVersion, kind: kind))
            var items: [JSON] = []
            var l = Protobuf.Reader(raw)
            while let (n, v) = try l.next() {
                if n == 2, case .bytes(let b) = v { items.append(try Protobuf.decode(b, message, depth: 0)) }
            }
            return (typeMeta, items)
        }

        /// A protobuf watch stream → its events, each object decoded as `kind` (or a Status for ERROR).
        static func watchEvents(_ stream: [UInt8], kind: String) throws -> [(type: String, object: JSON)] {
            var events: [(type: String, object: JSON)] = []
            var i = 0
            while i + 4 <= stream.count {
                let n = Int(stream[i]) << 24 | Int(stream[i + 1]) << 16 | Int(stream[i + 2]) << 8 | Int(stream[i + 3])
                let frame = stream[(i + 4)..<(i + 4 + n)]
                i += 4 + n
                var r = Protobuf.Reader(frame)
                var type = "", object: JSON = .null
                while let (f, v) = try r.next() {
                    guard case .bytes(let b) = v else { continue }
                    if f == 1 { type = String(decoding: b, as: UTF8.self) }
                    if f == 2 {
                        var raw = Protobuf.Reader(b)
                        while let (rf, rv) = try raw.next() {
                            if rf == 1, case .bytes(let inner) = rv {
                                object = try Protobuf.decodeObject(
                                    Array(inner), kind: type == "ERROR" ? "Status" : kind)
                            }
                        }
                    }
                }
                events.append((type, object))
            }
            #expect(i == stream.count, "a partial frame at the end")
            return events
        }
    }
}

@testable import BerthAPI
import BerthStore
import Foundation
import Testing

/// A tiny protobuf writer, enough to build Kubernetes request bodies by hand.
struct ProtoWriter {
    var bytes: [UInt8] = []
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func tag(_ n: Int, _ wire: Int) { varint(UInt64(n << 3 | wire)) }
    mutating func int(_ n: Int, _ v: Int64) { tag(n, 0); varint(UInt64(bitPattern: v)) }
    mutating func bool(_ n: Int, _ v: Bool) { int(n, v ? 1 : 0) }
    mutating func bytes(_ n: Int, _ b: [UInt8]) { tag(n, 2); varint(UInt64(b.count)); bytes += b }
    mutating func string(_ n: Int, _ s: String) { bytes(n, Array(s.utf8)) }
    mutating func message(_ n: Int, _ build: (inout ProtoWriter) -> Void) {
        var m = ProtoWriter(); build(&m); bytes(n, m.bytes)
    }
    mutating func entry(_ n: Int, _ k: String, _ v: String) {
        message(n) {
            $0.string(1, k); $0.string(2, v)
        }
    }
    /// `k8s\0` + runtime.Unknown{typeMeta, raw}.
    static func envelope(_ apiVersion: String, _ kind: String, _ raw: (inout ProtoWriter) -> Void) -> [UInt8] {
        var u = ProtoWriter()
        u.message(1) {
            $0.string(1, apiVersion); $0.string(2, kind)
        }
        u.message(2, raw)
        return Protobuf.magic + u.bytes
    }
}

extension APITests {
    /// Request bodies in Kubernetes protobuf, as kubectl's typed-client commands send them.
    @Suite("protobuf bodies", .serialized)
    struct ProtobufTests {
        @Test func schemaTableIsConsistent() {
            let (messages, problems) = Protobuf.parseSchema(Protobuf.schemaText)
            #expect(problems.isEmpty, "\(problems)")
            #expect(messages.count > 200)
            // Spot checks against k8s.io/api's generated.proto.
            #expect(
                messages["ServicePort"]?[4]?.name == "targetPort" && messages["ServicePort"]?[4]?.type == .intOrString)
            #expect(messages["DeploymentSpec"]?[9]?.name == "progressDeadlineSeconds")
            #expect(messages["Container"]?[14]?.name == "imagePullPolicy")
            #expect(messages["Secret"]?[2]?.type == .map(.bytes))
            #expect(messages["ResourceRequirements"]?[1]?.type == .map(.quantity))
            #expect(messages["Volume"]?[2]?.name == nil)  // VolumeSource, inline
        }

        @Test func decodesHandBuiltBodies() throws {
            let cm = ProtoWriter.envelope("v1", "ConfigMap") { o in
                o.message(1) { m in
                    m.string(1, "cfg"); m.string(2, ""); m.string(3, "default"); m.int(7, 0)
                    m.message(8) { _ in }  // zero creationTimestamp
                    m.entry(11, "app", "web"); m.entry(11, "tier", "front")
                    m.string(14, "f1")
                    m.int(99, 5)  // unknown field: skipped
                }
                o.entry(2, "a", "b"); o.entry(2, "empty", "")
                o.message(3) {
                    $0.string(1, "bin"); $0.bytes(2, [0, 1, 0xff])
                }
                o.bool(4, false)
            }
            let j = try Protobuf.decodeObject(cm, kind: "ConfigMap")
            #expect(j["apiVersion"] == "v1" && j["kind"] == "ConfigMap")
            #expect(
                j["metadata"] == [
                    "name": "cfg", "namespace": "default", "labels": ["app": "web", "tier": "front"],
                    "finalizers": ["f1"],
                ])
            #expect(j["data"] == ["a": "b", "empty": ""])
            #expect(j["binaryData"]["bin"] == "AAH/")
            #expect(j["immutable"] == false, "a Go pointer: false is kept")

            let dep = ProtoWriter.envelope("apps/v1", "Deployment") { o in
                o.message(1) { m in
                    m.string(1, "web")
                    m.message(8) { $0.int(1, 1_700_000_000) }
                    m.message(9) { $0.int(1, -1) }  // before the epoch
                    m.int(10, -30)
                }
                o.message(2) { s in
                    s.int(1, 0)  // replicas 0 is meaningful (pointer)
                    s.message(2) {
                        $0.entry(1, "app", "web");
                        $0.message(2) { r in
                            r.string(1, "env"); r.string(2, "In"); r.string(3, "a"); r.string(3, "b")
                        }
                    }
                    s.message(3) { t in
                        t.message(1) { $0.entry(11, "app", "web") }
                        t.message(2) { p in
                            p.message(1) { v in
                                v.string(1, "scratch"); v.message(2) { $0.message(2) { _ in } }
                            }  // emptyDir: {}
                            p.message(2) { c in
                                c.string(1, "nginx"); c.string(2, "nginx:1.27"); c.string(3, "sh"); c.string(3, "-c")
                                c.message(6) {
                                    $0.int(3, 80); $0.string(4, "TCP"); $0.int(2, 0)
                                }
                                c.message(7) {
                                    $0.string(1, "A"); $0.string(2, "1")
                                }
                                c.message(8) { r in
                                    r.message(1) {
                                        $0.string(1, "cpu"); $0.message(2) { $0.string(1, "500m") }
                                    }
                                    r.message(2) {
                                        $0.string(1, "memory"); $0.message(2) { $0.string(1, "64Mi") }
                                    }
                                }
                                c.message(10) {
                                    $0.message(1) {
                                        $0.message(2) { h in
                                            h.string(1, "/healthz");
                                            h.message(2) {
                                                $0.int(1, 1); $0.string(3, "http")
                                            }
                                        }
                                    }
                                }
                                c.string(14, "IfNotPresent")
                            }
                            p.int(4, 0)  // terminationGracePeriodSeconds 0 (pointer)
                            p.bool(11, false)  // hostNetwork false (omitempty): dropped
                            p.message(14) { $0.int(4, 1000) }  // securityContext.supplementalGroups, unpacked
                        }
                    }
                    s.message(4) { st in
                        st.string(1, "RollingUpdate");
                        st.message(2) { r in
                            r.message(1) {
                                $0.int(1, 0); $0.int(2, 0)
                            };
                            r.message(2) {
                                $0.int(1, 1); $0.string(3, "25%")
                            }
                        }
                    }
                    s.bool(7, false)
                }
                o.message(3) { _ in }
            }
            let d = try Protobuf.decodeObject(dep, kind: "Deployment")
            #expect(d["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z")
            #expect(d["metadata"]["deletionTimestamp"] == "1969-12-31T23:59:59Z")
            #expect(d["metadata"]["deletionGracePeriodSeconds"] == -30)
            let spec = d["spec"]
            #expect(spec["replicas"] == 0 && spec["paused"].isNull)
            #expect(
                spec["selector"] == [
                    "matchLabels": ["app": "web"],
                    "matchExpressions": [["key": "env", "operator": "In", "values": ["a", "b"]]],
                ])
            #expect(
                spec["strategy"] == [
                    "type": "RollingUpdate", "rollingUpdate": ["maxUnavailable": 0, "maxSurge": "25%"],
                ])
            let pod = spec["template"]["spec"]
            #expect(pod["volumes"] == [["name": "scratch", "emptyDir": [:]]])
            #expect(pod["terminationGracePeriodSeconds"] == 0 && pod["hostNetwork"].isNull)
            #expect(pod["securityContext"] == ["supplementalGroups": [1000]])
            let c = pod["containers"][0]
            #expect(c["name"] == "nginx" && c["image"] == "nginx:1.27" && c["command"] == ["sh", "-c"])
            #expect(c["ports"] == [["containerPort": 80, "protocol": "TCP"]], "hostPort 0 has omitempty")
            #expect(c["env"] == [["name": "A", "value": "1"]])
            #expect(c["resources"] == ["limits": ["cpu": "500m"], "requests": ["memory": "64Mi"]])
            #expect(
                c["livenessProbe"]["httpGet"] == ["path": "/healthz", "port": "http"], "ProbeHandler is inline in Probe"
            )
            #expect(c["imagePullPolicy"] == "IfNotPresent")
            #expect(d["status"] == [:])

            // Packed repeated ints, as proto3 writers send them.
            let packed = ProtoWriter.envelope("v1", "Pod") { o in
                o.message(2) { p in
                    p.message(14) {
                        var w = ProtoWriter(); w.varint(1); w.varint(300); $0.bytes(4, w.bytes)
                    }
                }
            }
            #expect(
                try Protobuf.decodeObject(packed, kind: "Pod")["spec"]["securityContext"]["supplementalGroups"] == [
                    1, 300,
                ])
        }

        /// A ControllerRevision's data is a RawExtension: its raw JSON bytes in field 1, as FieldsV1's.
        @Test func decodesStatefulSetsAndControllerRevisions() throws {
            let cr = ProtoWriter.envelope("apps/v1", "ControllerRevision") { o in
                o.message(1) { $0.string(1, "web-abc") }
                o.message(2) { $0.bytes(1, Array(#"{"spec":{"template":{"$patch":"replace"}}}"#.utf8)) }
                o.int(3, 2)
            }
            let revision = try Protobuf.decodeObject(cr, kind: "ControllerRevision")
            #expect(revision["data"] == ["spec": ["template": ["$patch": "replace"]]])
            #expect(revision["revision"] == 2 && revision["metadata"]["name"] == "web-abc")

            let sts = ProtoWriter.envelope("apps/v1", "StatefulSet") { o in
                o.message(1) { $0.string(1, "web") }
                o.message(2) { s in
                    s.int(1, 3)
                    s.string(5, "web")
                    s.string(6, "Parallel")
                    s.message(7) { u in
                        u.string(1, "RollingUpdate")
                        u.message(2) { $0.int(1, 0) }  // partition 0 is a pointer: kept
                    }
                    s.message(11) { $0.int(1, 5) }
                }
            }
            let set = try Protobuf.decodeObject(sts, kind: "StatefulSet")
            #expect(set["spec"]["replicas"] == 3 && set["spec"]["serviceName"] == "web")
            #expect(set["spec"]["podManagementPolicy"] == "Parallel" && set["spec"]["ordinals"]["start"] == 5)
            #expect(set["spec"]["updateStrategy"] == ["type": "RollingUpdate", "rollingUpdate": ["partition": 0]])
        }

        @Test func malformedBodiesAreBadRequests() throws {
            func failure(_ b: [UInt8], kind: String = "ConfigMap") -> APIError? {
                do { _ = try Protobuf.decodeObject(b, kind: kind); return nil } catch { return error as? APIError }
            }
            let good = ProtoWriter.envelope("v1", "ConfigMap") { o in
                o.message(1) { $0.string(1, "x") }; o.entry(2, "a", "b")
            }
            #expect(try Protobuf.decodeObject(good, kind: "ConfigMap")["data"]["a"] == "b")
            var e = failure(Array("{\"a\":1}".utf8))
            #expect(e?.code == 400 && e?.message.contains("expected prefix") == true, "\(String(describing: e))")
            e = failure([0x6b, 0x38])
            #expect(e?.code == 400)
            e = failure(Protobuf.magic + [0x0a, 0x80])  // tag, then a varint length cut short
            #expect(e?.code == 400 && e?.message.contains("truncated varint") == true, "\(String(describing: e))")
            e = failure(Protobuf.magic + [0x12, 0x7f, 0x01])  // raw claims 127 bytes
            #expect(e?.code == 400 && e?.message.contains("past the end") == true, "\(String(describing: e))")
            e = failure(Protobuf.magic + [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
            #expect(e?.code == 400, "\(String(describing: e))")
            // A time no JSON can hold.
            e = failure(
                ProtoWriter.envelope("v1", "ConfigMap") { o in o.message(1) { $0.message(8) { $0.int(1, .min) } } })
            #expect(
                e?.code == 400 && e?.message.contains("metadata.creationTimestamp") == true, "\(String(describing: e))")
            #expect(
                Protobuf.rfc3339(seconds: 253_402_300_799, nanos: 123_456_789, micro: true)
                    == "9999-12-31T23:59:59.123456Z")
            #expect(Protobuf.rfc3339(seconds: -62_167_219_200, nanos: 0, micro: false) == "0000-01-01T00:00:00Z")
            #expect(Protobuf.rfc3339(seconds: 951_782_400, nanos: 0, micro: false) == "2000-02-29T00:00:00Z")
            // Every truncation of a valid body fails cleanly or decodes; never traps.
            for n in 0..<good.count { _ = failure(Array(good.prefix(n))) }
            // A wrong wire type deep inside names the field.
            let wrong = ProtoWriter.envelope("v1", "ConfigMap") { o in o.message(1) { $0.int(1, 7) } }
            e = failure(wrong)
            #expect(e?.code == 400 && e?.message.contains("metadata.name") == true, "\(String(describing: e))")
            // A kind without a schema: 415 naming it.
            e = failure(
                ProtoWriter.envelope("example.com/v1", "Widget") { $0.message(1) { $0.string(1, "j") } },
                kind: "ConfigMap")
            #expect(
                e?.code == 415 && e?.message.contains("Widget (example.com/v1)") == true, "\(String(describing: e))")
        }

        @Test func overHTTP() async throws {
            let s = try await TestServer()
            let file = s.dir + "/body.pb"
            func post(_ path: String, _ body: [UInt8]) throws -> (Int, JSON) {
                try Data(body).write(to: URL(fileURLWithPath: file))
                return try s.curl(
                    "POST", path,
                    extra: ["-H", "Content-Type: application/vnd.kubernetes.protobuf", "--data-binary", "@" + file])
            }
            let cms = "/api/v1/namespaces/default/configmaps"
            var (code, body) = try post(
                cms,
                ProtoWriter.envelope("v1", "ConfigMap") { o in
                    o.message(1) { $0.string(1, "pb") }; o.entry(2, "k", "v")
                })
            #expect(code == 201 && body["data"]["k"] == "v", "\(body)")
            (code, body) = try post(cms, Protobuf.magic + [0x0a, 0x80])
            #expect(
                code == 400 && body["reason"] == "BadRequest" && (body["message"].string ?? "").contains("truncated"),
                "\(body)")
            (code, body) = try post(cms, Array("not protobuf".utf8))
            #expect(code == 400 && body["reason"] == "BadRequest", "\(body)")
            (code, body) = try post(
                cms, ProtoWriter.envelope("example.com/v1", "Widget") { $0.message(1) { $0.string(1, "j") } })
            #expect(
                code == 415 && body["reason"] == "UnsupportedMediaType"
                    && (body["message"].string ?? "").contains("Widget"), "\(body)")
            (code, body) = try post(cms, ProtoWriter.envelope("v1", "Secret") { $0.message(1) { $0.string(1, "s") } })
            #expect(code == 400, "a Secret posted to configmaps: \(body)")
            #expect(try s.curl("GET", cms + "/pb").0 == 200)

            func send(_ method: String, _ path: String, _ body: [UInt8]) throws -> (Int, JSON) {
                try Data(body).write(to: URL(fileURLWithPath: file))
                return try s.curl(
                    method, path,
                    extra: ["-H", "Content-Type: application/vnd.kubernetes.protobuf", "--data-binary", "@" + file])
            }
            // The bodies that are not the URL's resource: DeleteOptions, Binding, Scale.
            (code, body) = try send(
                "DELETE", cms + "/pb",
                ProtoWriter.envelope("v1", "DeleteOptions") { $0.message(2) { $0.string(1, "not-the-uid") } })
            #expect(code == 409 && (body["message"].string ?? "").contains("Precondition failed"), "\(body)")
            let pods = "/api/v1/namespaces/default/pods"
            (code, body) = try send(
                "POST", pods,
                ProtoWriter.envelope("v1", "Pod") { o in
                    o.message(1) { $0.string(1, "p") }
                    o.message(2) {
                        $0.message(2) { c in
                            c.string(1, "c"); c.string(2, "busybox")
                        }
                    }
                })
            #expect(code == 201 && body["spec"]["containers"][0]["image"] == "busybox", "\(body)")
            (code, body) = try send(
                "POST", pods + "/p/binding",
                ProtoWriter.envelope("v1", "Binding") { o in
                    o.message(1) { $0.string(1, "p") }
                    o.message(2) {
                        $0.string(1, "Node"); $0.string(3, "node-1")
                    }
                })
            #expect(code == 201, "\(body)")
            #expect(try s.curl("GET", pods + "/p").1["spec"]["nodeName"] == "node-1")
            let deps = "/apis/apps/v1/namespaces/default/deployments"
            (code, body) = try send(
                "POST", deps,
                ProtoWriter.envelope("apps/v1", "Deployment") { o in
                    o.message(1) { $0.string(1, "d") }
                    o.message(2) { s in
                        s.int(1, 1)
                        s.message(2) { $0.entry(1, "app", "d") }
                        s.message(3) { t in
                            t.message(1) { $0.entry(11, "app", "d") }
                            t.message(2) {
                                $0.message(2) { c in
                                    c.string(1, "c"); c.string(2, "busybox")
                                }
                            }
                        }
                    }
                })
            #expect(code == 201, "\(body)")
            (code, body) = try send(
                "PUT", deps + "/d/scale",
                ProtoWriter.envelope("autoscaling/v1", "Scale") { o in
                    o.message(1) { $0.string(1, "d") }
                    o.message(2) { $0.int(1, 3) }
                })
            #expect(code == 200 && body["spec"]["replicas"] == 3, "\(body)")
            #expect(try s.curl("GET", deps + "/d").1["spec"]["replicas"] == 3)
            await s.stop()
        }

        @Test func kubectlCreate() async throws {
            let s = try await TestServer()
            func kubectl(_ args: [String]) throws -> Output {
                try run("/usr/bin/kubectl", ["--kubeconfig", s.kubeconfig] + args)
            }
            func get(_ args: String...) throws -> JSON {
                let r = try kubectl(["get"] + args + ["-o", "json"])
                #expect(r.ok, "\(r.stderr)")
                return (try? JSON.parse(r.stdout)) ?? .null
            }
            /// Runs `kubectl create …` and checks that kubectl really sent protobuf (its -v=8 log shows headers).
            func create(_ args: String...) throws {
                let r = try kubectl(["create", "-v=8"] + args)
                #expect(r.ok && r.stdout.contains("created"), "kubectl create \(args): \(r.stdout) \(r.stderr)")
                #expect(
                    r.stderr.contains("Content-Type: application/vnd.kubernetes.protobuf"),
                    "kubectl create \(args) did not send protobuf")
            }
            try create("namespace", "team")
            #expect(try get("namespace", "team")["metadata"]["name"] == "team")

            try create("configmap", "cfg", "--from-literal=a=b", "--from-literal=c=", "-n", "team")
            let binary = s.dir + "/blob.bin"
            try Data([0xff, 0xfe, 0x00, 0x41]).write(to: URL(fileURLWithPath: binary))
            try create("configmap", "blob", "--from-file=blob=" + binary)
            var j = try get("configmap", "cfg", "-n", "team")
            #expect(j["data"] == ["a": "b", "c": ""], "\(j)")
            #expect(try get("configmap", "blob")["binaryData"]["blob"] == "//4AQQ==")

            try create("secret", "generic", "creds", "--from-literal=user=admin", "--from-literal=password=s3cr=t!")
            j = try get("secret", "creds")
            #expect(j["type"] == "Opaque")
            #expect(
                j["data"] == ["user": "YWRtaW4=", "password": .string(Data("s3cr=t!".utf8).base64EncodedString())],
                "\(j)")
            try create(
                "secret", "docker-registry", "reg", "--docker-server=registry.example", "--docker-username=u",
                "--docker-password=p")
            j = try get("secret", "reg")
            #expect(j["type"] == "kubernetes.io/dockerconfigjson")
            let config =
                Data(base64Encoded: j["data"][".dockerconfigjson"].string ?? "").map {
                    String(decoding: $0, as: UTF8.self)
                } ?? ""
            #expect(config.contains("registry.example"), "\(j)")

            try create("serviceaccount", "robot")
            #expect(try get("serviceaccount", "robot")["metadata"]["name"] == "robot")

            try create("service", "clusterip", "web", "--tcp=80:8080", "--tcp=443:https")
            j = try get("service", "web")
            #expect(j["spec"]["type"] == "ClusterIP" && j["spec"]["selector"] == ["app": "web"], "\(j)")
            #expect(
                j["spec"]["ports"][0]["port"] == 80 && j["spec"]["ports"][0]["targetPort"] == 8080
                    && j["spec"]["ports"][0]["protocol"] == "TCP")
            #expect(j["spec"]["ports"][0]["name"] == "80-8080")
            #expect(j["spec"]["ports"][1]["port"] == 443 && j["spec"]["ports"][1]["targetPort"] == "https")
            #expect(j["spec"]["clusterIP"].string?.hasPrefix("10.96.") == true)
            try create("service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080")
            j = try get("service", "np")
            #expect(j["spec"]["type"] == "NodePort" && j["spec"]["ports"][0]["nodePort"] == 30080, "\(j)")
            try create("service", "clusterip", "headless", "--clusterip=None")
            #expect(try get("service", "headless")["spec"]["clusterIP"] == "None")

            try create("deployment", "web", "--image=nginx:1.27", "--replicas=2", "--port=80")
            j = try get("deployment", "web")
            #expect(j["spec"]["replicas"] == 2 && j["spec"]["selector"]["matchLabels"] == ["app": "web"], "\(j)")
            #expect(j["spec"]["template"]["metadata"]["labels"] == ["app": "web"])
            let c = j["spec"]["template"]["spec"]["containers"][0]
            #expect(c["name"] == "nginx" && c["image"] == "nginx:1.27" && c["ports"][0]["containerPort"] == 80, "\(c)")
            try create("deployment", "idle", "--image=busybox", "--replicas=0", "--", "sleep", "3600")
            j = try get("deployment", "idle")
            #expect(j["spec"]["replicas"] == 0, "replicas 0 must survive: \(j["spec"])")
            #expect(j["spec"]["template"]["spec"]["containers"][0]["command"] == ["sleep", "3600"])

            // Scale to 0 through PUT (ScaleSpec.replicas is omitempty, so the body has no replicas).
            let scaled = try kubectl(["scale", "deployment", "web", "--replicas=0", "--current-replicas=2"])
            #expect(scaled.ok, "\(scaled.stderr)")
            #expect(try get("deployment", "web")["spec"]["replicas"] == 0)
            // Upstream's answer to an existing name.
            let again = try s.kubectl("create", "configmap", "cfg", "-n", "team")
            #expect(!again.ok && again.stderr.contains("already exists"), "\(again.stderr)")
            // can-i still works (SelfSubjectAccessReview in protobuf).
            #expect(try s.kubectl("auth", "can-i", "create", "deployments").stdout.hasPrefix("yes"))
            await s.stop()
        }
    }
}

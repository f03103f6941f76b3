import BerthAPI
import BerthStore
import Foundation
import Testing

extension APITests {
    /// Bad input and API machinery details, over curl so the exact codes and reasons are visible.
    @Suite("API semantics", .serialized)
    struct SemanticsTests {
        @Test func badInputGetsKubernetesStatuses() async throws {
            let s = try await TestServer()
            let cms = "/api/v1/namespaces/default/configmaps"
            var (code, body) = try s.curl("POST", cms, body: "{bad")
            #expect(code == 400 && body["reason"] == "BadRequest" && body["kind"] == "Status")
            (code, body) = try s.curl("POST", cms, body: "a: [unclosed", contentType: "application/yaml")
            #expect(code == 400 && body["reason"] == "BadRequest")
            (code, body) = try s.curl("POST", cms, body: #"{"metadata":{"name":"Bad_Name"}}"#)
            #expect(
                code == 422 && body["reason"] == "Invalid" && body["details"]["causes"][0]["field"] == "metadata.name")
            (code, body) = try s.curl("POST", cms, body: #"{"metadata":{"name":"x"},"data":{"a":1}}"#)
            #expect(code == 400 && (body["message"].string ?? "").contains("cannot unmarshal number"))
            (code, body) = try s.curl(
                "POST", cms + "?fieldValidation=Strict", body: #"{"metadata":{"name":"x"},"bogus":1}"#)
            #expect(code == 400 && (body["message"].string ?? "").contains("unknown field \"bogus\""))
            (code, _) = try s.curl("POST", cms, body: #"{"metadata":{"name":"x"},"bogus":1}"#)
            #expect(code == 201, "unknown fields are dropped (with a warning) without Strict")
            (code, body) = try s.curl("POST", cms, body: #"{"metadata":{"name":"x"}}"#)
            #expect(code == 409 && body["reason"] == "AlreadyExists")
            (code, body) = try s.curl(
                "PUT", cms + "/x", body: #"{"metadata":{"name":"x","resourceVersion":"1"},"data":{"a":"2"}}"#)
            #expect(code == 409 && body["reason"] == "Conflict")
            (code, body) = try s.curl("GET", cms + "/nope")
            #expect(code == 404 && body["reason"] == "NotFound" && body["details"]["name"] == "nope")
            (code, body) = try s.curl(
                "POST", "/api/v1/namespaces/missing/configmaps", body: #"{"metadata":{"name":"x"}}"#)
            #expect(code == 404 && body["message"] == "namespaces \"missing\" not found")
            (code, body) = try s.curl(
                "POST", "/apis/apps/v1/namespaces/default/deployments",
                body:
                    #"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"c"}},"spec":{"containers":[{"name":"c","ports":[{"containerPort":70000}]}]}}}}"#
            )
            #expect(code == 422)
            let msg = body["message"].string ?? ""
            #expect(msg.contains("selector") && msg.contains("image") && msg.contains("containerPort"), "\(msg)")
            (code, body) = try s.curl(
                "POST", "/api/v1/namespaces/default/services",
                body: #"{"metadata":{"name":"s"},"spec":{"ports":[{"port":0}]}}"#)
            #expect(code == 422 && (body["message"].string ?? "").contains("spec.ports[0].port"))
            // Oversized body → 413, and the server keeps serving.
            let big =
                "{\"metadata\":{\"name\":\"big\"},\"data\":{\"a\":\"" + String(repeating: "a", count: 4 * 1024 * 1024)
                + "\"}}"
            (code, _) = try s.curl("POST", cms, body: big)
            #expect(code == 413)
            (code, _) = try s.curl("POST", cms, body: "[1,2,3]")
            #expect(code == 400)
            (code, _) = try s.curl("PATCH", cms + "/x", body: "{}", contentType: "text/plain")
            #expect(code == 415)
            (code, body) = try s.curl(
                "PATCH", cms + "/x", body: #"[{"op":"remove","path":"/data/nothere"}]"#,
                contentType: "application/json-patch+json")
            #expect(code == 422)
            (code, _) = try s.curl("GET", "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20(b", extra: [])
            #expect(code == 400)
            (code, _) = try s.curl("GET", "/apis/nope/v1/things")
            #expect(code == 404)
            #expect(try s.curl("GET", "/healthz").0 == 200, "still serving")
            await s.stop()
        }

        /// kube-apiserver decodes into resource.Quantity and writes it back canonical; it defaults a pod's
        /// requests from its limits and computes its QoS class. The same body through create, a merge
        /// patch and a server-side apply.
        @Test func quantitiesAreStoredCanonicalAndPodsGetTheirQoSClass() async throws {
            let s = try await TestServer()
            let pods = "/api/v1/namespaces/default/pods"
            var (code, pod) = try s.curl(
                "POST", pods,
                body:
                    #"{"metadata":{"name":"q"},"spec":{"containers":[{"name":"c","image":"busybox","resources":{"limits":{"cpu":0.5,"memory":"1024Mi"}}}]}}"#
            )
            #expect(code == 201)
            let resources = pod["spec"]["containers"][0]["resources"]
            #expect(resources["limits"] == ["cpu": "500m", "memory": "1Gi"])
            #expect(resources["requests"] == ["cpu": "500m", "memory": "1Gi"], "requests default from limits")
            #expect(pod["status"]["qosClass"] == "Guaranteed")
            (code, pod) = try s.curl("GET", pods + "/q")
            #expect(code == 200 && pod["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1Gi")

            let deployments = "/apis/apps/v1/namespaces/default/deployments"
            let template =
                #"{"metadata":{"labels":{"app":"d"}},"spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"memory":"2048Mi"}}}]}}"#
            (code, _) = try s.curl(
                "POST", deployments,
                body:
                    #"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"app":"d"}},"template":\#(template)}}"#
            )
            #expect(code == 201)
            var deployment: JSON
            (code, deployment) = try s.curl(
                "PATCH", deployments + "/d",
                body:
                    #"{"spec":{"template":{"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"1000m"}}}]}}}}"#,
                contentType: "application/strategic-merge-patch+json")
            #expect(code == 200)
            #expect(
                deployment["spec"]["template"]["spec"]["containers"][0]["resources"] == [
                    "requests": ["memory": "2Gi"], "limits": ["cpu": "1"],
                ])
            (code, deployment) = try s.curl(
                "PATCH", deployments + "/applied?fieldManager=test",
                body:
                    #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"applied"},"spec":{"selector":{"matchLabels":{"app":"d"}},"template":\#(template)}}"#,
                contentType: "application/apply-patch+yaml")
            #expect(code == 201)
            #expect(deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] == "2Gi")
            // A pod's spec is immutable: resubmitting the same pod with the quantities as first written is
            // not a change once both sides are canonical (the service-account mount admission added kept).
            (code, pod) = try s.curl("GET", pods + "/q")
            var same = pod
            same["spec"]["containers"] = [
                [
                    "name": "c", "image": "busybox",
                    "resources": [
                        "limits": ["cpu": "0.5", "memory": "1024Mi"], "requests": ["cpu": "0.5", "memory": "1024Mi"],
                    ],
                    "volumeMounts": pod["spec"]["containers"][0]["volumeMounts"],
                ]
            ]
            (code, _) = try s.curl("PUT", pods + "/q", body: String(decoding: same.serialized(), as: UTF8.self))
            #expect(code == 200)
        }

        @Test func finalizersOwnerReferencesAndGeneration() async throws {
            let s = try await TestServer()
            let cms = "/api/v1/namespaces/default/configmaps"
            var (code, owner) = try s.curl(
                "POST", cms, body: #"{"metadata":{"name":"owner","finalizers":["example.com/hold"]}}"#)
            #expect(code == 201)
            let uid = owner["metadata"]["uid"].string ?? ""
            (code, _) = try s.curl(
                "POST", cms,
                body:
                    #"{"metadata":{"name":"child","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"\#(uid)"}]}}"#
            )
            #expect(code == 201)
            // Delete with a finalizer: marked, not gone.
            (code, owner) = try s.curl("DELETE", cms + "/owner")
            #expect((code == 200 || code == 202) && !owner["metadata"]["deletionTimestamp"].isNull)
            #expect(try s.curl("GET", cms + "/owner").0 == 200)
            // Removing the finalizer completes the delete; background GC removes the dependent.
            (code, _) = try s.curl(
                "PATCH", cms + "/owner", body: #"{"metadata":{"finalizers":null}}"#,
                contentType: "application/merge-patch+json")
            #expect(code == 200)
            #expect(try s.curl("GET", cms + "/owner").0 == 404)
            try await s.eventually("the garbage collector deletes the child") {
                try s.curl("GET", cms + "/child").0 == 404
            }
            // Orphan propagation keeps dependents and strips the owner reference.
            (code, owner) = try s.curl("POST", cms, body: #"{"metadata":{"name":"owner2"}}"#)
            let uid2 = owner["metadata"]["uid"].string ?? ""
            _ = try s.curl(
                "POST", cms,
                body:
                    #"{"metadata":{"name":"child2","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner2","uid":"\#(uid2)"}]}}"#
            )
            (code, _) = try s.curl("DELETE", cms + "/owner2", body: #"{"propagationPolicy":"Orphan"}"#)
            #expect(code == 202, "kept with the orphan finalizer until the garbage collector is done")
            try await s.eventually("owner2 goes once its dependent is orphaned") {
                try s.curl("GET", cms + "/owner2").0 == 404
            }
            let (c2, child2) = try s.curl("GET", cms + "/child2")
            #expect(c2 == 200 && child2["metadata"]["ownerReferences"].isNull)
            // generation counts spec changes only; status subresource does not bump it.
            let deps = "/apis/apps/v1/namespaces/default/deployments"
            let d =
                #"{"metadata":{"name":"g"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}"#
            #expect(try s.curl("POST", deps, body: d).0 == 201)
            var (_, g) = try s.curl(
                "PATCH", deps + "/g/status", body: #"{"status":{"observedGeneration":1,"replicas":0}}"#,
                contentType: "application/merge-patch+json")
            #expect(g["metadata"]["generation"] == 1 && g["status"]["observedGeneration"] == 1)
            (_, g) = try s.curl(
                "PATCH", deps + "/g", body: #"{"spec":{"replicas":3},"status":{"replicas":99}}"#,
                contentType: "application/merge-patch+json")
            #expect(g["metadata"]["generation"] == 2 && g["status"]["replicas"] == 0, "main resource ignores status")
            (_, g) = try s.curl("GET", deps + "/g/scale")
            #expect(g["kind"] == "Scale" && g["spec"]["replicas"] == 3 && g["status"]["selector"] == "a=b")
            // Binding a pod sets nodeName once.
            let pods = "/api/v1/namespaces/default/pods"
            #expect(
                try s.curl(
                    "POST", pods, body: #"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#
                ).0 == 201)
            #expect(
                try s.curl(
                    "POST", pods + "/p/binding",
                    body: #"{"metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}}"#
                ).0 == 201)
            #expect(
                try s.curl(
                    "POST", pods + "/p/binding",
                    body: #"{"metadata":{"name":"p"},"target":{"kind":"Node","name":"n2"}}"#
                ).0 == 409)
            (_, g) = try s.curl("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")
            #expect(g["items"].array?.count == 1)
            // Eviction (policy/v1) deletes the pod with its deleteOptions; a name that disagrees with the URL or
            // a pod that does not exist is refused.
            #expect(
                try s.curl(
                    "POST", pods + "/nope/eviction",
                    body: #"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"nope"}}"#
                ).0 == 404)
            #expect(
                try s.curl(
                    "POST", pods + "/p/eviction",
                    body: #"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"q"}}"#
                ).0 == 400)
            #expect(
                try s.curl(
                    "POST", pods + "/p/eviction",
                    body:
                        #"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p"},"deleteOptions":{"gracePeriodSeconds":0}}"#
                ).0 == 201)
            #expect(try s.curl("GET", pods + "/p").0 == 404, "evicted with grace 0: gone")
            let (_, v1) = try s.curl("GET", "/api/v1")
            #expect(
                v1["resources"].array?.contains {
                    $0["name"].string == "pods/eviction" && $0["kind"].string == "Eviction"
                        && $0["group"].string == "policy"
                } == true)
            // ClusterIP allocation is unique; a requested IP outside the CIDR is rejected.
            var ips = Set<String>()
            for i in 0..<5 {
                let (c, svc) = try s.curl(
                    "POST", "/api/v1/namespaces/default/services",
                    body: #"{"metadata":{"name":"s\#(i)"},"spec":{"ports":[{"port":80}]}}"#)
                #expect(c == 201)
                ips.insert(svc["spec"]["clusterIP"].string ?? "")
            }
            #expect(ips.count == 5)
            #expect(
                try s.curl(
                    "POST", "/api/v1/namespaces/default/services",
                    body: #"{"metadata":{"name":"bad"},"spec":{"clusterIP":"192.168.0.1","ports":[{"port":80}]}}"#
                ).0 == 422)
            await s.stop()
        }

        @Test func nodeIdentityMayOnlyTouchItsOwnObjects() async throws {
            let dir = NSTemporaryDirectory() + "berth-node-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try "admintok,admin,admin,\"system:masters\"\nnode1tok,system:node:n1,n1,\"system:nodes\"\n".write(
                toFile: dir + "/tokens.csv", atomically: true, encoding: .utf8)
            let t = try await TestServer(configure: { $0.dataDir = dir })
            let node = #"{"metadata":{"name":"NAME"},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#
            #expect(
                try t.curl(
                    "POST", "/api/v1/nodes", body: node.replacingOccurrences(of: "NAME", with: "n1"), token: "node1tok"
                ).0 == 201)
            #expect(
                try t.curl(
                    "POST", "/api/v1/nodes", body: node.replacingOccurrences(of: "NAME", with: "n2"), token: "admintok"
                ).0 == 201)
            #expect(
                try t.curl(
                    "PATCH", "/api/v1/nodes/n2", body: #"{"metadata":{"labels":{"x":"y"}}}"#,
                    contentType: "application/merge-patch+json", token: "node1tok"
                ).0 == 403)
            #expect(try t.curl("GET", "/api/v1/nodes", token: "node1tok").0 == 200)
            #expect(
                try t.curl(
                    "POST", "/api/v1/namespaces/default/configmaps", body: #"{"metadata":{"name":"x"}}"#,
                    token: "node1tok"
                ).0 == 403)
            let pods = "/api/v1/namespaces/default/pods"
            for (n, host) in [("on1", "n1"), ("on2", "n2")] {
                #expect(
                    try t.curl(
                        "POST", pods,
                        body:
                            #"{"metadata":{"name":"\#(n)"},"spec":{"nodeName":"\#(host)","containers":[{"name":"c","image":"i"}]}}"#,
                        token: "admintok"
                    ).0 == 201)
            }
            #expect(
                try t.curl(
                    "PATCH", pods + "/on1/status", body: #"{"status":{"phase":"Running"}}"#,
                    contentType: "application/merge-patch+json", token: "node1tok"
                ).0 == 200)
            #expect(
                try t.curl(
                    "PATCH", pods + "/on2/status", body: #"{"status":{"phase":"Running"}}"#,
                    contentType: "application/merge-patch+json", token: "node1tok"
                ).0 == 403)
            await t.stop()
        }
    }
}

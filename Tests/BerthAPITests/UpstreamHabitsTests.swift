import BerthAPI
import BerthStore
import Foundation
import Testing

extension APITests {
    /// What client-go based tools (kubectl 1.32 here) rely on kube-apiserver doing, found when they were
    /// pointed at `berth server` (issue 14, part 5).
    @Suite("upstream client habits", .serialized)
    struct UpstreamHabitsTests {
        /// Stores `json` as is, without the defaulting a create applies: how objects look that hollow nodes,
        /// older servers or other writers of the store left behind.
        func putRaw(_ s: TestServer, _ r: ResourceType, namespace: String? = nil, _ name: String, _ json: String)
            async throws
        {
            _ = try await s.server.store.create(r.key(namespace: namespace, name: name), value: Array(json.utf8))
        }

        func names(_ out: Output) -> [String] {
            out.stdout.split(separator: "\n").map { String($0.split(separator: "/").last ?? "") }.sorted()
        }

        @Test func fieldSelectorsReadAbsentFieldsAsUpstreamDefaultsThem() async throws {
            let s = try await TestServer()
            try await putRaw(s, Registry.nodes, "bare", #"{"metadata":{"name":"bare"}}"#)
            try await putRaw(
                s, Registry.nodes, "cordoned", #"{"metadata":{"name":"cordoned"},"spec":{"unschedulable":true}}"#)
            var r = try s.kubectl("get", "nodes", "--field-selector", "spec.unschedulable=false", "-o", "name")
            #expect(r.ok && names(r) == ["bare"], "\(r.stdout) \(r.stderr)")
            r = try s.kubectl("get", "nodes", "--field-selector", "spec.unschedulable!=true", "-o", "name")
            #expect(r.ok && names(r) == ["bare"], "\(r.stdout) \(r.stderr)")
            r = try s.kubectl("get", "nodes", "--field-selector", "spec.unschedulable=true", "-o", "name")
            #expect(r.ok && names(r) == ["cordoned"], "\(r.stdout) \(r.stderr)")

            // A pod with nothing but its containers: every pod field label reads what upstream's typed pod has.
            try await putRaw(
                s, Registry.pods, namespace: "default", "bare",
                #"{"metadata":{"name":"bare","namespace":"default"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#)
            for selector in [
                "spec.nodeName=", "spec.restartPolicy=Always", "spec.schedulerName=default-scheduler",
                "spec.serviceAccountName=",
                "spec.hostNetwork=false", "status.phase=Pending", "status.podIP=", "status.nominatedNodeName=",
                "status.podIPs=",
                "metadata.namespace=default", "spec.host=",
            ] {
                r = try s.kubectl("get", "pods", "--field-selector", selector, "-o", "name")
                #expect(r.ok && names(r) == ["bare"], "\(selector): \(r.stdout) \(r.stderr)")
            }
            r = try s.kubectl("get", "pods", "--field-selector", "spec.hostNetwork=true", "-o", "name")
            #expect(r.ok && r.stdout.isEmpty, "\(r.stdout) \(r.stderr)")
            // status.podIP is the first of status.podIPs, as upstream reads it.
            try await putRaw(
                s, Registry.pods, namespace: "default", "ip",
                #"{"metadata":{"name":"ip","namespace":"default"},"spec":{"containers":[{"name":"c","image":"i"}]},"status":{"phase":"Running","podIPs":[{"ip":"10.1.2.3"}]}}"#
            )
            r = try s.kubectl("get", "pods", "--field-selector", "status.podIP=10.1.2.3", "-o", "name")
            #expect(r.ok && names(r) == ["ip"], "\(r.stdout) \(r.stderr)")

            try await putRaw(s, Registry.namespaces, "bare", #"{"metadata":{"name":"bare"}}"#)
            r = try s.kubectl(
                "get", "namespaces", "--field-selector", "status.phase=Active,metadata.name=bare", "-o", "name")
            #expect(r.ok && names(r) == ["bare"], "\(r.stdout) \(r.stderr)")
            try await putRaw(
                s, Registry.secrets, namespace: "default", "bare",
                #"{"metadata":{"name":"bare","namespace":"default"}}"#)
            r = try s.kubectl("get", "secrets", "--field-selector", "type=Opaque", "-o", "name")
            #expect(r.ok && names(r) == ["bare"], "\(r.stdout) \(r.stderr)")
            try await putRaw(
                s, Registry.services, namespace: "default", "bare",
                #"{"metadata":{"name":"bare","namespace":"default"},"spec":{"clusterIP":"None"}}"#)
            r = try s.kubectl(
                "get", "services", "--field-selector", "spec.type=ClusterIP,spec.clusterIP=None", "-o", "name")
            #expect(r.ok && names(r) == ["bare"], "\(r.stdout) \(r.stderr)")
            try await putRaw(
                s, Registry.replicaSets, namespace: "default", "bare",
                #"{"metadata":{"name":"bare","namespace":"default"},"spec":{"selector":{"matchLabels":{"a":"b"}}}}"#)
            r = try s.kubectl("get", "replicasets", "--field-selector", "status.replicas=0", "-o", "name")
            #expect(r.ok && names(r) == ["bare"], "\(r.stdout) \(r.stderr)")

            // Events: `source` is source.component, or the reporting controller when there is no source.
            try await putRaw(
                s, Registry.events, namespace: "default", "e1",
                #"{"metadata":{"name":"e1","namespace":"default"},"involvedObject":{"kind":"Pod","name":"bare"},"reason":"Pulled","type":"Normal","source":{"component":"kubelet"}}"#
            )
            try await putRaw(
                s, Registry.events, namespace: "default", "e2",
                #"{"metadata":{"name":"e2","namespace":"default"},"involvedObject":{"kind":"Pod","name":"ip"},"reportingComponent":"berth-scheduler"}"#
            )
            for (selector, want) in [
                ("source=kubelet", ["e1"]), ("source=berth-scheduler", ["e2"]), ("reportingComponent=", ["e1"]),
                ("involvedObject.name=ip", ["e2"]), ("involvedObject.kind=Pod,reason=Pulled,type=Normal", ["e1"]),
                ("involvedObject.fieldPath=,involvedObject.uid=,type=", ["e2"]),
            ] {
                r = try s.kubectl("get", "events", "--field-selector", selector, "-o", "name")
                #expect(r.ok && names(r) == want, "\(selector): \(r.stdout) \(r.stderr)")
            }

            // Labels a kind does not have are refused with upstream's words, not matched against nothing.
            r = try s.kubectl("get", "pods", "--field-selector", "spec.bogus=x")
            #expect(!r.ok && r.stderr.contains("field label not supported: spec.bogus"), "\(r.stderr)")
            r = try s.kubectl("get", "nodes", "--field-selector", "metadata.namespace=default")
            #expect(!r.ok && r.stderr.contains("field label not supported: metadata.namespace"), "\(r.stderr)")
            r = try s.kubectl("get", "configmaps", "--field-selector", "data.a=1")
            #expect(
                !r.ok
                    && r.stderr.contains(
                        #""data.a" is not a known field selector: only "metadata.name", "metadata.namespace""#),
                "\(r.stderr)")
            let (code, body) = try s.curl("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Da%3Db")
            #expect(
                code == 400 && (body["message"].string ?? "").contains("unescaped character in value: ="), "\(body)")
            await s.stop()
        }

        @Test func setBasedLabelSelectorsArriveWithPlusForSpace() async throws {
            let s = try await TestServer()
            for (name, app) in [("one", "a"), ("two", "b"), ("three", "c")] {
                #expect(try s.kubectl("create", "configmap", name).ok)
                #expect(try s.kubectl("label", "configmap", name, "app=\(app)").ok)
            }
            // kubectl (Go's url.Values) sends labelSelector=app+in+%28a%2Cb%29.
            var r = try s.kubectl("get", "configmaps", "-l", "app in (a,b)", "-o", "name")
            #expect(r.ok && names(r) == ["one", "two"], "\(r.stdout) \(r.stderr)")
            r = try s.kubectl("get", "configmaps", "-l", "app notin (a,b),app", "-o", "name")
            #expect(r.ok && names(r) == ["three"], "\(r.stdout) \(r.stderr)")
            var (code, body) = try s.curl("GET", "/api/v1/namespaces/default/configmaps?labelSelector=app+in+(c)")
            #expect(code == 200 && body["items"].array?.map { $0["metadata"]["name"] } == ["three"], "\(body)")
            // Each parameter is decoded once: %2B is a literal plus, not a space.
            (code, body) = try s.curl("GET", "/api/v1/namespaces/default/configmaps?labelSelector=app%2Bin%2B(c)")
            #expect(code == 400, "\(body)")
            (code, body) = try s.curl("GET", "/api/v1/namespaces/default/configmaps?labelSelector=app%zz")
            #expect(code == 400 && (body["message"].string ?? "").contains("invalid URL escape \"%zz\""), "\(body)")
            await s.stop()
        }

        @Test func statusWritesKeepMetadataExceptWhereUpstreamResetsIt() async throws {
            let s = try await TestServer()
            #expect(try s.kubectl("create", "namespace", "team").ok)
            #expect(try s.kubectl("create", "service", "clusterip", "web", "--tcp=80:80").ok)
            #expect(try s.kubectl("create", "deployment", "web", "--image=nginx").ok)
            try await putRaw(s, Registry.nodes, "n1", #"{"metadata":{"name":"n1"}}"#)
            // An owner of a kind Berth does not serve: the garbage collector (running beside the server) leaves
            // its dependents alone, where it would collect the dependent of a ConfigMap that does not exist.
            let owner = #"[{"apiVersion":"example.com/v1","kind":"Owner","name":"o","uid":"u-1"}]"#
            #expect(
                try s.curl(
                    "POST", "/api/v1/namespaces/default/pods",
                    body:
                        #"{"metadata":{"name":"p","ownerReferences":\#(owner)},"spec":{"containers":[{"name":"c","image":"i"}]}}"#
                ).0 == 201)
            let patch = #"{"metadata":{"labels":{"seen":"yes"},"annotations":{"note":"kept"}}}"#
            for (kind, name) in [
                ("namespace", "team"), ("service", "web"), ("node", "n1"), ("pod", "p"), ("deployment", "web"),
            ] {
                let r = try s.kubectl("patch", kind, name, "--subresource=status", "--type=merge", "-p", patch)
                #expect(r.ok, "\(kind): \(r.stderr)")
                let obj = try JSON.parse(try s.kubectl("get", kind, name, "-o", "json").stdout)
                #expect(obj["metadata"]["annotations"]["note"] == "kept", "\(kind): \(obj["metadata"])")
                // Deployments' status strategy alone resets labels; the rest keep what a status writer sends.
                #expect(
                    (obj["metadata"]["labels"]["seen"] == "yes") == (kind != "deployment"),
                    "\(kind): \(obj["metadata"])")
            }
            // The spec stays the stored one, and pods/status cannot touch owner references.
            #expect(
                try s.kubectl(
                    "patch", "node", "n1", "--subresource=status", "--type=merge", "-p",
                    #"{"spec":{"unschedulable":true}}"#
                ).ok)
            #expect(try s.kubectl("get", "node", "n1", "-o", "jsonpath={.spec.unschedulable}").stdout == "")
            var r = try s.kubectl(
                "patch", "pod", "p", "--subresource=status", "--type=merge", "-p",
                #"{"metadata":{"ownerReferences":null},"status":{"phase":"Running"}}"#)
            #expect(r.ok, "\(r.stderr)")
            let pod = try JSON.parse(try s.kubectl("get", "pod", "p", "-o", "json").stdout)
            #expect(
                pod["metadata"]["ownerReferences"][0]["uid"] == "u-1" && pod["status"]["phase"] == "Running",
                "\(pod["metadata"])")
            // A PUT of the status (kubectl replace --subresource) keeps metadata too.
            var ns = try JSON.parse(try s.kubectl("get", "namespace", "team", "-o", "json").stdout)
            ns["metadata"]["labels"]["put"] = "yes"
            r = try s.kubectl("replace", "--subresource=status", "-f", "-", stdin: ns.text)
            #expect(r.ok, "\(r.stderr)")
            #expect(try s.kubectl("get", "namespace", "team", "-o", "jsonpath={.metadata.labels.put}").stdout == "yes")
            await s.stop()
        }

        @Test func immutableConfigMapsAndSecretsRefuseDataChangesButMayBeDeleted() async throws {
            let s = try await TestServer()
            let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  a: \"1\"\n"
            #expect(try s.kubectl("apply", "-f", "-", stdin: cm).ok)
            var r = try s.kubectl("patch", "configmap", "frozen", "--type=merge", "-p", #"{"data":{"a":"2"}}"#)
            #expect(
                !r.ok && r.stderr.contains("data: Forbidden: field is immutable when `immutable` is set"), "\(r.stderr)"
            )
            r = try s.kubectl("patch", "configmap", "frozen", "--type=merge", "-p", #"{"binaryData":{"b":"AA=="}}"#)
            #expect(
                !r.ok && r.stderr.contains("binaryData: Forbidden: field is immutable when `immutable` is set"),
                "\(r.stderr)")
            r = try s.kubectl(
                "patch", "configmap", "frozen", "--type=merge", "-p", #"{"immutable":false,"data":{"a":"3"}}"#)
            #expect(
                !r.ok && r.stderr.contains("immutable: Forbidden: field is immutable when `immutable` is set")
                    && r.stderr.contains("data: Forbidden"), "\(r.stderr)")
            r = try s.kubectl("apply", "-f", "-", stdin: cm.replacingOccurrences(of: "\"1\"", with: "\"4\""))
            #expect(!r.ok && r.stderr.contains("field is immutable when `immutable` is set"), "\(r.stderr)")
            #expect(try s.kubectl("get", "configmap", "frozen", "-o", "jsonpath={.data.a}").stdout == "1")
            // Metadata still changes; deletion is the way to change the data.
            #expect(try s.kubectl("label", "configmap", "frozen", "tier=web").ok)
            #expect(try s.kubectl("delete", "configmap", "frozen").ok)

            #expect(try s.kubectl("create", "secret", "generic", "sealed", "--from-literal=k=v").ok)
            #expect(try s.kubectl("patch", "secret", "sealed", "--type=merge", "-p", #"{"immutable":true}"#).ok)
            r = try s.kubectl("patch", "secret", "sealed", "--type=merge", "-p", #"{"stringData":{"k":"w"}}"#)
            #expect(
                !r.ok && r.stderr.contains("data: Forbidden: field is immutable when `immutable` is set"), "\(r.stderr)"
            )
            r = try s.kubectl(
                "patch", "secret", "sealed", "--type=json", "-p", #"[{"op":"remove","path":"/immutable"}]"#)
            #expect(!r.ok && r.stderr.contains("immutable: Forbidden"), "\(r.stderr)")
            r = try s.kubectl("patch", "secret", "sealed", "--type=merge", "-p", #"{"type":"kubernetes.io/tls"}"#)
            #expect(
                !r.ok && r.stderr.contains("type: Invalid value: \"kubernetes.io/tls\": field is immutable"),
                "\(r.stderr)")
            #expect(try s.kubectl("annotate", "secret", "sealed", "note=still-editable").ok)
            #expect(try s.kubectl("delete", "secret", "sealed").ok)
            await s.stop()
        }

        /// curl with an Accept header; returns (code, Content-Type, body).
        func fetch(_ s: TestServer, _ method: String, _ path: String, accept: String, body: String? = nil) throws -> (
            Int, String, JSON
        ) {
            var args = [
                "-s", "-D", "-", "--cacert", s.dir + "/pki/ca.crt", "-H", "Authorization: Bearer \(s.token)", "-H",
                "Accept: \(accept)", "-X", method,
            ]
            if body != nil { args += ["-H", "Content-Type: application/json", "--data-binary", "@-"] }
            let out = try run("/usr/bin/curl", args + [s.url + path], stdin: body)
            let parts = out.stdout.components(separatedBy: "\r\n\r\n")
            let head = parts.first ?? "", text = parts.dropFirst().joined(separator: "\r\n\r\n")
            let code = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
            let type =
                head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-type:") }
                .map { String($0.dropFirst("content-type:".count)).trimmingCharacters(in: .whitespaces) } ?? ""
            return (code, type, (try? JSON.parse(text)) ?? .string(text))
        }

        @Test func tableOnlyAcceptIsNotAcceptableWhereThereIsNoTable() async throws {
            let s = try await TestServer()
            let table = "application/json;as=Table;v=v1;g=meta.k8s.io"
            let ssar =
                #"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"verb":"get","resource":"pods"}}}"#
            var (code, _, body) = try fetch(
                s, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", accept: table, body: ssar)
            #expect(code == 406 && body["reason"] == "NotAcceptable" && body["kind"] == "Status", "\(body)")
            (code, _, body) = try fetch(
                s, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                accept: table + ", application/json", body: ssar)
            #expect(
                code == 201 && body["kind"] == "SelfSubjectAccessReview" && body["status"]["allowed"] == true, "\(body)"
            )
            // Discovery documents and Scale have no table either.
            for path in ["/api", "/apis", "/api/v1", "/apis/apps", "/apis/apps/v1"] {
                (code, _, body) = try fetch(s, "GET", path, accept: table)
                #expect(code == 406, "\(path): \(body)")
            }
            #expect(try s.kubectl("create", "deployment", "web", "--image=nginx").ok)
            (code, _, body) = try fetch(
                s, "GET", "/apis/apps/v1/namespaces/default/deployments/web/scale", accept: table)
            #expect(code == 406, "\(body)")
            (code, _, body) = try fetch(
                s, "GET", "/apis/apps/v1/namespaces/default/deployments/web/scale", accept: table + ",application/json")
            #expect(code == 200 && body["kind"] == "Scale", "\(body)")
            // A resource's objects print as a Table whatever the verb, as upstream's handlers print them.
            (code, _, body) = try fetch(
                s, "POST", "/api/v1/namespaces/default/configmaps", accept: table,
                body: #"{"metadata":{"name":"t"},"data":{"a":"1"}}"#)
            #expect(code == 201 && body["kind"] == "Table" && body["rows"][0]["cells"][0] == "t", "\(body)")
            (code, _, body) = try fetch(
                s, "GET", "/apis/apps/v1/namespaces/default/deployments/web/status", accept: table)
            #expect(code == 200 && body["kind"] == "Table", "\(body)")
            (code, _, body) = try fetch(s, "GET", "/api/v1/namespaces/default/configmaps", accept: table)
            #expect(code == 200 && body["kind"] == "Table", "\(body)")
            // kubectl's own mix still gets Tables, and a plain JSON client plain JSON.
            #expect(try s.kubectl("get", "configmap", "t").stdout.contains("DATA"))
            (code, _, body) = try fetch(s, "GET", "/api/v1/namespaces/default/configmaps/t", accept: "application/json")
            #expect(code == 200 && body["kind"] == "ConfigMap", "\(body)")
            await s.stop()
        }

        @Test func aggregatedDiscoveryIsServedAtTheVersionAsked() async throws {
            let s = try await TestServer()
            // client-go 1.29 asks for v2beta1 only, then falls back to plain JSON.
            let v2beta1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            for path in ["/api", "/apis"] {
                let (code, type, body) = try fetch(s, "GET", path, accept: v2beta1)
                #expect(
                    code == 200 && type == "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                    "\(path): \(type)")
                #expect(
                    body["apiVersion"] == "apidiscovery.k8s.io/v2beta1" && body["kind"] == "APIGroupDiscoveryList",
                    "\(path): \(body["apiVersion"])")
                let items = body["items"].array ?? []
                #expect(!items.isEmpty && items.allSatisfy { !($0["versions"][0]["resources"].array ?? []).isEmpty })
                if path == "/apis" {
                    #expect(
                        items.allSatisfy { !($0["metadata"]["name"].string ?? "").isEmpty },
                        "\(items.map { $0["metadata"]["name"] })")
                }
            }
            // kubectl 1.32's order prefers v2.
            let v2first =
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            var (code, type, body) = try fetch(s, "GET", "/apis", accept: v2first)
            #expect(code == 200 && type.contains("v=v2;") && body["apiVersion"] == "apidiscovery.k8s.io/v2", "\(type)")
            // A version this server does not serve: the unaggregated document, as upstream falls back.
            (code, type, body) = try fetch(
                s, "GET", "/apis",
                accept: "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json")
            #expect(
                code == 200 && body["kind"] == "APIGroupList" && type == "application/json", "\(type) \(body["kind"])")
            (code, _, body) = try fetch(
                s, "GET", "/api", accept: "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList")
            #expect(code == 406, "\(body)")
            #expect(try s.kubectl("api-resources").stdout.contains("deployments"), "kubectl 1.32 discovery still works")
            await s.stop()
        }
    }
}

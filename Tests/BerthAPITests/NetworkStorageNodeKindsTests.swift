import BerthAPI
import Foundation
import Testing

extension APITests {
    /// networking.k8s.io, storage.k8s.io and node.k8s.io kinds (issue 16): served, defaulted and checked
    /// as kube-apiserver does, through kubectl (its generators send protobuf) and the Python client.
    @Suite("network, storage and node kinds", .serialized)
    struct NetworkStorageNodeKindsTests {
        @Test func networkPoliciesAreDefaultedAndChecked() async throws {
            let s = try await TestServer()
            let policy = """
                apiVersion: networking.k8s.io/v1
                kind: NetworkPolicy
                metadata: {name: web}
                spec:
                  podSelector: {matchLabels: {app: web}}
                  ingress:
                  - from:
                    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
                    - namespaceSelector: {matchLabels: {team: a}}
                      podSelector: {matchExpressions: [{key: role, operator: In, values: [client]}]}
                    ports: [{port: 8080, endPort: 8090}, {port: http, protocol: UDP}]
                  egress:
                  - to: [{podSelector: {}}]
                """
            let applied = try s.kubectl("apply", "-f", "-", stdin: policy)
            #expect(applied.ok, "\(applied.stderr)")
            #expect(
                try s.kubectl("get", "netpol", "web", "-o", "jsonpath={.spec.policyTypes}").stdout
                    == #"["Ingress","Egress"]"#)
            #expect(
                try s.kubectl("get", "netpol", "web", "-o", "jsonpath={.spec.ingress[0].ports[0].protocol}").stdout
                    == "TCP")
            let listed = try s.kubectl("get", "networkpolicies")
            #expect(listed.stdout.contains("POD-SELECTOR") && listed.stdout.contains("app=web"), "\(listed.stdout)")

            let bad = """
                apiVersion: networking.k8s.io/v1
                kind: NetworkPolicy
                metadata: {name: bad}
                spec:
                  podSelector: {matchExpressions: [{key: app, operator: Near}]}
                  policyTypes: [Sideways]
                  ingress:
                  - from:
                    - ipBlock: {cidr: 10.0.0.0/16, except: [192.168.0.0/24]}
                      podSelector: {}
                    - {}
                    ports: [{port: 9000, endPort: 80}, {port: 70000}, {port: web, endPort: 90}, {protocol: ICMP}]
                """
            let refused = try s.kubectl("apply", "-f", "-", stdin: bad)
            #expect(!refused.ok)
            expectMentions(
                refused.stderr,
                [
                    "spec.podSelector.matchExpressions[0].operator: Invalid value: \"Near\": not a valid selector operator",
                    "spec.policyTypes[0]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"",
                    "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"192.168.0.0/24\": must be a strict subset of `cidr`",
                    "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer",
                    "spec.ingress[0].from[1]: Required value: must specify a peer",
                    "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`",
                    "spec.ingress[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                    "spec.ingress[0].ports[2].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
                    "spec.ingress[0].ports[3].protocol: Unsupported value: \"ICMP\"",
                ])
            await s.stop()
        }

        @Test func ingressesTakeTheDefaultClassAndAreChecked() async throws {
            let s = try await TestServer()
            let classes = """
                apiVersion: networking.k8s.io/v1
                kind: IngressClass
                metadata:
                  name: nginx
                  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
                spec:
                  controller: k8s.io/ingress-nginx
                  parameters: {apiGroup: k8s.example.com, kind: IngressParameters, name: external-lb}
                """
            let applied = try s.kubectl("apply", "-f", "-", stdin: classes)
            #expect(applied.ok, "\(applied.stderr)")
            #expect(
                try s.kubectl("get", "ingressclass", "nginx", "-o", "jsonpath={.spec.parameters.scope}").stdout
                    == "Cluster")
            let classTable = try s.kubectl("get", "ingressclasses")
            #expect(
                classTable.stdout.contains("k8s.io/ingress-nginx")
                    && classTable.stdout.contains("IngressParameters.k8s.example.com/external-lb"),
                "\(classTable.stdout)")
            let changed = try s.kubectl(
                "patch", "ingressclass", "nginx", "--type=merge", "-p", #"{"spec":{"controller":"example.com/other"}}"#)
            #expect(
                changed.stderr.contains("spec.controller: Invalid value: \"example.com/other\": field is immutable"))
            let undomained = try s.kubectl(
                "apply", "-f", "-",
                stdin:
                    #"{"apiVersion":"networking.k8s.io/v1","kind":"IngressClass","metadata":{"name":"x"},"spec":{"controller":"nginx"}}"#
            )
            #expect(undomained.stderr.contains("must be a domain-prefixed path (such as \"acme.io/foo\")"))

            // kubectl's generator (a protobuf body) without a class: the default class is filled in.
            let created = try s.kubectl(
                "create", "ingress", "simple", "--rule=foo.com/bar*=svc1:8080,tls=my-cert")
            #expect(created.ok, "\(created.stderr)")
            #expect(try s.kubectl("get", "ing", "simple", "-o", "jsonpath={.spec.ingressClassName}").stdout == "nginx")
            #expect(
                try s.kubectl("get", "ing", "simple", "-o", "jsonpath={.spec.rules[0].http.paths[0].pathType}").stdout
                    == "Prefix")
            let table = try s.kubectl("get", "ingress")
            #expect(
                table.stdout.contains("CLASS") && table.stdout.contains("foo.com") && table.stdout.contains("80, 443"),
                "\(table.stdout)")
            // The controller's status write.
            let status = try s.kubectl(
                "patch", "ingress", "simple", "--subresource=status", "--type=merge",
                "-p", #"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.7"}]}}}"#)
            #expect(status.ok, "\(status.stderr)")
            #expect(try s.kubectl("get", "ingress").stdout.contains("192.0.2.7"))

            let bad = """
                apiVersion: networking.k8s.io/v1
                kind: Ingress
                metadata: {name: bad}
                spec:
                  rules:
                  - host: 10.0.0.1
                    http:
                      paths:
                      - {path: relative, pathType: Prefix, backend: {service: {name: web, port: {number: 80, name: http}}}}
                      - {path: /a//b, pathType: Exact, backend: {service: {name: web}}}
                      - {path: /x, backend: {service: {name: web, port: {number: 80}}}}
                  - host: "*.*.example.com"
                """
            let refused = try s.kubectl("apply", "-f", "-", stdin: bad)
            expectMentions(
                refused.stderr,
                [
                    "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
                    "spec.rules[0].http.paths[0].path: Invalid value: \"relative\": must be an absolute path",
                    "spec.rules[0].http.paths[0].backend.service.port: Invalid value:",
                    "cannot set both port name & port number",
                    "spec.rules[0].http.paths[1].path: Invalid value: \"/a//b\": must not contain '//'",
                    "spec.rules[0].http.paths[1].backend.service.port: Required value: port name or number is required",
                    "spec.rules[0].http.paths[2].pathType: Required value: pathType must be specified",
                    "spec.rules[1].host: Invalid value: \"*.*.example.com\": a wildcard DNS-1123 subdomain",
                ])
            let empty = try s.kubectl(
                "apply", "-f", "-",
                stdin: #"{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"empty"},"spec":{}}"#)
            #expect(empty.stderr.contains("either `defaultBackend` or `rules` must be specified"), "\(empty.stderr)")
            await s.stop()
        }

        @Test func storageKindsAreDefaultedCheckedAndPrinted() async throws {
            let s = try await TestServer()
            let objects = """
                apiVersion: storage.k8s.io/v1
                kind: StorageClass
                metadata:
                  name: node-local
                  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
                provisioner: rancher.io/local-path
                parameters: {nodePath: /var/lib/volumes}
                ---
                apiVersion: storage.k8s.io/v1
                kind: CSIDriver
                metadata: {name: hostpath.csi.k8s.io}
                spec: {podInfoOnMount: true, tokenRequests: [{audience: vault, expirationSeconds: 3600}]}
                ---
                apiVersion: storage.k8s.io/v1
                kind: CSINode
                metadata: {name: node-1}
                spec:
                  drivers: [{name: hostpath.csi.k8s.io, nodeID: node-1, topologyKeys: [topology.hostpath.csi/node]}]
                ---
                apiVersion: storage.k8s.io/v1
                kind: CSIStorageCapacity
                metadata: {name: node-1-local}
                storageClassName: node-local
                capacity: 100Gi
                nodeTopology: {matchLabels: {kubernetes.io/hostname: node-1}}
                ---
                apiVersion: storage.k8s.io/v1
                kind: VolumeAttachment
                metadata: {name: va-1}
                spec: {attacher: hostpath.csi.k8s.io, nodeName: node-1, source: {persistentVolumeName: pv-1}}
                """
            let applied = try s.kubectl("apply", "-f", "-", stdin: objects)
            #expect(applied.ok, "\(applied.stderr)")
            let classes = try s.kubectl("get", "sc")
            #expect(
                classes.stdout.contains("node-local (default)") && classes.stdout.contains("rancher.io/local-path")
                    && classes.stdout.contains("Delete") && classes.stdout.contains("Immediate"),
                "\(classes.stdout)")
            // Beside the one the server makes at start, as k3s does.
            let made = classes.stdout.split(separator: "\n").first { $0.hasPrefix("local-path ") }
            #expect(
                made?.split(separator: " ", omittingEmptySubsequences: true).prefix(5).joined(separator: " ")
                    == "local-path (default) rancher.io/local-path Delete WaitForFirstConsumer", "\(classes.stdout)")
            #expect(
                try s.kubectl(
                    "get", "csidriver", "hostpath.csi.k8s.io", "-o",
                    "jsonpath={.spec.attachRequired}/{.spec.fsGroupPolicy}/{.spec.volumeLifecycleModes}"
                ).stdout == #"true/ReadWriteOnceWithFSType/["Persistent"]"#)
            let drivers = try s.kubectl("get", "csidrivers")
            #expect(drivers.stdout.contains("TOKENREQUESTS") && drivers.stdout.contains("vault"), "\(drivers.stdout)")
            #expect(try s.kubectl("get", "csinode", "node-1").stdout.contains("DRIVERS"))
            #expect(try s.kubectl("get", "csistoragecapacities").stdout.contains("100Gi"))
            let attachments = try s.kubectl("get", "volumeattachments")
            #expect(
                attachments.stdout.contains("pv-1") && attachments.stdout.contains("node-1")
                    && attachments.stdout.contains("false"), "\(attachments.stdout)")
            // The attacher reports through status; the spec is fixed.
            #expect(
                try s.kubectl(
                    "patch", "volumeattachment", "va-1", "--subresource=status", "--type=merge",
                    "-p", #"{"status":{"attached":true}}"#
                ).ok)
            #expect(
                try s.kubectl("get", "volumeattachment", "va-1", "-o", "jsonpath={.status.attached}").stdout == "true")
            var refused = try s.kubectl(
                "patch", "volumeattachment", "va-1", "--type=merge", "-p", #"{"spec":{"nodeName":"node-2"}}"#)
            #expect(refused.stderr.contains("spec: Invalid value:") && refused.stderr.contains("field is immutable"))
            refused = try s.kubectl(
                "patch", "sc", "node-local", "--type=merge", "-p", #"{"parameters":{"nodePath":"/elsewhere"}}"#)
            #expect(refused.stderr.contains("parameters: Forbidden: updates to parameters are forbidden."))
            refused = try s.kubectl(
                "patch", "csidriver", "hostpath.csi.k8s.io", "--type=merge", "-p", #"{"spec":{"attachRequired":false}}"#
            )
            #expect(refused.stderr.contains("spec.attachRequired: Invalid value: false: field is immutable"))
            // podInfoOnMount may change.
            #expect(
                try s.kubectl(
                    "patch", "csidriver", "hostpath.csi.k8s.io", "--type=merge", "-p",
                    #"{"spec":{"podInfoOnMount":false}}"#
                ).ok)

            let bad = """
                apiVersion: storage.k8s.io/v1
                kind: StorageClass
                metadata: {name: bad}
                provisioner: ""
                reclaimPolicy: Recycle
                ---
                apiVersion: storage.k8s.io/v1
                kind: CSINode
                metadata: {name: node-2}
                spec: {drivers: [{name: a.b, nodeID: x}, {name: a.b, nodeID: ""}]}
                ---
                apiVersion: storage.k8s.io/v1
                kind: CSIStorageCapacity
                metadata: {name: negative}
                storageClassName: node-local
                capacity: -1Gi
                ---
                apiVersion: storage.k8s.io/v1
                kind: VolumeAttachment
                metadata: {name: va-2}
                spec: {attacher: hostpath.csi.k8s.io, nodeName: node-1, source: {}}
                ---
                apiVersion: storage.k8s.io/v1
                kind: CSIDriver
                metadata: {name: short.token}
                spec: {tokenRequests: [{audience: a, expirationSeconds: 60}]}
                """
            refused = try s.kubectl("apply", "-f", "-", stdin: bad)
            expectMentions(
                refused.stderr,
                [
                    "provisioner: Required value",
                    "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
                    "spec.drivers[1].name: Duplicate value: \"a.b\"", "spec.drivers[1].nodeID: Required value",
                    "capacity: Invalid value: \"-1Gi\": must be greater than or equal to 0",
                    "spec.source: Invalid value:",
                    "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
                    "spec.tokenRequests[0].expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes",
                ])
            await s.stop()
        }

        @Test func runtimeClassesGivePodsTheirOverheadAndScheduling() async throws {
            let s = try await TestServer()
            let runtimeClass = """
                apiVersion: node.k8s.io/v1
                kind: RuntimeClass
                metadata: {name: sandboxed}
                handler: gvisor
                overhead: {podFixed: {cpu: 250m, memory: 120Mi}}
                scheduling:
                  nodeSelector: {sandbox: "yes"}
                  tolerations: [{key: sandbox, operator: Exists, effect: NoSchedule}]
                """
            let applied = try s.kubectl("apply", "-f", "-", stdin: runtimeClass)
            #expect(applied.ok, "\(applied.stderr)")
            #expect(try s.kubectl("get", "runtimeclass").stdout.contains("gvisor"))
            func pod(_ name: String, _ spec: String) -> String {
                #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)"},"spec":{"schedulerName":"nobody",\#(spec)"containers":[{"name":"c","image":"busybox"}]}}"#
            }
            let created = try s.kubectl(
                "create", "-f", "-",
                stdin: pod("isolated", #""runtimeClassName":"sandboxed","nodeSelector":{"zone":"a"},"#))
            #expect(created.ok, "\(created.stderr)")
            #expect(
                try s.kubectl("get", "pod", "isolated", "-o", "jsonpath={.spec.overhead.cpu}/{.spec.overhead.memory}")
                    .stdout == "250m/120Mi")
            #expect(
                try s.kubectl(
                    "get", "pod", "isolated", "-o", "jsonpath={.spec.nodeSelector.sandbox}/{.spec.nodeSelector.zone}"
                )
                .stdout == "yes/a")
            #expect(
                try s.kubectl(
                    "get", "pod", "isolated", "-o", "jsonpath={.spec.tolerations[?(@.key==\"sandbox\")].effect}"
                )
                .stdout == "NoSchedule")

            var refused = try s.kubectl("create", "-f", "-", stdin: pod("lost", #""runtimeClassName":"kata","#))
            #expect(
                refused.stderr.contains(#"pods "lost" is forbidden: pod rejected: RuntimeClass "kata" not found"#),
                "\(refused.stderr)")
            refused = try s.kubectl(
                "create", "-f", "-",
                stdin: pod("conflict", #""runtimeClassName":"sandboxed","nodeSelector":{"sandbox":"no"},"#))
            #expect(
                refused.stderr.contains(
                    "conflict: runtimeClass.scheduling.nodeSelector[sandbox] = yes; pod.spec.nodeSelector[sandbox] = no"
                ),
                "\(refused.stderr)")
            refused = try s.kubectl(
                "create", "-f", "-", stdin: pod("greedy", #""runtimeClassName":"sandboxed","overhead":{"cpu":"1"},"#))
            #expect(
                refused.stderr.contains("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"))
            refused = try s.kubectl("patch", "runtimeclass", "sandboxed", "--type=merge", "-p", #"{"handler":"kata"}"#)
            #expect(refused.stderr.contains("handler: Invalid value: \"kata\": field is immutable"))
            refused = try s.kubectl(
                "apply", "-f", "-",
                stdin:
                    #"{"apiVersion":"node.k8s.io/v1","kind":"RuntimeClass","metadata":{"name":"b"},"handler":"Not_A_Label"}"#
            )
            #expect(refused.stderr.contains("handler: Invalid value: \"Not_A_Label\": a lowercase RFC 1123 label"))
            await s.stop()
        }

        @Test(.enabled(if: pythonHasKubernetes(), "needs the kubernetes Python client"))
        func thePythonClientReadsTheKindsBack() async throws {
            let s = try await TestServer()
            let out = try run("python3", [scriptsDir + "/network_storage_kinds.py", s.kubeconfig], timeout: 120)
            #expect(out.ok && out.stdout.contains("OK"), "\(out.stdout) \(out.stderr)")
            await s.stop()
        }
    }
}

import BerthAPI
import BerthControl
import Foundation
import Testing

/// Starts a cluster with the namespace controller on, runs `body`, and stops the cluster either way.
func withControlCluster(
    _ configure: @escaping (inout ServerConfig) -> Void = { _ in },
    _ body: (Cluster) async throws -> Void
) async throws {
    let cluster = try await Cluster(configure: {
        $0.namespaceController = true; configure(&$0)
    })
    do { try await body(cluster) } catch {
        await cluster.stop()
        throw error
    }
    await cluster.stop()
}

func named(_ items: [JSON], _ name: String) -> JSON? { items.first { $0["metadata"]["name"].string == name } }

/// Runs blocking work (a child process that talks to the in-process server) on a thread of its own: on
/// the cooperative pool (two threads here) it would starve the server it waits for.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { cont in
        Thread { cont.resume(with: Result { try body() }) }.start()
    }
}

extension ControlTests {
    @Suite("namespace deletion") struct NamespaceTests {
        @Test func kubectlDeleteNamespaceWithContent() async throws {
            try await withControlCluster { c in
                // (kubectl apply: `kubectl create <kind>` sends protobuf, which the API does not read.)
                let made = try c.kubectl(
                    "apply", "-f", "-",
                    stdin: """
                        apiVersion: v1
                        kind: Namespace
                        metadata: {name: doomed}
                        ---
                        apiVersion: v1
                        kind: ConfigMap
                        metadata: {name: one, namespace: doomed}
                        data: {a: b}
                        ---
                        apiVersion: v1
                        kind: ConfigMap
                        metadata: {name: two, namespace: doomed}
                        data: {c: d}
                        ---
                        apiVersion: v1
                        kind: Service
                        metadata: {name: web, namespace: doomed}
                        spec:
                          ports: [{port: 80, targetPort: 8080}]
                        """)
                #expect(made.ok, "\(made.stderr)")
                let ns = try #require(try await c.client.get(Registry.namespaces, namespace: nil, name: "doomed"))
                #expect(ns["spec"]["finalizers"] == ["kubernetes"])
                // A pod bound to a node (its agent is simulated below) and one no node has taken.
                try await c.client.create(
                    Registry.pods,
                    [
                        "metadata": ["name": "bound", "namespace": "doomed"],
                        "spec": ["nodeName": "fake-node", "containers": [["name": "c", "image": "busybox"]]],
                    ])
                try await c.client.create(
                    Registry.pods,
                    [
                        "metadata": ["name": "pending", "namespace": "doomed"],
                        "spec": ["schedulerName": "nobody", "containers": [["name": "c", "image": "busybox"]]],
                    ])

                // kubectl delete waits until the namespace is gone.
                let kubeconfig = c.kubeconfig
                let deletion = Task {
                    try await onThread {
                        try run(
                            "/usr/bin/kubectl", ["--kubeconfig", kubeconfig, "delete", "namespace", "doomed"],
                            timeout: 90)
                    }
                }

                // Terminating, with the bound pod marked (not removed) and reported as remaining content.
                try await c.waitFor(Registry.namespaces, "doomed reporting the remaining pod") { items in
                    guard let ns = named(items, "doomed"), ns["status"]["phase"] == "Terminating" else { return false }
                    return (ns["status"]["conditions"].array ?? []).contains {
                        $0["type"] == "NamespaceContentRemaining" && $0["status"] == "True"
                            && ($0["message"].string ?? "").contains("pods. has 1 resource instances")
                    }
                }
                let got = try c.kubectl("get", "namespace", "doomed")
                #expect(got.stdout.contains("Terminating"), "\(got.stdout) \(got.stderr)")
                // New content is refused; a second delete says the system is on it.
                let create = try c.kubectl(
                    "-n", "doomed", "create", "-f", "-",
                    stdin: #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"late"}}"#)
                #expect(!create.ok && create.stderr.contains("because it is being terminated"), "\(create.stderr)")
                let again = try c.kubectl("delete", "namespace", "doomed", "--wait=false")
                #expect(
                    !again.ok && again.stderr.contains("The system is ensuring all content is removed"),
                    "\(again.stderr)")
                #expect(try await c.client.list(configMapType, namespace: "doomed").items.isEmpty)
                #expect(try await c.client.list(Registry.services, namespace: "doomed").items.isEmpty)
                let pods = try await c.client.list(Registry.pods, namespace: "doomed").items
                #expect(pods.count == 1 && named(pods, "bound")?["metadata"]["deletionTimestamp"].isNull == false)
                #expect(
                    try c.kubectl("get", "namespace", "doomed", "-o", "jsonpath={.spec.finalizers}").stdout.contains(
                        "kubernetes"))

                // The node agent finishes the pod; then the namespace goes.
                try await c.client.delete(Registry.pods, namespace: "doomed", name: "bound", gracePeriod: 0)
                try await c.waitFor(Registry.namespaces, "doomed gone") { named($0, "doomed") == nil }
                let out = try await deletion.value
                #expect(out.ok && out.stdout.contains("namespace \"doomed\" deleted"), "\(out.stdout) \(out.stderr)")
                #expect(!(try c.kubectl("get", "namespace", "doomed")).ok)
                for r in Registry.all where r.namespaced {
                    #expect(try await c.client.list(r, namespace: "doomed").items.isEmpty, "\(r.plural) left")
                }
                // The name can be used again.
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "doomed"]])
            }
        }

        @Test func contentFinalizersHoldTheNamespace() async throws {
            try await withControlCluster { c in
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "held"]])
                try await c.client.create(
                    configMapType,
                    [
                        "metadata": [
                            "name": "precious", "namespace": "held",
                            "finalizers": ["example.com/hold"],
                        ]
                    ])
                #expect(try c.kubectl("delete", "namespace", "held", "--wait=false").ok)
                try await c.waitFor(Registry.namespaces, "held reporting the finalizer") { items in
                    (named(items, "held")?["status"]["conditions"].array ?? []).contains {
                        $0["type"] == "NamespaceFinalizersRemaining" && $0["status"] == "True"
                            && ($0["message"].string ?? "").contains("example.com/hold in 1 resource instances")
                    }
                }
                try await c.client.mergePatch(
                    configMapType, namespace: "held", name: "precious", ["metadata": ["finalizers": nil]])
                try await c.waitFor(Registry.namespaces, "held gone") { named($0, "held") == nil }
            }
        }

        /// Custom resources are content too: listed by the controller from the served definitions.
        @Test func customResourcesGoWithTheirNamespace() async throws {
            try await withControlCluster { c in
                let crd = """
                    apiVersion: apiextensions.k8s.io/v1
                    kind: CustomResourceDefinition
                    metadata: {name: gizmos.example.com}
                    spec:
                      group: example.com
                      scope: Namespaced
                      names: {plural: gizmos, kind: Gizmo}
                      versions:
                      - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
                    """
                #expect(try c.kubectl("apply", "-f", "-", stdin: crd).ok)
                #expect(
                    try c.kubectl("wait", "--for", "condition=Established", "--timeout=20s", "crd/gizmos.example.com")
                        .ok)
                let made = try c.kubectl(
                    "apply", "-f", "-",
                    stdin: """
                        apiVersion: v1
                        kind: Namespace
                        metadata: {name: gadgets}
                        ---
                        apiVersion: example.com/v1
                        kind: Gizmo
                        metadata: {name: held, namespace: gadgets, finalizers: [example.com/hold]}
                        ---
                        apiVersion: example.com/v1
                        kind: Gizmo
                        metadata: {name: loose, namespace: gadgets}
                        """)
                #expect(made.ok, "\(made.stderr)")
                #expect(try c.kubectl("delete", "namespace", "gadgets", "--wait=false").ok)
                try await c.waitFor(Registry.namespaces, "gadgets reporting the custom resource left") { items in
                    (named(items, "gadgets")?["status"]["conditions"].array ?? []).contains {
                        $0["type"] == "NamespaceContentRemaining" && $0["status"] == "True"
                            && ($0["message"].string ?? "").contains("gizmos.example.com has 1 resource instances")
                    }
                }
                #expect(!(try c.kubectl("get", "gizmo", "loose", "-n", "gadgets").ok))
                #expect(
                    try c.kubectl(
                        "patch", "gizmo", "held", "-n", "gadgets", "--type=merge", "-p",
                        #"{"metadata":{"finalizers":null}}"#
                    ).ok)
                try await c.waitFor(Registry.namespaces, "gadgets gone") { named($0, "gadgets") == nil }
            }
        }

        @Test func finalizeSubresource() async throws {
            try await withControlCluster { c in
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "stuck"]])
                try await c.client.create(
                    configMapType,
                    [
                        "metadata": [
                            "name": "precious", "namespace": "stuck",
                            "finalizers": ["example.com/hold"],
                        ]
                    ])
                #expect(try c.kubectl("delete", "namespace", "stuck", "--wait=false").ok)
                // The usual way out of a stuck namespace: PUT .../finalize without the "kubernetes" finalizer.
                let body: JSON = [
                    "apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "stuck"], "spec": ["finalizers": []],
                ]
                let r = try c.kubectl(
                    "replace", "--raw", "/api/v1/namespaces/stuck/finalize", "-f", "-", stdin: body.text)
                #expect(r.ok, "\(r.stderr)")
                try await c.waitFor(Registry.namespaces, "stuck gone") { named($0, "stuck") == nil }
            }
        }

        @Test func withoutTheControllerDeletionIsImmediate() async throws {
            let c = try await Cluster(
                configure: { $0.namespaceController = false },
                control: {
                    $0.controllers = false; $0.scheduler = false
                })
            do {
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "quick"]])
                try await c.client.create(configMapType, ["metadata": ["name": "x", "namespace": "quick"]])
                let r = try c.kubectl("delete", "namespace", "quick")
                #expect(r.ok && r.stdout.contains("namespace \"quick\" deleted"), "\(r.stderr)")
                #expect(try await c.client.get(Registry.namespaces, namespace: nil, name: "quick") == nil)
                try await c.waitFor(configMapType, namespace: "quick", "contents removed") { $0.isEmpty }
            } catch {
                await c.stop()
                throw error
            }
            await c.stop()
        }
    }
}

let configMapType = Registry.find(group: "", version: "v1", plural: "configmaps")!

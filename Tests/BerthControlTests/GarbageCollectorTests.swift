import BerthAPI
import BerthControl
import Foundation
import Testing

extension ControlTests {
    @Suite("garbage collector") struct GarbageCollectorTests {
        static func ref(_ kind: String, _ name: String, _ uid: String, apiVersion: String = "v1") -> JSON {
            ["apiVersion": .string(apiVersion), "kind": .string(kind), "name": .string(name), "uid": .string(uid)]
        }
        static func cm(_ name: String, _ refs: [JSON]) -> JSON {
            ["metadata": ["name": .string(name), "namespace": "gc", "ownerReferences": .array(refs)]]
        }

        @Test func danglingOwnersAreCollected() async throws {
            try await withControlCluster { c in
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "gc"]])
                let owner = try await c.client.create(
                    configMapType, ["metadata": ["name": "owner", "namespace": "gc"]])
                let ownerUID = owner["metadata"]["uid"].string ?? ""
                let live = Self.ref("ConfigMap", "owner", ownerUID)
                let ghost = Self.ref("ConfigMap", "ghost", UUID().uuidString.lowercased())
                // A second owner removed straight from the store, not through a DELETE.
                let owner2 = try await c.client.create(
                    configMapType, ["metadata": ["name": "owner2", "namespace": "gc"]])
                let live2 = Self.ref("ConfigMap", "owner2", owner2["metadata"]["uid"].string ?? "")

                try await c.client.create(configMapType, Self.cm("kept", [live]))
                try await c.client.create(configMapType, Self.cm("orphan", [ghost]))
                try await c.client.create(
                    configMapType,
                    Self.cm("stale-uid", [Self.ref("ConfigMap", "owner", UUID().uuidString.lowercased())]))
                try await c.client.create(configMapType, Self.cm("mixed", [live, ghost]))
                try await c.client.create(
                    configMapType,
                    Self.cm("unknown-kind", [Self.ref("Widget", "w", "1234", apiVersion: "example.com/v1")]))
                try await c.client.create(configMapType, Self.cm("dep2", [live2]))
                try await c.client.create(
                    Registry.pods,
                    [
                        "metadata": [
                            "name": "rs-gone", "namespace": "gc",
                            "ownerReferences": [Self.ref("ReplicaSet", "rs", "5678", apiVersion: "apps/v1")],
                        ],
                        "spec": ["schedulerName": "nobody", "containers": [["name": "c", "image": "busybox"]]],
                    ])
                _ = try await c.client.store.delete(
                    configMapType.key(namespace: "gc", name: "owner2"), expectedRevision: nil)

                try await c.waitFor(configMapType, namespace: "gc", "dangling dependents collected") { items in
                    named(items, "orphan") == nil && named(items, "stale-uid") == nil && named(items, "dep2") == nil
                        && named(items, "mixed")?["metadata"]["ownerReferences"].array?.count == 1
                }
                try await c.waitFor(Registry.pods, namespace: "gc", "pod of a missing ReplicaSet collected") {
                    $0.isEmpty
                }
                let items = try await c.client.list(configMapType, namespace: "gc").items
                #expect(named(items, "kept")?["metadata"]["ownerReferences"] == [live])
                #expect(named(items, "mixed")?["metadata"]["ownerReferences"] == [live])
                #expect(named(items, "unknown-kind") != nil)
                #expect(named(items, "owner") != nil)

                // Deleting the owner through the API (Background): the collector takes its dependents.
                try await c.client.delete(configMapType, namespace: "gc", name: "owner")
                try await c.waitFor(configMapType, namespace: "gc", "dependents of owner collected") { items in
                    named(items, "kept") == nil && named(items, "mixed") == nil
                }
            }
        }

        /// What kubectl users see: a deleted Deployment takes its ReplicaSets and pods with it, in the
        /// background (the default) or before it goes (--cascade=foreground); --cascade=orphan leaves them.
        @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
        func kubectlDeleteCascadesThroughTheCollector() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            func deploy(_ name: String) throws {
                #expect(try c.kubectl("create", "deployment", name, "--image=registry.local/web:1", "--replicas=2").ok)
            }
            @Sendable func owned(_ items: [JSON], _ name: String) -> [JSON] {
                items.filter {
                    ($0["metadata"]["name"].string ?? "").hasPrefix(name + "-")
                        && $0["metadata"]["deletionTimestamp"].isNull
                }
            }
            for name in ["bg", "fg", "or"] { try deploy(name) }
            try await c.waitFor(Registry.pods, namespace: "default", "pods of all three") { items in
                ["bg", "fg", "or"].allSatisfy { owned(items, $0).count == 2 }
            }

            var r = try c.kubectl("delete", "deployment", "bg")
            #expect(r.ok, "\(r.stderr)")
            try await c.waitFor(Registry.replicaSets, namespace: "default", "bg's ReplicaSet collected") {
                owned($0, "bg").isEmpty
            }
            try await c.waitFor(Registry.pods, namespace: "default", "bg's pods collected") { items in
                !items.contains { ($0["metadata"]["name"].string ?? "").hasPrefix("bg-") }
            }

            // Foreground: kubectl waits for the Deployment, which goes only after its ReplicaSet, which goes
            // only after its pods.
            r = try c.kubectl("delete", "deployment", "fg", "--cascade=foreground", "--timeout=60s")
            #expect(r.ok, "\(r.stderr)")
            let pods = try await c.client.list(Registry.pods, namespace: "default").items
            let sets = try await c.client.list(Registry.replicaSets, namespace: "default").items
            #expect(!pods.contains { ($0["metadata"]["name"].string ?? "").hasPrefix("fg-") }, "fg's pods went first")
            #expect(
                !sets.contains { ($0["metadata"]["name"].string ?? "").hasPrefix("fg-") }, "fg's ReplicaSet went first")

            r = try c.kubectl("delete", "deployment", "or", "--cascade=orphan", "--timeout=60s")
            #expect(r.ok, "\(r.stderr)")
            let left = try await c.client.list(Registry.replicaSets, namespace: "default").items.filter {
                ($0["metadata"]["name"].string ?? "").hasPrefix("or-")
            }
            #expect(
                left.count == 1 && left[0]["metadata"]["ownerReferences"].isNull,
                "the orphaned ReplicaSet stays, unowned")
            try await c.waitFor(Registry.pods, namespace: "default", "or's pods keep running") {
                owned($0, "or").count == 2
            }
        }
    }
}

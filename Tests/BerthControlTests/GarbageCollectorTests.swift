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
                let owner = try await c.client.create(configMapType, ["metadata": ["name": "owner", "namespace": "gc"]])
                let ownerUID = owner["metadata"]["uid"].string ?? ""
                let live = Self.ref("ConfigMap", "owner", ownerUID)
                let ghost = Self.ref("ConfigMap", "ghost", UUID().uuidString.lowercased())
                // A second owner that is removed behind the API's back (no inline cascade).
                let owner2 = try await c.client.create(configMapType, ["metadata": ["name": "owner2", "namespace": "gc"]])
                let live2 = Self.ref("ConfigMap", "owner2", owner2["metadata"]["uid"].string ?? "")

                try await c.client.create(configMapType, Self.cm("kept", [live]))
                try await c.client.create(configMapType, Self.cm("orphan", [ghost]))
                try await c.client.create(configMapType, Self.cm("stale-uid", [Self.ref("ConfigMap", "owner", UUID().uuidString.lowercased())]))
                try await c.client.create(configMapType, Self.cm("mixed", [live, ghost]))
                try await c.client.create(configMapType, Self.cm("unknown-kind", [Self.ref("Job", "j", "1234", apiVersion: "batch/v1")]))
                try await c.client.create(configMapType, Self.cm("dep2", [live2]))
                try await c.client.create(Registry.pods, ["metadata": ["name": "rs-gone", "namespace": "gc",
                                                                       "ownerReferences": [Self.ref("ReplicaSet", "rs", "5678", apiVersion: "apps/v1")]],
                                                          "spec": ["schedulerName": "nobody", "containers": [["name": "c", "image": "busybox"]]]])
                _ = try await c.client.store.delete(configMapType.key(namespace: "gc", name: "owner2"), expectedRevision: nil)

                try await c.waitFor(configMapType, namespace: "gc", "dangling dependents collected") { items in
                    named(items, "orphan") == nil && named(items, "stale-uid") == nil && named(items, "dep2") == nil
                        && named(items, "mixed")?["metadata"]["ownerReferences"].array?.count == 1
                }
                try await c.waitFor(Registry.pods, namespace: "gc", "pod of a missing ReplicaSet collected") { $0.isEmpty }
                let items = try await c.client.list(configMapType, namespace: "gc").items
                #expect(named(items, "kept")?["metadata"]["ownerReferences"] == [live])
                #expect(named(items, "mixed")?["metadata"]["ownerReferences"] == [live])
                #expect(named(items, "unknown-kind") != nil)
                #expect(named(items, "owner") != nil)

                // The periodic sweep and the inline cascade agree: deleting the owner takes its dependents.
                try await c.client.delete(configMapType, namespace: "gc", name: "owner")
                try await c.waitFor(configMapType, namespace: "gc", "dependents of owner collected") { items in
                    named(items, "kept") == nil && named(items, "mixed") == nil
                }
            }
        }
    }
}

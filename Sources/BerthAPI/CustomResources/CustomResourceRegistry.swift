import BerthStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The custom resources this server serves right now: the served versions of every established
/// CustomResourceDefinition, swapped whole when a definition changes (requests read one snapshot).
/// Also caches the OpenAPI documents that include them, rebuilt only when the set changes.
final class CustomResourceRegistry: Sendable {
    struct Snapshot: Sendable {
        var types: [ResourceType] = []
        /// Bumped on every change: the OpenAPI v3 index's hash, so clients refetch changed documents.
        var generation = 0
        var v3Documents: [String: [UInt8]] = [:]
    }
    private let state = Mutex(Snapshot())
    private let v2Cache = Mutex<OpenAPIv2Forms?>(nil)

    /// /openapi/v2 of one generation of the custom kinds: the tree, built once, and each form written
    /// the first time a client asks for it (kubectl asks JSON for explain, protobuf for validation).
    private struct OpenAPIv2Forms {
        var generation: Int
        var tree: JSON
        var json: [UInt8]?
        var protobuf: [UInt8]?
    }

    var snapshot: Snapshot { state.withLock { $0 } }
    var types: [ResourceType] { state.withLock { $0.types } }

    /// Built-in kinds first: a definition cannot shadow them.
    func find(group: String, version: String, plural: String) -> ResourceType? {
        if let r = Registry.find(group: group, version: version, plural: plural) { return r }
        return state.withLock { s in
            s.types.first { $0.group == group && $0.version == version && $0.plural == plural }
        }
    }

    /// Every served type, built-in and custom.
    var all: [ResourceType] { Registry.all + types }

    /// What the installed types were made from (each served definition's key, spec and accepted names):
    /// a pass that serves the same (a definition's own status write, another server's) changes nothing.
    private let installedFrom = Mutex<[UInt8]?>(nil)

    /// Serves `types` (made from the definitions `signature` describes). The OpenAPI documents are built
    /// before the swap, outside the lock requests read under.
    func install(_ types: [ResourceType], signature: [UInt8]) {
        if installedFrom.withLock({ $0 == signature }) { return }
        var docs: [String: [UInt8]] = [:]
        for gv in Set(types.map { "apis/\($0.group)/\($0.version)" }) {
            docs[gv] = OpenAPI.v3(groupVersion: gv, types: types)?.serialized()
        }
        state.withLock { s in
            s.types = types
            s.generation += 1
            s.v3Documents = docs
        }
        installedFrom.withLock { $0 = signature }
    }

    /// /openapi/v2 with the custom kinds (the built-in part is computed once).
    func openAPIv2() -> [UInt8] {
        if snapshot.types.isEmpty { return OpenAPI.v2Document }
        return openAPIv2(\.json) { $0.serialized() }
    }

    /// The same document in gnostic's protobuf (`OpenAPIv2Protobuf`).
    func openAPIv2Protobuf() -> [UInt8] {
        if snapshot.types.isEmpty { return OpenAPI.v2DocumentProtobuf }
        return openAPIv2(\.protobuf, OpenAPIv2Protobuf.document)
    }

    private func openAPIv2(_ form: WritableKeyPath<OpenAPIv2Forms, [UInt8]?>, _ write: (JSON) -> [UInt8]) -> [UInt8] {
        let snap = snapshot
        var forms =
            v2Cache.withLock { $0 }.flatMap { $0.generation == snap.generation ? $0 : nil }
            ?? OpenAPIv2Forms(generation: snap.generation, tree: OpenAPI.v2(adding: snap.types))
        if let bytes = forms[keyPath: form] { return bytes }
        let bytes = write(forms.tree)
        forms[keyPath: form] = bytes
        // Kept unless a newer generation's got there first; a form written meanwhile by another request
        // for this generation may be dropped, and is written again when next asked.
        v2Cache.withLock { cached in
            if (cached?.generation ?? .min) <= forms.generation { cached = forms }
        }
        return bytes
    }
}

/// Keeps `CustomResourceRegistry` in step with the stored definitions, on every API server (each serves
/// what the store defines): names accepted unless another definition of the group holds them, the
/// conditions NamesAccepted and Established, acceptedNames and storedVersions written into the
/// definition's status; a deleted definition's custom resources removed before its finalizer is.
struct CustomResourceDefinitionController: Service {
    let store: any KVStore
    let registry: CustomResourceRegistry
    let logger: Logger
    static let resource = Registry.find(
        group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions")!

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let page = try await store.list(
                    prefix: Self.resource.keyPrefix, startAfter: nil, limit: 0, revision: nil)
                let waiting = try await reconcile(page.items)
                let events = try await store.watch(prefix: Self.resource.keyPrefix, afterRevision: page.revision)
                try await cancelWhenGracefulShutdown {
                    // Every change relists: definitions are few, and names are judged against all of them.
                    var iterator = events.makeAsyncIterator()
                    var pending = waiting
                    while true {
                        if pending {
                            // Custom resources of a deleted definition still held by finalizers: look again.
                            try await Task.sleep(for: .seconds(1))
                        } else {
                            guard try await iterator.next() != nil else { return }
                        }
                        let items = try await store.list(
                            prefix: Self.resource.keyPrefix, startAfter: nil, limit: 0, revision: nil
                        ).items
                        pending = try await reconcile(items)
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isShuttingDownGracefully { return }
                logger.warning("custom resource definitions: \(error)")
                try? await gracefulShutdownAwareSleep(for: .milliseconds(500))
            }
        }
    }

    /// Installs what the definitions serve and writes their status. Returns whether a deleted
    /// definition still waits for custom resources to go.
    func reconcile(_ items: [KeyValue]) async throws -> Bool {
        var decoded: [(kv: KeyValue, obj: JSON)] = items.compactMap { kv in
            (try? JSON.parse(kv.value)).map { (kv, $0) }
        }
        // A definition whose names were accepted keeps them; among the rest the oldest wins a contested
        // name (upstream's naming controller judges new names against the others' accepted ones).
        func order(_ o: JSON, _ key: String) -> (Int, String, String) {
            let accepted = (o["status"]["conditions"].array ?? []).contains {
                $0["type"].string == "NamesAccepted" && $0["status"].string == "True"
            }
            return (accepted ? 0 : 1, o["metadata"]["creationTimestamp"].string ?? "", key)
        }
        decoded.sort { order($0.obj, $0.kv.key) < order($1.obj, $1.kv.key) }
        var taken: [String: Set<String>] = [:]  // group → plural, singular, kinds and short names in use
        var served: [ResourceType] = []
        var signature: [UInt8] = []
        var waiting = false
        for (kv, obj) in decoded {
            guard let crd = CustomResourceDefinition(obj) else { continue }
            let names = [crd.plural, crd.singular, crd.kind, crd.listKind] + crd.shortNames
            let used = taken[crd.group, default: []]
            let conflict = names.first { used.contains($0) }
            var status = obj["status"]
            if let conflict {
                setCondition(
                    &status, "NamesAccepted", false, "NameConflict", "\"\(conflict)\" is already in use")
                setCondition(&status, "Established", false, "NotAccepted", "not all names are accepted")
            } else {
                taken[crd.group, default: []].formUnion(names)
                var accepted = obj["spec"]["names"]
                accepted["singular"] = .string(crd.singular)
                accepted["listKind"] = .string(crd.listKind)
                status["acceptedNames"] = accepted
                setCondition(&status, "NamesAccepted", true, "NoConflicts", "no conflicts found")
                setCondition(
                    &status, "Established", true, "InitialNamesAccepted", "the initial names have been accepted")
                served += crd.resourceTypes()
                signature += Array(kv.key.utf8) + obj["spec"].serialized() + accepted.serialized()
            }
            var stored = (status["storedVersions"].array ?? []).compactMap(\.string)
            if let storage = crd.storageVersion, !stored.contains(storage) { stored.append(storage) }
            status["storedVersions"] = .array(stored.map { .string($0) })
            var updated = obj
            let deleting = !obj["metadata"]["deletionTimestamp"].isNull
            if deleting {
                setCondition(
                    &status, "Terminating", true, "InstanceDeletionInProgress", "CustomResource deletion is in progress"
                )
            }
            updated["status"] = status
            if deleting,
                (obj["metadata"]["finalizers"].array ?? []).contains(
                    .string(CustomResourceDefinitionStrategy.cleanupFinalizer))
            {
                if try await deleteInstances(crd) {
                    updated["metadata"]["finalizers"] = .array(
                        (obj["metadata"]["finalizers"].array ?? []).filter {
                            $0 != .string(CustomResourceDefinitionStrategy.cleanupFinalizer)
                        })
                } else {
                    waiting = true
                }
            }
            if updated != obj {
                do {
                    if deleting && (updated["metadata"]["finalizers"].array ?? []).isEmpty {
                        _ = try await store.delete(kv.key, expectedRevision: kv.modRevision)
                    } else {
                        _ = try await store.update(
                            kv.key, value: updated.serialized(), expectedRevision: kv.modRevision)
                    }
                } catch StoreError.conflict, StoreError.notFound {
                    // Changed meanwhile: its watch event brings the next pass.
                }
            }
        }
        registry.install(served, signature: signature)
        return waiting
    }

    /// Removes the definition's custom resources (all versions share one key prefix); those held by
    /// finalizers are marked and left for their controllers. True when none is left.
    func deleteInstances(_ crd: CustomResourceDefinition) async throws -> Bool {
        let prefix = "/registry/\(crd.group)/\(crd.plural)/"
        let page = try await store.list(prefix: prefix, startAfter: nil, limit: 0, revision: nil)
        var left = false
        for kv in page.items {
            guard var obj = try? JSON.parse(kv.value) else {
                _ = try? await store.delete(kv.key, expectedRevision: kv.modRevision)
                continue
            }
            if (obj["metadata"]["finalizers"].array ?? []).isEmpty {
                _ = try? await store.delete(kv.key, expectedRevision: kv.modRevision)
            } else {
                left = true
                if obj["metadata"]["deletionTimestamp"].isNull {
                    obj["metadata"]["deletionTimestamp"] = .string(APITime.string())
                    _ = try? await store.update(kv.key, value: obj.serialized(), expectedRevision: kv.modRevision)
                }
            }
        }
        return !left
    }

    func setCondition(_ status: inout JSON, _ type: String, _ value: Bool, _ reason: String, _ message: String) {
        StatusConditions.set(&status, type, value, reason, message)
    }
}

import BerthAPI
import BerthKube
import Foundation
import Logging
import Testing

@testable import BerthControl

/// Collects an informer's events in order, and lets a test wait for the n-th.
final class EventLog<Object: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [InformerEvent<Object>] = []
    private var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []

    func append(_ event: InformerEvent<Object>) {
        let ready = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            events.append(event)
            let (done, rest) = (waiters.filter { $0.count <= events.count }, waiters.filter { $0.count > events.count })
            waiters = rest
            return done.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    var all: [InformerEvent<Object>] { lock.withLock { events } }

    /// Waits until `count` events arrived (the test's time limit bounds it).
    func wait(for count: Int) async {
        await withCheckedContinuation { continuation in
            let ready = lock.withLock { () -> Bool in
                if events.count >= count { return true }
                waiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

/// A source that lists what it is given each time and whose watch fails once: what an informer sees
/// when a watch is compacted away or a connection drops between two lists.
final class ScriptedSource: ObjectSource, @unchecked Sendable {
    typealias Object = CoreV1.ConfigMap
    private let lock = NSLock()
    private var lists: [[CoreV1.ConfigMap]]
    private(set) var listCount = 0

    init(lists: [[CoreV1.ConfigMap]]) { self.lists = lists }

    func list() async throws -> (items: [CoreV1.ConfigMap], revision: Int64) {
        lock.withLock {
            listCount += 1
            return (lists.count > 1 ? lists.removeFirst() : lists[0], Int64(listCount))
        }
    }

    func watch(afterRevision revision: Int64) async throws -> AsyncThrowingStream<
        SourceEvent<CoreV1.ConfigMap>, any Error
    > {
        let first = lock.withLock { listCount == 1 }
        if first { throw APIError(code: 410, reason: "Expired", message: "too old resource version") }
        return AsyncThrowingStream { nil as SourceEvent<CoreV1.ConfigMap>? }
    }
}

func configMap(
    _ name: String, namespace: String = "default", resourceVersion: String? = nil, data: [String: String] = [:]
)
    -> CoreV1.ConfigMap
{
    var map = CoreV1.ConfigMap()
    map.metadata.name = name
    map.metadata.namespace = namespace
    map.metadata.resourceVersion = resourceVersion
    map.data = data
    return map
}

@Suite("typed informers and the fake cluster")
struct InformerTests {
    let logger = Logger(label: "test")

    @Test(.timeLimit(.minutes(1)))
    func anInformerListsThenReportsEveryChangeInOrderAndKeepsItsIndexes() async throws {
        let cluster = FakeCluster()
        var seeded = CoreV1.Pod()
        seeded.metadata.name = "a"
        seeded.spec.nodeName = "n1"
        cluster.seed(seeded)
        let factory = InformerFactory(provider: cluster, logger: logger)
        let pods = factory.informer(CoreV1.Pod.self)
        #expect(factory.informer(CoreV1.Pod.self) === pods, "one informer per kind, shared")
        pods.addIndex("node") { [$0.spec.nodeName ?? ""] }
        let log = EventLog<CoreV1.Pod>()
        pods.onChange { log.append($0) }
        let run = Task { await factory.run() }
        defer { run.cancel() }
        await factory.waitForSync()
        #expect(pods.get(namespace: "default", name: "a")?.spec.nodeName == "n1")

        var b = CoreV1.Pod()
        b.metadata.generateName = "b-"
        b.spec.nodeName = "n1"
        let created = try await cluster.create(b)
        #expect(created.metadata.name?.hasPrefix("b-") == true && created.metadata.name!.count == 7)
        var moved = created
        moved.spec.nodeName = "n2"
        _ = try await cluster.update(moved)
        try await cluster.delete(CoreV1.Pod.self, namespace: "default", name: "a")
        await log.wait(for: 4)

        let kinds = log.all.map { event -> String in
            switch event {
            case .added(let p): return "added \(p.metadata.name!.prefix(1))"
            case .updated(let old, let new): return "updated \(old.spec.nodeName!)→\(new.spec.nodeName!)"
            case .deleted(let p): return "deleted \(p.metadata.name!)"
            }
        }
        #expect(kinds == ["added a", "added b", "updated n1→n2", "deleted a"])
        #expect(pods.count == 1)
        #expect(pods.byIndex("node", "n1").isEmpty)
        #expect(pods.byIndex("node", "n2").map(\.metadata.name) == [created.metadata.name])
        #expect(pods.revision == 4)
    }

    @Test(.timeLimit(.minutes(1)))
    func aFailedWatchRelistsAndReportsOnlyTheDifferences() async throws {
        let source = ScriptedSource(lists: [
            [
                configMap("gone", resourceVersion: "1"), configMap("kept", resourceVersion: "1"),
                configMap("changed", resourceVersion: "1"),
            ],
            [
                configMap("kept", resourceVersion: "1"), configMap("changed", resourceVersion: "2"),
                configMap("new", resourceVersion: "2"),
            ],
        ])
        let informer = Informer(source: source, name: "configmaps", logger: logger)
        let log = EventLog<CoreV1.ConfigMap>()
        informer.onChange { log.append($0) }
        let run = Task { await informer.run() }
        defer { run.cancel() }
        await log.wait(for: 6)
        let second = log.all.dropFirst(3).map { event -> String in
            switch event {
            case .added(let m): return "added \(m.metadata.name!)"
            case .updated(_, let m): return "updated \(m.metadata.name!)"
            case .deleted(let m): return "deleted \(m.metadata.name!)"
            }
        }
        #expect(Set(second) == ["deleted gone", "updated changed", "added new"])
        #expect(informer.list().map(\.metadata.name!).sorted() == ["changed", "kept", "new"])
    }

    @Test func theFakeClusterKeepsTheAPIServersBookkeeping() async throws {
        let cluster = FakeCluster()
        var pod = CoreV1.Pod()
        pod.metadata.name = "p"
        pod.spec.containers = [CoreV1.Container(name: "c", image: "pause")]
        let stored = try await cluster.create(pod)
        #expect(stored.metadata.uid?.isEmpty == false)
        #expect(stored.metadata.resourceVersion == "1")
        #expect(stored.metadata.namespace == "default")
        await #expect(throws: APIError.self) { _ = try await cluster.create(pod) }

        // A stale resourceVersion is a 409; update leaves status alone, updateStatus touches only status.
        var stale = stored
        stale.metadata.resourceVersion = "0"
        await #expect(throws: APIError.self) { _ = try await cluster.update(stale) }
        var withStatus = stored
        withStatus.status.phase = .running
        withStatus.spec.nodeName = "ignored-by-status"
        let afterStatus = try await cluster.updateStatus(withStatus)
        #expect(afterStatus.status.phase == .running && afterStatus.spec.nodeName == nil)
        var relabelled = afterStatus
        relabelled.metadata.labels = ["a": "b"]
        relabelled.status.phase = .failed
        let afterUpdate = try await cluster.update(relabelled)
        #expect(afterUpdate.metadata.labels == ["a": "b"] && afterUpdate.status.phase == .running)

        // Binding sets the node once; a second binding is a 409.
        let bound = await cluster.bind([PodNodeBinding(pod: afterUpdate, node: "n1")])
        #expect((try? bound[0].get()) != nil)
        let again = await cluster.bind([PodNodeBinding(pod: afterUpdate, node: "n2")])
        #expect((try? again[0].get()) == nil)
        #expect(cluster.object(CoreV1.Pod.self, namespace: "default", name: "p")?.spec.nodeName == "n1")

        // A finalizer holds a delete as a deletionTimestamp until it is patched away.
        var held = configMap("held")
        held.metadata.finalizers = ["example.com/hold"]
        cluster.seed(held)
        let configMaps = ResourceType.of(CoreV1.ConfigMap.self)
        try await cluster.delete(
            configMaps, namespace: "default", name: "held", gracePeriod: nil, uid: nil, propagation: nil)
        #expect(
            cluster.object(CoreV1.ConfigMap.self, namespace: "default", name: "held")?.metadata.deletionTimestamp != nil
        )
        try await cluster.mergePatch(
            configMaps, namespace: "default", name: "held", ["metadata": ["finalizers": .null]], subresource: nil)
        #expect(cluster.object(CoreV1.ConfigMap.self, namespace: "default", name: "held") == nil)
        await #expect(throws: APIError.self) {
            try await cluster.delete(
                configMaps, namespace: "default", name: "held", gracePeriod: nil, uid: nil, propagation: nil)
        }
        #expect(cluster.actions.map(\.description).contains("create pods/binding default/p"))
    }

    @Test(.timeLimit(.minutes(1)))
    func theStoreSourceGivesTypedObjectsWithoutManagedFields() async throws {
        let cluster = try await Cluster(
            configure: { $0.garbageCollector = false },
            control: {
                $0.scheduler = false
                $0.controllers = false
            })
        do {
            try await typedRoundTrip(cluster)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    func typedRoundTrip(_ cluster: Cluster) async throws {
        let factory = InformerFactory(client: cluster.client, logger: logger)
        let maps = factory.informer(CoreV1.ConfigMap.self)
        let log = EventLog<CoreV1.ConfigMap>()
        maps.onChange { if $0.object.metadata.name == "typed" { log.append($0) } }
        let run = Task { await factory.run() }
        defer { run.cancel() }
        await factory.waitForSync()

        let client: any KubeClient = cluster.client
        let created = try await client.create(configMap("typed", data: ["k": "v"]))
        await log.wait(for: 1)
        let cached = try #require(maps.get(namespace: "default", name: "typed"))
        #expect(cached.data == ["k": "v"])
        #expect(cached.metadata.resourceVersion == created.metadata.resourceVersion)
        #expect(cached.metadata.managedFields.isEmpty, "the cache drops managedFields")
        #expect(created.metadata.managedFields.isEmpty == false, "the server recorded them")

        // A write from the cache keeps the server's managedFields and bumps the resourceVersion.
        var changed = cached
        changed.data = ["k": "w"]
        let updated = try await client.update(changed)
        #expect(updated.metadata.managedFields.isEmpty == false)
        await log.wait(for: 2)
        #expect(maps.get(namespace: "default", name: "typed")?.data == ["k": "w"])
        // The cached object is now stale: a write from it is a 409 Conflict, as with kube-apiserver.
        await #expect(throws: APIError.self) { _ = try await client.update(changed) }
    }
}

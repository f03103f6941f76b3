import BerthAPI
import BerthControl
import BerthKube
import Foundation
import Logging
import Testing

/// A source that reports its first list at a revision the store has compacted away, so the watch after
/// it fails with 410 Gone; it announces each list it makes, so a test can wait for the relist.
private final class StaleFirstList<Object: HasObjectMeta>: ObjectSource, @unchecked Sendable {
    let inner: any ObjectSource<Object>
    let staleRevision: Int64
    let lists: AsyncStream<Int>
    private let announce: AsyncStream<Int>.Continuation
    private let lock = NSLock()
    private var count = 0

    init(_ inner: any ObjectSource<Object>, staleRevision: Int64) {
        self.inner = inner
        self.staleRevision = staleRevision
        (lists, announce) = AsyncStream<Int>.makeStream()
    }

    func list() async throws -> (items: [Object], revision: Int64) {
        let listed = try await inner.list()
        let number = lock.withLock {
            count += 1
            return count
        }
        defer { announce.yield(number) }
        return number == 1 ? (listed.items, staleRevision) : listed
    }

    func watch(afterRevision revision: Int64) async throws -> AsyncThrowingStream<SourceEvent<Object>, any Error> {
        try await inner.watch(afterRevision: revision)
    }
}

extension ControlTests {
    /// Informers reading a real `berth server` over HTTPS, as a node agent on another machine does.
    @Suite("HTTPS object source") struct HTTPSourceTests {
        let logger = Logger(label: "http-source-test")

        /// A server without controllers (nothing but the test writes), and a provider for it that is shut
        /// down however the body ends.
        func withRemote(
            credentials: (APIServer) -> RemoteAPIServer.Credentials = {
                .clientCertificate(certificatePEM: $0.pki.adminCertPEM, privateKeyPEM: $0.pki.adminKeyPEM)
            },
            pageSize: Int = 500,
            selectors: @escaping @Sendable (ResourceType) -> ObjectSelectors = { _ in .everything },
            _ body: (Cluster, HTTPSourceProvider) async throws -> Void
        ) async throws {
            let cluster = try await Cluster(control: {
                $0.controllers = false
                $0.scheduler = false
                $0.garbageCollector = false
            })
            do {
                let provider = try HTTPSourceProvider(
                    server: RemoteAPIServer(
                        url: cluster.server.url, caPEM: cluster.server.pki.caPEM,
                        credentials: credentials(cluster.server)),
                    pageSize: pageSize, selectors: selectors)
                do {
                    try await body(cluster, provider)
                } catch {
                    try await provider.shutdown()
                    throw error
                }
                try await provider.shutdown()
            } catch {
                await cluster.stop()
                throw error
            }
            await cluster.stop()
        }

        func makeConfigMap(_ c: Cluster, _ name: String, labels: [String: String] = [:]) async throws -> JSON {
            try await c.client.create(
                configMapType,
                [
                    "metadata": [
                        "name": .string(name), "namespace": "remote", "labels": .object(labels.mapValues(JSON.string)),
                    ],
                    "data": ["v": "1"],
                ])
        }

        @Test(.timeLimit(.minutes(2)))
        func anInformerListsInPagesThenSeesCreatesUpdatesAndDeletes() async throws {
            try await withRemote(pageSize: 2) { c, provider in
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "remote"]])
                for name in ["a", "b", "c", "d", "e"] { _ = try await makeConfigMap(c, name) }
                let factory = InformerFactory(provider: provider, logger: logger)
                let maps = factory.informer(CoreV1.ConfigMap.self)
                let log = EventLog<CoreV1.ConfigMap>()
                maps.onChange { log.append($0) }
                let run = Task { await factory.run() }
                defer { run.cancel() }
                await factory.waitForSync()
                // Five objects in pages of two: three LIST requests, one snapshot.
                #expect(Set(maps.list(namespace: "remote").compactMap(\.metadata.name)) == ["a", "b", "c", "d", "e"])
                let listed = log.all.count
                #expect(listed == 5)

                _ = try await makeConfigMap(c, "f")
                var a = try #require(try await c.client.get(configMapType, namespace: "remote", name: "a"))
                a["data"]["v"] = "2"
                _ = try await c.client.update(configMapType, a)
                try await c.client.delete(configMapType, namespace: "remote", name: "b")
                await log.wait(for: listed + 3)

                let changes = log.all.dropFirst(listed).map { event -> String in
                    switch event {
                    case .added(let map): return "added \(map.metadata.name ?? "")"
                    case .updated(let old, let new):
                        return "updated \(new.metadata.name ?? "") \(old.data["v"] ?? "")→\(new.data["v"] ?? "")"
                    case .deleted(let map): return "deleted \(map.metadata.name ?? "")"
                    }
                }
                #expect(changes == ["added f", "updated a 1→2", "deleted b"])
                #expect(Set(maps.list(namespace: "remote").compactMap(\.metadata.name)) == ["a", "c", "d", "e", "f"])
                #expect(maps.list().allSatisfy { $0.metadata.managedFields.isEmpty })
            }
        }

        @Test(.timeLimit(.minutes(2)))
        func selectorsAndABearerTokenNarrowWhatAMetadataInformerSees() async throws {
            let selectors: @Sendable (ResourceType) -> ObjectSelectors = {
                $0.plural == "configmaps"
                    ? ObjectSelectors(labelSelector: "tier=web", fieldSelector: "metadata.namespace=remote")
                    : .everything
            }
            try await withRemote(credentials: { .bearerToken($0.adminToken) }, selectors: selectors) { c, provider in
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "remote"]])
                let web = try await makeConfigMap(c, "web", labels: ["tier": "web"])
                _ = try await makeConfigMap(c, "db", labels: ["tier": "db"])
                let factory = InformerFactory(provider: provider, logger: logger)
                let maps = factory.metadataInformer(configMapType)
                let log = EventLog<MetaV1.PartialObjectMetadata>()
                maps.onChange { log.append($0) }
                let run = Task { await factory.run() }
                defer { run.cancel() }
                await factory.waitForSync()
                #expect(maps.list().map(\.metadata.name) == ["web"])
                #expect(maps.get(namespace: "remote", name: "web")?.metadata.uid == web["metadata"]["uid"].string)
                #expect(maps.get(namespace: "remote", name: "web")?.metadata.labels == ["tier": "web"])

                // Relabelled out of the selection: the watch reports it deleted; into it: added.
                try await c.client.mergePatch(
                    configMapType, namespace: "remote", name: "web", ["metadata": ["labels": ["tier": "cache"]]])
                try await c.client.mergePatch(
                    configMapType, namespace: "remote", name: "db", ["metadata": ["labels": ["tier": "web"]]])
                await log.wait(for: 3)
                let names = log.all.map { event -> String in
                    switch event {
                    case .added(let m): return "added \(m.metadata.name ?? "")"
                    case .updated(_, let m): return "updated \(m.metadata.name ?? "")"
                    case .deleted(let m): return "deleted \(m.metadata.name ?? "")"
                    }
                }
                #expect(names == ["added web", "deleted web", "added db"])
            }
        }

        @Test(.timeLimit(.minutes(2)))
        func aCompactedRevisionEndsTheWatchWith410AndTheInformerListsAgain() async throws {
            try await withRemote { c, provider in
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "remote"]])
                _ = try await makeConfigMap(c, "a")
                let old = try await c.client.store.currentRevision()
                for value in ["2", "3", "4"] {
                    try await c.client.mergePatch(
                        configMapType, namespace: "remote", name: "a", ["data": ["v": .string(value)]])
                }
                try await c.client.store.compact(revision: try await c.client.store.currentRevision())

                // The source itself: the watch from before the compaction ends with `.expired`.
                let source = provider.source(CoreV1.ConfigMap.self, resource: configMapType)
                var failure: HTTPSourceError?
                do {
                    for try await _ in try await source.watch(afterRevision: old) {}
                } catch let error as HTTPSourceError {
                    failure = error
                }
                #expect(failure?.code == .expired, "\(String(describing: failure))")

                // An informer told to watch from there lists again and goes on from the fresh list.
                let stale = StaleFirstList(source, staleRevision: old)
                let informer = Informer(source: stale, name: "configmaps", logger: logger)
                let log = EventLog<CoreV1.ConfigMap>()
                informer.onChange { log.append($0) }
                let run = Task { await informer.run() }
                defer { run.cancel() }
                var lists = stale.lists.makeAsyncIterator()
                #expect(await lists.next() == 1)
                #expect(await lists.next() == 2)
                _ = try await makeConfigMap(c, "after-relist")
                await log.wait(for: 2)
                #expect(log.all.map(\.object.metadata.name) == ["a", "after-relist"])
                #expect(informer.get(namespace: "remote", name: "a")?.data["v"] == "4")
            }
        }

        @Test(.timeLimit(.minutes(2)))
        func aServerSignedByAnotherCAIsRefusedWithAClearError() async throws {
            let elsewhere = NSTemporaryDirectory() + "berth-other-ca-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: elsewhere) }
            let otherCA = try PKI.loadOrCreate(dataDir: elsewhere, sans: ["127.0.0.1"]).caPEM
            let cluster = try await Cluster(control: {
                $0.controllers = false
                $0.scheduler = false
            })
            let provider: HTTPSourceProvider
            do {
                provider = try HTTPSourceProvider(
                    server: RemoteAPIServer(
                        url: cluster.server.url, caPEM: otherCA, credentials: .bearerToken(cluster.server.adminToken)))
            } catch {
                await cluster.stop()
                throw error
            }
            var failure: HTTPSourceError?
            do {
                _ = try await provider.source(CoreV1.ConfigMap.self, resource: configMapType).list()
            } catch let error as HTTPSourceError {
                failure = error
            } catch {
                Issue.record("not an HTTPSourceError: \(error)")
            }
            try await provider.shutdown()
            await cluster.stop()
            #expect(failure?.code == .serverNotTrusted)
            #expect(
                failure?.description.contains("not signed by the given CA") == true, "\(String(describing: failure))")

            // A CA that is not a certificate at all is refused before any connection.
            #expect(throws: HTTPSourceError.self) {
                _ = try HTTPSourceProvider(
                    server: RemoteAPIServer(
                        url: "https://127.0.0.1:1", caPEM: "nonsense", credentials: .bearerToken("t")))
            }
        }
    }
}

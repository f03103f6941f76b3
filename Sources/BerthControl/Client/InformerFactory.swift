import BerthAPI
import BerthKube
import Foundation
import Logging

/// One informer per resource, shared by every controller (client-go's SharedInformerFactory). Typed
/// informers read through an ``ObjectSourceProvider``: the store in process, HTTPS, or a fake cluster.
public final class InformerFactory: @unchecked Sendable {
    public let provider: any ObjectSourceProvider
    let logger: Logger
    private let lock = NSLock()
    private var informers: [String: any RunnableInformer] = [:]

    /// Informers over the API server's store in this process.
    public init(client: LocalClient, logger: Logger) {
        self.provider = StoreSourceProvider(client: client)
        self.logger = logger
    }

    /// Informers over any source of objects: the store, a remote server over HTTPS, a fake cluster.
    public init(provider: any ObjectSourceProvider, logger: Logger) {
        self.provider = provider
        self.logger = logger
    }

    /// The shared informer of a kind, e.g. `informer(CoreV1.Pod.self)`.
    public func informer<T: KubeObject & HasObjectMeta>(_ type: T.Type) -> Informer<T> {
        let resource = ResourceType.of(type)
        return shared("typed:" + resource.plural + "." + resource.group) {
            Informer(source: provider.source(type, resource: resource), name: resource.plural, logger: logger)
        }
    }

    /// The shared metadata-only informer of any resource (names, labels, owners, finalizers): what the
    /// garbage collector and namespace controller need of every kind, at a fraction of the memory.
    public func metadataInformer(_ resource: ResourceType) -> Informer<MetaV1.PartialObjectMetadata> {
        shared("metadata:" + resource.plural + "." + resource.group) {
            Informer(
                source: provider.source(MetaV1.PartialObjectMetadata.self, resource: resource),
                name: resource.plural, logger: logger)
        }
    }

    private func shared<I: RunnableInformer>(_ key: String, _ make: () -> I) -> I {
        lock.withLock {
            if let existing = informers[key] as? I { return existing }
            let made = make()
            informers[key] = made
            return made
        }
    }

    public var all: [any RunnableInformer] { lock.withLock { Array(informers.values) } }

    /// Runs every informer created so far (create them all before calling this).
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for informer in all { group.addTask { await informer.run() } }
        }
    }

    public func waitForSync() async {
        for informer in all { await informer.waitForSync() }
    }
}

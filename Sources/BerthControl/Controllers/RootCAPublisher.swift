import BerthAPI
import BerthKube
import Logging

/// Publishes the cluster CA in every active namespace as the ConfigMap `kube-root-ca.crt` (key `ca.crt`),
/// as kube-controller-manager's root-ca-cert-publisher does: pods' service-account volumes project it,
/// and tools wait for it before they start. A deleted or changed copy is put back.
///
/// Of the ConfigMaps it needs only names (which namespaces have one, when one changes or goes), so it
/// watches their metadata and reads the one it syncs.
struct RootCAPublisher: ControlLoop {
    let name = "root-ca-cert-publisher"
    static let configMapName = "kube-root-ca.crt"
    static let key = "ca.crt"
    static let descriptionAnnotation = "kubernetes.io/description"
    /// Upstream's wording.
    static let description =
        "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
    let client: any KubeClient
    let namespaces: Informer<CoreV1.Namespace>
    let caPEM: String
    let queue = WorkQueue(name: "root-ca-cert-publisher")
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("root-ca-cert-publisher")
        namespaces = ctx.informers.informer(CoreV1.Namespace.self)
        let configMaps = ctx.informers.metadataInformer(.of(CoreV1.ConfigMap.self))
        caPEM = ctx.facts.caPEM
        logger = ctx.logger
        let queue = self.queue
        namespaces.onChange { event in
            if case .deleted = event { return }
            guard let namespace = event.object.metadata.name else { return }
            Task { await queue.add(namespace) }
        }
        configMaps.onChange { event in
            if case .added = event { return }
            guard event.object.metadata.name == Self.configMapName, let namespace = event.object.metadata.namespace
            else { return }
            Task { await queue.add(namespace) }
        }
    }

    func run() async {
        // A server without a CA (some tests' fake facts) has nothing to publish.
        guard !caPEM.isEmpty else { return }
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("root CA publish failed", metadata: ["namespace": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ namespace: String) async throws {
        guard namespaces.get(namespace: nil, name: namespace)?.takesContent == true else { return }
        let data = [Self.key: caPEM]
        guard
            var configMap = try await client.get(CoreV1.ConfigMap.self, namespace: namespace, name: Self.configMapName)
        else {
            var created = CoreV1.ConfigMap(metadata: .init(name: Self.configMapName, namespace: namespace))
            created.metadata.annotations[Self.descriptionAnnotation] = Self.description
            created.data = data
            do { _ = try await client.create(created) } catch let e as APIError where e.code == 403 || e.code == 404 {
                // The namespace is terminating or gone.
            }
            return
        }
        // Only the data and the one annotation are ours; other labels and annotations stay.
        if configMap.data == data && !(configMap.metadata.annotations[Self.descriptionAnnotation] ?? "").isEmpty {
            return
        }
        configMap.data = data
        configMap.binaryData = [:]
        configMap.metadata.annotations[Self.descriptionAnnotation] = Self.description
        // The resourceVersion is the precondition; a conflict comes back through the queue.
        _ = try await client.update(configMap)
    }
}

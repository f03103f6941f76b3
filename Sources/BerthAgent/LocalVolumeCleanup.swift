import BerthAPI
import BerthControl
import BerthKube
import Foundation
import Logging

/// The node's half of the local-path provisioner: a volume it provisioned on this node is deleted by
/// the control plane (its claim gone, reclaim policy Delete, or deleted by hand), but its data is a
/// directory only this node can reach. The volume waits on the external provisioner's finalizer; the
/// agent removes the directory, then the finalizer, and the volume goes. An agent that was down
/// meanwhile does it when it starts (its first list holds the volume, still there).
struct LocalVolumeCleanup: Sendable {
    static let finalizer = "external-provisioner.volume.kubernetes.io/finalizer"
    static let provisioner = "rancher.io/local-path"
    static let selectedNode = "local.path.provisioner/selected-node"

    let nodeName: String
    let client: any KubeClient
    let volumes: Informer<CoreV1.PersistentVolume>
    let queue = WorkQueue(name: "local-volumes")
    let events: ComponentRecorder
    let logger: Logger

    init(
        nodeName: String, client: any KubeClient, sources: any ObjectSourceProvider, events: ComponentRecorder,
        logger: Logger
    ) {
        self.nodeName = nodeName
        self.client = client
        self.events = events
        self.logger = logger
        volumes = Informer(
            source: FilteredSource(
                inner: sources.source(
                    CoreV1.PersistentVolume.self, resource: ResourceType.of(CoreV1.PersistentVolume.self)),
                keep: { Self.isOurs($0, node: nodeName) }),
            name: "persistentvolumes", logger: logger)
        let queue = self.queue
        volumes.onChange { event in
            if case .deleted = event { return }
            guard event.object.metadata.deletionTimestamp != nil else { return }
            let name = event.object.metadata.name ?? ""
            Task { await queue.add(name) }
        }
    }

    /// A volume the local-path provisioner made on `node` whose data is still to be removed.
    static func isOurs(_ volume: CoreV1.PersistentVolume, node: String) -> Bool {
        volume.metadata.annotations[VolumeMatching.Keys.provisionedBy] == provisioner
            && volume.metadata.annotations[selectedNode] == node && volume.metadata.finalizers.contains(finalizer)
    }

    /// The directory is removed only where the provisioner puts volumes: a path ending in a
    /// `pvc-<uid>_…` directory, so an edited volume cannot make the agent remove anything else.
    static func removablePath(_ volume: CoreV1.PersistentVolume) -> String? {
        guard let path = volume.spec.hostPath?.path, path.hasPrefix("/"),
            let last = path.split(separator: "/").last, last.hasPrefix("pvc-"), !path.contains("/../")
        else { return nil }
        return path
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await volumes.run() }
            group.addTask {
                await volumes.waitForSync()
                await runWorkers(queue, count: 1, sync: sync) { key, error in
                    logger.warning(
                        "removing a local volume failed", metadata: ["volume": "\(key)", "error": "\(error)"])
                }
            }
            await group.waitForAll()
        }
    }

    func sync(_ name: String) async throws {
        guard let volume = volumes.get(namespace: nil, name: name), volume.metadata.deletionTimestamp != nil,
            Self.isOurs(volume, node: nodeName)
        else { return }
        if let path = Self.removablePath(volume), FileManager.default.fileExists(atPath: path) {
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                events.record(
                    volume, type: "Warning", reason: "VolumeFailedDelete",
                    message: "failed to delete volume \(name): removing \(path): \(error)")
                throw error
            }
        }
        let patch: JSON = [
            "metadata": [
                "finalizers": .array(volume.metadata.finalizers.filter { $0 != Self.finalizer }.map(JSON.string)),
                "resourceVersion": .string(volume.metadata.resourceVersion ?? ""),
            ]
        ]
        do {
            try await client.mergePatch(
                ResourceType.of(CoreV1.PersistentVolume.self), namespace: nil, name: name, patch, subresource: nil)
        } catch let error as APIError where error.code == 404 {}
    }
}

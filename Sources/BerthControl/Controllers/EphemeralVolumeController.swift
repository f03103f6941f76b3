import BerthAPI
import BerthKube
import Logging

/// kube-controller-manager's ephemeral-volume controller: each generic ephemeral volume of a pod
/// (`volumes[].ephemeral.volumeClaimTemplate`) gets its PersistentVolumeClaim `<pod>-<volume>`, made from
/// the template and controlled by the pod, so the binder, the provisioner and the scheduler treat it as
/// any claim and the garbage collector deletes it with the pod. A claim of that name that the pod does
/// not own is never used (the node agent refuses it too), and the pod gets a warning event.
struct EphemeralVolumeController: ControlLoop {
    let name = "ephemeral-volume-controller"
    let client: any KubeClient
    let pods: Informer<CoreV1.Pod>
    let queue = WorkQueue(name: "ephemeral-volume")
    let events: ComponentRecorder
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("ephemeral-volume-controller")
        pods = ctx.informers.informer(CoreV1.Pod.self)
        events = ctx.events.component("ephemeral_volume")
        logger = ctx.logger
        let queue = self.queue
        pods.onChange { event in
            if case .deleted = event { return }
            let pod = event.object
            guard !pod.isTerminating, pod.spec.volumes.contains(where: { $0.ephemeral != nil }) else { return }
            Task { await queue.add(pod.cacheKey) }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("ephemeral volume claim failed", metadata: ["pod": "\(key)", "error": "\(error)"])
            })
    }

    /// The claim's name for a pod's ephemeral volume (upstream's ephemeral.VolumeClaimName).
    static func claimName(pod: CoreV1.Pod, volume: CoreV1.Volume) -> String {
        "\(pod.metadata.name ?? "")-\(volume.name)"
    }

    func sync(_ key: String) async throws {
        guard let pod = pods.get(key), !pod.isTerminating else { return }
        let namespace = pod.metadata.namespace ?? "default"
        for volume in pod.spec.volumes {
            guard let template = volume.ephemeral?.volumeClaimTemplate else { continue }
            let name = Self.claimName(pod: pod, volume: volume)
            if let existing = try await client.get(CoreV1.PersistentVolumeClaim.self, namespace: namespace, name: name)
            {
                if existing.controllerRef?.uid != pod.metadata.uid {
                    events.record(
                        pod, type: "Warning", reason: "FailedBinding",
                        message:
                            "ephemeral volume \(volume.name): PVC \(namespace)/\(name) was not created for the pod")
                }
                continue
            }
            var claim = CoreV1.PersistentVolumeClaim(metadata: .init(name: name, namespace: namespace))
            claim.metadata.labels = template.metadata.labels
            claim.metadata.annotations = template.metadata.annotations
            claim.metadata.ownerReferences = [pod.controllerOwnerReference]
            claim.spec = template.spec
            do {
                _ = try await client.create(claim)
            } catch let error as APIError where error.code == 409 {
                // Made meanwhile (another sync, or a stranger's claim): looked at again on the next change.
                continue
            } catch {
                events.record(
                    pod, type: "Warning", reason: "FailedBinding", message: "ephemeral volume \(volume.name): \(error)")
                throw error
            }
        }
    }
}

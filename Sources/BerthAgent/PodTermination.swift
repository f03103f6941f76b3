import BerthCRIProtocol
import BerthKube
import Foundation

/// Ending a pod: its containers stopped with the grace period (their stop signal, then SIGKILL), its
/// sandbox stopped, and once the pod is gone from the API everything the runtime has of it removed.
extension NodeAgent {
    /// Stops every running container of the pod at once with the pod's grace period, then its sandboxes.
    func terminate(_ pod: CoreV1.Pod) async throws {
        let uid = pod.metadata.uid ?? ""
        let grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30
        let sandboxes = try await sandboxes(of: uid)
        var running: [String] = []
        for sandbox in sandboxes {
            var request = Runtime_V1_ListContainersRequest()
            request.filter.podSandboxID = sandbox.id
            request.filter.state.state = .containerRunning
            running += try await cri.runtime.listContainers(request).containers.map(\.id)
        }
        let runtime = cri.runtime
        await withTaskGroup(of: Void.self) { group in
            for id in running {
                group.addTask {
                    var stop = Runtime_V1_StopContainerRequest()
                    stop.containerID = id
                    stop.timeout = max(0, grace)
                    _ = try? await runtime.stopContainer(stop)
                }
            }
        }
        if !running.isEmpty {
            recorder.record(
                pod, reason: "Killing", message: "Stopping \(running.count) container(s) with grace \(grace)s")
        }
        for sandbox in sandboxes {
            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = sandbox.id
            _ = try await runtime.stopPodSandbox(stop)
        }
    }

    /// The pod is gone from the API: its sandboxes (and their containers), volumes and back-off go.
    func removeLeftovers(_ key: String) async throws {
        let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return }
        var request = Runtime_V1_ListPodSandboxRequest()
        request.filter.labelSelector = [PodLabels.namespace: parts[0], PodLabels.name: parts[1]]
        for sandbox in try await cri.runtime.listPodSandbox(request).items {
            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = sandbox.id
            _ = try? await cri.runtime.stopPodSandbox(stop)
            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = sandbox.id
            _ = try await cri.runtime.removePodSandbox(remove)
            if let uid = sandbox.labels[PodLabels.uid] {
                await state.forget(podUID: uid)
                await probes.stop(podUID: uid)
                try? FileManager.default.removeItem(atPath: "\(configuration.rootDirectory)/pods/\(uid)")
                let logs = "\(configuration.podLogDirectory)/\(parts[0])_\(parts[1])_\(uid)"
                try? FileManager.default.removeItem(atPath: logs)
            }
        }
    }
}

import BerthCRIProtocol
import BerthKube
import Foundation

/// Ending a pod: its containers stopped with the grace period (their stop signal, then SIGKILL), its
/// sandbox stopped, and once the pod is gone from the API everything the runtime has of it removed.
extension NodeAgent {
    /// Stops every running container of the pod at once with the pod's grace period (or `grace`, an
    /// eviction's), then its sandboxes.
    func terminate(_ pod: CoreV1.Pod, grace override: Int64? = nil) async throws {
        let uid = pod.metadata.uid ?? ""
        let grace = override ?? pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30
        let sandboxes = try await sandboxes(of: uid)
        var running: [Runtime_V1_Container] = []
        var podIP = facts.internalIP
        for sandbox in sandboxes {
            var request = Runtime_V1_ListContainersRequest()
            request.filter.podSandboxID = sandbox.id
            request.filter.state.state = .containerRunning
            running += try await cri.runtime.listContainers(request).containers
            if sandbox.state == .sandboxReady {
                var status = Runtime_V1_PodSandboxStatusRequest()
                status.podSandboxID = sandbox.id
                if let ip = try? await cri.runtime.podSandboxStatus(status).status.network.ip, !ip.isEmpty {
                    podIP = ip
                }
            }
        }
        let runtime = cri.runtime
        let address = podIP
        // The app containers first, then the sidecars they may still use (the kubelet's order).
        let sidecars = Set(pod.spec.initContainers.filter(Self.isSidecar).map(\.name))
        let started = ContinuousClock.now
        for phase in [false, true] {
            let left = max(0, grace - Int64((ContinuousClock.now - started).components.seconds))
            await withTaskGroup(of: Void.self) { group in
                for container in running where sidecars.contains(container.metadata.name) == phase {
                    let spec = (pod.spec.containers + pod.spec.initContainers).first {
                        $0.name == container.metadata.name
                    }
                    group.addTask {
                        // preStop first; what it took comes out of the grace period.
                        let remaining = await self.runPreStop(
                            spec, pod: pod, containerID: container.id, podIP: address, grace: left)
                        var stop = Runtime_V1_StopContainerRequest()
                        stop.containerID = container.id
                        stop.timeout = remaining
                        _ = try? await runtime.stopContainer(stop)
                    }
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
                await tokens.forget(podUID: uid)
                await probes.stop(podUID: uid)
                // Memory-backed emptyDirs are mounts: undone first, so nothing is left mounted or deleted through one.
                if !configuration.hollow { PodVolumes.unmountAll(under: "\(configuration.rootDirectory)/pods/\(uid)") }
                try? FileManager.default.removeItem(atPath: "\(configuration.rootDirectory)/pods/\(uid)")
                let logs = "\(configuration.podLogDirectory)/\(parts[0])_\(parts[1])_\(uid)"
                try? FileManager.default.removeItem(atPath: logs)
            }
        }
    }
}

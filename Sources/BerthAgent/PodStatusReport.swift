import BerthAPI
import BerthCRIProtocol
import BerthControl
import BerthJSON
import BerthKube

/// The pod's status as the kubelet's status manager writes it: phase, conditions, each container's
/// state (with the last one it ended in), restart count, image and ID, the pod's and node's addresses
/// and QoS class — posted as a merge patch of pods/status only when it changed.
extension NodeAgent {
    /// A pod the agent ended for good (evicted, or refused before it ran): phase Failed with the reason
    /// and message, a DisruptionTarget condition as the kubelet sets, and its containers' final states.
    func postFinalStatus(_ pod: CoreV1.Pod, reason: String, message: String) async throws {
        let sandbox = try await sandboxes(of: pod.metadata.uid ?? "").max { $0.createdAt < $1.createdAt }
        var sandboxStatus = Runtime_V1_PodSandboxStatus()
        var containers: [Runtime_V1_Container] = []
        if let sandbox {
            var statusRequest = Runtime_V1_PodSandboxStatusRequest()
            statusRequest.podSandboxID = sandbox.id
            sandboxStatus = try await cri.runtime.podSandboxStatus(statusRequest).status
            var listRequest = Runtime_V1_ListContainersRequest()
            listRequest.filter.podSandboxID = sandbox.id
            containers = try await cri.runtime.listContainers(listRequest).containers
        }
        try await postStatus(pod, sandbox: sandboxStatus, containers: containers, final: (reason, message))
    }

    func postStatus(
        _ pod: CoreV1.Pod, sandbox: Runtime_V1_PodSandboxStatus, containers: [Runtime_V1_Container],
        final: (reason: String, message: String)? = nil
    )
        async throws
    {
        let uid = pod.metadata.uid ?? ""
        let initStatuses = await containerStatuses(pod.spec.initContainers, uid: uid, containers: containers)
        var statuses = await containerStatuses(pod.spec.containers, uid: uid, containers: containers)
        // Initialized once every init container exited 0 and every sidecar started (or the app
        // containers exist: a sidecar restarting later does not undo it); until then the pod is Pending
        // (Failed when one failed and the pod does not restart).
        let sidecars = Set(pod.spec.initContainers.filter(Self.isSidecar).map(\.name))
        let appNames = Set(pod.spec.containers.map(\.name))
        let initialized =
            containers.contains { appNames.contains($0.metadata.name) }
            || initStatuses.allSatisfy {
                sidecars.contains($0.name) ? $0.started == true : $0.state.terminated?.exitCode == 0
            }
        let initFailed =
            pod.spec.restartPolicy == .never
            && initStatuses.contains { !sidecars.contains($0.name) && ($0.state.terminated?.exitCode ?? 0) != 0 }

        if !initialized {
            // The app containers have not been created: they wait for the init containers, as the kubelet says.
            for index in statuses.indices where statuses[index].containerID == nil {
                statuses[index].state = CoreV1.ContainerState(
                    waiting: CoreV1.ContainerStateWaiting(reason: "PodInitializing"))
            }
        }

        var status = pod.status
        status.phase = initFailed ? .failed : (initialized ? Self.phase(pod, statuses) : .pending)
        status.initContainerStatuses = initStatuses
        status.containerStatuses = statuses
        status.hostIP = facts.internalIP
        status.hostIPs = [CoreV1.HostIP(ip: facts.internalIP)]
        if !sandbox.network.ip.isEmpty {
            status.podIP = sandbox.network.ip
            status.podIPs = ([sandbox.network.ip] + sandbox.network.additionalIps.map(\.ip)).map {
                CoreV1.PodIP(ip: $0)
            }
        } else if pod.spec.hostNetwork == true {
            status.podIP = facts.internalIP
            status.podIPs = [CoreV1.PodIP(ip: facts.internalIP)]
        }
        status.qosClass = PodQOS.of(pod)
        status.startTime = pod.status.startTime ?? MetaV1.Time.now()
        // Sidecars count for readiness as app containers do.
        let allReady =
            initialized && !statuses.isEmpty && statuses.allSatisfy(\.ready)
            && initStatuses.filter { sidecars.contains($0.name) }.allSatisfy(\.ready)
        let sandboxReady = sandbox.state == .sandboxReady
        status.conditions = Self.conditions(
            pod.status.conditions,
            [
                (.readyToStartContainers, sandboxReady), (.initialized, initialized), (.containersReady, allReady),
                (.ready, allReady),
            ])
        if let final {
            status.phase = .failed
            status.reason = final.reason
            status.message = final.message
            status.conditions = Self.conditions(
                status.conditions, [(.ready, false), (.containersReady, false)])
            if !status.conditions.contains(where: { $0.type == .disruptionTarget }) {
                status.conditions.append(
                    CoreV1.PodCondition(
                        type: .disruptionTarget, status: .true, lastTransitionTime: MetaV1.Time.now(),
                        reason: "TerminationByKubelet", message: final.message))
            }
        }
        guard status.kubeJSON() != pod.status.kubeJSON() else { return }
        // A static pod's status is its mirror pod's (none yet: nothing to post to).
        var reportedUID = uid
        if Self.isStatic(pod) {
            guard let mirror = mirrorPod(of: pod), let mirrorUID = mirror.metadata.uid else { return }
            reportedUID = mirrorUID
        }
        var patch: JSON = ["status": status.kubeJSON()]
        patch["metadata"] = ["uid": .string(reportedUID)]
        do {
            try await client.mergePatch(
                ResourceType.of(CoreV1.Pod.self), namespace: pod.metadata.namespace, name: pod.metadata.name ?? "",
                patch, subresource: "status")
        } catch let error as APIError where error.code == 404 {}
    }

    /// Each container's status from its newest instance in the runtime (and the one before, as lastState).
    func containerStatuses(_ specs: [CoreV1.Container], uid: String, containers: [Runtime_V1_Container]) async
        -> [CoreV1.ContainerStatus]
    {
        var statuses: [CoreV1.ContainerStatus] = []
        for container in specs {
            let instances = containers.filter { $0.metadata.name == container.name }
                .sorted { $0.metadata.attempt > $1.metadata.attempt }
            var status = CoreV1.ContainerStatus()
            status.name = container.name
            status.image = container.image ?? ""
            let waiting = await state.waitingReason(PodRuntimeState.key(uid, container.name))
            if let latest = instances.first, let current = try? await containerStatus(latest.id) {
                status.restartCount = Int32(latest.metadata.attempt)
                status.containerID = "\(runtimeName)://\(latest.id)"
                status.imageID = current.imageRef
                status.image = current.image.image.isEmpty ? status.image : current.image.image
                status.state = Self.state(current, runtime: runtimeName)
                if current.state == .containerRunning {
                    // Ready once started and its readiness probe passed (at once without probes).
                    let started = await probes.isStarted(latest.id)
                    status.started = started
                    status.ready = started ? await probes.isReady(latest.id) : false
                } else {
                    status.started = false
                }
                if current.state != .containerRunning, let waiting {
                    // Exited and not restarted yet (back-off), or a replacement that could not start.
                    status.lastState = status.state
                    status.state = CoreV1.ContainerState(
                        waiting: CoreV1.ContainerStateWaiting(reason: waiting.reason, message: waiting.message))
                } else if instances.count > 1, let previous = try? await containerStatus(instances[1].id) {
                    status.lastState = Self.state(previous, runtime: runtimeName)
                }
            } else {
                let reason = waiting ?? ("ContainerCreating", "")
                status.state = CoreV1.ContainerState(
                    waiting: CoreV1.ContainerStateWaiting(
                        reason: reason.reason, message: reason.message.isEmpty ? nil : reason.message))
                status.started = false
            }
            statuses.append(status)
        }
        return statuses
    }

    /// A CRI container status as a Kubernetes container state.
    static func state(_ status: Runtime_V1_ContainerStatus, runtime: String) -> CoreV1.ContainerState {
        func time(_ nanoseconds: Int64) -> MetaV1.Time? {
            nanoseconds > 0 ? MetaV1.Time(secondsSince1970: nanoseconds / 1_000_000_000) : nil
        }
        switch status.state {
        case .containerRunning:
            return CoreV1.ContainerState(running: CoreV1.ContainerStateRunning(startedAt: time(status.startedAt)))
        case .containerExited:
            var terminated = CoreV1.ContainerStateTerminated()
            terminated.exitCode = status.exitCode
            terminated.reason = status.reason.isEmpty ? nil : status.reason
            terminated.message = status.message.isEmpty ? nil : status.message
            terminated.startedAt = time(status.startedAt)
            terminated.finishedAt = time(status.finishedAt)
            terminated.containerID = "\(runtime)://\(status.id)"
            return CoreV1.ContainerState(terminated: terminated)
        default:
            return CoreV1.ContainerState(waiting: CoreV1.ContainerStateWaiting(reason: "ContainerCreating"))
        }
    }

    /// The kubelet's getPhase for a pod without init containers.
    static func phase(_ pod: CoreV1.Pod, _ statuses: [CoreV1.ContainerStatus]) -> CoreV1.PodPhase {
        var running = 0
        var waiting = 0
        var stopped = 0
        var succeeded = 0
        for status in statuses {
            if status.state.running != nil {
                running += 1
            } else if let terminated = status.state.terminated {
                stopped += 1
                if terminated.exitCode == 0 { succeeded += 1 }
            } else if status.lastState.terminated != nil {
                stopped += 1
            } else {
                waiting += 1
            }
        }
        if waiting > 0 { return .pending }
        if running > 0 { return .running }
        if stopped > 0 {
            switch pod.spec.restartPolicy {
            case .always?, nil: return .running
            case .onFailure?: return stopped == succeeded ? .succeeded : .running
            default: return stopped == succeeded ? .succeeded : .failed
            }
        }
        return .pending
    }

    /// The conditions with ours set, keeping each one's transition time while its status holds.
    static func conditions(
        _ existing: [CoreV1.PodCondition], _ ours: [(CoreV1.PodConditionType, Bool)]
    ) -> [CoreV1.PodCondition] {
        var result = existing.filter { condition in !ours.contains { $0.0 == condition.type } }
        for (type, value) in ours {
            let status: CoreV1.ConditionStatus = value ? .true : .false
            if let previous = existing.first(where: { $0.type == type }), previous.status == status {
                result.append(previous)
            } else {
                result.append(CoreV1.PodCondition(type: type, status: status, lastTransitionTime: MetaV1.Time.now()))
            }
        }
        return result
    }
}

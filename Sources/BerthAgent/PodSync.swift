import BerthAPI
import BerthCRIProtocol
import BerthControl
import BerthKube
import Foundation
import GRPCCore

/// One pass of the kubelet's SyncPod for one pod: its sandbox made (or remade), each container pulled,
/// created and started — or restarted by the pod's restartPolicy with back-off — and the pod's status
/// posted. A pod being deleted is stopped with its grace period and then removed for good.
extension NodeAgent {
    func syncPod(_ key: String) async throws {
        // A static pod's earlier version (its file removed or changed) goes first, gracefully.
        if let retired = staticPods.retired(key) {
            let uid = retired.metadata.uid ?? ""
            await probes.stop(podUID: uid)
            try await terminate(retired)
            try await removeLeftovers(key)
            staticPods.forgetRetired(key, uid: uid)
        }
        if var staticPod = staticPods.pod(key) {
            // Runs whatever the API says; its mirror pod shows it there and carries its status.
            if let mirror = await ensureMirrorPod(of: staticPod) { staticPod.status = mirror.status }
            try await sync(staticPod, key: key)
            return
        }
        guard let pod = pods.get(key) else {
            try await removeLeftovers(key)
            return
        }
        if StaticPodManifest.isMirror(pod) {
            // Its static pod is gone (or was never this agent's): the mirror goes too.
            await deleteMirrorPod(pod)
            return
        }
        try await sync(pod, key: key)
    }

    /// SyncPod proper, for a pod of the API or a static pod.
    func sync(_ pod: CoreV1.Pod, key: String) async throws {
        let uid = pod.metadata.uid ?? ""
        if pod.metadata.deletionTimestamp != nil {
            await probes.stop(podUID: uid)
            try await terminate(pod)
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            do {
                try await client.delete(
                    CoreV1.Pod.self, namespace: parts.first, name: parts.last ?? "", gracePeriod: 0, uid: uid)
            } catch let error as APIError where error.code == 404 || error.code == 409 {}
            return
        }
        if pod.status.phase == .succeeded || pod.status.phase == .failed {
            // Done for good: its containers stay (for logs) but nothing restarts them; the sandbox stops.
            for sandbox in try await sandboxes(of: uid) where sandbox.state == .sandboxReady {
                var stop = Runtime_V1_StopPodSandboxRequest()
                stop.podSandboxID = sandbox.id
                _ = try await cri.runtime.stopPodSandbox(stop)
            }
            return
        }
        if let message = await state.evictionMessage(podUID: uid) {
            // Evicted: killed at once (the kubelet's one-second grace for hard thresholds) and failed.
            await probes.stop(podUID: uid)
            try await terminate(pod, grace: 1)
            try await postFinalStatus(pod, reason: "Evicted", message: message)
            return
        }
        if try await sandboxes(of: uid).isEmpty, let refusal = eviction.refusal(pod) {
            // Never started here and the node is under pressure: refused, as the kubelet's admission does.
            recorder.record(pod, type: "Warning", reason: "Evicted", message: refusal)
            try await postFinalStatus(pod, reason: "Evicted", message: "Pod was rejected: " + refusal)
            return
        }

        // A sandbox that could not be made is tried again with the containers' back-off (10 s doubling),
        // not at the queue's pace: each attempt costs the runtime a network namespace and a snapshot.
        let sandboxKey = PodRuntimeState.key(uid, "(sandbox)")
        if let left = await state.remaining(sandboxKey) {
            await queue.addSoon(key, after: left)
            return
        }
        let sandboxID: String
        do {
            sandboxID = try await ensureSandbox(pod)
            await state.reset(sandboxKey)
        } catch {
            await queue.addSoon(key, after: await state.failed(sandboxKey))
            return
        }
        var statusRequest = Runtime_V1_PodSandboxStatusRequest()
        statusRequest.podSandboxID = sandboxID
        let sandbox = try await cri.runtime.podSandboxStatus(statusRequest).status
        var listRequest = Runtime_V1_ListContainersRequest()
        listRequest.filter.podSandboxID = sandboxID
        var containers = try await cri.runtime.listContainers(listRequest).containers
        var requeueAfter: Duration?

        // Probes of what runs already (a sidecar's startup probe decides when the next init container starts).
        await startProbes(pod, key: key, sandbox: sandbox, containers: containers)
        // Init containers first, one at a time, each to a zero exit (the app containers wait for them).
        switch try await runInitContainers(
            pod, sandboxID: sandboxID, sandbox: sandbox, containers: containers, requeueAfter: &requeueAfter)
        {
        case .done:
            break
        case .running, .failed:
            containers = try await cri.runtime.listContainers(listRequest).containers
            try await postStatus(pod, sandbox: sandbox, containers: containers)
            if let requeueAfter { await queue.addSoon(key, after: requeueAfter) }
            return
        }

        for container in pod.spec.containers {
            let stateKey = PodRuntimeState.key(uid, container.name)
            let instances = containers.filter { $0.metadata.name == container.name }
                .sorted { $0.metadata.attempt > $1.metadata.attempt }
            let latest = instances.first
            switch latest?.state {
            case .containerRunning?:
                continue
            case .containerCreated?:
                var start = Runtime_V1_StartContainerRequest()
                start.containerID = latest!.id
                _ = try? await cri.runtime.startContainer(start)
                continue
            case .containerExited?, .containerUnknown?:
                let status = try await containerStatus(latest!.id)
                guard Self.shouldRestart(pod, exitCode: status.exitCode) else { continue }
                // A container that ran ten minutes is healthy again: its back-off starts over (one that
                // never started — StartError — did not run at all).
                if status.startedAt > 0 && status.finishedAt - status.startedAt > 600_000_000_000 {
                    await state.reset(stateKey)
                }
                if let left = await backingOff(container, pod: pod, stateKey: stateKey) {
                    requeueAfter = min(requeueAfter ?? left, left)
                    continue
                }
                await state.failed(stateKey)
                try await startContainer(
                    container, pod: pod, sandboxID: sandboxID, sandbox: sandbox,
                    attempt: Int(latest!.metadata.attempt) + 1,
                    stateKey: stateKey, requeueAfter: &requeueAfter)
                // Older instances than the one just replaced are not kept (the kubelet keeps one dead one).
                for old in instances.dropFirst() { await removeContainer(old.id) }
            default:
                try await startContainer(
                    container, pod: pod, sandboxID: sandboxID, sandbox: sandbox, attempt: 0, stateKey: stateKey,
                    requeueAfter: &requeueAfter)
            }
        }
        containers = try await cri.runtime.listContainers(listRequest).containers
        await startProbes(pod, key: key, sandbox: sandbox, containers: containers)
        try await postStatus(pod, sandbox: sandbox, containers: containers)
        if let requeueAfter { await queue.addSoon(key, after: requeueAfter) }
    }

    /// Probe loops for each running container that has probes; those of containers gone are stopped.
    func startProbes(
        _ pod: CoreV1.Pod, key: String, sandbox: Runtime_V1_PodSandboxStatus, containers: [Runtime_V1_Container]
    )
        async
    {
        let uid = pod.metadata.uid ?? ""
        let running = containers.filter { $0.state == .containerRunning }
        await probes.stop(podUID: uid, keeping: Set(running.map(\.id)))
        let podIP = sandbox.network.ip.isEmpty ? facts.internalIP : sandbox.network.ip
        let probed = pod.spec.containers + pod.spec.initContainers.filter(Self.isSidecar)
        for instance in running {
            guard let spec = probed.first(where: { $0.name == instance.metadata.name }) else { continue }
            var list: [(Prober.Kind, CoreV1.Probe)] = []
            if let probe = spec.startupProbe { list.append((.startup, probe)) }
            if let probe = spec.readinessProbe { list.append((.readiness, probe)) }
            if let probe = spec.livenessProbe { list.append((.liveness, probe)) }
            await probes.ensure(
                Prober.Target(
                    podKey: key, podUID: uid, containerName: spec.name, containerID: instance.id, podIP: podIP,
                    probes: list, gracePeriod: pod.spec.terminationGracePeriodSeconds ?? 30),
                agent: self)
        }
    }

    enum InitProgress { case done, running, failed }

    /// Runs the pod's init containers in order, each to completion: `.done` once every one exited 0;
    /// `.running` while one runs (or waits to be restarted: a failed init container is restarted with
    /// back-off unless the pod's restartPolicy is Never); `.failed` when one failed for good.
    func runInitContainers(
        _ pod: CoreV1.Pod, sandboxID: String, sandbox: Runtime_V1_PodSandboxStatus, containers: [Runtime_V1_Container],
        requeueAfter: inout Duration?
    ) async throws -> InitProgress {
        let uid = pod.metadata.uid ?? ""
        // Once an app container exists the init phase is over: only sidecars are still looked after.
        let appNames = Set(pod.spec.containers.map(\.name))
        let initPhaseOver = containers.contains { appNames.contains($0.metadata.name) }
        for container in pod.spec.initContainers {
            // A sidecar (restartPolicy Always) runs beside the app: the next init container starts
            // once it has started, and it is restarted whenever it exits, whatever the pod's policy.
            let sidecar = Self.isSidecar(container)
            if initPhaseOver && !sidecar { continue }
            let stateKey = PodRuntimeState.key(uid, container.name)
            let instances = containers.filter { $0.metadata.name == container.name }
                .sorted { $0.metadata.attempt > $1.metadata.attempt }
            guard let latest = instances.first else {
                try await startContainer(
                    container, pod: pod, sandboxID: sandboxID, sandbox: sandbox, attempt: 0, stateKey: stateKey,
                    requeueAfter: &requeueAfter)
                if sidecar && initPhaseOver { continue }
                // The next sync (the relist sees it running) goes on to the next one.
                requeueAfter = min(requeueAfter ?? .milliseconds(500), .milliseconds(500))
                return .running
            }
            switch latest.state {
            case .containerRunning where sidecar:
                let started = await probes.isStarted(latest.id)
                if initPhaseOver || started { continue }
                requeueAfter = min(requeueAfter ?? .milliseconds(500), .milliseconds(500))
                return .running
            case .containerRunning, .containerCreated:
                if sidecar && initPhaseOver { continue }
                return .running
            default:
                let status = try await containerStatus(latest.id)
                if sidecar {
                    if let left = await backingOff(container, pod: pod, stateKey: stateKey) {
                        requeueAfter = min(requeueAfter ?? left, left)
                        if initPhaseOver { continue }
                        return .running
                    }
                    await state.failed(stateKey)
                    try await startContainer(
                        container, pod: pod, sandboxID: sandboxID, sandbox: sandbox,
                        attempt: Int(latest.metadata.attempt) + 1, stateKey: stateKey, requeueAfter: &requeueAfter)
                    for old in instances.dropFirst() { await removeContainer(old.id) }
                    if initPhaseOver { continue }
                    return .running
                }
                if status.exitCode == 0 { continue }
                if pod.spec.restartPolicy == .never { return .failed }
                if let left = await backingOff(container, pod: pod, stateKey: stateKey) {
                    requeueAfter = min(requeueAfter ?? left, left)
                    return .running
                }
                await state.failed(stateKey)
                try await startContainer(
                    container, pod: pod, sandboxID: sandboxID, sandbox: sandbox,
                    attempt: Int(latest.metadata.attempt) + 1, stateKey: stateKey, requeueAfter: &requeueAfter)
                for old in instances.dropFirst() { await removeContainer(old.id) }
                return .running
            }
        }
        return .done
    }

    /// An init container with restartPolicy Always: a sidecar (KEP-753, on by default since 1.29).
    static func isSidecar(_ container: CoreV1.Container) -> Bool { container.restartPolicy == .always }

    /// How long a failed container must still wait before its restart (nil: it may restart now); while
    /// it waits it shows the kubelet's CrashLoopBackOff reason and message.
    func backingOff(_ container: CoreV1.Container, pod: CoreV1.Pod, stateKey: String) async -> Duration? {
        guard let left = await state.remaining(stateKey) else { return nil }
        let delay = await state.delay(stateKey)
        let podName = "\(pod.metadata.name ?? "")_\(pod.metadata.namespace ?? "")(\(pod.metadata.uid ?? ""))"
        await state.setWaiting(
            stateKey, reason: "CrashLoopBackOff",
            message: "back-off \(Self.seconds(delay)) restarting failed container=\(container.name) pod=\(podName)")
        return left
    }

    /// Whether the pod's restartPolicy restarts a container that exited with `exitCode`.
    static func shouldRestart(_ pod: CoreV1.Pod, exitCode: Int32) -> Bool {
        switch pod.spec.restartPolicy {
        case .never?: return false
        case .onFailure?: return exitCode != 0
        default: return true
        }
    }

    static func seconds(_ duration: Duration) -> String {
        let total = duration.components.seconds
        return total >= 60 ? "\(total / 60)m\(total % 60)s" : "\(total)s"
    }

    func sandboxes(of uid: String) async throws -> [Runtime_V1_PodSandbox] {
        var request = Runtime_V1_ListPodSandboxRequest()
        request.filter.labelSelector = [PodLabels.uid: uid]
        return try await cri.runtime.listPodSandbox(request).items
    }

    /// The pod's ready sandbox, made when there is none (an older, stopped one has its containers
    /// removed first: a new sandbox starts every container anew, as the kubelet does).
    func ensureSandbox(_ pod: CoreV1.Pod) async throws -> String {
        let uid = pod.metadata.uid ?? ""
        let existing = try await sandboxes(of: uid)
        if let ready = existing.first(where: { $0.state == .sandboxReady }) { return ready.id }
        if !existing.isEmpty {
            recorder.record(
                pod, reason: "SandboxChanged", message: "Pod sandbox changed, it will be killed and re-created.")
        }
        for old in existing {
            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = old.id
            _ = try? await cri.runtime.removePodSandbox(remove)
        }
        let attempt = UInt32(existing.map { $0.metadata.attempt + 1 }.max() ?? 0)
        let resolvConf = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
        var request = Runtime_V1_RunPodSandboxRequest()
        request.config = PodConfigs.sandboxConfig(
            pod, attempt: attempt, configuration: configuration, hostResolvConf: resolvConf)
        do {
            request.runtimeHandler = try await runtimeHandler(pod)
            // No event for a sandbox made: the kubelet has none (only SandboxChanged, for one remade).
            return try await cri.runtime.runPodSandbox(request).podSandboxID
        } catch {
            recorder.record(
                pod, type: "Warning", reason: "FailedCreatePodSandBox",
                message: "Failed to create pod sandbox: \(Self.message(error))")
            throw error
        }
    }

    /// The CRI runtime handler of the pod's RuntimeClass ("" — the runtime's default — without one), as
    /// the kubelet's runtimeClassManager looks it up; a class that is not there fails the sandbox.
    func runtimeHandler(_ pod: CoreV1.Pod) async throws -> String {
        guard let name = pod.spec.runtimeClassName, !name.isEmpty else { return "" }
        guard let runtimeClass = try await client.get(NodeV1.RuntimeClass.self, namespace: nil, name: name) else {
            throw AgentError("runtimeclass.node.k8s.io \"\(name)\" not found")
        }
        return runtimeClass.handler
    }

    func containerStatus(_ id: String) async throws -> Runtime_V1_ContainerStatus {
        var request = Runtime_V1_ContainerStatusRequest()
        request.containerID = id
        return try await cri.runtime.containerStatus(request).status
    }

    func removeContainer(_ id: String) async {
        var request = Runtime_V1_RemoveContainerRequest()
        request.containerID = id
        _ = try? await cri.runtime.removeContainer(request)
    }

    /// Pulls (by the container's imagePullPolicy), makes the config, creates and starts one container.
    /// A pull or config that fails leaves the container waiting with the kubelet's reason.
    func startContainer(
        _ container: CoreV1.Container, pod: CoreV1.Pod, sandboxID: String, sandbox: Runtime_V1_PodSandboxStatus,
        attempt: Int, stateKey: String, requeueAfter: inout Duration?
    ) async throws {
        let image: Runtime_V1_Image
        do {
            image = try await ensureImage(container, pod: pod, stateKey: stateKey)
        } catch let failure as WaitingFailure {
            await state.setWaiting(stateKey, reason: failure.reason, message: failure.message)
            if let left = await state.remaining(stateKey) { requeueAfter = min(requeueAfter ?? left, left) }
            return
        }
        let config: Runtime_V1_ContainerConfig
        do {
            config = try await containerConfig(container, pod: pod, sandbox: sandbox, image: image, attempt: attempt)
        } catch let failure as PodConfigError {
            await state.setWaiting(stateKey, reason: "CreateContainerConfigError", message: failure.message)
            recorder.record(pod, type: "Warning", reason: "Failed", message: "Error: \(failure.message)")
            requeueAfter = min(requeueAfter ?? .seconds(10), .seconds(10))
            return
        }
        var create = Runtime_V1_CreateContainerRequest()
        create.podSandboxID = sandboxID
        create.config = config
        create.sandboxConfig = PodConfigs.sandboxConfig(
            pod, attempt: 0, configuration: configuration,
            hostResolvConf: (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? "")
        let id: String
        do {
            id = try await cri.runtime.createContainer(create).containerID
        } catch {
            await state.setWaiting(stateKey, reason: "CreateContainerError", message: Self.message(error))
            recorder.record(pod, type: "Warning", reason: "Failed", message: "Error: \(Self.message(error))")
            requeueAfter = min(requeueAfter ?? .seconds(10), .seconds(10))
            return
        }
        recorder.record(pod, reason: "Created", message: "Created container \(container.name)")
        var start = Runtime_V1_StartContainerRequest()
        start.containerID = id
        do {
            _ = try await cri.runtime.startContainer(start)
            await state.clearWaiting(stateKey)
            recorder.record(pod, reason: "Started", message: "Started container \(container.name)")
            let podIP = sandbox.network.ip.isEmpty ? facts.internalIP : sandbox.network.ip
            if !(await runPostStart(
                container, pod: pod, containerID: id, podIP: podIP, grace: pod.spec.terminationGracePeriodSeconds ?? 30))
            {
                // Restarted by its policy, with back-off, as a container that failed.
                requeueAfter = min(requeueAfter ?? .seconds(1), .seconds(1))
            }
        } catch {
            // The runtime ended it (exit 128, StartError, as containerd): the next sync restarts it by the
            // pod's restartPolicy with back-off, and until then it waits with the kubelet's reason — unless
            // nothing will restart it, when its terminated state is what shows.
            if Self.shouldRestart(pod, exitCode: 128) || Self.isSidecar(container) {
                await state.setWaiting(stateKey, reason: "RunContainerError", message: Self.message(error))
            }
            recorder.record(pod, type: "Warning", reason: "Failed", message: "Error: \(Self.message(error))")
            requeueAfter = min(requeueAfter ?? .seconds(1), .seconds(1))
        }
    }

    /// Why a container waits: the reason and message its status shows.
    struct WaitingFailure: Error {
        var reason: String
        var message: String
    }

    /// The image, pulled when the policy says so: Always, or IfNotPresent and absent (Never and absent
    /// is ErrImageNeverPull). Failures back off as the kubelet's: ErrImagePull, then ImagePullBackOff.
    func ensureImage(_ container: CoreV1.Container, pod: CoreV1.Pod, stateKey: String) async throws -> Runtime_V1_Image
    {
        let name = container.image ?? ""
        var status = Runtime_V1_ImageStatusRequest()
        status.image.image = name
        let present = try await cri.images.imageStatus(status)
        let policy = container.imagePullPolicy ?? Self.defaultPullPolicy(name)
        if present.hasImage && policy != .always {
            recorder.record(
                pod, reason: "Pulled", message: "Container image \"\(name)\" already present on machine")
            return present.image
        }
        if policy == .never {
            recorder.record(
                pod, type: "Warning", reason: "ErrImageNeverPull",
                message: "Container image \"\(name)\" is not present with pull policy of Never")
            throw WaitingFailure(
                reason: "ErrImageNeverPull",
                message: "Container image \"\(name)\" is not present with pull policy of Never")
        }
        if await state.remaining(stateKey + "#pull") != nil {
            throw WaitingFailure(reason: "ImagePullBackOff", message: "Back-off pulling image \"\(name)\"")
        }
        recorder.record(pod, reason: "Pulling", message: "Pulling image \"\(name)\"")
        // The pod's imagePullSecrets for this registry, each tried in turn (none: anonymously).
        var secrets: [CoreV1.Secret] = []
        for reference in pod.spec.imagePullSecrets {
            guard let secretName = reference.name, !secretName.isEmpty,
                let secret = try? await client.get(
                    CoreV1.Secret.self, namespace: pod.metadata.namespace ?? "default", name: secretName)
            else { continue }
            secrets.append(secret)
        }
        let credentials = ImagePullSecrets.credentials(for: name, secrets: secrets)
        do {
            var lastError: (any Error)?
            for auth in credentials.isEmpty ? [nil] : credentials.map({ Optional($0) }) {
                var pull = Runtime_V1_PullImageRequest()
                pull.image.image = name
                if let auth { pull.auth = auth }
                do {
                    _ = try await cri.images.pullImage(pull)
                    lastError = nil
                    break
                } catch {
                    lastError = error
                }
            }
            if let lastError { throw lastError }
        } catch {
            await state.failed(stateKey + "#pull")
            let message = "Failed to pull image \"\(name)\": \(Self.message(error))"
            recorder.record(pod, type: "Warning", reason: "Failed", message: message)
            throw WaitingFailure(reason: "ErrImagePull", message: message)
        }
        await state.reset(stateKey + "#pull")
        recorder.record(pod, reason: "Pulled", message: "Successfully pulled image \"\(name)\"")
        let pulled = try await cri.images.imageStatus(status)
        guard pulled.hasImage else {
            throw WaitingFailure(reason: "ErrImagePull", message: "image \"\(name)\" is not present after its pull")
        }
        return pulled.image
    }

    /// Always for `:latest` or no tag, IfNotPresent otherwise (the API server's defaulting, for pods
    /// that did not get it).
    static func defaultPullPolicy(_ image: String) -> CoreV1.PullPolicy {
        if image.contains("@") { return .ifNotPresent }
        let last = image.split(separator: "/").last ?? ""
        guard let colon = last.lastIndex(of: ":") else { return .always }
        return last[last.index(after: colon)...] == "latest" ? .always : .ifNotPresent
    }

    /// The container's CRI config: its environment resolved (ConfigMaps and Secrets read now), its
    /// volumes mounted, its resources, security and identity.
    func containerConfig(
        _ container: CoreV1.Container, pod: CoreV1.Pod, sandbox: Runtime_V1_PodSandboxStatus, image: Runtime_V1_Image,
        attempt: Int
    ) async throws -> Runtime_V1_ContainerConfig {
        let namespace = pod.metadata.namespace ?? "default"
        var configMaps: [String: [String: String]] = [:]
        var secrets: [String: [String: [UInt8]]] = [:]
        for name in Self.referencedConfigMaps(container) where configMaps[name] == nil {
            if let object = try await client.get(CoreV1.ConfigMap.self, namespace: namespace, name: name) {
                var data = object.data
                for (key, value) in object.binaryData { data[key] = String(decoding: value, as: UTF8.self) }
                configMaps[name] = data
            }
        }
        for name in Self.referencedSecrets(container) where secrets[name] == nil {
            if let object = try await client.get(CoreV1.Secret.self, namespace: namespace, name: name) {
                secrets[name] = object.data
            }
        }
        // Once per container: the node's status reads /proc.
        let allocatable = nodeStatus().allocatable
        let environment = try PodConfigs.environment(
            container, pod: pod, podIP: sandbox.network.ip,
            podIPs: [sandbox.network.ip] + sandbox.network.additionalIps.map(\.ip), hostIP: facts.internalIP,
            nodeName: configuration.nodeName, nodeAllocatable: allocatable,
            serviceEnvironment: ServiceLinks.environment(for: pod, services: try await servicesForLinks(pod)),
            configMaps: { configMaps[$1] }, secrets: { secrets[$1] })
        let mounts = try await PodVolumes.mounts(
            for: container, pod: pod, root: configuration.rootDirectory, client: client,
            facts: PodVolumes.Facts(
                podIPs: [sandbox.network.ip] + sandbox.network.additionalIps.map(\.ip), hostIPs: [facts.internalIP],
                nodeName: configuration.nodeName, allocatable: allocatable, mountsMemory: !configuration.hollow,
                makesDirectories: !configuration.hollow),
            tokens: tokens)
        try PodConfigs.verifyRunAsNonRoot(
            container, pod: pod, imageUID: image.hasUid ? image.uid.value : nil, imageUsername: image.username)
        return PodConfigs.containerConfig(
            container, pod: pod, restartCount: attempt, image: image.id, environment: environment, mounts: mounts,
            configuration: configuration, machineMemory: facts.memoryBytes,
            imageUID: image.hasUid ? image.uid.value : nil, imageUsername: image.username)
    }

    static func referencedConfigMaps(_ container: CoreV1.Container) -> Set<String> {
        var names = Set(container.envFrom.compactMap { $0.configMapRef?.name })
        for variable in container.env { if let name = variable.valueFrom?.configMapKeyRef?.name { names.insert(name) } }
        return names
    }

    static func referencedSecrets(_ container: CoreV1.Container) -> Set<String> {
        var names = Set(container.envFrom.compactMap { $0.secretRef?.name })
        for variable in container.env { if let name = variable.valueFrom?.secretKeyRef?.name { names.insert(name) } }
        return names
    }

    /// A CRI error's message without the gRPC wrapping.
    static func message(_ error: any Error) -> String {
        if let rpc = error as? RPCError { return rpc.message }
        return "\(error)"
    }
}

import BerthCRIProtocol
import BerthNetwork
import Foundation
import GRPCCore
import Synchronization

/// A CRI runtime that keeps its sandboxes, containers and images in memory and runs nothing: what a
/// hollow node's agent drives (kubemark's fake remote runtime), so that thousands of simulated nodes
/// go through the real agent's code — sandboxes made, images "pulled", containers created, started,
/// stopped and removed, statuses read back — in one process, without namespaces or processes.
///
/// Sandboxes get addresses from the node's pod CIDR, as a CNI plugin would give them (host-network
/// sandboxes none); started containers run until stopped, and exit 0 then — unless the pod's
/// annotation ``exitCodesAnnotation`` names them (`init=0,app=1`): those exit at once with their code,
/// so init containers can complete and crash loops be simulated. ExecSync answers exit 0 with no
/// output. Streaming (exec, attach, port-forward) has nothing to reach and is refused.
public final class FakeRuntime: Sendable {
    /// A pod annotation (the agent passes pods' annotations to their sandboxes): containers by name
    /// that exit as soon as they start, with the given code.
    public static let exitCodesAnnotation = "berth.dev/hollow-exit-codes"

    struct Sandbox {
        var id: String
        var config: Runtime_V1_PodSandboxConfig
        var ready = true
        var createdAt: Int64
        var ip: String
        var handler: String
    }

    struct Container {
        var id: String
        var sandboxID: String
        var config: Runtime_V1_ContainerConfig
        var imageRef: String
        var state = Runtime_V1_ContainerState.containerCreated
        var createdAt: Int64
        var startedAt: Int64 = 0
        var finishedAt: Int64 = 0
        var exitCode: Int32 = 0
    }

    struct State {
        var sandboxes: [String: Sandbox] = [:]
        var containers: [String: Container] = [:]
        var images: [String: Runtime_V1_Image] = [:]
        /// Host offsets in the pod CIDR given out to ready sandboxes.
        var addresses: Set<UInt32> = []
        var podCIDR: String
    }

    fileprivate let state: Mutex<State>
    /// The runtime's name as container IDs carry it (`hollow://…`).
    public let name: String

    /// `podCIDR`: where sandboxes' addresses come from (the node's spec.podCIDR; the kubelet also
    /// passes it in UpdateRuntimeConfig).
    public init(podCIDR: String, name: String = "hollow") {
        state = Mutex(State(podCIDR: podCIDR))
        self.name = name
    }

    /// The two services, for ``CRIClient/init(inProcess:)`` or a server of one's own.
    public var services: [any RegistrableRPCService] { [RuntimeService(fake: self), ImageService(fake: self)] }

    /// Containers the runtime holds, sandboxes, and images: for tests and benchmarks to look at.
    public var counts: (sandboxes: Int, containers: Int, images: Int) {
        state.withLock { ($0.sandboxes.count, $0.containers.count, $0.images.count) }
    }

    /// What a container's record keeps of its config: what its status and listings report. The rest
    /// (environment, command, resources, security) a runtime would act on and this one does not; ten
    /// thousand hollow nodes hold a record per container, so it is not kept.
    static func kept(_ config: Runtime_V1_ContainerConfig) -> Runtime_V1_ContainerConfig {
        var kept = Runtime_V1_ContainerConfig()
        kept.metadata = config.metadata
        kept.image = config.image
        kept.labels = config.labels
        kept.annotations = config.annotations
        kept.logPath = config.logPath
        return kept
    }

    /// The same for a sandbox: its identity, labels and annotations and its namespaces.
    static func kept(_ config: Runtime_V1_PodSandboxConfig) -> Runtime_V1_PodSandboxConfig {
        var kept = Runtime_V1_PodSandboxConfig()
        kept.metadata = config.metadata
        kept.labels = config.labels
        kept.annotations = config.annotations
        kept.linux.securityContext.namespaceOptions = config.linux.securityContext.namespaceOptions
        return kept
    }

    func sandbox(_ id: String) throws(RPCError) -> Sandbox {
        try state.withLock { state throws(RPCError) in try Self.find(id, in: state.sandboxes, what: "sandbox") }
    }

    func container(_ id: String) throws(RPCError) -> Container {
        try state.withLock { state throws(RPCError) in try Self.find(id, in: state.containers, what: "container") }
    }

    static func newID() -> String {
        String(format: "%016llx%016llx", UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))
    }

    /// An object by its full ID or an unambiguous prefix of it, as real runtimes accept.
    static func find<T>(_ id: String, in objects: [String: T], what: String) throws(RPCError) -> T {
        if let exact = objects[id] { return exact }
        let matches = id.isEmpty ? [] : objects.filter { $0.key.hasPrefix(id) }
        guard matches.count == 1, let only = matches.first else {
            throw RPCError(
                code: matches.isEmpty ? .notFound : .invalidArgument,
                message: matches.isEmpty ? "\(what) \"\(id)\" not found" : "\(what) ID \"\(id)\" is ambiguous")
        }
        return only.value
    }

    // MARK: Addresses

    /// The next free address of the pod CIDR (hosts from .2: .1 is the bridge's, as host-local gives).
    static func allocate(_ state: inout State) throws(RPCError) -> String {
        guard let subnet = IPv4Subnet(state.podCIDR, strict: false), subnet.prefixLength <= 30 else {
            throw RPCError(code: .failedPrecondition, message: "the pod CIDR \"\(state.podCIDR)\" is not an IPv4 CIDR")
        }
        let last = subnet.last.value &- subnet.network.value  // the broadcast address's offset
        var offset: UInt32 = 2
        while offset < last && state.addresses.contains(offset) { offset += 1 }
        guard offset < last else {
            throw RPCError(code: .resourceExhausted, message: "no address left in the pod CIDR \(state.podCIDR)")
        }
        state.addresses.insert(offset)
        return subnet.address(offset).description
    }

    static func release(_ ip: String, _ state: inout State) {
        guard let subnet = IPv4Subnet(state.podCIDR, strict: false), let address = IPv4Address(ip) else { return }
        state.addresses.remove(address.value &- subnet.network.value)
    }

    // MARK: Views

    static func sandboxView(_ sandbox: Sandbox) -> Runtime_V1_PodSandbox {
        var view = Runtime_V1_PodSandbox()
        view.id = sandbox.id
        view.metadata = sandbox.config.metadata
        view.state = sandbox.ready ? .sandboxReady : .sandboxNotready
        view.createdAt = sandbox.createdAt
        view.labels = sandbox.config.labels
        view.annotations = sandbox.config.annotations
        view.runtimeHandler = sandbox.handler
        return view
    }

    static func containerView(_ container: Container) -> Runtime_V1_Container {
        var view = Runtime_V1_Container()
        view.id = container.id
        view.podSandboxID = container.sandboxID
        view.metadata = container.config.metadata
        view.image = container.config.image
        view.imageRef = container.imageRef
        view.imageID = container.imageRef
        view.state = container.state
        view.createdAt = container.createdAt
        view.labels = container.config.labels
        view.annotations = container.config.annotations
        return view
    }

    /// The code `name` exits with by the annotation's `name=code` list, nil: it runs.
    static func exitCode(of name: String, in list: String) -> Int32? {
        for item in list.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                return Int32(parts[1].trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }

    static func imageID(_ name: String) -> String {
        // A stable made-up digest per name (FNV-1a, repeated to 64 hex digits).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let part = String(format: "%016llx", hash)
        return "sha256:" + String(repeating: part, count: 4)
    }

    // MARK: RuntimeService

    struct RuntimeService: Runtime_V1_RuntimeService.SimpleServiceProtocol {
        let fake: FakeRuntime

        func version(request: Runtime_V1_VersionRequest, context: ServerContext) async throws
            -> Runtime_V1_VersionResponse
        {
            var response = Runtime_V1_VersionResponse()
            response.version = "0.1.0"
            response.runtimeName = fake.name
            response.runtimeVersion = "1.0.0"
            response.runtimeApiVersion = "v1"
            return response
        }

        func status(request: Runtime_V1_StatusRequest, context: ServerContext) async throws
            -> Runtime_V1_StatusResponse
        {
            var response = Runtime_V1_StatusResponse()
            for type in ["RuntimeReady", "NetworkReady"] {
                var condition = Runtime_V1_RuntimeCondition()
                condition.type = type
                condition.status = true
                response.status.conditions.append(condition)
            }
            return response
        }

        func updateRuntimeConfig(request: Runtime_V1_UpdateRuntimeConfigRequest, context: ServerContext)
            async throws -> Runtime_V1_UpdateRuntimeConfigResponse
        {
            let cidr = request.runtimeConfig.networkConfig.podCidr
            if !cidr.isEmpty { fake.state.withLock { $0.podCIDR = cidr } }
            return Runtime_V1_UpdateRuntimeConfigResponse()
        }

        func runtimeConfig(request: Runtime_V1_RuntimeConfigRequest, context: ServerContext) async throws
            -> Runtime_V1_RuntimeConfigResponse
        {
            var response = Runtime_V1_RuntimeConfigResponse()
            response.linux.cgroupDriver = .cgroupfs
            return response
        }

        func runPodSandbox(request: Runtime_V1_RunPodSandboxRequest, context: ServerContext) async throws
            -> Runtime_V1_RunPodSandboxResponse
        {
            guard request.config.hasMetadata, !request.config.metadata.name.isEmpty else {
                throw CRIError.invalid("sandbox config metadata.name is required")
            }
            let hostNetwork = request.config.linux.securityContext.namespaceOptions.network == .node
            let id = try fake.state.withLock { state throws(RPCError) -> String in
                let id = FakeRuntime.newID()
                let ip = hostNetwork ? "" : try FakeRuntime.allocate(&state)
                state.sandboxes[id] = Sandbox(
                    id: id, config: FakeRuntime.kept(request.config), createdAt: Nanoseconds.now(), ip: ip,
                    handler: request.runtimeHandler)
                return id
            }
            var response = Runtime_V1_RunPodSandboxResponse()
            response.podSandboxID = id
            return response
        }

        func stopPodSandbox(request: Runtime_V1_StopPodSandboxRequest, context: ServerContext) async throws
            -> Runtime_V1_StopPodSandboxResponse
        {
            try fake.state.withLock { state throws(RPCError) in
                // Stopping what is gone is not an error (the kubelet stops again after a restart).
                guard let sandbox = try? FakeRuntime.find(request.podSandboxID, in: state.sandboxes, what: "sandbox")
                else { return }
                let now = Nanoseconds.now()
                for (id, container) in state.containers
                where container.sandboxID == sandbox.id && container.state == .containerRunning {
                    state.containers[id]?.state = .containerExited
                    state.containers[id]?.finishedAt = now
                }
                if sandbox.ready { FakeRuntime.release(sandbox.ip, &state) }
                state.sandboxes[sandbox.id]?.ready = false
            }
            return Runtime_V1_StopPodSandboxResponse()
        }

        func removePodSandbox(request: Runtime_V1_RemovePodSandboxRequest, context: ServerContext) async throws
            -> Runtime_V1_RemovePodSandboxResponse
        {
            fake.state.withLock { state in
                guard let sandbox = try? FakeRuntime.find(request.podSandboxID, in: state.sandboxes, what: "sandbox")
                else { return }
                if sandbox.ready { FakeRuntime.release(sandbox.ip, &state) }
                state.sandboxes[sandbox.id] = nil
                state.containers = state.containers.filter { $0.value.sandboxID != sandbox.id }
            }
            return Runtime_V1_RemovePodSandboxResponse()
        }

        func podSandboxStatus(request: Runtime_V1_PodSandboxStatusRequest, context: ServerContext) async throws
            -> Runtime_V1_PodSandboxStatusResponse
        {
            let sandbox = try fake.sandbox(request.podSandboxID)
            var status = Runtime_V1_PodSandboxStatus()
            status.id = sandbox.id
            status.metadata = sandbox.config.metadata
            status.state = sandbox.ready ? .sandboxReady : .sandboxNotready
            status.createdAt = sandbox.createdAt
            status.network.ip = sandbox.ip
            status.linux.namespaces.options = sandbox.config.linux.securityContext.namespaceOptions
            status.labels = sandbox.config.labels
            status.annotations = sandbox.config.annotations
            status.runtimeHandler = sandbox.handler
            var response = Runtime_V1_PodSandboxStatusResponse()
            response.status = status
            response.timestamp = Nanoseconds.now()
            return response
        }

        func listPodSandbox(request: Runtime_V1_ListPodSandboxRequest, context: ServerContext) async throws
            -> Runtime_V1_ListPodSandboxResponse
        {
            let filter = request.hasFilter ? request.filter : nil
            var response = Runtime_V1_ListPodSandboxResponse()
            response.items = fake.state.withLock { state in
                state.sandboxes.values.filter { sandbox in
                    guard let filter else { return true }
                    if !filter.id.isEmpty && !sandbox.id.hasPrefix(filter.id) { return false }
                    if filter.hasState && (filter.state.state == .sandboxReady) != sandbox.ready { return false }
                    return filter.labelSelector.allSatisfy { sandbox.config.labels[$0.key] == $0.value }
                }.sorted { $0.createdAt < $1.createdAt }.map(FakeRuntime.sandboxView)
            }
            return response
        }

        func createContainer(request: Runtime_V1_CreateContainerRequest, context: ServerContext) async throws
            -> Runtime_V1_CreateContainerResponse
        {
            guard request.config.hasMetadata, !request.config.metadata.name.isEmpty else {
                throw CRIError.invalid("container config metadata.name is required")
            }
            let image = request.config.image.image
            let id = try fake.state.withLock { state throws(RPCError) -> String in
                let sandbox = try FakeRuntime.find(request.podSandboxID, in: state.sandboxes, what: "sandbox")
                guard sandbox.ready else {
                    throw CRIError.failedPrecondition("sandbox \(sandbox.id) is not ready")
                }
                guard let pulled = state.images[image] ?? state.images.values.first(where: { $0.id == image }) else {
                    throw CRIError.notFound("image \"\(image)\" not found")
                }
                let id = FakeRuntime.newID()
                state.containers[id] = Container(
                    id: id, sandboxID: sandbox.id, config: FakeRuntime.kept(request.config), imageRef: pulled.id,
                    createdAt: Nanoseconds.now())
                return id
            }
            var response = Runtime_V1_CreateContainerResponse()
            response.containerID = id
            return response
        }

        func startContainer(request: Runtime_V1_StartContainerRequest, context: ServerContext) async throws
            -> Runtime_V1_StartContainerResponse
        {
            try fake.state.withLock { state throws(RPCError) in
                let container = try FakeRuntime.find(request.containerID, in: state.containers, what: "container")
                guard container.state == .containerCreated else {
                    throw CRIError.failedPrecondition("container \(container.id) is not in the created state")
                }
                let now = Nanoseconds.now()
                state.containers[container.id]?.startedAt = now
                let codes = state.sandboxes[container.sandboxID]?.config.annotations[FakeRuntime.exitCodesAnnotation]
                if let code = FakeRuntime.exitCode(of: container.config.metadata.name, in: codes ?? "") {
                    state.containers[container.id]?.state = .containerExited
                    state.containers[container.id]?.finishedAt = now
                    state.containers[container.id]?.exitCode = code
                } else {
                    state.containers[container.id]?.state = .containerRunning
                }
            }
            return Runtime_V1_StartContainerResponse()
        }

        func stopContainer(request: Runtime_V1_StopContainerRequest, context: ServerContext) async throws
            -> Runtime_V1_StopContainerResponse
        {
            try fake.state.withLock { state throws(RPCError) in
                let container = try FakeRuntime.find(request.containerID, in: state.containers, what: "container")
                guard container.state == .containerRunning else { return }
                state.containers[container.id]?.state = .containerExited
                state.containers[container.id]?.finishedAt = Nanoseconds.now()
            }
            return Runtime_V1_StopContainerResponse()
        }

        func removeContainer(request: Runtime_V1_RemoveContainerRequest, context: ServerContext) async throws
            -> Runtime_V1_RemoveContainerResponse
        {
            fake.state.withLock { state in
                guard let container = try? FakeRuntime.find(request.containerID, in: state.containers, what: "")
                else { return }
                state.containers[container.id] = nil
            }
            return Runtime_V1_RemoveContainerResponse()
        }

        func listContainers(request: Runtime_V1_ListContainersRequest, context: ServerContext) async throws
            -> Runtime_V1_ListContainersResponse
        {
            let filter = request.hasFilter ? request.filter : nil
            var response = Runtime_V1_ListContainersResponse()
            response.containers = fake.state.withLock { state in
                state.containers.values.filter { container in
                    guard let filter else { return true }
                    if !filter.id.isEmpty && !container.id.hasPrefix(filter.id) { return false }
                    if !filter.podSandboxID.isEmpty && !container.sandboxID.hasPrefix(filter.podSandboxID) {
                        return false
                    }
                    if filter.hasState && filter.state.state != container.state { return false }
                    return filter.labelSelector.allSatisfy { container.config.labels[$0.key] == $0.value }
                }.sorted { $0.createdAt < $1.createdAt }.map(FakeRuntime.containerView)
            }
            return response
        }

        func containerStatus(request: Runtime_V1_ContainerStatusRequest, context: ServerContext) async throws
            -> Runtime_V1_ContainerStatusResponse
        {
            let container = try fake.container(request.containerID)
            var status = Runtime_V1_ContainerStatus()
            status.id = container.id
            status.metadata = container.config.metadata
            status.state = container.state
            status.createdAt = container.createdAt
            status.startedAt = container.startedAt
            status.finishedAt = container.finishedAt
            status.exitCode = container.exitCode
            if container.state == .containerExited { status.reason = container.exitCode == 0 ? "Completed" : "Error" }
            status.image = container.config.image
            status.imageRef = container.imageRef
            status.imageID = container.imageRef
            status.labels = container.config.labels
            status.annotations = container.config.annotations
            status.logPath = container.config.logPath
            var response = Runtime_V1_ContainerStatusResponse()
            response.status = status
            return response
        }

        func updateContainerResources(
            request: Runtime_V1_UpdateContainerResourcesRequest, context: ServerContext
        ) async throws -> Runtime_V1_UpdateContainerResourcesResponse {
            _ = try fake.container(request.containerID)
            return Runtime_V1_UpdateContainerResourcesResponse()
        }

        func reopenContainerLog(request: Runtime_V1_ReopenContainerLogRequest, context: ServerContext)
            async throws -> Runtime_V1_ReopenContainerLogResponse
        { Runtime_V1_ReopenContainerLogResponse() }

        func execSync(request: Runtime_V1_ExecSyncRequest, context: ServerContext) async throws
            -> Runtime_V1_ExecSyncResponse
        {
            let container = try fake.container(request.containerID)
            guard container.state == .containerRunning else {
                throw CRIError.failedPrecondition("container \(container.id) is not running")
            }
            return Runtime_V1_ExecSyncResponse()
        }

        func exec(request: Runtime_V1_ExecRequest, context: ServerContext) async throws -> Runtime_V1_ExecResponse {
            throw RPCError(code: .unimplemented, message: "a hollow node's containers have no process to exec in")
        }

        func attach(request: Runtime_V1_AttachRequest, context: ServerContext) async throws
            -> Runtime_V1_AttachResponse
        { throw RPCError(code: .unimplemented, message: "a hollow node's containers have no process to attach to") }

        func portForward(request: Runtime_V1_PortForwardRequest, context: ServerContext) async throws
            -> Runtime_V1_PortForwardResponse
        { throw RPCError(code: .unimplemented, message: "a hollow node's pods have no network to forward to") }

        func containerStats(request: Runtime_V1_ContainerStatsRequest, context: ServerContext) async throws
            -> Runtime_V1_ContainerStatsResponse
        {
            let container = try fake.container(request.containerID)
            var response = Runtime_V1_ContainerStatsResponse()
            response.stats = FakeRuntime.stats(container)
            return response
        }

        func listContainerStats(request: Runtime_V1_ListContainerStatsRequest, context: ServerContext)
            async throws -> Runtime_V1_ListContainerStatsResponse
        {
            var response = Runtime_V1_ListContainerStatsResponse()
            response.stats = fake.state.withLock { state in
                state.containers.values.filter { $0.state == .containerRunning }.map(FakeRuntime.stats)
            }
            return response
        }

        func podSandboxStats(request: Runtime_V1_PodSandboxStatsRequest, context: ServerContext) async throws
            -> Runtime_V1_PodSandboxStatsResponse
        {
            let sandbox = try fake.sandbox(request.podSandboxID)
            var response = Runtime_V1_PodSandboxStatsResponse()
            response.stats.attributes.id = sandbox.id
            response.stats.attributes.metadata = sandbox.config.metadata
            response.stats.attributes.labels = sandbox.config.labels
            return response
        }

        func listPodSandboxStats(request: Runtime_V1_ListPodSandboxStatsRequest, context: ServerContext)
            async throws -> Runtime_V1_ListPodSandboxStatsResponse
        {
            var response = Runtime_V1_ListPodSandboxStatsResponse()
            response.stats = fake.state.withLock { state in
                state.sandboxes.values.filter(\.ready).map { sandbox in
                    var stats = Runtime_V1_PodSandboxStats()
                    stats.attributes.id = sandbox.id
                    stats.attributes.metadata = sandbox.config.metadata
                    stats.attributes.labels = sandbox.config.labels
                    return stats
                }
            }
            return response
        }

        func getContainerEvents(
            request: Runtime_V1_GetEventsRequest, response: RPCWriter<Runtime_V1_ContainerEventResponse>,
            context: ServerContext
        ) async throws { throw CRIError.unimplemented("GetContainerEvents") }

        func streamPodSandboxes(
            request: Runtime_V1_StreamPodSandboxesRequest, response: RPCWriter<Runtime_V1_StreamPodSandboxesResponse>,
            context: ServerContext
        ) async throws { throw CRIError.unimplemented("StreamPodSandboxes") }

        func streamContainers(
            request: Runtime_V1_StreamContainersRequest, response: RPCWriter<Runtime_V1_StreamContainersResponse>,
            context: ServerContext
        ) async throws { throw CRIError.unimplemented("StreamContainers") }

        func streamContainerStats(
            request: Runtime_V1_StreamContainerStatsRequest,
            response: RPCWriter<Runtime_V1_StreamContainerStatsResponse>, context: ServerContext
        ) async throws { throw CRIError.unimplemented("StreamContainerStats") }

        func streamPodSandboxStats(
            request: Runtime_V1_StreamPodSandboxStatsRequest,
            response: RPCWriter<Runtime_V1_StreamPodSandboxStatsResponse>, context: ServerContext
        ) async throws { throw CRIError.unimplemented("StreamPodSandboxStats") }

        func checkpointContainer(request: Runtime_V1_CheckpointContainerRequest, context: ServerContext)
            async throws -> Runtime_V1_CheckpointContainerResponse
        { throw CRIError.unimplemented("CheckpointContainer") }

        func checkpointPod(request: Runtime_V1_CheckpointPodRequest, context: ServerContext) async throws
            -> Runtime_V1_CheckpointPodResponse
        { throw CRIError.unimplemented("CheckpointPod") }

        func restorePod(request: Runtime_V1_RestorePodRequest, context: ServerContext) async throws
            -> Runtime_V1_RestorePodResponse
        { throw CRIError.unimplemented("RestorePod") }

        func listMetricDescriptors(request: Runtime_V1_ListMetricDescriptorsRequest, context: ServerContext)
            async throws -> Runtime_V1_ListMetricDescriptorsResponse
        { throw CRIError.unimplemented("ListMetricDescriptors") }

        func listPodSandboxMetrics(request: Runtime_V1_ListPodSandboxMetricsRequest, context: ServerContext)
            async throws -> Runtime_V1_ListPodSandboxMetricsResponse
        { throw CRIError.unimplemented("ListPodSandboxMetrics") }

        func streamPodSandboxMetrics(
            request: Runtime_V1_StreamPodSandboxMetricsRequest,
            response: RPCWriter<Runtime_V1_StreamPodSandboxMetricsResponse>, context: ServerContext
        ) async throws { throw CRIError.unimplemented("StreamPodSandboxMetrics") }

        func updatePodSandboxResources(
            request: Runtime_V1_UpdatePodSandboxResourcesRequest, context: ServerContext
        ) async throws -> Runtime_V1_UpdatePodSandboxResourcesResponse {
            throw CRIError.unimplemented("UpdatePodSandboxResources")
        }
    }

    static func stats(_ container: Container) -> Runtime_V1_ContainerStats {
        var stats = Runtime_V1_ContainerStats()
        stats.attributes.id = container.id
        stats.attributes.metadata = container.config.metadata
        stats.attributes.labels = container.config.labels
        stats.cpu.timestamp = Nanoseconds.now()
        stats.memory.timestamp = stats.cpu.timestamp
        return stats
    }

    // MARK: ImageService

    struct ImageService: Runtime_V1_ImageService.SimpleServiceProtocol {
        let fake: FakeRuntime

        func listImages(request: Runtime_V1_ListImagesRequest, context: ServerContext) async throws
            -> Runtime_V1_ListImagesResponse
        {
            var response = Runtime_V1_ListImagesResponse()
            response.images = fake.state.withLock { Array($0.images.values) }.sorted { $0.id < $1.id }
            return response
        }

        func imageStatus(request: Runtime_V1_ImageStatusRequest, context: ServerContext) async throws
            -> Runtime_V1_ImageStatusResponse
        {
            let name = request.image.image
            var response = Runtime_V1_ImageStatusResponse()
            if let image = fake.state.withLock({ $0.images[name] ?? $0.images.values.first { $0.id == name } }) {
                response.image = image
            }
            return response
        }

        func pullImage(request: Runtime_V1_PullImageRequest, context: ServerContext) async throws
            -> Runtime_V1_PullImageResponse
        {
            let name = request.image.image
            guard !name.isEmpty else { throw CRIError.invalid("image.image is required") }
            var image = Runtime_V1_Image()
            image.id = FakeRuntime.imageID(name)
            image.repoTags = [name]
            image.size = 1 << 20
            image.spec = request.image
            fake.state.withLock { $0.images[name] = image }
            var response = Runtime_V1_PullImageResponse()
            response.imageRef = image.id
            return response
        }

        func removeImage(request: Runtime_V1_RemoveImageRequest, context: ServerContext) async throws
            -> Runtime_V1_RemoveImageResponse
        {
            let name = request.image.image
            fake.state.withLock { state in
                state.images = state.images.filter { $0.key != name && $0.value.id != name }
            }
            return Runtime_V1_RemoveImageResponse()
        }

        func imageFsInfo(request: Runtime_V1_ImageFsInfoRequest, context: ServerContext) async throws
            -> Runtime_V1_ImageFsInfoResponse
        {
            var usage = Runtime_V1_FilesystemUsage()
            usage.timestamp = Nanoseconds.now()
            usage.fsID.mountpoint = "/hollow"
            usage.usedBytes.value = fake.state.withLock { $0.images.values.reduce(0) { $0 + $1.size } }
            var response = Runtime_V1_ImageFsInfoResponse()
            response.imageFilesystems = [usage]
            response.containerFilesystems = [usage]
            return response
        }

        func streamImages(
            request: Runtime_V1_StreamImagesRequest, response: RPCWriter<Runtime_V1_StreamImagesResponse>,
            context: ServerContext
        ) async throws { throw CRIError.unimplemented("StreamImages") }
    }
}

import BerthCRIProtocol
import BerthEngine
import BerthOS
import GRPCCore

/// The CRI's RuntimeService over a ``CRIRuntime``: each RPC validated, then run on a thread of its own
/// (the engine's calls block) and answered, errors as the status codes the kubelet expects.
public struct RuntimeServiceHandler: Runtime_V1_RuntimeService.SimpleServiceProtocol {
    let runtime: CRIRuntime

    public init(runtime: CRIRuntime) { self.runtime = runtime }

    /// Runs blocking `body` off the cooperative pool.
    private func blocking<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws(RPCError) -> T)
        async throws(RPCError) -> T
    {
        try await BlockingThread.run(name: name, body)
    }

    private static func require(_ value: String, _ field: String) throws(RPCError) {
        if value.isEmpty { throw CRIError.invalid("\(field) is required") }
    }

    // MARK: Runtime

    public func version(request: Runtime_V1_VersionRequest, context: ServerContext) async throws
        -> Runtime_V1_VersionResponse
    {
        var response = Runtime_V1_VersionResponse()
        response.version = "0.1.0"
        response.runtimeName = "berth"
        response.runtimeVersion = Engine.version
        response.runtimeApiVersion = "v1"
        return response
    }

    public func status(request: Runtime_V1_StatusRequest, context: ServerContext) async throws
        -> Runtime_V1_StatusResponse
    {
        let runtime = self.runtime
        return await BlockingThread.run(name: "cri-status") { () -> Runtime_V1_StatusResponse in
            runtime.status(verbose: request.verbose)
        }
    }

    public func updateRuntimeConfig(request: Runtime_V1_UpdateRuntimeConfigRequest, context: ServerContext)
        async throws -> Runtime_V1_UpdateRuntimeConfigResponse
    {
        let cidr = request.runtimeConfig.networkConfig.podCidr
        runtime.podCIDR.withLock { $0 = cidr }
        let runtime = self.runtime
        try await blocking("cri-podnet") { () throws(RPCError) in try runtime.ensurePodNetwork(podCIDR: cidr) }
        return Runtime_V1_UpdateRuntimeConfigResponse()
    }

    public func runtimeConfig(request: Runtime_V1_RuntimeConfigRequest, context: ServerContext) async throws
        -> Runtime_V1_RuntimeConfigResponse
    {
        var response = Runtime_V1_RuntimeConfigResponse()
        // The runtime writes cgroupfs paths under the parent the kubelet gives (no systemd slices).
        response.linux.cgroupDriver = .cgroupfs
        return response
    }

    // MARK: Sandboxes

    public func runPodSandbox(request: Runtime_V1_RunPodSandboxRequest, context: ServerContext) async throws
        -> Runtime_V1_RunPodSandboxResponse
    {
        let runtime = self.runtime
        let id = try await blocking("cri-runpod") { () throws(RPCError) in
            try runtime.runPodSandbox(request.config, handler: request.runtimeHandler)
        }
        var response = Runtime_V1_RunPodSandboxResponse()
        response.podSandboxID = id
        return response
    }

    public func stopPodSandbox(request: Runtime_V1_StopPodSandboxRequest, context: ServerContext) async throws
        -> Runtime_V1_StopPodSandboxResponse
    {
        try Self.require(request.podSandboxID, "pod_sandbox_id")
        let runtime = self.runtime
        try await blocking("cri-stoppod") { () throws(RPCError) in try runtime.stopPodSandbox(request.podSandboxID) }
        return Runtime_V1_StopPodSandboxResponse()
    }

    public func removePodSandbox(request: Runtime_V1_RemovePodSandboxRequest, context: ServerContext) async throws
        -> Runtime_V1_RemovePodSandboxResponse
    {
        try Self.require(request.podSandboxID, "pod_sandbox_id")
        let runtime = self.runtime
        try await blocking("cri-rmpod") { () throws(RPCError) in try runtime.removePodSandbox(request.podSandboxID) }
        return Runtime_V1_RemovePodSandboxResponse()
    }

    public func podSandboxStatus(request: Runtime_V1_PodSandboxStatusRequest, context: ServerContext) async throws
        -> Runtime_V1_PodSandboxStatusResponse
    {
        try Self.require(request.podSandboxID, "pod_sandbox_id")
        let entry = try runtime.findSandbox(request.podSandboxID)
        var response = Runtime_V1_PodSandboxStatusResponse()
        response.status = runtime.sandboxStatus(entry)
        response.timestamp = Nanoseconds.now()
        if request.verbose { response.info = runtime.sandboxInfo(entry) }
        return response
    }

    public func listPodSandbox(request: Runtime_V1_ListPodSandboxRequest, context: ServerContext) async throws
        -> Runtime_V1_ListPodSandboxResponse
    {
        var response = Runtime_V1_ListPodSandboxResponse()
        response.items = runtime.listSandboxes(request.hasFilter ? request.filter : nil)
        return response
    }

    // MARK: Containers

    public func createContainer(request: Runtime_V1_CreateContainerRequest, context: ServerContext) async throws
        -> Runtime_V1_CreateContainerResponse
    {
        try Self.require(request.podSandboxID, "pod_sandbox_id")
        let runtime = self.runtime
        let id = try await blocking("cri-create") { () throws(RPCError) in
            try runtime.createContainer(
                sandboxID: request.podSandboxID, config: request.config, sandboxConfig: request.sandboxConfig)
        }
        var response = Runtime_V1_CreateContainerResponse()
        response.containerID = id
        return response
    }

    public func startContainer(request: Runtime_V1_StartContainerRequest, context: ServerContext) async throws
        -> Runtime_V1_StartContainerResponse
    {
        try Self.require(request.containerID, "container_id")
        let runtime = self.runtime
        try await blocking("cri-start") { () throws(RPCError) in try runtime.startContainer(request.containerID) }
        return Runtime_V1_StartContainerResponse()
    }

    public func stopContainer(request: Runtime_V1_StopContainerRequest, context: ServerContext) async throws
        -> Runtime_V1_StopContainerResponse
    {
        try Self.require(request.containerID, "container_id")
        let runtime = self.runtime
        try await blocking("cri-stop") { () throws(RPCError) in
            try runtime.stopContainer(request.containerID, timeout: request.timeout)
        }
        return Runtime_V1_StopContainerResponse()
    }

    public func removeContainer(request: Runtime_V1_RemoveContainerRequest, context: ServerContext) async throws
        -> Runtime_V1_RemoveContainerResponse
    {
        try Self.require(request.containerID, "container_id")
        let runtime = self.runtime
        try await blocking("cri-rm") { () throws(RPCError) in try runtime.removeContainer(request.containerID) }
        return Runtime_V1_RemoveContainerResponse()
    }

    public func listContainers(request: Runtime_V1_ListContainersRequest, context: ServerContext) async throws
        -> Runtime_V1_ListContainersResponse
    {
        let runtime = self.runtime
        let filter = request.hasFilter ? request.filter : nil
        var response = Runtime_V1_ListContainersResponse()
        response.containers = await BlockingThread.run(name: "cri-ps") { () -> [Runtime_V1_Container] in
            runtime.listContainers(filter)
        }
        return response
    }

    public func containerStatus(request: Runtime_V1_ContainerStatusRequest, context: ServerContext) async throws
        -> Runtime_V1_ContainerStatusResponse
    {
        try Self.require(request.containerID, "container_id")
        let runtime = self.runtime
        return try await blocking("cri-inspect") { () throws(RPCError) in
            let (id, entry) = try runtime.criContainer(request.containerID)
            let record: ContainerRecord
            do throws(EngineError) { record = try runtime.engine.lookup(id) } catch {
                throw CRIError.from(error, "an error occurred when try to find container \"\(id)\"")
            }
            var response = Runtime_V1_ContainerStatusResponse()
            response.status = runtime.containerStatus(id, entry, record)
            if request.verbose {
                response.info = ["info": "{\"pid\":\(record.state.pid),\"sandboxID\":\"\(entry.sandboxID)\"}"]
            }
            return response
        }
    }

    public func updateContainerResources(
        request: Runtime_V1_UpdateContainerResourcesRequest, context: ServerContext
    ) async throws -> Runtime_V1_UpdateContainerResourcesResponse {
        try Self.require(request.containerID, "container_id")
        let runtime = self.runtime
        try await blocking("cri-update") { () throws(RPCError) in
            try runtime.updateContainerResources(request.containerID, request.linux)
        }
        return Runtime_V1_UpdateContainerResourcesResponse()
    }

    public func reopenContainerLog(request: Runtime_V1_ReopenContainerLogRequest, context: ServerContext)
        async throws -> Runtime_V1_ReopenContainerLogResponse
    {
        try Self.require(request.containerID, "container_id")
        let runtime = self.runtime
        try await blocking("cri-reopen") { () throws(RPCError) in try runtime.reopenContainerLog(request.containerID) }
        return Runtime_V1_ReopenContainerLogResponse()
    }

    public func execSync(request: Runtime_V1_ExecSyncRequest, context: ServerContext) async throws
        -> Runtime_V1_ExecSyncResponse
    {
        try Self.require(request.containerID, "container_id")
        guard !request.cmd.isEmpty else { throw CRIError.invalid("cmd is required") }
        let runtime = self.runtime
        return try await blocking("cri-execsync") { () throws(RPCError) in
            try runtime.execSync(request.containerID, command: request.cmd, timeout: request.timeout)
        }
    }

    // MARK: Streaming

    public func exec(request: Runtime_V1_ExecRequest, context: ServerContext) async throws -> Runtime_V1_ExecResponse {
        try Self.require(request.containerID, "container_id")
        guard !request.cmd.isEmpty else { throw CRIError.invalid("cmd is required") }
        try Self.validateStreams(stdin: request.stdin, stdout: request.stdout, stderr: request.stderr, tty: request.tty)
        try runtime.requireRunning(request.containerID)
        var response = Runtime_V1_ExecResponse()
        response.url = try runtime.streamingURL(.exec(request))
        return response
    }

    public func attach(request: Runtime_V1_AttachRequest, context: ServerContext) async throws
        -> Runtime_V1_AttachResponse
    {
        try Self.require(request.containerID, "container_id")
        try Self.validateStreams(stdin: request.stdin, stdout: request.stdout, stderr: request.stderr, tty: request.tty)
        try runtime.requireRunning(request.containerID)
        var response = Runtime_V1_AttachResponse()
        response.url = try runtime.streamingURL(.attach(request))
        return response
    }

    public func portForward(request: Runtime_V1_PortForwardRequest, context: ServerContext) async throws
        -> Runtime_V1_PortForwardResponse
    {
        try Self.require(request.podSandboxID, "pod_sandbox_id")
        guard let sandbox = runtime.sandboxes.find(request.podSandboxID) else {
            throw CRIError.notFound("failed to find sandbox \(request.podSandboxID): not found")
        }
        guard sandbox.record.state == .ready else {
            throw CRIError.failedPrecondition("sandbox \(sandbox.record.id) is not ready: cannot forward ports into it")
        }
        var resolved = request
        resolved.podSandboxID = sandbox.record.id
        var response = Runtime_V1_PortForwardResponse()
        response.url = try runtime.streamingURL(.portForward(resolved))
        return response
    }

    /// The kubelet streaming library's checks of an exec or attach request.
    private static func validateStreams(stdin: Bool, stdout: Bool, stderr: Bool, tty: Bool) throws(RPCError) {
        if !stdin && !stdout && !stderr { throw CRIError.invalid("one of stdin, stdout, or stderr must be set") }
        if tty && stderr { throw CRIError.invalid("tty and stderr cannot both be true") }
    }

    // MARK: Stats

    public func containerStats(request: Runtime_V1_ContainerStatsRequest, context: ServerContext) async throws
        -> Runtime_V1_ContainerStatsResponse
    {
        try Self.require(request.containerID, "container_id")
        let runtime = self.runtime
        var response = Runtime_V1_ContainerStatsResponse()
        response.stats = try await blocking("cri-stats") { () throws(RPCError) in
            try runtime.containerStats(request.containerID)
        }
        return response
    }

    public func listContainerStats(request: Runtime_V1_ListContainerStatsRequest, context: ServerContext)
        async throws -> Runtime_V1_ListContainerStatsResponse
    {
        let runtime = self.runtime
        var response = Runtime_V1_ListContainerStatsResponse()
        response.stats = try await blocking("cri-stats") { () throws(RPCError) in
            runtime.listContainerStats(request.filter)
        }
        return response
    }

    public func podSandboxStats(request: Runtime_V1_PodSandboxStatsRequest, context: ServerContext) async throws
        -> Runtime_V1_PodSandboxStatsResponse
    {
        try Self.require(request.podSandboxID, "pod_sandbox_id")
        let runtime = self.runtime
        var response = Runtime_V1_PodSandboxStatsResponse()
        response.stats = try await blocking("cri-stats") { () throws(RPCError) in
            try runtime.podSandboxStats(request.podSandboxID)
        }
        return response
    }

    public func listPodSandboxStats(request: Runtime_V1_ListPodSandboxStatsRequest, context: ServerContext)
        async throws -> Runtime_V1_ListPodSandboxStatsResponse
    {
        let runtime = self.runtime
        var response = Runtime_V1_ListPodSandboxStatsResponse()
        response.stats = try await blocking("cri-stats") { () throws(RPCError) in
            runtime.listPodSandboxStats(request.filter)
        }
        return response
    }

    // MARK: Not served yet

    public func getContainerEvents(
        request: Runtime_V1_GetEventsRequest, response: RPCWriter<Runtime_V1_ContainerEventResponse>,
        context: ServerContext
    ) async throws {
        try await runtime.streamContainerEvents(response)
    }

    // MARK: Newer than the kubelet 1.32 and containerd 1.6 (answered Unimplemented, as containerd 1.6 does)

    public func streamPodSandboxes(
        request: Runtime_V1_StreamPodSandboxesRequest, response: RPCWriter<Runtime_V1_StreamPodSandboxesResponse>,
        context: ServerContext
    ) async throws { throw CRIError.unimplemented("StreamPodSandboxes") }

    public func streamContainers(
        request: Runtime_V1_StreamContainersRequest, response: RPCWriter<Runtime_V1_StreamContainersResponse>,
        context: ServerContext
    ) async throws { throw CRIError.unimplemented("StreamContainers") }

    public func streamContainerStats(
        request: Runtime_V1_StreamContainerStatsRequest,
        response: RPCWriter<Runtime_V1_StreamContainerStatsResponse>, context: ServerContext
    ) async throws { throw CRIError.unimplemented("StreamContainerStats") }

    public func streamPodSandboxStats(
        request: Runtime_V1_StreamPodSandboxStatsRequest,
        response: RPCWriter<Runtime_V1_StreamPodSandboxStatsResponse>, context: ServerContext
    ) async throws { throw CRIError.unimplemented("StreamPodSandboxStats") }

    public func checkpointContainer(request: Runtime_V1_CheckpointContainerRequest, context: ServerContext)
        async throws -> Runtime_V1_CheckpointContainerResponse
    { throw CRIError.unimplemented("CheckpointContainer") }

    public func checkpointPod(request: Runtime_V1_CheckpointPodRequest, context: ServerContext) async throws
        -> Runtime_V1_CheckpointPodResponse
    { throw CRIError.unimplemented("CheckpointPod") }

    public func restorePod(request: Runtime_V1_RestorePodRequest, context: ServerContext) async throws
        -> Runtime_V1_RestorePodResponse
    { throw CRIError.unimplemented("RestorePod") }

    public func listMetricDescriptors(request: Runtime_V1_ListMetricDescriptorsRequest, context: ServerContext)
        async throws -> Runtime_V1_ListMetricDescriptorsResponse
    { throw CRIError.unimplemented("ListMetricDescriptors") }

    public func listPodSandboxMetrics(request: Runtime_V1_ListPodSandboxMetricsRequest, context: ServerContext)
        async throws -> Runtime_V1_ListPodSandboxMetricsResponse
    { throw CRIError.unimplemented("ListPodSandboxMetrics") }

    public func streamPodSandboxMetrics(
        request: Runtime_V1_StreamPodSandboxMetricsRequest,
        response: RPCWriter<Runtime_V1_StreamPodSandboxMetricsResponse>, context: ServerContext
    ) async throws { throw CRIError.unimplemented("StreamPodSandboxMetrics") }

    public func updatePodSandboxResources(
        request: Runtime_V1_UpdatePodSandboxResourcesRequest, context: ServerContext
    ) async throws -> Runtime_V1_UpdatePodSandboxResourcesResponse {
        throw CRIError.unimplemented("UpdatePodSandboxResources")
    }
}

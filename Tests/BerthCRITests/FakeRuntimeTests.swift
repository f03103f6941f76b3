import BerthCRI
import BerthCRIProtocol
import GRPCCore
import Testing

/// The fake runtime hollow nodes drive, through the same generated client the agent uses, in process
/// (no root, no socket): the kubelet's calls answered as a runtime would.
@Suite("fake CRI runtime")
struct FakeRuntimeTests {
    static func sandboxConfig(_ name: String, annotations: [String: String] = [:], hostNetwork: Bool = false)
        -> Runtime_V1_PodSandboxConfig
    {
        var config = Runtime_V1_PodSandboxConfig()
        config.metadata.name = name
        config.metadata.namespace = "default"
        config.metadata.uid = "uid-" + name
        config.labels = ["io.kubernetes.pod.name": name]
        config.annotations = annotations
        if hostNetwork { config.linux.securityContext.namespaceOptions.network = .node }
        return config
    }

    static func run(_ cri: CRIClient, _ config: Runtime_V1_PodSandboxConfig) async throws -> String {
        var request = Runtime_V1_RunPodSandboxRequest()
        request.config = config
        return try await cri.runtime.runPodSandbox(request).podSandboxID
    }

    static func address(_ cri: CRIClient, _ sandbox: String) async throws -> String {
        var request = Runtime_V1_PodSandboxStatusRequest()
        request.podSandboxID = sandbox
        return try await cri.runtime.podSandboxStatus(request).status.network.ip
    }

    static func container(_ cri: CRIClient, sandbox: String, name: String, image: String) async throws -> String {
        var request = Runtime_V1_CreateContainerRequest()
        request.podSandboxID = sandbox
        request.config.metadata.name = name
        request.config.image.image = image
        request.config.labels = ["io.kubernetes.container.name": name]
        return try await cri.runtime.createContainer(request).containerID
    }

    static func start(_ cri: CRIClient, _ id: String) async throws {
        var request = Runtime_V1_StartContainerRequest()
        request.containerID = id
        _ = try await cri.runtime.startContainer(request)
    }

    static func status(_ cri: CRIClient, _ id: String) async throws -> Runtime_V1_ContainerStatus {
        var request = Runtime_V1_ContainerStatusRequest()
        request.containerID = id
        return try await cri.runtime.containerStatus(request).status
    }

    @Test func sandboxesGetAddressesFromThePodCIDRAndGiveThemBack() async throws {
        let fake = FakeRuntime(podCIDR: "10.128.3.0/30")
        let cri = CRIClient(inProcess: fake.services)
        defer { Task { await cri.close() } }
        let version = try await cri.runtime.version(Runtime_V1_VersionRequest())
        #expect(version.runtimeName == "hollow")
        let first = try await Self.run(cri, Self.sandboxConfig("a"))
        #expect(try await Self.address(cri, first) == "10.128.3.2")
        // A /30 has one address for pods (.0 the network, .1 the bridge, .3 broadcast).
        await #expect(throws: RPCError.self) { _ = try await Self.run(cri, Self.sandboxConfig("b")) }
        // Host-network sandboxes take none.
        let host = try await Self.run(cri, Self.sandboxConfig("h", hostNetwork: true))
        #expect(try await Self.address(cri, host) == "")
        var stop = Runtime_V1_StopPodSandboxRequest()
        stop.podSandboxID = first
        _ = try await cri.runtime.stopPodSandbox(stop)
        let second = try await Self.run(cri, Self.sandboxConfig("b"))
        #expect(try await Self.address(cri, second) == "10.128.3.2")

        var ready = Runtime_V1_ListPodSandboxRequest()
        ready.filter.state.state = .sandboxReady
        #expect(Set(try await cri.runtime.listPodSandbox(ready).items.map(\.id)) == [host, second])
        var byLabel = Runtime_V1_ListPodSandboxRequest()
        byLabel.filter.labelSelector = ["io.kubernetes.pod.name": "a"]
        #expect(try await cri.runtime.listPodSandbox(byLabel).items.map(\.id) == [first])
        // An unknown sandbox is NotFound, as the kubelet expects.
        var missing = Runtime_V1_PodSandboxStatusRequest()
        missing.podSandboxID = "nope"
        await #expect { _ = try await cri.runtime.podSandboxStatus(missing) } throws: {
            ($0 as? RPCError)?.code == .notFound
        }
    }

    @Test func containersNeedTheirImageRunUntilStoppedOrExitAsAnnotated() async throws {
        let fake = FakeRuntime(podCIDR: "10.128.0.0/24")
        let cri = CRIClient(inProcess: fake.services)
        defer { Task { await cri.close() } }
        let sandbox = try await Self.run(
            cri, Self.sandboxConfig("p", annotations: [FakeRuntime.exitCodesAnnotation: "init=0, crash=2"]))
        await #expect { _ = try await Self.container(cri, sandbox: sandbox, name: "app", image: "img:1") } throws: {
            ($0 as? RPCError)?.code == .notFound
        }
        var image = Runtime_V1_ImageStatusRequest()
        image.image.image = "img:1"
        #expect(!(try await cri.images.imageStatus(image)).hasImage)
        var pull = Runtime_V1_PullImageRequest()
        pull.image.image = "img:1"
        let ref = try await cri.images.pullImage(pull).imageRef
        #expect(ref.hasPrefix("sha256:") && ref.count == 71)
        #expect(try await cri.images.imageStatus(image).image.id == ref)

        let app = try await Self.container(cri, sandbox: sandbox, name: "app", image: "img:1")
        let initContainer = try await Self.container(cri, sandbox: sandbox, name: "init", image: "img:1")
        let crash = try await Self.container(cri, sandbox: sandbox, name: "crash", image: "img:1")
        for id in [app, initContainer, crash] { try await Self.start(cri, id) }
        #expect(try await Self.status(cri, app).state == .containerRunning)
        let done = try await Self.status(cri, initContainer)
        #expect(done.state == .containerExited && done.exitCode == 0 && done.reason == "Completed")
        let crashed = try await Self.status(cri, crash)
        #expect(crashed.state == .containerExited && crashed.exitCode == 2 && crashed.reason == "Error")
        #expect(crashed.imageRef == ref)

        var exec = Runtime_V1_ExecSyncRequest()
        exec.containerID = app
        exec.cmd = ["true"]
        #expect(try await cri.runtime.execSync(exec).exitCode == 0)
        // A prefix of an ID finds the container, as crictl and runtimes accept.
        var stop = Runtime_V1_StopContainerRequest()
        stop.containerID = String(app.prefix(12))
        _ = try await cri.runtime.stopContainer(stop)
        let stopped = try await Self.status(cri, app)
        #expect(stopped.state == .containerExited && stopped.finishedAt >= stopped.startedAt)

        var running = Runtime_V1_ListContainersRequest()
        running.filter.state.state = .containerExited
        #expect(try await cri.runtime.listContainers(running).containers.count == 3)
        var remove = Runtime_V1_RemovePodSandboxRequest()
        remove.podSandboxID = sandbox
        _ = try await cri.runtime.removePodSandbox(remove)
        #expect(fake.counts.containers == 0 && fake.counts.sandboxes == 0)
    }
}

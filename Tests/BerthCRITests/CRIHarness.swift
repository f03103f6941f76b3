#if canImport(Glibc)
import Glibc
#endif
import BerthCRI
import BerthCRIProtocol
import BerthOS
// The suite helpers every file of this target uses (isRealRoot, builtExecutable, TestFailure).
@_exported import BerthTestSupport
import FoundationEssentials
import GRPCCore
import Testing

/// A private `berth engine` serving the CRI on a socket of its own, over its own data root and run
/// directory, with an image `test/cri:1` (this machine's busybox, every applet linked) imported; and a
/// CRI client connected to it, as the kubelet would be.
final class CRIBox: @unchecked Sendable {
    /// The box of the suite running (set by the `.criEngine` trait).
    @TaskLocal static var current: CRIBox?

    let base: String
    let root: String
    let run: String
    let socket: String
    let berth = builtExecutable("berth")
    let image = "test/cri:1"
    /// The cgroup parent the tests' pods use (removed at tear-down: nothing else makes it).
    let cgroupParent: String
    private(set) var daemon: pid_t = 0
    private(set) var client: CRIClient!

    init(_ name: String) throws {
        var template = Array("/tmp/berth-cri-\(name)-XXXXXX".utf8CString)
        base = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        root = base + "/root"
        run = base + "/run"
        socket = run + "/cri.sock"
        cgroupParent = "/berth-cri-test-" + String(base.suffix(6))
        try FileSystem.makeDirectories(root, mode: 0o700)
        try FileSystem.makeDirectories(run, mode: 0o700)
        try importImage()
        try startDaemon()
    }

    var environment: [String] {
        ["BERTH_RUN=\(run)", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    }

    private func importImage() throws {
        let tar = try busyboxLayer(
            in: base,
            files: [
                "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n",
                "/etc/group": "root:x:0:\napp:x:1000:\n", "/www/index.html": "hello from the pod\n",
            ])
        let imported = try ChildProcess.run(
            berth, arguments: [berth, "image", "import", "--root", root, tar, "--tag", image], environment: environment)
        guard imported.status.succeeded else { throw TestFailure("image import: \(imported.stderrText)") }
    }

    /// Starts `berth engine` and waits for its `ready cri` line; then connects the client.
    func startDaemon() throws {
        let output = try Pipe()
        let log = open(base + "/engine.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer { close(log) }
        daemon = try ChildProcess.spawn(
            berth,
            arguments: [
                berth, "engine", "--root", root, "-H", "unix://\(run)/docker.sock", "--cri-socket", socket,
            ],
            environment: environment, fileDescriptors: [1: output.writing.rawValue, 2: log])
        output.writing.close()
        try awaitOutput(output.reading, containing: "ready cri", seconds: 30, what: "berth engine") {
            (try? FileSystem.readString(base + "/engine.log")) ?? ""
        }
        client = try CRIClient(endpoint: "unix://" + socket)
    }

    /// Stops the daemon (SIGTERM, then waits): its containers keep running under their monitors.
    func stopDaemon() async {
        await client?.close()
        client = nil
        if daemon > 0 {
            kill(daemon, SIGTERM)
            _ = try? ChildProcess.wait(daemon)
            daemon = 0
        }
    }

    /// A sandbox config: unique metadata, logs under the box, the box's cgroup parent.
    func sandboxConfig(_ name: String, edit: (inout Runtime_V1_PodSandboxConfig) -> Void = { _ in })
        -> Runtime_V1_PodSandboxConfig
    {
        var config = Runtime_V1_PodSandboxConfig()
        config.metadata.name = name
        config.metadata.namespace = "default"
        config.metadata.uid = "uid-" + name
        config.hostname = name
        config.logDirectory = "\(base)/logs/\(name)"
        config.linux.cgroupParent = "\(cgroupParent)/\(name)"
        config.labels = ["app": name]
        edit(&config)
        return config
    }

    func containerConfig(
        _ name: String, _ command: [String], edit: (inout Runtime_V1_ContainerConfig) -> Void = { _ in }
    )
        -> Runtime_V1_ContainerConfig
    {
        var config = Runtime_V1_ContainerConfig()
        config.metadata.name = name
        config.image.image = image
        config.command = command
        config.logPath = "\(name)/0.log"
        config.labels = ["container": name]
        edit(&config)
        return config
    }

    func runSandbox(_ config: Runtime_V1_PodSandboxConfig) async throws -> String {
        var request = Runtime_V1_RunPodSandboxRequest()
        request.config = config
        return try await client.runtime.runPodSandbox(request).podSandboxID
    }

    /// Creates and starts a container in `sandbox`; returns its ID.
    func start(_ sandbox: String, _ sandboxConfig: Runtime_V1_PodSandboxConfig, _ config: Runtime_V1_ContainerConfig)
        async throws -> String
    {
        var create = Runtime_V1_CreateContainerRequest()
        create.podSandboxID = sandbox
        create.config = config
        create.sandboxConfig = sandboxConfig
        let id = try await client.runtime.createContainer(create).containerID
        var start = Runtime_V1_StartContainerRequest()
        start.containerID = id
        _ = try await client.runtime.startContainer(start)
        return id
    }

    func status(_ container: String) async throws -> Runtime_V1_ContainerStatus {
        var request = Runtime_V1_ContainerStatusRequest()
        request.containerID = container
        return try await client.runtime.containerStatus(request).status
    }

    func exec(_ container: String, _ command: [String], timeout: Int64 = 10) async throws -> Runtime_V1_ExecSyncResponse
    {
        var request = Runtime_V1_ExecSyncRequest()
        request.containerID = container
        request.cmd = command
        request.timeout = timeout
        return try await client.runtime.execSync(request)
    }

    /// Waits for a container to reach `state` (its exit has no event a client can await here but status).
    func waitFor(_ container: String, _ state: Runtime_V1_ContainerState, seconds: Double = 20) async throws
        -> Runtime_V1_ContainerStatus
    {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let current = try await status(container)
            if current.state == state || Date() > deadline { return current }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Removes every sandbox the daemon knows, stops it, then unmounts and deletes what is left.
    func tearDown() async {
        if let client {
            if let list = try? await client.runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()) {
                for sandbox in list.items {
                    var remove = Runtime_V1_RemovePodSandboxRequest()
                    remove.podSandboxID = sandbox.id
                    _ = try? await client.runtime.removePodSandbox(remove)
                }
            }
        }
        await stopDaemon()
        for pins in ["netns", "ipcns", "utsns", "pidns"] { umount2("\(run)/cri/\(pins)", Int32(MNT_DETACH)) }
        umount2(run + "/netns", Int32(MNT_DETACH))
        // The pods' cgroups: the runtime made the parents, nothing else removes them.
        for controller in (try? FileSystem.listDirectory("/sys/fs/cgroup")) ?? [] {
            let top = "/sys/fs/cgroup/\(controller)\(cgroupParent)"
            guard FileSystem.isDirectory(top) else { continue }
            _ = try? ChildProcess.run(
                "/usr/bin/find", arguments: ["find", top, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"],
                environment: [])
        }
        _ = try? ChildProcess.run("/bin/rm", arguments: ["rm", "-rf", base], environment: [])
    }
}

/// The status code of a CRI call that failed, nil when it succeeded.
func code<T>(_ body: () async throws -> T) async -> RPCError.Code? {
    do {
        _ = try await body()
        return nil
    } catch let error as RPCError {
        return error.code
    } catch {
        return .unknown
    }
}

/// A suite trait that makes one ``CRIBox`` before the suite's tests and tears it down after them all.
struct CRIEngineScope: SuiteTrait, TestScoping {
    let name: String
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard isRealRoot else { return try await function() }
        let box = try CRIBox(name)
        do {
            try await CRIBox.$current.withValue(box) { try await function() }
        } catch {
            await box.tearDown()
            throw error
        }
        await box.tearDown()
    }
}

extension Trait where Self == CRIEngineScope {
    static func criEngine(_ name: String) -> Self { CRIEngineScope(name: name) }
}

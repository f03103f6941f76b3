#if canImport(Glibc)
import Glibc
#endif
import BerthCRI
import BerthCRIProtocol
import BerthOS
import FoundationEssentials
import GRPCCore
import Testing

/// The CRI server driven by a CRI client as the kubelet drives containerd's: every RPC the kubelet
/// needs for a pod's life, proved by what the containers do, with real namespaces, cgroups and network.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .criEngine("server"))
struct CRIServerTests {
    /// One engine for the whole suite (an image import and a daemon start per test would be most of its
    /// time), made and removed around it by the `.criEngine` trait; each test names sandboxes of its own.
    var box: CRIBox { get throws { try #require(CRIBox.current) } }

    @Test func versionAndStatus() async throws {
        let box = try self.box
        let version = try await box.client.runtime.version(Runtime_V1_VersionRequest())
        #expect(version.runtimeName == "berth")
        #expect(version.runtimeApiVersion == "v1")
        let status = try await box.client.runtime.status(Runtime_V1_StatusRequest())
        let conditions = Dictionary(uniqueKeysWithValues: status.status.conditions.map { ($0.type, $0.status) })
        #expect(conditions["RuntimeReady"] == true)
        #expect(conditions["NetworkReady"] == true)
        let config = try await box.client.runtime.runtimeConfig(Runtime_V1_RuntimeConfigRequest())
        #expect(config.linux.cgroupDriver == .cgroupfs)
    }

    @Test func aPodSharesItsNamespacesAndFilesAndStopsAndGoes() async throws {
        let box = try self.box
        let config = box.sandboxConfig("shared") {
            $0.dnsConfig.servers = ["10.96.0.10"]
            $0.dnsConfig.searches = ["default.svc.cluster.local", "svc.cluster.local"]
            $0.dnsConfig.options = ["ndots:5"]
        }
        let sandbox = try await box.runSandbox(config)
        var statusRequest = Runtime_V1_PodSandboxStatusRequest()
        statusRequest.podSandboxID = sandbox
        let status = try await box.client.runtime.podSandboxStatus(statusRequest).status
        #expect(status.state == .sandboxReady)
        #expect(status.metadata.name == "shared")
        #expect(status.labels["app"] == "shared")
        #expect(!status.network.ip.isEmpty)
        // crictl's default: one PID namespace for the pod, its init our pause process.
        #expect(status.linux.namespaces.options.pid == .pod)

        let server = try await box.start(
            sandbox, config,
            box.containerConfig("web", ["sh", "-c", "echo shared > /dev/shm/mark; exec httpd -f -p 8080 -h /www"]))
        let client = try await box.start(sandbox, config, box.containerConfig("client", ["sleep", "1000"]))
        _ = try await box.waitFor(server, .containerRunning)
        // The same network (localhost reaches the other container), /dev/shm, hostname and processes.
        var fetched = ""
        for _ in 0..<100 {
            let result = try await box.exec(client, ["wget", "-qO-", "http://127.0.0.1:8080/index.html"])
            fetched = String(decoding: result.stdout, as: UTF8.self)
            if result.exitCode == 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(fetched == "hello from the pod\n")
        let shm = try await box.exec(client, ["cat", "/dev/shm/mark"])
        #expect(String(decoding: shm.stdout, as: UTF8.self) == "shared\n")
        let hostname = try await box.exec(client, ["hostname"])
        #expect(String(decoding: hostname.stdout, as: UTF8.self) == "shared\n")
        let ps = try await box.exec(client, ["ps", "-o", "pid,args"])
        let processes = String(decoding: ps.stdout, as: UTF8.self)
        #expect(processes.contains("httpd -f -p 8080"))
        #expect(processes.contains("1 berth-monitor --pod-pid-init"))
        let resolv = try await box.exec(client, ["cat", "/etc/resolv.conf"])
        #expect(
            String(decoding: resolv.stdout, as: UTF8.self)
                == "search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n")

        // Stop: containers killed, the sandbox not ready; remove: every trace gone.
        var stop = Runtime_V1_StopPodSandboxRequest()
        stop.podSandboxID = sandbox
        _ = try await box.client.runtime.stopPodSandbox(stop)
        #expect(try await box.status(server).state == .containerExited)
        #expect(try await box.client.runtime.podSandboxStatus(statusRequest).status.state == .sandboxNotready)
        var notReady = Runtime_V1_ListPodSandboxRequest()
        notReady.filter.state.state = .sandboxNotready
        #expect(try await box.client.runtime.listPodSandbox(notReady).items.map(\.id) == [sandbox])
        var remove = Runtime_V1_RemovePodSandboxRequest()
        remove.podSandboxID = sandbox
        _ = try await box.client.runtime.removePodSandbox(remove)
        _ = try await box.client.runtime.removePodSandbox(remove)  // idempotent
        #expect(await code { try await box.client.runtime.podSandboxStatus(statusRequest) } == .notFound)
        var byPod = Runtime_V1_ListContainersRequest()
        byPod.filter.podSandboxID = sandbox
        #expect(try await box.client.runtime.listContainers(byPod).containers.isEmpty)
        #expect(!FileSystem.exists("\(box.run)/cri/ipcns/\(sandbox)"))
        #expect(!FileSystem.exists("\(box.run)/cri/pidns/\(sandbox)"))
    }

    @Test func containersLogExitAndExecAsTheKubeletExpects() async throws {
        let box = try self.box
        let config = box.sandboxConfig("life") {
            $0.linux.securityContext.namespaceOptions.pid = .container
        }
        let sandbox = try await box.runSandbox(config)
        let done = try await box.start(
            sandbox, config, box.containerConfig("done", ["sh", "-c", "echo out; echo err >&2; printf partial"]))
        let failed = try await box.start(sandbox, config, box.containerConfig("failed", ["sh", "-c", "exit 3"]))
        let ended = try await box.waitFor(done, .containerExited)
        #expect(ended.exitCode == 0)
        #expect(ended.reason == "Completed")
        #expect(ended.finishedAt >= ended.startedAt && ended.startedAt > ended.createdAt)
        #expect(ended.logPath == "\(box.base)/logs/life/done/0.log")
        let failure = try await box.waitFor(failed, .containerExited)
        #expect(failure.exitCode == 3)
        #expect(failure.reason == "Error")
        // A start that fails ends the container as containerd does (exit 128, StartError, the runtime's
        // words), and a CRI container never starts twice: the kubelet makes a new attempt instead.
        var create = Runtime_V1_CreateContainerRequest()
        create.podSandboxID = sandbox
        create.config = box.containerConfig("unstartable", ["/no/such/binary"])
        create.sandboxConfig = config
        let unstartable = try await box.client.runtime.createContainer(create).containerID
        var start = Runtime_V1_StartContainerRequest()
        start.containerID = unstartable
        #expect(await code { _ = try await box.client.runtime.startContainer(start) } != nil)
        let never = try await box.status(unstartable)
        #expect(never.state == .containerExited)
        #expect(never.exitCode == 128)
        #expect(never.reason == "StartError")
        #expect(never.message.contains("/no/such/binary"), "\(never.message)")
        #expect(never.startedAt == 0 && never.finishedAt > 0)
        #expect(await code { _ = try await box.client.runtime.startContainer(start) } == .failedPrecondition)
        start.containerID = failed
        #expect(await code { _ = try await box.client.runtime.startContainer(start) } == .failedPrecondition)
        // The memory limit's OOM killer names the exit, as containerd's reason does.
        let hog = try await box.start(
            sandbox, config,
            box.containerConfig("hog", ["tail", "/dev/zero"]) { $0.linux.resources.memoryLimitInBytes = 16 << 20 })
        let oom = try await box.waitFor(hog, .containerExited)
        #expect(oom.exitCode == 137)
        #expect(oom.reason == "OOMKilled")
        // The CRI log format: timestamp, stream, F for a full line and P for a partial one.
        let log = try FileSystem.readString(ended.logPath).split(separator: "\n").map {
            $0.split(separator: " ", maxSplits: 1).last.map(String.init) ?? ""
        }
        #expect(Set(log) == ["stdout F out", "stderr F err", "stdout P partial"])

        // ExecSync: output, exit code, and a timeout that kills the process.
        let sleeper = try await box.start(sandbox, config, box.containerConfig("sleeper", ["sleep", "1000"]))
        let result = try await box.exec(sleeper, ["sh", "-c", "echo o; echo e >&2; exit 7"])
        #expect(String(decoding: result.stdout, as: UTF8.self) == "o\n")
        #expect(String(decoding: result.stderr, as: UTF8.self) == "e\n")
        #expect(result.exitCode == 7)
        let started = Date()
        #expect(await code { try await box.exec(sleeper, ["sleep", "30"], timeout: 1) } == .deadlineExceeded)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(await code { try await box.exec(sleeper, ["/no/such/binary"]) } == .unknown)

        // Stop: the stop signal, then SIGKILL after the timeout (sleep as PID 1 ignores SIGTERM).
        var stop = Runtime_V1_StopContainerRequest()
        stop.containerID = sleeper
        stop.timeout = 1
        _ = try await box.client.runtime.stopContainer(stop)
        let stopped = try await box.status(sleeper)
        #expect(stopped.state == .containerExited)
        #expect(stopped.exitCode == 137)
        _ = try await box.client.runtime.stopContainer(stop)  // idempotent

        var byState = Runtime_V1_ListContainersRequest()
        byState.filter.state.state = .containerExited
        byState.filter.podSandboxID = sandbox
        #expect(
            Set(try await box.client.runtime.listContainers(byState).containers.map(\.id)) == [
                done, failed, unstartable, hog, sleeper,
            ])
        var byLabel = Runtime_V1_ListContainersRequest()
        byLabel.filter.labelSelector = ["container": "failed"]
        #expect(try await box.client.runtime.listContainers(byLabel).containers.map(\.id) == [failed])

        var remove = Runtime_V1_RemoveContainerRequest()
        remove.containerID = done
        _ = try await box.client.runtime.removeContainer(remove)
        _ = try await box.client.runtime.removeContainer(remove)  // idempotent
        #expect(await code { try await box.status(done) } == .notFound)
    }

    @Test func badRequestsGetTheCRIsCodes() async throws {
        let box = try self.box
        var empty = Runtime_V1_RunPodSandboxRequest()
        empty.config.hostname = "x"
        #expect(await code { try await box.client.runtime.runPodSandbox(empty) } == .invalidArgument)
        #expect(await code { try await box.status("0123456789abcdef") } == .notFound)
        var stopUnknown = Runtime_V1_StopPodSandboxRequest()
        stopUnknown.podSandboxID = "nosuchsandbox"
        #expect(await code { try await box.client.runtime.stopPodSandbox(stopUnknown) } == .notFound)

        let config = box.sandboxConfig("errors") { $0.linux.securityContext.namespaceOptions.pid = .container }
        let sandbox = try await box.runSandbox(config)
        // The same metadata twice is refused: the kubelet relies on names being reserved.
        #expect(await code { try await box.runSandbox(config) } == .alreadyExists)
        let container = try await box.start(sandbox, config, box.containerConfig("one", ["sleep", "1000"]))
        #expect(!container.isEmpty)
        #expect(
            await code { try await box.start(sandbox, config, box.containerConfig("one", ["true"])) }
                == .alreadyExists)
        var missingImage = box.containerConfig("ghost", ["true"])
        missingImage.image.image = "no/such/image:1"
        #expect(await code { try await box.start(sandbox, config, missingImage) } == .notFound)
        var apparmor = box.containerConfig("confined", ["true"])
        apparmor.linux.securityContext.apparmor.profileType = .localhost
        apparmor.linux.securityContext.apparmor.localhostRef = "my-profile"
        #expect(await code { try await box.start(sandbox, config, apparmor) } == .invalidArgument)

        var stop = Runtime_V1_StopPodSandboxRequest()
        stop.podSandboxID = sandbox
        _ = try await box.client.runtime.stopPodSandbox(stop)
        #expect(
            await code { try await box.start(sandbox, config, box.containerConfig("late", ["true"])) }
                == .failedPrecondition)
    }

    @Test func securityAndResourcesReachTheContainer() async throws {
        let box = try self.box
        let config = box.sandboxConfig("secure") { $0.linux.securityContext.namespaceOptions.pid = .container }
        let sandbox = try await box.runSandbox(config)
        let container = try await box.start(
            sandbox, config,
            box.containerConfig("locked", ["sleep", "1000"]) {
                $0.linux.securityContext.runAsUser.value = 1000
                $0.linux.securityContext.runAsGroup.value = 1000
                $0.linux.securityContext.supplementalGroups = [3000]
                $0.linux.securityContext.readonlyRootfs = true
                $0.linux.securityContext.noNewPrivs = true
                $0.linux.securityContext.capabilities.dropCapabilities = ["ALL"]
                $0.linux.securityContext.seccomp.profileType = .runtimeDefault
                $0.linux.resources.memoryLimitInBytes = 64 << 20
                $0.linux.resources.cpuShares = 512
                var greeting = Runtime_V1_KeyValue()
                greeting.key = "GREETING"
                greeting.value = Data("hi".utf8)
                $0.envs = [greeting]
            })
        let id = try await box.exec(container, ["id"])
        #expect(String(decoding: id.stdout, as: UTF8.self) == "uid=1000(app) gid=1000(app) groups=1000(app),3000\n")
        let status = try await box.exec(
            container, ["grep", "-E", "^(NoNewPrivs|Seccomp|CapEff):", "/proc/self/status"])
        let lines = String(decoding: status.stdout, as: UTF8.self)
        #expect(lines.contains("NoNewPrivs:\t1"))
        #expect(lines.contains("Seccomp:\t2"))
        #expect(lines.contains("CapEff:\t0000000000000000"))
        #expect(try await box.exec(container, ["touch", "/file"]).exitCode != 0)
        let env = try await box.exec(container, ["sh", "-c", "echo $GREETING"])
        #expect(String(decoding: env.stdout, as: UTF8.self) == "hi\n")

        // The cgroup: under the pod's parent, with the limits asked for; then updated in place.
        let memory = "/sys/fs/cgroup/memory\(config.linux.cgroupParent)/\(container)/memory.limit_in_bytes"
        let v2 = "/sys/fs/cgroup\(config.linux.cgroupParent)/\(container)/memory.max"
        let limitFile = FileSystem.exists(memory) ? memory : v2
        #expect(try FileSystem.readString(limitFile) == "\(64 << 20)\n")
        var update = Runtime_V1_UpdateContainerResourcesRequest()
        update.containerID = container
        update.linux.memoryLimitInBytes = 96 << 20
        update.linux.cpuShares = 512
        _ = try await box.client.runtime.updateContainerResources(update)
        #expect(try FileSystem.readString(limitFile) == "\(96 << 20)\n")
        #expect(try await box.status(container).resources.linux.memoryLimitInBytes == 96 << 20)
    }

    @Test func theKubeletsLogRotationIsFollowed() async throws {
        let box = try self.box
        let config = box.sandboxConfig("rotate") { $0.linux.securityContext.namespaceOptions.pid = .container }
        let sandbox = try await box.runSandbox(config)
        let container = try await box.start(
            sandbox, config,
            box.containerConfig(
                "talker", ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done"]))
        let path = try await box.status(container).logPath
        let rotated = path + ".20261204-000000"
        #expect(rename(path, rotated) == 0)
        var reopen = Runtime_V1_ReopenContainerLogRequest()
        reopen.containerID = container
        _ = try await box.client.runtime.reopenContainerLog(reopen)
        var fresh = ""
        for _ in 0..<200 where !fresh.contains("stdout F line") {
            fresh = (try? FileSystem.readString(path)) ?? ""
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(fresh.contains("stdout F line"))
        #expect(try FileSystem.readString(rotated).contains("stdout F line 0"))
        // Not running: FailedPrecondition, as containerd answers.
        var stop = Runtime_V1_StopContainerRequest()
        stop.containerID = container
        _ = try await box.client.runtime.stopContainer(stop)
        #expect(await code { try await box.client.runtime.reopenContainerLog(reopen) } == .failedPrecondition)
    }

    @Test func hostNetworkPodsShareTheHostsNetworkAndName() async throws {
        let box = try self.box
        let config = box.sandboxConfig("hostnet") {
            $0.linux.securityContext.namespaceOptions.network = .node
            $0.linux.securityContext.namespaceOptions.pid = .container
        }
        let sandbox = try await box.runSandbox(config)
        let container = try await box.start(sandbox, config, box.containerConfig("c", ["sleep", "1000"]))
        let hostHostname = try FileSystem.readString("/proc/sys/kernel/hostname")
        let hostname = try await box.exec(container, ["hostname"])
        #expect(String(decoding: hostname.stdout, as: UTF8.self) == hostHostname)
        let links = try await box.exec(container, ["cat", "/proc/net/dev"])
        let hostLinks = try FileSystem.readString("/proc/net/dev")
        #expect(
            Set(
                String(decoding: links.stdout, as: UTF8.self).split(separator: "\n").compactMap {
                    $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces)
                })
                == Set(
                    hostLinks.split(separator: "\n").compactMap {
                        $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces)
                    }))
    }

    @Test func imagesAreListedByIDWithTheirNames() async throws {
        let box = try self.box
        let list = try await box.client.images.listImages(Runtime_V1_ListImagesRequest())
        let image = try #require(list.images.first { $0.repoTags.contains("docker.io/test/cri:1") })
        #expect(image.id.hasPrefix("sha256:"))
        #expect(image.size > 0)
        var status = Runtime_V1_ImageStatusRequest()
        status.image.image = image.id
        #expect(try await box.client.images.imageStatus(status).image.repoTags == ["docker.io/test/cri:1"])
        status.image.image = "no/such:image"
        // Absent: an empty answer, not an error (the kubelet pulls when it sees none).
        #expect(try await box.client.images.imageStatus(status).hasImage == false)
        let fs = try await box.client.images.imageFsInfo(Runtime_V1_ImageFsInfoRequest())
        #expect(fs.imageFilesystems.first?.usedBytes.value ?? 0 > 0)
        #expect(fs.imageFilesystems.first?.fsID.mountpoint == box.root + "/snapshots")
        var remove = Runtime_V1_RemoveImageRequest()
        remove.image.image = "no/such:image"
        _ = try await box.client.images.removeImage(remove)  // idempotent
    }

    @Test func theEngineRestartingKeepsPodsRunning() async throws {
        let box = try self.box
        let config = box.sandboxConfig("survivor") { $0.linux.securityContext.namespaceOptions.pid = .container }
        let sandbox = try await box.runSandbox(config)
        let container = try await box.start(sandbox, config, box.containerConfig("c", ["sleep", "1000"]))
        let before = try await box.status(container)
        await box.stopDaemon()
        try box.startDaemon()
        let after = try await box.status(container)
        #expect(after.state == .containerRunning)
        #expect(after.startedAt == before.startedAt)
        var request = Runtime_V1_PodSandboxStatusRequest()
        request.podSandboxID = sandbox
        #expect(try await box.client.runtime.podSandboxStatus(request).status.state == .sandboxReady)
        #expect(try await box.exec(container, ["true"]).exitCode == 0)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthEngine
import BerthOS
import FoundationEssentials
import GRPCCore

/// CreateContainer … RemoveContainer, ExecSync, UpdateContainerResources, ReopenContainerLog: the
/// engine's containers, each joined to its sandbox's namespaces and files and logging in the CRI
/// format where the kubelet reads.
extension CRIRuntime {
    func createContainer(
        sandboxID: String, config: Runtime_V1_ContainerConfig, sandboxConfig: Runtime_V1_PodSandboxConfig
    ) throws(RPCError) -> String {
        guard let sandbox = sandboxes.find(sandboxID) else {
            throw CRIError.notFound("failed to find sandbox \(sandboxID): not found")
        }
        guard sandbox.record.state == .ready else {
            throw CRIError.failedPrecondition(
                "sandbox \(sandbox.record.id) is not ready: cannot create containers in it")
        }
        let record = sandbox.record
        var configuration = try ContainerTranslation.configuration(
            config, sandbox: record, sandboxConfig: sandbox.config,
            runtime: record.runtimeHandler.isEmpty ? settings.defaultRuntime : record.runtimeHandler)
        var paths = record.namespacePaths
        var host = record.hostNamespaces
        paths["pid"] = nil
        host.removeAll { $0 == "pid" }
        let options = config.linux.securityContext.namespaceOptions
        switch options.pid {
        case .pod:
            guard let pin = record.namespacePaths["pid"] else {
                // The pod's PID namespace is the host's (hostPID) or each container's own.
                if record.hostNamespaces.contains("pid") { host.append("pid") }
                break
            }
            paths["pid"] = pin
        case .node: host.append("pid")
        case .target:
            let target: ContainerRecord
            do { target = try engine.lookup(options.targetID) } catch {
                throw CRIError.notFound("the target container \(options.targetID) of the PID namespace: not found")
            }
            guard target.state.running, target.state.pid > 0 else {
                throw CRIError.failedPrecondition("the target container \(options.targetID) is not running")
            }
            paths["pid"] = "/proc/\(target.state.pid)/ns/pid"
        case .container, .UNRECOGNIZED: break
        }
        var logPath = ""
        if !record.logDirectory.isEmpty && !config.logPath.isEmpty {
            logPath = record.logDirectory + "/" + config.logPath
            do { try FileSystem.makeDirectories(FileSystem.parent(of: logPath), mode: 0o755) } catch {
                throw CRIError.from(error, "creating the log directory of container \(config.metadata.name)")
            }
        } else {
            configuration.logDriver = "none"
        }
        configuration.pod = ContainerConfiguration.PodMembership(
            sandboxID: record.id, namespacePaths: paths, hostNamespaces: host, cgroupParent: record.cgroupParent,
            logPath: logPath, files: record.files, hostname: record.hostname)
        let metadata = sandbox.config.metadata
        let name =
            "k8s_\(config.metadata.name)_\(metadata.name)_\(metadata.namespace)_\(metadata.uid)_\(config.metadata.attempt)"
        let created: ContainerRecord
        do { created = try engine.create(configuration, name: name) } catch {
            if case .nameInUse(_, let holder) = error {
                throw RPCError(code: .alreadyExists, message: "the container name \(name) is reserved for \(holder)")
            }
            throw CRIError.from(error, "creating container \(config.metadata.name) in sandbox \(record.id)")
        }
        do { try containers.save(created.id, CRIContainerStore.Entry(sandboxID: record.id, config: config)) } catch {
            try? engine.remove(created.id, force: true)
            throw CRIError.from(error, "saving container \(created.id)")
        }
        return created.id
    }

    /// The CRI container `reference` names (an ID or a unique prefix of one).
    func criContainer(_ reference: String) throws(RPCError) -> (id: String, entry: CRIContainerStore.Entry) {
        guard let found = containers.find(reference) else {
            throw CRIError.notFound("an error occurred when try to find container \"\(reference)\": not found")
        }
        return found
    }

    /// Exec and attach need a running container (containerd: "container is in CONTAINER_EXITED state").
    func requireRunning(_ reference: String) throws(RPCError) {
        let (id, _) = try criContainer(reference)
        guard let record = try? engine.lookup(id), record.state.running else {
            throw CRIError.failedPrecondition("container \(id) is not running")
        }
    }

    func streamingURL(_ request: StreamingServer.StreamRequest) throws(RPCError) -> String {
        guard let url = streaming.url(for: request) else {
            throw RPCError(code: .unavailable, message: "the streaming server is not listening yet")
        }
        return url
    }

    func startContainer(_ reference: String) throws(RPCError) {
        let (id, entry) = try criContainer(reference)
        guard sandboxes.get(entry.sandboxID)?.record.state == .ready else {
            throw CRIError.failedPrecondition("sandbox \(entry.sandboxID) of container \(id) is not ready")
        }
        // A CRI container starts once (containerd: "container is in CONTAINER_EXITED state"); the
        // kubelet makes a new attempt rather than start an ended one again.
        if let record = try? engine.lookup(id), case let state = Self.state(record), state != .containerCreated {
            throw CRIError.failedPrecondition(
                "container \(id) is in \(state == .containerRunning ? "CONTAINER_RUNNING" : "CONTAINER_EXITED") state")
        }
        do { try engine.start(id) } catch { throw CRIError.from(error, "starting container \(id)") }
    }

    /// Stops with the container's stop signal, then SIGKILL after `timeout` seconds (0: at once).
    /// Idempotent for a container that already stopped.
    func stopContainer(_ reference: String, timeout: Int64) throws(RPCError) {
        let (id, _) = try criContainer(reference)
        do { try engine.stop(id, timeout: Int(max(0, timeout))) } catch {
            if case .noSuchContainer = error { return }
            throw CRIError.from(error, "stopping container \(id)")
        }
    }

    /// Removes the container, killing it first if it runs. Idempotent: an unknown ID is not an error.
    func removeContainer(_ reference: String) throws(RPCError) {
        guard let (id, _) = containers.find(reference) else { return }
        if let record = try? engine.lookup(id) { cpuReadings.forget(record.cgroupPath) }
        do { try engine.remove(id, force: true) } catch {
            if case .noSuchContainer = error {} else { throw CRIError.from(error, "removing container \(id)") }
        }
        containers.forget(id)
    }

    func execSync(_ reference: String, command: [String], timeout: Int64) throws(RPCError)
        -> Runtime_V1_ExecSyncResponse
    {
        let (id, _) = try criContainer(reference)
        let prepared: PreparedExec
        do { prepared = try engine.prepareExec(id, ExecRequest(command: command)) } catch {
            throw CRIError.from(error, "preparing exec in container \(id)")
        }
        defer { prepared.discard() }
        let output: ChildProcess.Output
        do {
            output = try ChildProcess.run(
                prepared.runtimePath, arguments: prepared.arguments, environment: ChildProcess.currentEnvironment,
                timeout: timeout > 0 ? Double(timeout) : nil,
                onTimeout: { _ in if let pid = prepared.pid { kill(pid, SIGKILL) } })
        } catch { throw CRIError.from(error, "running exec in container \(id)") }
        if output.timedOut {
            throw RPCError(
                code: .deadlineExceeded, message: "timeout \(timeout)s exceeded: command \(command) in container \(id)")
        }
        guard prepared.started else {
            let reason = output.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
            throw RPCError(code: .unknown, message: "failed to exec in container \(id): \(reason)")
        }
        var response = Runtime_V1_ExecSyncResponse()
        response.stdout = Data(output.stdout)
        response.stderr = Data(output.stderr)
        response.exitCode = output.status.code
        return response
    }

    func updateContainerResources(_ reference: String, _ linux: Runtime_V1_LinuxContainerResources) throws(RPCError) {
        let (id, entry) = try criContainer(reference)
        var update = entry.config
        update.linux.resources = linux
        guard let sandbox = sandboxes.get(entry.sandboxID) else {
            throw CRIError.notFound("sandbox \(entry.sandboxID) of container \(id): not found")
        }
        let translated = try ContainerTranslation.configuration(
            update, sandbox: sandbox.record, sandboxConfig: sandbox.config, runtime: nil)
        do { try engine.update(id, resources: translated.resources) } catch {
            throw CRIError.from(error, "updating the resources of container \(id)")
        }
        do { try containers.save(id, CRIContainerStore.Entry(sandboxID: entry.sandboxID, config: update)) } catch {
            throw CRIError.from(error, "saving container \(id)")
        }
    }

    func reopenContainerLog(_ reference: String) throws(RPCError) {
        let (id, _) = try criContainer(reference)
        do { try engine.reopenLog(id) } catch {
            if case .conflict = error { throw CRIError.failedPrecondition("container \(id) is not running") }
            throw CRIError.from(error, "reopening the log of container \(id)")
        }
    }
}

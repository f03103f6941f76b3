import BerthCRIProtocol
import BerthEngine
import BerthImage
import BerthJSON
import BerthOS
import FoundationEssentials
import GRPCCore

/// What PodSandboxStatus, ListPodSandbox, ContainerStatus and ListContainers answer, built from the
/// sandbox records, the kept configs and the engine's container records.
extension CRIRuntime {
    func sandboxStatus(_ entry: PodSandboxStore.Entry) -> Runtime_V1_PodSandboxStatus {
        let record = entry.record
        var status = Runtime_V1_PodSandboxStatus()
        status.id = record.id
        status.metadata = entry.config.metadata
        status.state = record.state == .ready ? .sandboxReady : .sandboxNotready
        status.createdAt = record.createdAt
        if let ip = record.ip {
            status.network.ip = ip
            status.network.additionalIps = record.additionalIPs.map { address in
                var podIP = Runtime_V1_PodIP()
                podIP.ip = address
                return podIP
            }
        }
        var options = Runtime_V1_NamespaceOption()
        options.network = record.hostNamespaces.contains("network") ? .node : .pod
        options.ipc = record.hostNamespaces.contains("ipc") ? .node : .pod
        options.pid =
            record.hostNamespaces.contains("pid") ? .node : (record.namespacePaths["pid"] != nil ? .pod : .container)
        status.linux.namespaces.options = options
        status.labels = entry.config.labels
        status.annotations = entry.config.annotations
        status.runtimeHandler = record.runtimeHandler
        return status
    }

    func findSandbox(_ reference: String) throws(RPCError) -> PodSandboxStore.Entry {
        guard let entry = sandboxes.find(reference) else {
            throw CRIError.notFound("an error occurred when try to find sandbox \(reference): not found")
        }
        return entry
    }

    /// The verbose `info` of a sandbox: its record as JSON under `info`, as containerd puts its own.
    func sandboxInfo(_ entry: PodSandboxStore.Entry) -> [String: String] {
        let json = (try? JSONTreeEncoder.encode(entry.record)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ["info": json]
    }

    func listSandboxes(_ filter: Runtime_V1_PodSandboxFilter?) -> [Runtime_V1_PodSandbox] {
        sandboxes.filter { entry in
            guard let filter else { return true }
            if !filter.id.isEmpty && !entry.record.id.hasPrefix(filter.id) { return false }
            if filter.hasState {
                let ready = entry.record.state == .ready
                if (filter.state.state == .sandboxReady) != ready { return false }
            }
            return filter.labelSelector.allSatisfy { entry.config.labels[$0.key] == $0.value }
        }.sorted { $0.record.createdAt < $1.record.createdAt }.map { entry in
            var sandbox = Runtime_V1_PodSandbox()
            sandbox.id = entry.record.id
            sandbox.metadata = entry.config.metadata
            sandbox.state = entry.record.state == .ready ? .sandboxReady : .sandboxNotready
            sandbox.createdAt = entry.record.createdAt
            sandbox.labels = entry.config.labels
            sandbox.annotations = entry.config.annotations
            sandbox.runtimeHandler = entry.record.runtimeHandler
            return sandbox
        }
    }

    /// The CRI state of an engine container.
    static func state(_ record: ContainerRecord) -> Runtime_V1_ContainerState {
        switch record.state.status {
        // A start that failed ends the container, as containerd marks it (exit 128, StartError): the
        // kubelet then restarts it by the pod's restartPolicy, with back-off, as any failed container.
        case .created where !record.state.error.isEmpty: return .containerExited
        case .created: return .containerCreated
        case .running, .paused, .restarting: return .containerRunning
        case .exited, .dead, .removing: return .containerExited
        }
    }

    func containerStatus(_ id: String, _ entry: CRIContainerStore.Entry, _ record: ContainerRecord)
        -> Runtime_V1_ContainerStatus
    {
        var status = Runtime_V1_ContainerStatus()
        status.id = id
        status.metadata = entry.config.metadata
        status.state = Self.state(record)
        status.createdAt = Nanoseconds.from(record.created)
        status.startedAt = Nanoseconds.from(record.state.startedAt)
        if status.state == .containerExited {
            status.finishedAt = Nanoseconds.from(record.state.finishedAt)
            status.exitCode = record.state.exitCode
            // containerd's order: an OOM kill names the exit whatever its code.
            if record.state.status == .created {
                // Never started: containerd's errorStartExitCode and errorStartReason, the runtime's words.
                // No time of its own: the engine keeps none for a start that failed (nor does docker).
                status.finishedAt = Nanoseconds.from(record.created)
                status.exitCode = 128
                status.reason = "StartError"
            } else {
                status.reason =
                    record.state.oomKilled == true ? "OOMKilled" : record.state.exitCode == 0 ? "Completed" : "Error"
            }
            status.message = record.state.error
        }
        let (imageName, imageRef) = imageNames(record)
        status.image.image = imageName
        status.image.annotations = entry.config.image.annotations
        status.image.userSpecifiedImage = entry.config.image.userSpecifiedImage
        status.imageRef = imageRef
        status.imageID = record.imageID
        status.labels = entry.config.labels
        status.annotations = entry.config.annotations
        status.mounts = entry.config.mounts
        if let sandbox = sandboxes.get(entry.sandboxID), !sandbox.record.logDirectory.isEmpty,
            !entry.config.logPath.isEmpty
        {
            status.logPath = sandbox.record.logDirectory + "/" + entry.config.logPath
        }
        status.resources.linux = entry.config.linux.resources
        return status
    }

    /// The image's first tag (else what the container was created from) and its repository digest
    /// (else its ID), as containerd reports them.
    /// `images`: the store's image records grouped by ID, when the caller has them (a list reads the
    /// store once for all its containers); else read now.
    func imageNames(_ record: ContainerRecord, images: [String: [ImageRecord]]? = nil) -> (image: String, ref: String) {
        let records =
            images?[record.imageID]
            ?? engine.images.store.images().filter { $0.config.digest.description == record.imageID }
        let view = CRIImage(id: record.imageID, records: records)
        return (view.repoTags.first ?? record.imageReference, view.repoDigests.first ?? record.imageID)
    }

    func listContainers(_ filter: Runtime_V1_ContainerFilter?) -> [Runtime_V1_Container] {
        var result: [(Int64, Runtime_V1_Container)] = []
        // The agent lists every second: the image records are read once per list (when a container
        // is listed), not per container.
        var images: [String: [ImageRecord]]?
        for (id, entry) in containers.all {
            if let filter {
                if !filter.id.isEmpty && !id.hasPrefix(filter.id) { continue }
                if !filter.podSandboxID.isEmpty && !entry.sandboxID.hasPrefix(filter.podSandboxID) { continue }
                if !filter.labelSelector.allSatisfy({ entry.config.labels[$0.key] == $0.value }) { continue }
            }
            guard let record = try? engine.lookup(id) else { continue }
            let state = Self.state(record)
            if let filter, filter.hasState, filter.state.state != state { continue }
            var container = Runtime_V1_Container()
            container.id = id
            container.podSandboxID = entry.sandboxID
            container.metadata = entry.config.metadata
            if images == nil {
                images = Dictionary(grouping: engine.images.store.images(), by: { $0.config.digest.description })
            }
            let (imageName, imageRef) = imageNames(record, images: images)
            container.image.image = imageName
            container.image.userSpecifiedImage = entry.config.image.userSpecifiedImage
            container.imageRef = imageRef
            container.imageID = record.imageID
            container.state = state
            container.createdAt = Nanoseconds.from(record.created)
            container.labels = entry.config.labels
            container.annotations = entry.config.annotations
            result.append((container.createdAt, container))
        }
        return result.sorted { $0.0 < $1.0 }.map(\.1)
    }
}

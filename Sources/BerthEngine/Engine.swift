#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthImage
import BerthOCI
import BerthOS
import CBerthShim
import FoundationEssentials

/// The container engine: containers from images, each run by an OCI runtime's command line under its
/// own monitor. One `Engine` value per process (the CLI or a daemon); processes share the on-disk state
/// under the engine lock, so there is never more than one writer of a record (podman's model).
///
/// Every operation reads the record, and what the monitor left (exit file, liveness), afresh: a
/// container that exited while no engine ran is learned about on the next look.
public final class Engine: Sendable {
    /// Berth's release, as the Docker API's version and the CRI's runtime version report it.
    public static let version = "0.1.0"
    public let layout: EngineLayout
    public let images: ImageService
    /// `berth-monitor`.
    let monitorPath: String
    /// What the monitor execs when the container exits, the container's ID appended
    /// (`berth container cleanup --root R ID`); empty for none (a daemon that cleans up itself).
    let exitCommand: [String]
    let defaultRuntime: String
    let networking: ContainerNetworking
    /// The monitor executable (also the init of CRI pods' shared PID namespaces).
    public var monitorExecutable: String { monitorPath }
    /// The configuration file's settings (defaults for runtime, logging, registries, networks).
    public let configuration: EngineConfiguration

    public init(
        images: ImageService, run: String = EngineLayout.defaultRun, monitorPath: String? = nil,
        exitCommand: [String], configuration: EngineConfiguration = EngineConfiguration()
    ) throws(EngineError) {
        self.images = images
        self.layout = EngineLayout(root: images.store.root, run: run)
        guard
            let monitor = monitorPath ?? OCIRuntime.besideExecutable("berth-monitor")
                ?? ChildProcess.lookup("berth-monitor")
        else {
            throw .other("berth-monitor not found beside this executable or in PATH")
        }
        self.monitorPath = monitor
        self.exitCommand = exitCommand
        self.defaultRuntime = configuration.defaultRuntime ?? "berth"
        self.configuration = configuration
        self.networking = ContainerNetworking(layout: layout, configuration: configuration)
        do {
            try FileSystem.makeDirectories(layout.containers, mode: 0o700)
            try FileSystem.makeDirectories(layout.run + "/m", mode: 0o700)
        } catch { throw .system(error, context: "preparing \(layout.run)") }
        recoverAfterBoot()
    }

    // MARK: Finding containers

    /// Every container record, newest first.
    public func list() -> [ContainerRecord] {
        let ids = (try? FileSystem.listSubdirectories(layout.containers)) ?? []
        return ids.compactMap { id in RecordFile.read(ContainerRecord.self, layout.record(id)).map(observed) }
            .sorted { $0.created > $1.created }
    }

    /// Finds a container by full ID, name, or unique ID prefix (docker's order).
    public func lookup(_ reference: String) throws(EngineError) -> ContainerRecord {
        let wanted = reference.hasPrefix("/") ? String(reference.dropFirst()) : reference
        guard !wanted.isEmpty else { throw .noSuchContainer(reference) }
        if !wanted.contains("/"), let record = RecordFile.read(ContainerRecord.self, layout.record(wanted)) {
            return observed(record)
        }
        if let id = names.holder(of: wanted), let record = RecordFile.read(ContainerRecord.self, layout.record(id)) {
            return observed(record)
        }
        let all = list()
        if let byName = all.first(where: { $0.name == wanted }) { return byName }
        let matches = all.filter { $0.id.hasPrefix(wanted.lowercased()) }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 { throw .ambiguousPrefix(wanted) }
        throw .noSuchContainer(reference)
    }

    /// The full ID `reference` names. A full ID with a record is taken as it is (the CRI and the monitor
    /// always pass one): resolving it through ``lookup(_:)`` decoded the record only for the caller to
    /// read it again under the container's lock. Lookup's order is kept: an ID before a name.
    func containerID(_ reference: String) throws(EngineError) -> String {
        if reference.utf8.count == 64,
            reference.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
            access(layout.record(reference), F_OK) == 0
        {
            return reference
        }
        return try lookup(reference).id
    }

    /// The record as it is now: a running container whose monitor has written its exit shows as exited
    /// (the monitor's exit command records it properly moments later, or the next writer does).
    func observed(_ record: ContainerRecord) -> ContainerRecord {
        var r = record
        guard r.state.status == .running || r.state.status == .paused else { return r }
        r.state.health =
            RecordFile.read(ContainerRecord.Health.self, HealthSettings.statusFile(layout, r.id)) ?? r.state.health
        if let exit = RecordFile.read(ExitRecord.self, layout.exitFile(r.id)), exit.pid == r.state.pid {
            r.state.status = .exited
            r.state.exitCode = exit.exitCode
            r.state.oomKilled = exit.oomKilled
            r.state.finishedAt = exit.finishedAt
            r.state.pid = 0
        } else if !ProcessStat.isAlive(pid: r.state.monitorPid, startTime: r.state.monitorStartTime) {
            // No monitor and no exit file: it was killed, or the machine rebooted.
            let runtimeSays = (try? OCIRuntime(name: r.runtime, layout: layout, named: self.configuration.runtimes))?
                .status(r.id)
            if runtimeSays == "running" || runtimeSays == "paused" {
                r.state.error = "the container's monitor is gone: its output is no longer collected"
            } else {
                r.state.status = .exited
                r.state.exitCode = 255
                r.state.error = "the container's monitor is gone and so is the container"
                r.state.pid = 0
            }
        }
        return r
    }

    // MARK: Create

    /// Creates a container from an image already in the store: its rootfs snapshot and its record.
    /// Nothing runs until ``start(_:attach:)``.
    public func create(_ configuration: ContainerConfiguration, name requested: String? = nil) throws(EngineError)
        -> ContainerRecord
    {
        if let name = requested { try ContainerNames.validate(name) }
        guard let image = images.store.lookup(configuration.image) else { throw .noSuchImage(configuration.image) }
        let imageConfig: ImageConfig
        do {
            imageConfig = try JSONTreeDecoder.decode(
                ImageConfig.self, from: try images.store.readBlob(image.config.digest))
        } catch { throw .other("reading the configuration of image \(image.name): \(error)") }
        if configuration.autoRemove && configuration.restartPolicy.name != "no" {
            throw .invalidArgument(
                what: "options", reason: "conflicting options: cannot specify both --restart and --rm")
        }
        let runtime = try OCIRuntime(
            name: configuration.runtime ?? defaultRuntime, layout: layout, named: self.configuration.runtimes)
        let process = try SpecBuilder.command(configuration, image: imageConfig.config)
        let id = ContainerNames.randomID()
        return try locked { () throws(EngineError) in
            try names.ensureBuilt { list() }
            let name = requested ?? ContainerNames.generate(avoiding: names.names())
            try names.claim(name, for: id)
            let rootfs: String
            do throws(ImageError) { rootfs = try images.prepareRootfs(image: image.name, containerID: id) } catch {
                names.release(name, of: id)
                throw .image(error)
            }
            var configuration = configuration
            var record = ContainerRecord(
                id: id, name: name, created: Timestamp.now(), imageReference: configuration.image,
                imageName: image.name, imageID: image.config.digest.description,
                configuration: configuration, runtime: runtime.name, path: process.first ?? "",
                args: Array(process.dropFirst()), hostname: configuration.hostname ?? String(id.prefix(12)))
            record.imageConfig = imageConfig.config
            do throws(EngineError) {
                try prepareVolumes(
                    &configuration, imageVolumes: Array(imageConfig.config?.Volumes?.keys ?? [:].keys), rootfs: rootfs)
                record.configuration = configuration
                try save(record)
            } catch {
                _ = try? images.removeRootfs(containerID: id)
                names.release(name, of: id)
                throw error
            }
            events.container("create", record)
            return record
        }
    }

    // MARK: Start

    /// Starts a created or exited container. With `attach`, returns a connection to its monitor made
    /// before the program runs, so that not a byte of its output is missed (docker run's attach).
    @discardableResult
    public func start(_ reference: String, attach: Bool = false) throws(EngineError) -> FileDescriptor? {
        try locked(container: reference) { id throws(EngineError) in
            try startLocked(id, attach: attach, resetRestarts: true)
        }
    }

    func startLocked(_ id: String, attach: Bool, resetRestarts: Bool) throws(EngineError) -> FileDescriptor? {
        var record = try lookup(id)
        switch record.state.status {
        case .running, .paused: return nil
        case .removing: throw .conflict("container \(record.shortID) is marked for removal and cannot be started")
        case .dead: throw .conflict("container \(record.shortID) is dead: remove it")
        case .created, .exited, .restarting: break
        }
        if resetRestarts { record.restartCount = 0 }
        let runtime = try OCIRuntime(name: record.runtime, layout: layout, named: self.configuration.runtimes)
        // Whatever a previous run left with the runtime (a container never started has nothing there).
        if !record.state.startedAt.isEmpty || !record.state.error.isEmpty { releaseRuntime(record, runtime) }
        unlink(layout.exitFile(record.id))
        let bundle = layout.container(record.id)
        var attachments: [ContainerRecord.NetworkAttachment] = []
        // Once the monitor says `started`, the runtime runs the container; before, a failed launch
        // leaves nothing with the runtime (the monitor deletes what it made before it reports).
        var started = false
        do throws(EngineError) {
            // Not mounted after a reboot (the upper directory, what the container wrote, is kept).
            do throws(ImageError) { try images.mountRootfs(containerID: record.id) } catch { throw .image(error) }
            let network = try networking.setUp(&record)
            attachments = record.networks
            let resolver = EmbeddedDNS.applies(to: record, namespacePath: network.namespacePath, layout: layout)
            let hostResolvConf = resolver ? EmbeddedDNS.hostResolvConf() : nil
            let pod = record.configuration.pod
            // A pod member mounts its sandbox's files; any other container gets files of its own.
            var managed = pod?.files ?? [:]
            if pod == nil {
                managed = try ManagedFiles.write(
                    record, attachments: attachments, directory: bundle, hostNetwork: network.sharesHost,
                    hostGateway: network.hostGateway, embeddedResolver: hostResolvConf)
            }
            let inputs = SpecInputs(
                configuration: record.configuration, image: record.imageConfig, containerID: record.id,
                rootfs: bundle + "/rootfs", hostname: record.hostname, managedFiles: managed,
                networkNamespacePath: network.namespacePath, sharesHostNetwork: network.sharesHost,
                volumeSources: volumeSources(record.configuration),
                cgroupsPath: record.cgroupPath,
                initPath: record.configuration.initProcess ? try Engine.initBinary() : nil)
            var spec = try SpecBuilder.build(inputs)
            spec.root = Spec.Root(path: "rootfs", readonly: record.configuration.readonlyRootfs)
            try RecordFile.write(spec, bundle + "/config.json", durable: false)
            let logOptions = try LogOptions(record.configuration)
            let health = try HealthSettings.monitorArguments(record, spec: spec, layout: layout)
            var dns: [String] = []
            if let hostResolvConf, let namespace = network.namespacePath {
                dns = EmbeddedDNS.monitorArguments(
                    record, namespacePath: namespace, layout: layout, hostResolvConf: hostResolvConf)
                // The resolver reads the asker's networks from this record: saved with them before the
                // program runs, so that its first lookup (`nc server 80` as the command) is answered.
                try save(record)
            }
            // Taken before the program can run: a program that exits at once must not look as if it
            // ended before it started (its finishedAt is the monitor's, stamped at its exit).
            let startedAt = Timestamp.now()
            let launch = try MonitorLaunch.start(
                .init(
                    monitorPath: monitorPath, runtime: runtime, id: record.id, bundle: bundle,
                    stateDirectory: layout.monitorState(record.id), exitFile: layout.exitFile(record.id),
                    logDriver: logOptions.driver, logPath: pod?.logPath ?? layout.logFile(record.id),
                    logMaximumSize: logOptions.maximumSize,
                    logMaximumFiles: logOptions.maximumFiles, terminal: record.configuration.tty,
                    openStdin: record.configuration.openStdin,
                    exitCommand: exitCommand.isEmpty ? [] : exitCommand + [record.id],
                    health: health, dns: dns), attach: attach)
            let pid = try launch.awaitStarted()
            started = true
            let connection = launch.connection
            record.state.status = .running
            record.state.pid = pid
            record.state.monitorPid = launch.pid
            record.state.monitorStartTime = launch.startTime
            record.state.startedAt = startedAt
            record.state.finishedAt = ""
            record.state.exitCode = 0
            record.state.oomKilled = nil
            record.state.error = ""
            record.state.stoppedByUser = false
            record.state.health = nil
            try save(record)
            networkEvents("connect", record, record.networks)
            volumeMountEvents(record)
            events.container("start", record)
            return connection
        } catch {
            // Nothing half-made: the runtime's container, the network, the record says why.
            if started { runtime.forceDelete(record.id) }
            networking.tearDown(&record)
            record.state.status = record.state.startedAt.isEmpty ? .created : .exited
            record.state.error = "\(error)"
            if case .cannotStart(let code, _) = error {
                record.state.exitCode = code
            } else {
                record.state.exitCode = 128
            }
            try? save(record)
            throw error
        }
    }

    // MARK: Stop, kill, wait

    /// Sends the stop signal, waits up to `timeout` seconds (the container's, else 10), then SIGKILL.
    public func stop(_ reference: String, timeout: Int? = nil, signal name: String? = nil) throws(EngineError) {
        let record = try markStopped(reference)
        guard record.state.running else { return }
        let runtime = try OCIRuntime(name: record.runtime, layout: layout, named: self.configuration.runtimes)
        let signal: Int32
        if let name {
            signal = try RunOptionParser.parseSignal(name)
        } else {
            signal = try EngineSignals.stopSignal(record)
        }
        try? runtime.kill(record.id, signal: signal)
        events.container("kill", record, ["signal": String(signal)])
        if record.state.status == .paused { _ = try? runtime.run(["resume", record.id]) }
        let seconds = timeout ?? record.configuration.stopTimeout ?? 10
        if !waitForMonitor(record, timeout: seconds < 0 ? nil : Double(seconds)) {
            try? runtime.kill(record.id, signal: SIGKILL, all: true)
            events.container("kill", record, ["signal": String(SIGKILL)])
            _ = waitForMonitor(record, timeout: 30)
        }
        events.container("stop", record)
    }

    /// Sends `signal` to the container's init (docker kill). SIGKILL marks it stopped by the user.
    public func kill(_ reference: String, signal: Int32 = SIGKILL) throws(EngineError) {
        let current = try lookup(reference)
        guard current.state.running else {
            throw .conflict("Cannot kill container: \(reference): Container \(current.id) is not running")
        }
        let record = signal == SIGKILL || signal == SIGTERM ? try markStopped(reference) : current
        try OCIRuntime(name: record.runtime, layout: layout, named: self.configuration.runtimes).kill(
            record.id, signal: signal)
        events.container("kill", record, ["signal": String(signal)])
    }

    /// Waits until the container is not running and returns its exit status (docker wait): from the
    /// monitor's exit file as soon as it is written, so a `--rm` container removed meanwhile still has
    /// one (``awaitExit(of:cancel:)``).
    public func wait(_ reference: String) throws(EngineError) -> Int32 {
        let record = try lookup(reference)
        guard record.state.running else { return record.state.exitCode }
        if case .exited(let code) = awaitExit(of: record) { return code }
        return try lookup(record.id).state.exitCode
    }

    private func markStopped(_ reference: String) throws(EngineError) -> ContainerRecord {
        try locked(container: reference) { id throws(EngineError) in
            var record = try lookup(id)
            if record.state.running {
                record.state.stoppedByUser = true
                // A restart waiting out its back-off is cancelled: the exit stands.
                if record.state.status == .restarting { record.state.status = .exited }
                try save(record)
            }
            return record
        }
    }

    /// Waits for the container's monitor to end (it ends after the exit is recorded). True if it did.
    func waitForMonitor(_ record: ContainerRecord, timeout: Double?) -> Bool {
        let pid = record.state.monitorPid
        guard ProcessStat.isAlive(pid: pid, startTime: record.state.monitorStartTime) else { return true }
        let fd = berth_pidfd_open(pid, 0)
        guard fd >= 0 else { return !ProcessStat.isAlive(pid: pid, startTime: record.state.monitorStartTime) }
        defer { close(fd) }
        // The pid could have been reused between the check and pidfd_open: check again through the fd.
        guard ProcessStat.isAlive(pid: pid, startTime: record.state.monitorStartTime) else { return true }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = timeout.map { Timestamp.monotonic() + $0 }
        while true {
            let remaining = deadline.map { max(0, $0 - Timestamp.monotonic()) }
            let result = poll(&entry, 1, remaining.map { Int32($0 * 1000) } ?? -1)
            if result > 0 { return true }
            if result == 0 { return false }
            if errno != EINTR { return false }
        }
    }

    // MARK: Pause, rename

    public func pause(_ reference: String) throws(EngineError) {
        try locked(container: reference) { id throws(EngineError) in
            var record = try lookup(id)
            guard record.state.status == .running else { throw .conflict("Container \(record.id) is not running") }
            try OCIRuntime(name: record.runtime, layout: layout, named: self.configuration.runtimes).run([
                "pause", record.id,
            ])
            record.state.status = .paused
            try save(record)
            events.container("pause", record)
        }
    }

    public func unpause(_ reference: String) throws(EngineError) {
        try locked(container: reference) { id throws(EngineError) in
            var record = try lookup(id)
            guard record.state.status == .paused else { throw .conflict("Container \(record.id) is not paused") }
            try OCIRuntime(name: record.runtime, layout: layout, named: self.configuration.runtimes).run([
                "resume", record.id,
            ])
            record.state.status = .running
            try save(record)
            events.container("unpause", record)
        }
    }

    public func rename(_ reference: String, to newName: String) throws(EngineError) {
        try ContainerNames.validate(newName)
        // Names are the one thing containers share: the engine lock against creates and other renames.
        try locked { () throws(EngineError) in
            try names.ensureBuilt { list() }
            try locked(container: reference) { id throws(EngineError) in
                var record = try lookup(id)
                try names.claim(newName, for: record.id)
                let oldName = record.name
                record.name = newName
                do throws(EngineError) { try save(record) } catch {
                    names.release(newName, of: record.id)
                    throw error
                }
                if oldName != newName { names.release(oldName, of: record.id) }
                events.container("rename", record, ["oldName": "/" + oldName])
            }
        }
    }

    // MARK: Exit and cleanup

    /// Records an exit the monitor reported: releases the runtime's container and the network, then
    /// applies --rm or the restart policy. Run by the monitor's exit command, and by anyone who finds an
    /// exit not yet recorded. Safe to run twice.
    public func cleanup(_ id: String) throws(EngineError) {
        let decision: ExitDecision = try locked(container: id) { id throws(EngineError) in
            var record = try lookup(id)
            guard let exit = RecordFile.read(ExitRecord.self, layout.exitFile(record.id)) else { return .nothing }
            guard var stored = RecordFile.read(ContainerRecord.self, layout.record(record.id)),
                stored.state.running, stored.state.pid == exit.pid
            else { return .nothing }
            stored.state.status = .exited
            stored.state.exitCode = exit.exitCode
            stored.state.oomKilled = exit.oomKilled
            stored.state.finishedAt = exit.finishedAt
            stored.state.pid = 0
            stored.state.health =
                RecordFile.read(ContainerRecord.Health.self, HealthSettings.statusFile(layout, stored.id))
                ?? stored.state.health
            record = stored
            if let runtime = try? OCIRuntime(name: record.runtime, layout: layout, named: self.configuration.runtimes),
                RuntimeRelease.needed(exit, stateDirectory: layout.monitorState(record.id))
            {
                runtime.forceDelete(record.id)
            }
            networkEvents("disconnect", record, record.networks)
            networking.tearDown(&record)
            let decision = RestartPolicyDecision.decide(record)
            if case .restart = decision {
                record.state.status = .restarting
                record.restartCount += 1
            }
            try save(record)
            events.container("die", record, ["exitCode": String(exit.exitCode)])
            return decision
        }
        switch decision {
        case .nothing, .stay:
            return
        case .remove:
            try remove(id, force: false, volumes: true)
        case .restart(let delay):
            if delay > 0 { Timestamp.sleep(seconds: delay) }
            try locked(container: id) { id throws(EngineError) in
                // The user may have stopped or removed it meanwhile.
                guard let record = RecordFile.read(ContainerRecord.self, layout.record(id)),
                    record.state.status == .restarting,
                    !record.state.stoppedByUser
                else { return }
                _ = try startLocked(id, attach: false, resetRestarts: false)
            }
        }
    }

    // MARK: Remove

    /// Removes a container: refuses a running one unless `force` (then SIGKILL first), as docker rm.
    public func remove(_ reference: String, force: Bool, volumes: Bool = false) throws(EngineError) {
        var record = try lookup(reference)
        if record.state.running {
            guard force else {
                throw .conflict(
                    "cannot remove container \"/\(record.name)\": container is \(record.state.status.rawValue): stop the container before removing or force remove"
                )
            }
            _ = try markStopped(record.id)
            let runtime = try OCIRuntime(name: record.runtime, layout: layout, named: self.configuration.runtimes)
            if record.state.status == .paused { _ = try? runtime.run(["resume", record.id]) }
            try? runtime.kill(record.id, signal: SIGKILL, all: true)
            events.container("kill", record, ["signal": String(SIGKILL)])
            _ = waitForMonitor(record, timeout: 30)
        }
        try locked(container: record.id) { _ throws(EngineError) in
            guard var current = RecordFile.read(ContainerRecord.self, layout.record(record.id)) else { return }
            // The runtime forgot it already if the exit was recorded (cleanup deletes it) or it never started.
            let runtimeMayKnowIt = current.state.running || !current.state.error.isEmpty
            current.state.status = .removing
            // Not synced: lost to a crash, the container is still there as it was (as dockerd keeps
            // its removal-in-progress mark in memory only), and removing it again finishes the job.
            try? save(current, durable: false)
            if runtimeMayKnowIt,
                let runtime = try? OCIRuntime(name: current.runtime, layout: layout, named: self.configuration.runtimes)
            {
                releaseRuntime(current, runtime)
            }
            networkEvents("disconnect", current, current.networks)
            networking.tearDown(&current)
            do throws(ImageError) { try images.removeRootfs(containerID: current.id) } catch { throw .image(error) }
            try? FileSystem.removeTree(layout.monitorState(current.id))
            record = current
            if volumes || current.configuration.autoRemove { removeAnonymousVolumes(of: current) }
            events.container("destroy", current)
        }
        // The name is free once the record is gone; under the engine lock, as a create may be claiming it.
        try? locked { () throws(EngineError) in names.release(record.name, of: record.id) }
    }

    // MARK: Records

    /// The static init `--init` mounts as /sbin/docker-init: docker's own (tini), as Debian ships it.
    static func initBinary() throws(EngineError) -> String {
        for candidate in [
            "/usr/libexec/berth/berth-init", "/usr/libexec/docker/docker-init", "/usr/bin/docker-init",
            "/usr/bin/tini-static",
        ]
        where FileSystem.exists(candidate) {
            return (try? FileSystem.realPath(candidate)) ?? candidate
        }
        throw .invalidArgument(
            what: "--init", reason: "no init binary found (install Debian's tini: /usr/bin/tini-static)")
    }

    public var events: EventLog { EventLog(layout: layout) }
    var names: ContainerNameIndex { ContainerNameIndex(layout: layout) }

    /// `durable`: fsync'd before it replaces the old record (every state a restart must find; a
    /// record whose loss only leaves the state before it can skip that).
    func save(_ record: ContainerRecord, durable: Bool = true) throws(EngineError) {
        try RecordFile.write(record, layout.record(record.id), durable: durable)
    }

    /// The engine lock: for what changes the set of containers' names (create, rename) and the networks.
    func locked<T>(_ body: () throws(EngineError) -> T) throws(EngineError) -> T {
        do {
            return try withEngineLock(layout) { try body() }
        } catch let error as EngineError {
            throw error
        } catch {
            throw .other("\(error)")
        }
    }

    /// One container's lock, for whatever writes its record (start, stop, exit, remove, update, …):
    /// containers start and stop side by side, where one engine-wide lock held each start — a
    /// runtime's create and start, tens of milliseconds — in turn (pods arriving at 50 a second queued
    /// behind it). `body` gets the container's full ID, resolved from `reference` before locking.
    func locked<T>(container reference: String, _ body: (String) throws(EngineError) -> T) throws(EngineError) -> T {
        let id = try containerID(reference)
        do {
            return try withContainerLock(layout, id) { try body(id) }
        } catch let error as EngineError {
            throw error
        } catch {
            throw .other("\(error)")
        }
    }
}

/// What happens after an exit.
enum ExitDecision {
    case nothing
    case stay
    case remove
    /// After this many seconds.
    case restart(Double)
}

/// Docker's restart policies and back-off: 100 ms doubling per restart up to a minute, and back to
/// 100 ms when the container had run for 10 seconds.
enum RestartPolicyDecision {
    static func decide(_ record: ContainerRecord) -> ExitDecision {
        let configuration = record.configuration
        let policy = configuration.restartPolicy
        let restart: Bool
        switch policy.name {
        case "always": restart = !record.state.stoppedByUser
        case "unless-stopped": restart = !record.state.stoppedByUser
        case "on-failure":
            restart =
                !record.state.stoppedByUser && record.state.exitCode != 0
                && (policy.maximumRetryCount == 0 || record.restartCount < policy.maximumRetryCount)
        default: restart = false
        }
        if restart {
            let ranFor = Timestamp.seconds(between: record.state.startedAt, and: record.state.finishedAt) ?? 0
            let count = ranFor >= 10 ? 0 : min(record.restartCount, 10)
            return .restart(min(60, 0.1 * pow2(count)))
        }
        return configuration.autoRemove ? .remove : .stay
    }

    static func pow2(_ n: Int) -> Double { Double(1 << n) }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// The parent side of `create` and `run`: validates the bundle, prepares cgroups and namespaces,
/// spawns the init, runs the runtime-namespace hooks, and records the container.
///
/// Every resource it makes is undone if a later step fails, so a failed create leaves no state
/// directory, cgroup, mount or process behind.
struct Creator {
    let store: StateStore
    let options: CreateOptions
    let mode: InitRequest.Mode

    /// A container whose init is waiting to be started.
    struct Launched {
        var record: ContainerRecord
        /// The parent's end of the init socket (run mode sends the start byte on it).
        var socket: FileDescriptor
    }

    func launch() throws(RuntimeError) -> Launched {
        let bundle = try RuntimeError.wrap("bundle \(options.bundle)") { () throws(SystemCallError) in
            try FileSystem.realPath(options.bundle)
        }
        try StateStore.validate(id: options.id)
        let spec = try SpecLoader.load(bundle: bundle)
        let validator = SpecValidator(spec: spec, bundle: bundle)
        try validator.validate()
        guard let process = spec.process else {
            throw .invalidConfig(field: "process", reason: "required to create a container")
        }
        if process.terminal == true && options.consoleSocket == nil {
            throw .invalidConfig(field: "process.terminal", reason: "a terminal needs --console-socket")
        }
        if !spec.ociVersion.hasPrefix("1.") {
            throw .invalidConfig(field: "ociVersion", reason: "unsupported version \"\(spec.ociVersion)\" (need 1.x)")
        }

        try store.reserve(options.id)
        var cleanup = Cleanup(store: store, id: options.id)
        do {
            let launched = try launch(spec: spec, process: process, bundle: bundle, rootfs: validator.rootfsPath, cleanup: &cleanup)
            cleanup.disarm()
            return launched
        } catch {
            cleanup.run()
            throw error
        }
    }

    private func launch(spec: Spec, process: Spec.Process, bundle: String, rootfs: String,
                        cleanup: inout Cleanup) throws(RuntimeError) -> Launched {
        let namespaces = NamespacePlan(spec.linux?.namespaces ?? [])
        if !namespaces.creates(.mount) && !namespaces.joins(.mount) {
            throw .invalidConfig(field: "linux.namespaces", reason: "a mount namespace is required")
        }

        // On cgroup v2 the init is cloned straight into its cgroup, made beforehand. On v1 the init is cloned
        // first and starts building its rootfs while the runtime makes its cgroups and moves it there — a
        // write to cgroup.procs that waits out an RCU grace period (up to 20 ms here) holding cgroup_mutex,
        // so it runs on a helper thread after the directories exist, overlapping the rest. The init waits
        // only where it must (InitProcess.CgroupGate): for the directories before it bind-mounts them, for
        // the move before a cgroup namespace, hooks or its program.
        let cgroups = try Cgroups.manager(cgroupsPath: spec.linux?.cgroupsPath, containerID: options.id)
        let clonedIntoCgroup = cgroups.attachesAtClone
        if clonedIntoCgroup {
            try cgroups.create()
            cleanup.cgroups = cgroups
            try apply(cgroups, spec: spec)
        }

        var inherited: [FileDescriptor] = []
        var fifoFd: Int32?
        if mode == .create {
            let fifo = store.fifoPath(options.id)
            _ = try RuntimeError.wrap("creating exec fifo") { () throws(SystemCallError) in
                try sys("mkfifo", fifo) { mkfifo(fifo, 0o622) }
            }
            let fd = try RuntimeError.wrap("opening exec fifo") { () throws(SystemCallError) in
                try FileDescriptor.open(fifo, BERTH_O_PATH)
            }
            inherited.append(fd)
            fifoFd = fd.rawValue
        }
        var consoleFd: Int32?
        if process.terminal == true, let path = options.consoleSocket {
            let fd = try ConsoleSocket.connect(path)
            inherited.append(fd)
            consoleFd = fd.rawValue
        }

        var spawner = Spawner()
        // A time namespace with offsets is prepared by the parent (TimeNamespace); a cgroup namespace is
        // made by the init once it sits in its cgroups, so the namespace is rooted there.
        for kind in namespaces.create where kind != .cgroup && (kind != .time || spec.linux?.timeOffsets == nil) {
            spawner.cloneFlags |= kind.cloneFlag
        }
        for (kind, path) in namespaces.join {
            let fd = try RuntimeError.wrap("opening namespace \(path)") { () throws(SystemCallError) in
                try FileDescriptor.open(path, O_RDONLY)
            }
            if kind == .pid {
                // Only children enter a pid namespace: the runtime joins it so the init is born inside.
                _ = try RuntimeError.wrap("joining pid namespace \(path)") { () throws(SystemCallError) in
                    try sys("setns", path) { berth_setns(fd.rawValue, BERTH_CLONE_NEWPID) }
                }
            } else {
                spawner.joins.append((kind, fd))
            }
        }
        if namespaces.creates(.time), let offsets = spec.linux?.timeOffsets {
            try TimeNamespace.prepare(offsets)
        }
        if clonedIntoCgroup { spawner.cgroupFd = try cgroups.directoryForClone() }

        let socket = try RuntimeError.wrap("creating init socket") { () throws(SystemCallError) in try SocketPair() }
        inherited.append(socket.second)
        for fd in inherited {
            try RuntimeError.wrap("passing descriptors to init") { () throws(SystemCallError) in try fd.setCloseOnExec(false) }
        }
        spawner.environment = ["_BERTH_INIT_FD=\(socket.second.rawValue)"]

        let child = try spawner.spawn()
        cleanup.pid = child.pid
        if namespaces.creates(.user) { try UserNamespace.writeMappings(pid: child.pid, linux: spec.linux) }
        try child.release()
        for fd in inherited { fd.close() }

        let created = Timestamp.now()
        var request = InitRequest(
            mode: mode, containerID: options.id, bundle: bundle, rootfs: rootfs, spec: spec, process: process,
            noPivot: options.noPivot, noNewKeyring: options.noNewKeyring, preserveFds: options.preserveFds,
            consoleFd: consoleFd, fifoFd: fifoFd, createdAt: created)
        request.cgroupDirectories = cgroups.directories
        try Frames.send(request, on: socket.first)
        /// A byte for the init's CgroupGate. An init that failed meanwhile has gone: its report is the error.
        func tellInit() throws(RuntimeError) {
            do throws(RuntimeError) {
                try Frames.sendByte(on: socket.first)
            } catch {
                if let message = try? Frames.receive(InitMessage.self, on: socket.first), message.kind == .failed {
                    throw .other(message.detail ?? "container init failed")
                }
                throw error
            }
        }
        var firstMove: PendingWrite?
        if !clonedIntoCgroup {
            try cgroups.create()
            cleanup.cgroups = cgroups
            try tellInit()   // the directories exist
            firstMove = try cgroups.beginAdd(pid: child.pid)
            try apply(cgroups, spec: spec)
        } else {
            try tellInit()
        }
        // The record is encoded now, while the init works (and a cgroup move may be waiting).
        guard let stat = ProcessStat.read(pid: child.pid) else { throw .other("container init exited during setup") }
        let record = ContainerRecord(id: options.id, bundle: bundle, rootfs: rootfs, pid: child.pid,
                                     pidStartTime: stat.startTime, created: created, owner: "",
                                     cgroup: cgroups.state, config: spec)
        let recordBytes = try StateStore.encode(record)
        if !clonedIntoCgroup {
            try RuntimeError.wrap("cgroup: adding process \(child.pid)") { () throws(SystemCallError) in try firstMove?.wait() }
            try cgroups.add(pid: child.pid)
        }
        try tellInit()   // the init sits in its cgroups

        let state = OCIState(ociVersion: spec.ociVersion, id: options.id, status: .creating, pid: child.pid,
                             bundle: bundle, annotations: spec.annotations)
        waiting: while true {
            guard let message = try Frames.receive(InitMessage.self, on: socket.first) else {
                throw .other("container init exited during setup")
            }
            switch message.kind {
            case .runtimeHooks:
                try Hooks.run(.prestart, spec: spec, state: state)
                try Hooks.run(.createRuntime, spec: spec, state: state)
                try Frames.sendByte(on: socket.first)
            case .created:
                break waiting
            case .failed:
                throw .other(message.detail ?? "container init failed")
            }
        }

        try store.save(record, encoded: recordBytes)
        if let pidFile = options.pidFile {
            try RuntimeError.wrap("writing pid file \(pidFile)") { () throws(SystemCallError) in
                try FileSystem.writeAtomically(pidFile, Array("\(child.pid)".utf8))
            }
        }
        return Launched(record: record, socket: socket.first)
    }
}

extension Creator {
    /// Applies `linux.resources` with the devices config.json names.
    func apply(_ cgroups: any CgroupManager, spec: Spec) throws(RuntimeError) {
        var resources = spec.linux?.resources ?? Spec.Resources()
        resources.devices = Cgroups.deviceRules(spec.linux?.resources?.devices, devices: spec.linux?.devices)
        try cgroups.apply(resources)
    }
}

/// Undoes a half-made container: kills its init, removes its cgroup and its state directory.
struct Cleanup {
    let store: StateStore
    let id: String
    var pid: Int32?
    var cgroups: (any CgroupManager)?
    private var armed = true

    init(store: StateStore, id: String) {
        self.store = store
        self.id = id
    }

    mutating func disarm() { armed = false }

    func run() {
        guard armed else { return }
        if let pid {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        if let cgroups { try? cgroups.destroy() }
        try? store.remove(id)
    }
}

/// uid_map and gid_map of a new user namespace, written by the parent while the child waits.
enum UserNamespace {
    static func writeMappings(pid: Int32, linux: Spec.Linux?) throws(RuntimeError) {
        func lines(_ mappings: [Spec.IDMapping]?) -> String {
            (mappings ?? []).map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
        }
        try RuntimeError.wrap("writing uid_map") { () throws(SystemCallError) in
            try FileSystem.writeFile("/proc/\(pid)/uid_map", lines(linux?.uidMappings))
        }
        try RuntimeError.wrap("writing gid_map") { () throws(SystemCallError) in
            try FileSystem.writeFile("/proc/\(pid)/gid_map", lines(linux?.gidMappings))
        }
    }
}

/// Offsets of a new time namespace can only be set before any process lives in it: the runtime
/// unshares it for its children, writes the offsets, and the init is then cloned into it.
enum TimeNamespace {
    static func prepare(_ offsets: [String: Spec.TimeOffset]) throws(RuntimeError) {
        _ = try RuntimeError.wrap("creating time namespace") { () throws(SystemCallError) in
            try sys("unshare(CLONE_NEWTIME)") { berth_unshare(BERTH_CLONE_NEWTIME) }
        }
        var text = ""
        for clock in offsets.keys.sorted() {
            let offset = offsets[clock]!
            text += "\(clock) \(offset.secs ?? 0) \(offset.nanosecs ?? 0)\n"
        }
        try RuntimeError.wrap("writing timens_offsets") { () throws(SystemCallError) in
            try FileSystem.writeFile("/proc/self/timens_offsets", text)
        }
    }
}

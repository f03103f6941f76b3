#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
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
        // Only what the clone needs is decoded before it; the whole spec is decoded and validated after,
        // by this process and by the init at the same time. A spec found invalid then stops the init
        // before it has acted on it, and the cleanup leaves nothing behind.
        let config = try SpecLoader.read(bundle: bundle)
        let tree = try SpecLoader.parse(config)
        let essentials = try SpecLoader.essentials(tree)
        if essentials.terminal && options.consoleSocket == nil {
            throw .invalidConfig(field: "process.terminal", reason: "a terminal needs --console-socket")
        }
        if let version = essentials.ociVersion, !version.hasPrefix("1.") {
            throw .invalidConfig(field: "ociVersion", reason: "unsupported version \"\(version)\" (need 1.x)")
        }

        try store.reserve(options.id)
        var cleanup = Cleanup(store: store, id: options.id)
        do {
            let launched = try launch(
                config: config, tree: tree, essentials: essentials, bundle: bundle, cleanup: &cleanup)
            cleanup.disarm()
            return launched
        } catch {
            cleanup.run()
            throw error
        }
    }

    /// The whole spec, checked (a container needs a process); the rootfs path.
    func decodeAndValidate(_ tree: JSON, bundle: String) throws(RuntimeError) -> (Spec, String) {
        let spec = try SpecLoader.decode(tree)
        let validator = SpecValidator(spec: spec, bundle: bundle)
        try validator.validate()
        guard spec.process != nil else {
            throw .invalidConfig(field: "process", reason: "required to create a container")
        }
        return (spec, validator.rootfsPath)
    }

    private func launch(
        config: [UInt8], tree: JSON, essentials: LaunchEssentials, bundle: String,
        cleanup: inout Cleanup
    ) throws(RuntimeError) -> Launched {
        let namespaces = NamespacePlan(essentials.namespaces)
        // Without a mount namespace of its own the container lives in the runtime's (HostMountNamespace).
        var hostMounts: HostMountNamespace?
        if namespaces.usesRuntimeMountNamespace {
            hostMounts = try HostMountNamespace(rootfs: SpecValidator.rootfsPath(essentials.rootPath, bundle: bundle))
            cleanup.hostMounts = hostMounts
        }

        // On cgroup v2 the init is cloned straight into its cgroup, made beforehand. On v1 the init is cloned
        // first and starts building its rootfs while the runtime makes its cgroups and moves it there — a
        // write to cgroup.procs that waits out an RCU grace period (up to 20 ms here) holding cgroup_mutex,
        // so it runs on a helper thread after the directories exist, overlapping the rest. Resources are
        // applied after the clone either way. The init waits only where it must (InitProcess.CgroupGate):
        // for the directories before it bind-mounts them, for the move and the resources before a cgroup
        // namespace, hooks or its program.
        // Reading the cgroup layout (mountinfo) waits until after the clone unless /sys/fs/cgroup is a
        // cgroup2 mount, where the init is cloned into its cgroup and the layout is needed first.
        var layout: (any CgroupManager)?
        var cloneInto: (any CgroupManager)?
        // On v1, when the init can move itself (root, its own or the runtime's mount namespace, no user
        // namespace), it does (InitProcess.CgroupGate): its thread writing 0 to `tasks` takes no global
        // lock, where a move by pid waits out an RCU grace period (~7 ms here, and runc pays it too). A
        // hybrid host's cgroup2 directory is then made first and the init cloned into it.
        var unifiedForClone: FileDescriptor?
        let initMovesItself: Bool
        if (try? FileSystemMagic.of(path: "/sys/fs/cgroup")) == FileSystemMagic.cgroup2 {
            initMovesItself = false
            let manager = try Cgroups.manager(cgroupsPath: essentials.cgroupsPath, containerID: options.id)
            layout = manager
            if manager.attachesAtClone {
                try manager.create()
                cleanup.cgroups = manager
                cloneInto = manager
            }
        } else if geteuid() == 0, !namespaces.creates(.user), !namespaces.joins(.user), !namespaces.joins(.mount) {
            let manager = try Cgroups.manager(cgroupsPath: essentials.cgroupsPath, containerID: options.id)
            if let v1 = manager as? CgroupV1Manager {
                layout = manager
                initMovesItself = true
                cleanup.cgroups = manager
                unifiedForClone = try v1.prepareUnifiedForClone()
            } else {
                initMovesItself = false
            }
        } else {
            initMovesItself = false
        }

        var inherited: [FileDescriptor] = []
        var fifoFd: Int32?
        if mode == .create {
            let fifo = store.fifoPath(options.id)
            _ = try RuntimeError.wrap("creating exec fifo") { () throws(SystemCallError) in
                try sys("mkfifo", fifo) { mkfifo(fifo, 0o622) }
            }
            if namespaces.creates(.user) || namespaces.joins(.user) {
                try UserNamespace.admitToFifo(fifo, uid: essentials.uidMappings, gid: essentials.gidMappings)
            }
            let fd = try RuntimeError.wrap("opening exec fifo") { () throws(SystemCallError) in
                try FileDescriptor.open(fifo, BERTH_O_PATH)
            }
            inherited.append(fd)
            fifoFd = fd.rawValue
        }
        // The compiled-seccomp cache, for the init to use after pivot_root (nil if it cannot be made).
        var seccompCacheFd: Int32?
        let seccompCache = store.seccompCacheDirectory
        if mkdir(seccompCache, 0o700) == 0 || errno == EEXIST,
            let fd = try? FileDescriptor.open(seccompCache, BERTH_O_PATH | O_DIRECTORY)
        {
            inherited.append(fd)
            seccompCacheFd = fd.rawValue
        }
        var consoleFd: Int32?
        if essentials.terminal, let path = options.consoleSocket {
            let fd = try ConsoleSocket.connect(path)
            inherited.append(fd)
            consoleFd = fd.rawValue
        }

        var spawner = Spawner()
        // A time namespace with offsets is prepared by the parent (TimeNamespace); a cgroup namespace is
        // made by the init once it sits in its cgroups, so the namespace is rooted there.
        for kind in namespaces.create where kind != .cgroup && (kind != .time || essentials.timeOffsets == nil) {
            spawner.cloneFlags |= kind.cloneFlag
        }
        var pidNamespace: FileDescriptor?
        for (kind, path) in namespaces.join {
            let fd = try RuntimeError.wrap("opening namespace \(path)") { () throws(SystemCallError) in
                try FileDescriptor.open(path, O_RDONLY)
            }
            if kind == .pid {
                pidNamespace = fd
            } else {
                spawner.joins.append((kind, fd))
            }
        }
        if let hostMounts { spawner.joins.append((.mount, hostMounts.namespace)) }
        if namespaces.creates(.time), let offsets = essentials.timeOffsets {
            try TimeNamespace.prepare(offsets)
        }
        spawner.cgroupFd = try cloneInto?.directoryForClone() ?? unifiedForClone

        let socket = try RuntimeError.wrap("creating init socket") { () throws(SystemCallError) in try SocketPair() }
        inherited.append(socket.second)
        for fd in inherited {
            try RuntimeError.wrap("passing descriptors to init") { () throws(SystemCallError) in
                try fd.setCloseOnExec(false)
            }
        }
        spawner.environment = ["_BERTH_INIT_FD=\(socket.second.rawValue)"]

        var child = try PidNamespaceJoin.spawning(into: pidNamespace) { () throws(RuntimeError) in try spawner.spawn() }
        cleanup.pid = child.pid
        if namespaces.creates(.user) {
            try UserNamespace.writeMappings(pid: child.pid, uid: essentials.uidMappings, gid: essentials.gidMappings)
        }
        // The request and config.json's bytes are queued on the socket while the child execs the init.
        try child.proceed()
        let created = Timestamp.now(fixedNanoseconds: true)
        var request = InitRequest(
            mode: mode, containerID: options.id, bundle: bundle,
            rootfs: SpecValidator.rootfsPath(essentials.rootPath, bundle: bundle), spec: nil, process: nil,
            noPivot: options.noPivot, noNewKeyring: options.noNewKeyring, preserveFds: options.preserveFds,
            consoleFd: consoleFd, fifoFd: fifoFd, createdAt: created)
        request.awaitsCgroups = true
        request.movesIntoCgroups = initMovesItself
        request.seccompCacheFd = seccompCacheFd
        let sent = Result { () throws(RuntimeError) in
            try Frames.send(request, on: socket.first)
            try Frames.sendRaw(config, on: socket.first)
        }
        try child.confirmExec()
        cleanup.pid = child.pid
        try sent.get()
        for fd in inherited { fd.close() }
        /// The init's CgroupGate: the directories once they exist, then a byte once the init is in them.
        /// An init that failed meanwhile has gone: its report is the error.
        func tellInit(_ directories: [String]?) throws(RuntimeError) {
            do throws(RuntimeError) {
                if let directories {
                    try Frames.sendRaw(Array(directories.joined(separator: "\n").utf8), on: socket.first)
                } else {
                    try Frames.sendByte(on: socket.first)
                }
            } catch {
                if let message = try? Frames.receive(InitMessage.self, on: socket.first), message.kind == .failed {
                    throw .other(message.detail ?? "container init failed")
                }
                throw error
            }
        }
        let cgroups: any CgroupManager
        var firstMove: PendingWrite?
        if let cloneInto {
            cgroups = cloneInto
            try tellInit(cgroups.directories)
        } else {
            if let layout {
                cgroups = layout
            } else {
                cgroups = try Cgroups.manager(cgroupsPath: essentials.cgroupsPath, containerID: options.id)
            }
            try cgroups.create()
            cleanup.cgroups = cgroups
            try tellInit(cgroups.directories)
            if !initMovesItself { firstMove = try cgroups.beginAdd(pid: child.pid) }
        }
        // The whole spec, while the init decodes it too (and a first cgroup move may be waiting).
        let (spec, rootfs) = try decodeAndValidate(tree, bundle: bundle)
        try apply(cgroups, spec: spec)
        // The record is encoded now, while the init works.
        guard let stat = ProcessStat.read(pid: child.pid) else { throw .other("container init exited during setup") }
        var record = ContainerRecord(
            id: options.id, bundle: bundle, rootfs: rootfs, pid: child.pid,
            pidStartTime: stat.startTime, created: created, owner: "",
            cgroup: cgroups.state, config: spec)
        var recordBytes: [UInt8]? = try StateStore.encode(record)
        if cloneInto == nil && !initMovesItself {
            try RuntimeError.wrap("cgroup: adding process \(child.pid)") { () throws(SystemCallError) in
                try firstMove?.wait()
            }
            try cgroups.add(pid: child.pid)
        }
        try tellInit(nil)  // the init sits in its cgroups, their resources applied

        let state = OCIState(
            ociVersion: spec.ociVersion, id: options.id, status: .creating, pid: child.pid,
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

        if let hostMounts {
            // The mount the init made at the rootfs, with the container's mounts under it, is in our
            // namespace: delete takes it away.
            record.rootfsMount = hostMounts.madeByInit()
            recordBytes = nil
        }
        try store.save(record, encoded: recordBytes)
        if let pidFile = options.pidFile {
            // Renamed into place but not synced, as runc writes it: a pid means nothing after a crash.
            try RuntimeError.wrap("writing pid file \(pidFile)") { () throws(SystemCallError) in
                try FileSystem.writeAtomically(pidFile, Array("\(child.pid)".utf8), durable: false)
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
    var hostMounts: HostMountNamespace?
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
        if let mount = hostMounts?.madeByInit() { HostMountNamespace.remove(mount, at: hostMounts!.rootfs) }
        try? store.remove(id)
    }
}

/// uid_map and gid_map of a new user namespace, written by the parent while the child waits.
enum UserNamespace {
    /// The init opens exec.fifo for writing as the root of its user namespace, a host uid that is not
    /// ours: like runc, the fifo is writable by others (never readable) and owned by the container's
    /// root where config.json maps it.
    static func admitToFifo(_ fifo: String, uid: [Spec.IDMapping]?, gid: [Spec.IDMapping]?) throws(RuntimeError) {
        try RuntimeError.wrap("exec fifo for a user namespace") { () throws(SystemCallError) in
            _ = try sys("chmod", fifo) { chmod(fifo, 0o622) }
            if let owner = hostID(ofRoot: uid), let group = hostID(ofRoot: gid) {
                _ = try sys("chown", fifo) { chown(fifo, owner, group) }
            }
        }
    }

    /// The host id that id 0 of the namespace maps to, if a mapping covers it.
    static func hostID(ofRoot mappings: [Spec.IDMapping]?) -> UInt32? {
        (mappings ?? []).first { $0.containerID == 0 && $0.size > 0 }?.hostID
    }

    static func writeMappings(pid: Int32, uid: [Spec.IDMapping]?, gid: [Spec.IDMapping]?) throws(RuntimeError) {
        func lines(_ mappings: [Spec.IDMapping]?) -> String {
            (mappings ?? []).map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
        }
        try RuntimeError.wrap("writing uid_map") { () throws(SystemCallError) in
            try FileSystem.writeFile("/proc/\(pid)/uid_map", lines(uid))
        }
        try RuntimeError.wrap("writing gid_map") { () throws(SystemCallError) in
            try FileSystem.writeFile("/proc/\(pid)/gid_map", lines(gid))
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

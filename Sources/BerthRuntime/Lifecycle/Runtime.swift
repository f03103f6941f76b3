#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// The OCI runtime's operations, as runc's command line exposes them. One value per invocation.
public struct Runtime: Sendable {
    public let store: StateStore

    public init(root: String = StateStore.defaultRoot) {
        self.store = StateStore(root: root)
    }

    // MARK: create / start / run

    /// `create`: returns once the init waits for `start`.
    public func create(_ options: CreateOptions) throws(RuntimeError) {
        _ = try Creator(store: store, options: options, mode: .create).launch()
    }

    /// `start`: releases the init waiting on exec.fifo, then runs poststart hooks.
    public func start(id: String) throws(RuntimeError) {
        let record = try store.load(id)
        let current = status(of: record)
        guard current == .created else { throw .invalidState(id: id, status: current.rawValue, operation: "start") }
        let fifoPath = store.fifoPath(id)
        let fifo = try RuntimeError.wrap("opening exec fifo") { () throws(SystemCallError) in
            try FileDescriptor.open(fifoPath, O_RDONLY | O_NONBLOCK)
        }
        // Wait for the init's byte, or for the init to die (its pidfd becomes readable).
        let pidfd = berth_pidfd_open(record.pid, 0)
        defer { if pidfd >= 0 { close(pidfd) } }
        var polls = [
            pollfd(fd: fifo.rawValue, events: Int16(POLLIN), revents: 0),
            pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let ready = poll(&polls, pidfd >= 0 ? 2 : 1, -1)
            if ready < 0 && errno == EINTR { continue }
            if polls[0].revents & Int16(POLLIN) != 0 { break }
            if polls[0].revents & Int16(POLLHUP) != 0 || (pidfd >= 0 && polls[1].revents != 0) {
                throw .other("cannot start container \(id): its init process has exited")
            }
        }
        let byte = try RuntimeError.wrap("reading exec fifo") { () throws(SystemCallError) in try fifo.read(upTo: 1) }
        guard byte.count == 1 else { throw .other("cannot start container \(id): its init process has exited") }
        unlink(fifoPath)
        runPoststart(record)
    }

    func runPoststart(_ record: ContainerRecord) {
        do {
            try Hooks.run(.poststart, spec: record.config, state: ociState(record, status: .running))
        } catch {
            RuntimeLog.warning("\(error)")
        }
    }

    /// `run`: create and start in one go; waits for the container and returns its exit status, unless
    /// `detach`, which returns 0 once it is running.
    public func run(_ options: CreateOptions, detach: Bool) throws(RuntimeError) -> Int32 {
        var mask = Self.blockForwardedSignals(!detach)
        let launched = try Creator(store: store, options: options, mode: .run).launch()
        let record = launched.record
        do {
            try Frames.sendByte(on: launched.socket)
        } catch {
            try? forceDelete(record)
            throw error
        }
        runPoststart(record)
        if detach { return 0 }
        let status = waitForward(pid: record.pid, mask: &mask)
        // The init is reaped: tear down from the record in hand rather than re-reading state.json.
        // Processes the init left behind (no pid namespace of its own) are killed; usually there are none.
        if let cgroup = record.cgroup {
            let manager = Cgroups.restore(cgroup)
            if let left = try? manager.processes(), !left.isEmpty { try? manager.killAll(signal: SIGKILL) }
        }
        try destroy(record)
        return status
    }

    /// Blocks the signals a foreground `run` or `exec` forwards (and SIGCHLD) before the child exists,
    /// so none is lost between spawn and the wait loop. Returns the set for `waitForward`.
    static func blockForwardedSignals(_ block: Bool) -> sigset_t {
        var mask = sigset_t()
        sigemptyset(&mask)
        guard block else { return mask }
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD] {
            sigaddset(&mask, signal)
        }
        sigprocmask(SIG_BLOCK, &mask, nil)
        return mask
    }

    /// Forwards signals to the container's init until it exits; returns its exit status as a shell
    /// would (128 + signal when killed).
    func waitForward(pid: Int32, mask: inout sigset_t) -> Int32 {
        while true {
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { return Self.exitCode(status) }
            if reaped < 0 && errno != EINTR { return 255 }
            var info = siginfo_t()
            let signal = sigwaitinfo(&mask, &info)
            if signal > 0 && signal != SIGCHLD { Glibc.kill(pid, signal) }
        }
    }

    static func exitCode(_ status: Int32) -> Int32 {
        if berth_wait_status_exited(status) != 0 { return berth_wait_status_exit_code(status) }
        if berth_wait_status_signaled(status) != 0 { return 128 + berth_wait_status_signal(status) }
        return 255
    }

    // MARK: state / list

    public func status(of record: ContainerRecord) -> ContainerStatus {
        guard record.initIsAlive else { return .stopped }
        if let cgroup = record.cgroup, Cgroups.restore(cgroup).isFrozen() { return .paused }
        if FileSystem.exists(store.fifoPath(record.id)) { return .created }
        return .running
    }

    public func ociState(_ record: ContainerRecord, status: ContainerStatus) -> OCIState {
        OCIState(
            ociVersion: record.config.ociVersion, id: record.id, status: status,
            pid: status == .stopped ? 0 : record.pid, bundle: record.bundle, annotations: record.config.annotations)
    }

    public func state(id: String) throws(RuntimeError) -> StateReport {
        let record = try store.load(id)
        return report(record)
    }

    func report(_ record: ContainerRecord) -> StateReport {
        let current = status(of: record)
        return StateReport(
            ociVersion: record.config.ociVersion, id: record.id,
            pid: current == .stopped ? 0 : record.pid, status: current, bundle: record.bundle,
            rootfs: record.rootfs, created: record.created, owner: record.owner,
            annotations: record.config.annotations)
    }

    public func list() -> [StateReport] {
        store.ids().compactMap { id in (try? store.load(id)).map(report) }
    }

    // MARK: kill / delete

    public func kill(id: String, signal: Int32, all: Bool) throws(RuntimeError) {
        let record = try store.load(id)
        let current = status(of: record)
        guard current != .stopped else { throw .invalidState(id: id, status: "stopped", operation: "kill") }
        if all, let cgroup = record.cgroup {
            try Cgroups.restore(cgroup).killAll(signal: signal)
            return
        }
        try signalInit(record, signal)
    }

    /// Signals the init through a pidfd, so a recycled pid can never receive it.
    func signalInit(_ record: ContainerRecord, _ signal: Int32) throws(RuntimeError) {
        let pidfd = berth_pidfd_open(record.pid, 0)
        if pidfd < 0 {
            if errno == ESRCH { return }
            throw .system(
                SystemCallError(call: "pidfd_open", errno: errno, subject: "pid \(record.pid)"), context: "kill")
        }
        defer { close(pidfd) }
        guard record.initIsAlive else { return }
        if berth_pidfd_send_signal(pidfd, signal, 0) != 0 && errno != ESRCH {
            throw .system(
                SystemCallError(call: "pidfd_send_signal", errno: errno, subject: "pid \(record.pid)"), context: "kill")
        }
    }

    public func delete(id: String, force: Bool) throws(RuntimeError) {
        let record: ContainerRecord
        do {
            // Only what the teardown reads (destroy and forceDelete never save the record).
            record = try store.loadForTeardown(id)
        } catch {
            // A directory without state.json is a create that died half-way: clean it if forced.
            if case .containerNotFound = error, force, FileSystem.exists(store.directory(id)) {
                try store.remove(id)
                return
            }
            throw error
        }
        let current = status(of: record)
        switch current {
        case .stopped:
            try destroy(record)
        case .created:
            try forceDelete(record)
        case .running, .paused, .creating:
            guard force else {
                throw .invalidState(id: id, status: current.rawValue, operation: "delete")
            }
            try forceDelete(record)
        }
    }

    func forceDelete(_ record: ContainerRecord) throws(RuntimeError) {
        if let cgroup = record.cgroup {
            let manager = Cgroups.restore(cgroup)
            try? manager.thaw()
            try? manager.killAll(signal: SIGKILL)
        }
        try? signalInit(record, SIGKILL)
        waitForExit(record)
        try destroy(record)
    }

    /// Waits for the init to be gone: as its parent (run) by reaping it, otherwise through its pidfd.
    func waitForExit(_ record: ContainerRecord) {
        var status: Int32 = 0
        if waitpid(record.pid, &status, 0) == record.pid { return }
        let pidfd = berth_pidfd_open(record.pid, 0)
        guard pidfd >= 0 else { return }
        defer { close(pidfd) }
        var poller = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        _ = poll(&poller, 1, 10_000)
    }

    /// Tears down a stopped container: poststop hooks (warnings only), cgroups, state.
    func destroy(_ record: ContainerRecord) throws(RuntimeError) {
        do {
            try Hooks.run(.poststop, spec: record.config, state: ociState(record, status: .stopped))
        } catch {
            RuntimeLog.warning("\(error)")
        }
        if let cgroup = record.cgroup { try Cgroups.restore(cgroup).destroy() }
        if let mount = record.rootfsMount { HostMountNamespace.remove(mount, at: record.rootfs) }
        try store.remove(record.id)
    }

    // MARK: pause / resume / ps

    public func pause(id: String) throws(RuntimeError) {
        let record = try store.load(id)
        let current = status(of: record)
        guard current == .running || current == .created else {
            throw .invalidState(id: id, status: current.rawValue, operation: "pause")
        }
        guard let cgroup = record.cgroup else { throw .other("container \(id) has no cgroup to freeze") }
        try Cgroups.restore(cgroup).freeze()
    }

    public func resume(id: String) throws(RuntimeError) {
        let record = try store.load(id)
        let current = status(of: record)
        guard current == .paused else { throw .invalidState(id: id, status: current.rawValue, operation: "resume") }
        guard let cgroup = record.cgroup else { throw .other("container \(id) has no cgroup to thaw") }
        try Cgroups.restore(cgroup).thaw()
    }

    /// runc's `update`: the given resources laid over the container's (a field left out keeps its
    /// value), written to its cgroup, and kept in its saved config for the next update.
    public func update(id: String, resources: Spec.Resources) throws(RuntimeError) {
        var record = try store.load(id)
        let current = status(of: record)
        guard current == .running || current == .created || current == .paused else {
            throw .invalidState(id: id, status: current.rawValue, operation: "update")
        }
        guard let cgroup = record.cgroup else { throw .other("container \(id) has no cgroup to update") }
        var linux = record.config.linux ?? Spec.Linux()
        var merged = linux.resources ?? Spec.Resources()
        if let memory = resources.memory {
            var m = merged.memory ?? Spec.Memory()
            if let v = memory.limit { m.limit = v }
            if let v = memory.reservation { m.reservation = v }
            if let v = memory.swap { m.swap = v }
            if let v = memory.swappiness { m.swappiness = v }
            merged.memory = m
        }
        if let cpu = resources.cpu {
            var c = merged.cpu ?? Spec.CPU()
            if let v = cpu.shares { c.shares = v }
            if let v = cpu.quota { c.quota = v }
            if let v = cpu.period { c.period = v }
            if let v = cpu.burst { c.burst = v }
            if let v = cpu.cpus { c.cpus = v }
            if let v = cpu.mems { c.mems = v }
            if let v = cpu.idle { c.idle = v }
            merged.cpu = c
        }
        if let pids = resources.pids { merged.pids = pids }
        if let blockIO = resources.blockIO { merged.blockIO = blockIO }
        if let hugepages = resources.hugepageLimits { merged.hugepageLimits = hugepages }
        if let unified = resources.unified { merged.unified = (merged.unified ?? [:]).merging(unified) { $1 } }
        // Devices are not updatable (runc neither): the container keeps the rules it was created with.
        var applied = merged
        applied.devices = nil
        try Cgroups.restore(cgroup).apply(applied)
        linux.resources = merged
        record.config.linux = linux
        try store.save(record)
    }

    public func processes(id: String) throws(RuntimeError) -> [Int32] {
        let record = try store.load(id)
        guard let cgroup = record.cgroup else { return record.initIsAlive ? [record.pid] : [] }
        return try Cgroups.restore(cgroup).processes()
    }
}

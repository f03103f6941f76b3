#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// cgroup v1: a directory in every controller's hierarchy (and, on hybrid hosts, one in the cgroup2
/// hierarchy too, which also carries hugetlb when v1 does not).
struct CgroupV1Manager: CgroupManager {
    let state: CgroupState
    let fs: any CgroupFileSystem

    init(state: CgroupState, fs: any CgroupFileSystem) {
        self.state = state
        self.fs = fs
    }

    /// Each distinct directory once (co-mounted controllers share one), sorted for a stable order.
    var directories: [String] {
        var result = Array(Set(state.paths.values)).sorted()
        if let unified = state.path { result.append(unified) }
        return result
    }

    func create() throws(RuntimeError) {
        for directory in Set(state.paths.values).sorted() {
            _ = try fs.makeCgroupDirectories(directory)
            if directory == state.paths["cpuset"] { try fillCpusets(down: directory) }
        }
        if let unified = state.path {
            try CgroupV2Manager.createUnified(path: unified, mount: state.unifiedMount, fs: fs)
        }
    }

    /// A new cpuset cgroup starts with empty cpus and mems and accepts no task until they are set (joining
    /// fails with ENOSPC): each level from the nearest ancestor that has them down to `directory` gets its
    /// parent's, whoever made it — as runc's cpusetEnsureParent. Copying only the levels this process made
    /// lost a race: two containers of new pods under one new QoS parent, the second found the parent made
    /// but not yet filled by the first, and copied its emptiness.
    func fillCpusets(down directory: String) throws(RuntimeError) {
        func value(_ dir: String, _ file: String) -> String? { (try? fs.read(dir, file))?.filter { $0 != "\n" } }
        var chain: [String] = []
        var dir = directory
        while (value(dir, "cpuset.cpus") ?? "").isEmpty || (value(dir, "cpuset.mems") ?? "").isEmpty {
            chain.append(dir)
            let parent = FileSystem.parent(of: dir)
            guard parent != dir, !parent.isEmpty else { break }
            dir = parent
        }
        for dir in chain.reversed() {
            for file in ["cpuset.cpus", "cpuset.mems"] where value(dir, file)?.isEmpty ?? true {
                let parent = try fs.read(FileSystem.parent(of: dir), file).filter { $0 != "\n" }
                try fs.write(dir, file, parent, field: "copying \(file) from the parent cgroup")
            }
        }
    }

    /// On a hybrid host without a v1 hugetlb hierarchy, hugetlb limits go to the cgroup2 directory.
    var hugetlbOnUnified: Bool {
        guard state.paths["hugetlb"] == nil, let unified = state.path else { return false }
        let controllers = (try? fs.read(unified, "cgroup.controllers")) ?? ""
        return controllers.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("hugetlb")
    }

    @discardableResult
    func apply(_ resources: Spec.Resources) throws(RuntimeError) -> [String] {
        var currentLimit: UInt64?
        if let memory = resources.memory, (memory.limit ?? 0) != 0, (memory.swap ?? 0) != 0,
            let dir = state.paths["memory"]
        {
            currentLimit = (try? fs.read(dir, "memory.limit_in_bytes")).flatMap { UInt64($0.filter { $0 != "\n" }) }
        }
        let plan = try CgroupPlan(
            resources, version: .v1(hugetlbOnUnified: resources.hugepageLimits?.isEmpty == false && hugetlbOnUnified),
            currentMemoryLimit: currentLimit)
        try fs.execute(plan.writes) { controller in controller.isEmpty ? state.path : state.paths[controller] }
        return plan.warnings
    }

    func add(pid: Int32) throws(RuntimeError) {
        for directory in directories {
            try fs.write(directory, "cgroup.procs", String(pid), field: "adding process \(pid)")
        }
    }

    var attachesAtClone: Bool { false }

    /// On a hybrid host: the cgroup2 directory, made now and opened for CLONE_INTO_CGROUP, so that the
    /// init is born in it instead of being moved there (nil without one). With the init moving itself
    /// into the v1 directories (InitRequest.movesIntoCgroups), nothing waits for cgroup_threadgroup_rwsem.
    func prepareUnifiedForClone() throws(RuntimeError) -> FileDescriptor? {
        guard let unified = state.path else { return nil }
        try CgroupV2Manager.createUnified(path: unified, mount: state.unifiedMount, fs: fs)
        do { return try fs.openDirectory(unified) } catch {
            throw .system(error, context: "cgroup: opening \(unified)")
        }
    }

    func beginAdd(pid: Int32) throws(RuntimeError) -> PendingWrite? {
        guard let directory = directories.first else { return nil }
        do {
            return try fs.beginWrite(directory + "/cgroup.procs", String(pid))
        } catch {
            throw .system(error, context: "cgroup: adding process \(pid)")
        }
    }
    func directoryForClone() throws(RuntimeError) -> FileDescriptor? { nil }

    /// The hierarchy used to list processes: any will do, as the container joins them all.
    private var listingDirectory: String? {
        for controller in ["pids", "freezer", "memory", "devices", "cpu"] {
            if let dir = state.paths[controller] { return dir }
        }
        return state.paths.values.sorted().first ?? state.path
    }

    func processes() throws(RuntimeError) -> [Int32] {
        guard let directory = listingDirectory else { return [] }
        return try fs.allProcesses(directory)
    }

    func freeze() throws(RuntimeError) { try setFreezer("FROZEN") }
    func thaw() throws(RuntimeError) { try setFreezer("THAWED") }

    private func setFreezer(_ wanted: String) throws(RuntimeError) {
        guard let directory = state.paths["freezer"] else {
            throw .unsupported("pause/resume need the freezer cgroup controller, which is not mounted on this host")
        }
        // Freezing can stall in FREEZING while tasks are in uninterruptible sleep: write again (runc does).
        var delay = 1
        for attempt in 0..<40 {
            if attempt % 10 == 0 {
                try fs.write(directory, "freezer.state", wanted, field: wanted == "FROZEN" ? "freeze" : "thaw")
            }
            if (try? fs.read(directory, "freezer.state"))?.hasPrefix(wanted) ?? false { return }
            fs.sleep(milliseconds: delay)
            delay = min(delay * 2, 50)
        }
        if wanted == "FROZEN" { try? fs.write(directory, "freezer.state", "THAWED", field: "thaw") }
        throw .cgroup("\(directory) did not reach \(wanted) within 2 seconds")
    }

    func isFrozen() -> Bool {
        guard let directory = state.paths["freezer"] else { return false }
        return (try? fs.read(directory, "freezer.state"))?.hasPrefix("FROZEN") ?? false
    }

    func killAll(signal: Int32) throws(RuntimeError) {
        try Self.freezeSignalThaw(self, signal: signal, fs: fs)
    }

    /// runc's signalAllProcesses: freeze so nothing forks meanwhile, signal each pid, thaw.
    static func freezeSignalThaw(_ manager: any CgroupManager, signal: Int32, fs: any CgroupFileSystem)
        throws(RuntimeError)
    {
        let canFreeze: Bool
        do throws(RuntimeError) { try manager.freeze(); canFreeze = true } catch { canFreeze = false }
        let pids = try manager.processes()
        do throws(RuntimeError) {
            try fs.signalEach(pids, signal: signal)
        } catch {
            if canFreeze { try? manager.thaw() }
            throw error
        }
        if canFreeze { try manager.thaw() }
    }

    func destroy() throws(RuntimeError) {
        var firstError: RuntimeError?
        for directory in directories {
            do throws(RuntimeError) { try fs.removeCgroup(directory) } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
    }
}

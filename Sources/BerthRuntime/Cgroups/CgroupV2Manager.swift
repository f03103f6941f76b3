#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// cgroup v2: one directory under the cgroup2 mount.
struct CgroupV2Manager: CgroupManager {
    let state: CgroupState
    let fs: any CgroupFileSystem
    var path: String { state.path! }

    init(state: CgroupState, fs: any CgroupFileSystem) {
        self.state = state
        self.fs = fs
    }

    func create() throws(RuntimeError) {
        try Self.createUnified(path: path, mount: state.unifiedMount, fs: fs)
    }

    /// mkdir -p below the cgroup2 mount, enabling every available controller in each ancestor's
    /// cgroup.subtree_control on the way (all at once; one by one, ignoring refusals, if that fails).
    static func createUnified(path: String, mount: String?, fs: any CgroupFileSystem) throws(RuntimeError) {
        let mount = mount ?? FileSystem.parent(of: path)
        guard path.hasPrefix(mount + "/") else { throw .cgroup("\(path) is not below the cgroup2 mount \(mount)") }
        var current = mount
        for component in path.dropFirst(mount.count + 1).split(separator: "/") {
            try enableControllers(in: current, fs: fs)
            current += "/" + component
            do { _ = try fs.makeDirectory(current) } catch {
                throw .system(error, context: "cgroup: creating \(current)")
            }
        }
    }

    static func enableControllers(in directory: String, fs: any CgroupFileSystem) throws(RuntimeError) {
        let available = try fs.read(directory, "cgroup.controllers").split(whereSeparator: { $0 == " " || $0 == "\n" })
        let enabled = Set(
            (try? fs.read(directory, "cgroup.subtree_control"))?.split(whereSeparator: { $0 == " " || $0 == "\n" })
                ?? [])
        let missing = available.filter { !enabled.contains($0) }
        if missing.isEmpty { return }
        do throws(SystemCallError) {
            try fs.writeFile(directory + "/cgroup.subtree_control", missing.map { "+" + $0 }.joined(separator: " "))
        } catch {
            for controller in missing { try? fs.writeFile(directory + "/cgroup.subtree_control", "+" + controller) }
        }
    }

    @discardableResult
    func apply(_ resources: Spec.Resources) throws(RuntimeError) -> [String] {
        var plan = try CgroupPlan(resources, version: .v2)
        // With BFQ the weight is written in the v1 range to io.bfq.weight (as runc).
        if let weight = plan.bfqWeight, fs.exists(path + "/io.bfq.weight"),
            let index = plan.writes.firstIndex(where: { $0.file == "io.weight" })
        {
            plan.writes[index].file = "io.bfq.weight"
            plan.writes[index].value = String(weight)
        }
        try fs.execute(plan.writes) { _ in path }
        if let rules = plan.deviceProgram {
            let program = try CgroupDeviceProgram(rules)
            do throws(SystemCallError) { try fs.attachDeviceProgram(program.instructions, directory: path) } catch {
                throw .system(
                    error, context: "cgroup: linux.resources.devices: attaching the eBPF device program to \(path)")
            }
        }
        return plan.warnings
    }

    func add(pid: Int32) throws(RuntimeError) {
        try fs.write(path, "cgroup.procs", String(pid), field: "adding process \(pid)")
    }

    var attachesAtClone: Bool { true }
    var directories: [String] { [path] }
    func beginAdd(pid: Int32) throws(RuntimeError) -> PendingWrite? { nil }
    func directoryForClone() throws(RuntimeError) -> FileDescriptor? {
        do { return try fs.openDirectory(path) } catch { throw .system(error, context: "cgroup: opening \(path)") }
    }

    func processes() throws(RuntimeError) -> [Int32] {
        try fs.allProcesses(path)
    }

    func freeze() throws(RuntimeError) { try setFrozen(true) }
    func thaw() throws(RuntimeError) { try setFrozen(false) }

    private func setFrozen(_ frozen: Bool) throws(RuntimeError) {
        try fs.write(path, "cgroup.freeze", frozen ? "1" : "0", field: frozen ? "freeze" : "thaw")
        // The kernel freezes asynchronously; cgroup.events reports "frozen 1" when every task is stopped.
        let wanted = frozen ? "frozen 1" : "frozen 0"
        var delay = 1
        for _ in 0..<40 {
            if (try? fs.read(path, "cgroup.events"))?.split(separator: "\n").contains(where: { $0 == wanted }) ?? true {
                return
            }
            fs.sleep(milliseconds: delay)
            delay = min(delay * 2, 50)
        }
        if frozen { try? fs.write(path, "cgroup.freeze", "0", field: "thaw") }
        throw .cgroup("\(path) did not become \(frozen ? "frozen" : "thawed") within 2 seconds")
    }

    func isFrozen() -> Bool {
        if let events = try? fs.read(path, "cgroup.events") {
            return events.split(separator: "\n").contains("frozen 1")
        }
        return (try? fs.read(path, "cgroup.freeze"))?.hasPrefix("1") ?? false
    }

    func killAll(signal: Int32) throws(RuntimeError) {
        if signal == SIGKILL && fs.exists(path + "/cgroup.kill") {
            try fs.write(path, "cgroup.kill", "1", field: "kill --all")
            return
        }
        try CgroupV1Manager.freezeSignalThaw(self, signal: signal, fs: fs)
    }

    func destroy() throws(RuntimeError) {
        try fs.removeCgroup(path)
    }
}

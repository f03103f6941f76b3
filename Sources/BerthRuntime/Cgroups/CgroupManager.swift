#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// One container's cgroup: create it, set its limits, put processes in it, pause, signal and remove it.
public protocol CgroupManager: Sendable {
    /// Creates the container's directory in every hierarchy (v1) or the cgroup2 directory, enabling the
    /// available controllers in the parents' cgroup.subtree_control.
    func create() throws(RuntimeError)
    /// Applies every `linux.resources` field (see ``CgroupPlan``). Returns warnings for ignored fields.
    @discardableResult func apply(_ resources: Spec.Resources) throws(RuntimeError) -> [String]
    func add(pid: Int32) throws(RuntimeError)
    /// v2: an O_PATH descriptor of the container's cgroup for clone3(CLONE_INTO_CGROUP); v1: nil.
    func directoryForClone() throws(RuntimeError) -> FileDescriptor?
    /// Whether a process can be cloned straight into the container's cgroup (CLONE_INTO_CGROUP, v2 only);
    /// otherwise it is moved there with `add(pid:)`.
    var attachesAtClone: Bool { get }
    /// The container's directories, one per hierarchy (the cgroup2 one last).
    var directories: [String] { get }
    /// After `create()`: starts moving `pid` into one of the container's hierarchies on a helper thread.
    /// On v1 the first move waits out an RCU grace period (6–20 ms) and moves in the next grace period do
    /// not, so the caller does other work meanwhile (not cgroup mkdir/rmdir or moves: the kernel holds
    /// cgroup_mutex throughout), then waits and calls `add(pid:)`. nil when nothing is gained (v2 clones
    /// into the cgroup).
    func beginAdd(pid: Int32) throws(RuntimeError) -> PendingWrite?
    /// Every pid in the container's cgroup and its descendants.
    func processes() throws(RuntimeError) -> [Int32]
    func freeze() throws(RuntimeError)
    func thaw() throws(RuntimeError)
    func isFrozen() -> Bool
    /// Signals every process (v2 with SIGKILL: cgroup.kill; otherwise freeze, signal each, thaw).
    func killAll(signal: Int32) throws(RuntimeError)
    /// Removes the container's directories (and any child cgroups), waiting briefly for exiting processes.
    func destroy() throws(RuntimeError)
    var state: CgroupState { get }
}

/// Entry points: detect the host's cgroup layout and build the right manager.
public enum Cgroups {
    /// Finds the hierarchies where systemd mounts them (an absolute `cgroupsPath`), else in
    /// /proc/self/mountinfo; reads /proc/self/cgroup for a relative `cgroupsPath`.
    public static func manager(
        cgroupsPath: String?, containerID: String,
        fs: any CgroupFileSystem = RealCgroupFileSystem()
    ) throws(RuntimeError) -> any CgroupManager {
        let (path, relative) = try CgroupPath.resolve(cgroupsPath, containerID: containerID)
        let mounts: CgroupHierarchies
        if !relative, let standard = fs.standardHierarchies() {
            mounts = standard
        } else {
            do { mounts = CgroupHierarchies(mountInfo: try fs.mountInfo()) } catch {
                throw .system(error, context: "cgroup: reading the mount table")
            }
        }
        var own: [String: String] = [:]
        if relative {
            do { own = CgroupPath.parseOwn(try fs.ownCgroups()) } catch {
                throw .system(error, context: "cgroup: reading /proc/self/cgroup")
            }
        }
        if mounts.isUnifiedOnly, let unified = mounts.unified {
            let directory = try CgroupPath.directory(mount: unified, path: path, relative: relative, own: own[""])
            return CgroupV2Manager(
                state: CgroupState(version: 2, path: directory, unifiedMount: unified.mountPoint), fs: fs)
        }
        guard !mounts.v1.isEmpty else {
            throw .cgroup("no cgroup hierarchy is mounted (looked for cgroup and cgroup2 in /proc/self/mountinfo)")
        }
        var paths: [String: String] = [:]
        for (controller, mount) in mounts.v1 {
            paths[controller] = try CgroupPath.directory(
                mount: mount, path: path, relative: relative, own: own[controller])
        }
        var unifiedPath: String?
        if let unified = mounts.unified {
            unifiedPath = try CgroupPath.directory(mount: unified, path: path, relative: relative, own: own[""])
        }
        return CgroupV1Manager(
            state: CgroupState(version: 1, paths: paths, path: unifiedPath, unifiedMount: mounts.unified?.mountPoint),
            fs: fs)
    }

    /// Reattaches to a container's cgroups from state.json, without reading the mount table.
    public static func restore(_ state: CgroupState, fs: any CgroupFileSystem = RealCgroupFileSystem())
        -> any CgroupManager
    {
        state.version == 2 ? CgroupV2Manager(state: state, fs: fs) : CgroupV1Manager(state: state, fs: fs)
    }
}

// MARK: Shared steps

extension CgroupFileSystem {
    func write(_ directory: String, _ file: String, _ value: String, field: String) throws(RuntimeError) {
        do { try writeFile(directory + "/" + file, value) } catch {
            throw .system(error, context: "cgroup: \(field): writing \"\(value)\" to \(file) in \(directory)")
        }
    }

    func read(_ directory: String, _ file: String) throws(RuntimeError) -> String {
        do { return try readFile(directory + "/" + file) } catch {
            throw .system(error, context: "cgroup: reading \(file) in \(directory)")
        }
    }

    /// Runs a plan's writes in order; EINVAL on a `retryAfterRest` write is retried once at the end.
    func execute(_ writes: [CgroupWrite], directory: (String) -> String?) throws(RuntimeError) {
        var retry: [(String, CgroupWrite)] = []
        for write in writes {
            guard let dir = directory(write.controller) else {
                let name = write.controller.isEmpty ? "cgroup2" : write.controller
                throw .cgroup("cannot set \(write.field): the \(name) controller is not mounted on this host")
            }
            var file = write.file
            if let preferred = write.preferred.first(where: { exists(dir + "/" + $0) }) { file = preferred }
            if write.optional && !exists(dir + "/" + file) { continue }
            do {
                try writeFile(dir + "/" + file, write.value)
            } catch  where error.errno == EINVAL && write.retryAfterRest {
                retry.append((dir, write))
            } catch  where error.errno == ENOENT {
                throw .cgroup(
                    "cannot set \(write.field): \(file) does not exist in \(dir) (is the controller enabled on this host?)"
                )
            } catch {
                throw .system(error, context: "cgroup: \(write.field): writing \"\(write.value)\" to \(file)")
            }
        }
        for (dir, write) in retry { try self.write(dir, write.file, write.value, field: write.field) }
    }

    /// pids in cgroup.procs of `directory` and of every child cgroup below it.
    func allProcesses(_ directory: String) throws(RuntimeError) -> [Int32] {
        var result = try read(directory, "cgroup.procs").split(separator: "\n").compactMap { Int32($0) }
        let children: [String]
        do { children = try subdirectories(directory) } catch {
            throw .system(error, context: "cgroup: listing \(directory)")
        }
        for child in children { result += try allProcesses(directory + "/" + child) }
        return result
    }

    /// rmdir of `directory` after its children, retrying EBUSY while processes finish exiting.
    func removeCgroup(_ directory: String) throws(RuntimeError) {
        guard exists(directory) else { return }
        if let children = try? subdirectories(directory) {
            for child in children { try removeCgroup(directory + "/" + child) }
        }
        var delay = 5
        for attempt in 0..<12 {
            do {
                try removeDirectory(directory)
                return
            } catch  where error.errno == ENOENT {
                return
            } catch  where error.errno == EBUSY && attempt < 11 {
                sleep(milliseconds: delay)
                delay = min(delay * 2, 200)
            } catch {
                throw .system(error, context: "cgroup: removing \(directory)")
            }
        }
    }

    /// mkdir -p; returns the directories it created, outermost first.
    func makeCgroupDirectories(_ directory: String) throws(RuntimeError) -> [String] {
        if exists(directory) { return [] }
        var created = try makeCgroupDirectories(FileSystem.parent(of: directory))
        do {
            if try makeDirectory(directory) { created.append(directory) }
        } catch {
            throw .system(error, context: "cgroup: creating \(directory)")
        }
        return created
    }

    /// Signals each pid, ignoring processes that already exited.
    func signalEach(_ pids: [Int32], signal: Int32) throws(RuntimeError) {
        for pid in pids {
            do { try kill(pid: pid, signal: signal) } catch  where error.errno == ESRCH {
                continue
            } catch {
                throw .system(error, context: "cgroup: signalling \(pid)")
            }
        }
    }
}

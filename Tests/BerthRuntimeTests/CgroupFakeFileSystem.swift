#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
@testable import BerthRuntime

/// A recording in-memory cgroup file system: directories, files, every write in order.
final class CgroupFakeFileSystem: CgroupFileSystem, @unchecked Sendable {
    var directories: Set<String> = []
    var files: [String: String] = [:]
    var writes: [(path: String, value: String)] = []
    var removed: [String] = []
    var signals: [(pid: Int32, signal: Int32)] = []
    var sleeps = 0
    var mountInfoText: String
    var ownCgroupText: String
    /// rmdir of these paths fails with EBUSY this many times first.
    var busy: [String: Int] = [:]
    /// Writes to these files fail with this errno.
    var failingWrites: [String: Int32] = [:]
    /// Files that must exist before they can be written (kernel interface files); others are created.
    var strictFiles = false

    init(mountInfo: String, ownCgroup: String = "0::/\n") {
        mountInfoText = mountInfo
        ownCgroupText = ownCgroup
    }

    func makeDirectory(_ path: String) throws(SystemCallError) -> Bool {
        if directories.contains(path) { return false }
        guard directories.contains(FileSystem.parent(of: path)) else {
            throw SystemCallError(call: "mkdir", errno: ENOENT, subject: path)
        }
        directories.insert(path)
        // Like the kernel, a new cgroup2 directory lists what its parent enables for it.
        if files[path + "/cgroup.controllers"] == nil,
            let parentControllers = files[FileSystem.parent(of: path) + "/cgroup.subtree_control"]
        {
            files[path + "/cgroup.controllers"] = parentControllers.split(separator: " ").map {
                String($0.drop(while: { $0 == "+" }))
            }.joined(separator: " ")
        }
        return true
    }

    func removeDirectory(_ path: String) throws(SystemCallError) {
        if let count = busy[path], count > 0 {
            busy[path] = count - 1
            throw SystemCallError(call: "rmdir", errno: EBUSY, subject: path)
        }
        guard directories.remove(path) != nil else {
            throw SystemCallError(call: "rmdir", errno: ENOENT, subject: path)
        }
        removed.append(path)
    }

    func readFile(_ path: String) throws(SystemCallError) -> String {
        guard let value = files[path] else { throw SystemCallError(call: "open", errno: ENOENT, subject: path) }
        return value
    }

    func writeFile(_ path: String, _ value: String) throws(SystemCallError) {
        if let code = failingWrites[path] { throw SystemCallError(call: "write", errno: code, subject: path) }
        guard directories.contains(FileSystem.parent(of: path)) else {
            throw SystemCallError(call: "open", errno: ENOENT, subject: path)
        }
        if strictFiles && files[path] == nil { throw SystemCallError(call: "open", errno: ENOENT, subject: path) }
        writes.append((path, value))
        files[path] = value
        // Kernel behaviour the managers wait for.
        if path.hasSuffix("/cgroup.freeze") {
            files[FileSystem.parent(of: path) + "/cgroup.events"] = "populated 1\nfrozen \(value)\n"
        }
        if path.hasSuffix("/freezer.state") { files[path] = value }
    }

    func subdirectories(_ path: String) throws(SystemCallError) -> [String] {
        directories.filter { FileSystem.parent(of: $0) == path }.map { String($0.dropFirst(path.count + 1)) }.sorted()
    }

    func exists(_ path: String) -> Bool { directories.contains(path) || files[path] != nil }
    func fileSystemType(_ path: String) throws(SystemCallError) -> Int { FileSystemMagic.cgroup2 }
    func mountInfo() throws(SystemCallError) -> String { mountInfoText }
    func ownCgroups() throws(SystemCallError) -> String { ownCgroupText }
    func openDirectory(_ path: String) throws(SystemCallError) -> FileDescriptor {
        guard directories.contains(path) else { throw SystemCallError(call: "open", errno: ENOENT, subject: path) }
        return try FileDescriptor.open("/", BERTH_O_PATH | O_DIRECTORY)
    }
    func kill(pid: Int32, signal: Int32) throws(SystemCallError) { signals.append((pid, signal)) }
    func sleep(milliseconds: Int) { sleeps += 1 }
    var devicePrograms: [(directory: String, instructions: [UInt64])] = []
    func attachDeviceProgram(_ instructions: [UInt64], directory: String) throws(SystemCallError) {
        devicePrograms.append((directory, instructions))
    }

    /// Writes to `path`, in order.
    func values(_ path: String) -> [String] { writes.filter { $0.path == path }.map(\.value) }
}

/// This machine's layout: v1 controllers plus cgroup2 at /sys/fs/cgroup/unified.
let hybridMountInfo = """
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
    34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
    37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
    38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
    39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
    """

/// A typical systemd host: cgroup2 only.
let unifiedMountInfo = """
    22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
    30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
    """

/// A fake with the hierarchy roots of `mountInfo` present.
func cgroupFake(_ mountInfo: String, ownCgroup: String = "0::/\n") -> CgroupFakeFileSystem {
    let fs = CgroupFakeFileSystem(mountInfo: mountInfo, ownCgroup: ownCgroup)
    let hierarchies = CgroupHierarchies(mountInfo: mountInfo)
    fs.directories.insert("/sys/fs/cgroup")
    for mount in hierarchies.v1.values { fs.directories.insert(mount.mountPoint) }
    if let unified = hierarchies.unified {
        fs.directories.insert(unified.mountPoint)
        fs.files[unified.mountPoint + "/cgroup.controllers"] = ""
    }
    if let cpuset = hierarchies.v1["cpuset"] {
        fs.files[cpuset.mountPoint + "/cpuset.cpus"] = "0-3\n"
        fs.files[cpuset.mountPoint + "/cpuset.mems"] = "0\n"
    }
    return fs
}

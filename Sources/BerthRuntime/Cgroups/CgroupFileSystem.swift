#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// Everything the cgroup managers do to the system, so planning and managers are testable without root.
public protocol CgroupFileSystem: Sendable {
    /// mkdir; returns false when the directory already existed.
    func makeDirectory(_ path: String) throws(SystemCallError) -> Bool
    func removeDirectory(_ path: String) throws(SystemCallError)
    func readFile(_ path: String) throws(SystemCallError) -> String
    func writeFile(_ path: String, _ value: String) throws(SystemCallError)
    /// `writeFile` on a helper thread; the caller waits for it later (see CgroupManager.beginAdd).
    func beginWrite(_ path: String, _ value: String) throws(SystemCallError) -> PendingWrite
    /// Names of the sub-directories of `path` (child cgroups).
    func subdirectories(_ path: String) throws(SystemCallError) -> [String]
    func exists(_ path: String) -> Bool
    /// statfs f_type of `path` (cgroup v1 0x27e0eb, cgroup2 0x63677270).
    func fileSystemType(_ path: String) throws(SystemCallError) -> Int
    /// /proc/self/mountinfo.
    func mountInfo() throws(SystemCallError) -> String
    /// The hierarchies when every one is mounted where systemd puts it (see
    /// ``CgroupHierarchies/standard(ownCgroups:fileSystemType:)``), found without reading mountinfo;
    /// nil to read mountinfo instead.
    func standardHierarchies() -> CgroupHierarchies?
    /// /proc/self/cgroup.
    func ownCgroups() throws(SystemCallError) -> String
    /// An O_PATH descriptor of a directory (for CLONE_INTO_CGROUP).
    func openDirectory(_ path: String) throws(SystemCallError) -> FileDescriptor
    func kill(pid: Int32, signal: Int32) throws(SystemCallError)
    func sleep(milliseconds: Int)
    /// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program and attaches it to the cgroup directory (v2 devices).
    func attachDeviceProgram(_ instructions: [UInt64], directory: String) throws(SystemCallError)
}

extension CgroupFileSystem {
    /// Fakes describe their hierarchies in their mount table.
    public func standardHierarchies() -> CgroupHierarchies? { nil }

    /// Fakes write at once.
    public func beginWrite(_ path: String, _ value: String) throws(SystemCallError) -> PendingWrite {
        do throws(SystemCallError) { try writeFile(path, value) } catch { return PendingWrite(failed: error) }
        return PendingWrite(failed: nil)
    }
}

/// A write(2) running on a helper thread (berth_write_file_async). Waited for by `wait()`, or when
/// released, so no thread outlives its owner.
public final class PendingWrite: @unchecked Sendable {
    private var job: OpaquePointer?
    private var failure: SystemCallError?
    private let path: String

    init(job: OpaquePointer, path: String) {
        self.job = job
        self.path = path
    }

    init(failed: SystemCallError?) {
        self.failure = failed
        self.path = ""
    }

    public func wait() throws(SystemCallError) {
        if let job {
            let code = berth_write_file_wait(job)
            self.job = nil
            if code != 0 { failure = SystemCallError(call: "write", errno: code, subject: path) }
        }
        if let failure { throw failure }
    }

    deinit {
        if let job { _ = berth_write_file_wait(job) }
    }
}

/// The real thing, through BerthOS.
public struct RealCgroupFileSystem: CgroupFileSystem {
    public init() {}

    public func makeDirectory(_ path: String) throws(SystemCallError) -> Bool {
        if mkdir(path, 0o755) == 0 { return true }
        if errno == EEXIST { return false }
        throw SystemCallError(call: "mkdir", errno: errno, subject: path)
    }

    public func removeDirectory(_ path: String) throws(SystemCallError) {
        _ = try sys("rmdir", path) { rmdir(path) }
    }

    public func readFile(_ path: String) throws(SystemCallError) -> String {
        try FileSystem.readString(path)
    }

    public func writeFile(_ path: String, _ value: String) throws(SystemCallError) {
        let fd = try FileDescriptor.open(path, O_WRONLY)
        // One write(2) per value: cgroup files parse each write as one command.
        let bytes = Array(value.utf8)
        _ = try sys("write", path) { bytes.withUnsafeBytes { Glibc.write(fd.rawValue, $0.baseAddress, $0.count) } }
    }

    public func beginWrite(_ path: String, _ value: String) throws(SystemCallError) -> PendingWrite {
        guard let job = berth_write_file_async(path, value) else {
            throw SystemCallError(call: "pthread_create", errno: errno, subject: path)
        }
        return PendingWrite(job: job, path: path)
    }

    public func subdirectories(_ path: String) throws(SystemCallError) -> [String] {
        try FileSystem.listSubdirectories(path)
    }

    public func exists(_ path: String) -> Bool { FileSystem.exists(path) }

    public func fileSystemType(_ path: String) throws(SystemCallError) -> Int { try FileSystemMagic.of(path: path) }

    public func mountInfo() throws(SystemCallError) -> String {
        String(decoding: try FileSystemMagic.openProc("/proc/self/mountinfo", O_RDONLY).readAll(), as: UTF8.self)
    }

    public func ownCgroups() throws(SystemCallError) -> String {
        String(decoding: try FileSystemMagic.openProc("/proc/self/cgroup", O_RDONLY).readAll(), as: UTF8.self)
    }

    public func standardHierarchies() -> CgroupHierarchies? {
        guard let own = try? ownCgroups() else { return nil }
        return CgroupHierarchies.standard(ownCgroups: own) { path in try? FileSystemMagic.of(path: path) }
    }

    public func openDirectory(_ path: String) throws(SystemCallError) -> FileDescriptor {
        try FileDescriptor.open(path, BERTH_O_PATH | O_DIRECTORY)
    }

    public func kill(pid: Int32, signal: Int32) throws(SystemCallError) {
        _ = try sys("kill", "\(pid)") { Glibc.kill(pid, signal) }
    }

    public func sleep(milliseconds: Int) {
        usleep(useconds_t(milliseconds * 1000))
    }

    public func attachDeviceProgram(_ instructions: [UInt64], directory: String) throws(SystemCallError) {
        let cgroup = try FileDescriptor.open(directory, O_RDONLY | O_DIRECTORY)
        var log = [CChar](repeating: 0, count: 4096)
        let program = instructions.withUnsafeBufferPointer { insns in
            berth_bpf_attach_device_program(
                cgroup.rawValue, insns.baseAddress, UInt32(insns.count), &log, UInt32(log.count))
        }
        if program < 0 {
            let code = errno
            let message = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw SystemCallError(
                call: "bpf(BPF_PROG_LOAD/ATTACH)", errno: code,
                subject: message.isEmpty
                    ? directory : "\(directory): \(message.split(separator: "\n").suffix(2).joined(separator: "; "))")
        }
        // The attachment holds the program; this descriptor is not needed.
        close(program)
    }
}

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
    /// Names of the sub-directories of `path` (child cgroups).
    func subdirectories(_ path: String) throws(SystemCallError) -> [String]
    func exists(_ path: String) -> Bool
    /// statfs f_type of `path` (cgroup v1 0x27e0eb, cgroup2 0x63677270).
    func fileSystemType(_ path: String) throws(SystemCallError) -> Int
    /// /proc/self/mountinfo.
    func mountInfo() throws(SystemCallError) -> String
    /// /proc/self/cgroup.
    func ownCgroups() throws(SystemCallError) -> String
    /// An O_PATH descriptor of a directory (for CLONE_INTO_CGROUP).
    func openDirectory(_ path: String) throws(SystemCallError) -> FileDescriptor
    func kill(pid: Int32, signal: Int32) throws(SystemCallError)
    func sleep(milliseconds: Int)
    /// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program and attaches it to the cgroup directory (v2 devices).
    func attachDeviceProgram(_ instructions: [UInt64], directory: String) throws(SystemCallError)
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

    public func subdirectories(_ path: String) throws(SystemCallError) -> [String] {
        try FileSystem.listDirectory(path).filter { FileSystem.isDirectory(path + "/" + $0) }
    }

    public func exists(_ path: String) -> Bool { FileSystem.exists(path) }

    public func fileSystemType(_ path: String) throws(SystemCallError) -> Int { try FileSystemMagic.of(path: path) }

    public func mountInfo() throws(SystemCallError) -> String {
        String(decoding: try FileSystemMagic.openProc("/proc/self/mountinfo", O_RDONLY).readAll(), as: UTF8.self)
    }

    public func ownCgroups() throws(SystemCallError) -> String {
        String(decoding: try FileSystemMagic.openProc("/proc/self/cgroup", O_RDONLY).readAll(), as: UTF8.self)
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
            berth_bpf_attach_device_program(cgroup.rawValue, insns.baseAddress, UInt32(insns.count), &log, UInt32(log.count))
        }
        if program < 0 {
            let code = errno
            let message = String(cString: log)
            throw SystemCallError(call: "bpf(BPF_PROG_LOAD/ATTACH)", errno: code,
                                  subject: message.isEmpty ? directory : "\(directory): \(message.split(separator: "\n").suffix(2).joined(separator: "; "))")
        }
        // The attachment holds the program; this descriptor is not needed.
        close(program)
    }
}

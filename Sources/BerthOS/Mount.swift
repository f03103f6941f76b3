#if canImport(Glibc)
import Glibc
#endif
import CBerthShim

/// mount(2) and friends with errors that name the call and the target.
public enum Mount {
    public static func mount(source: String?, target: String, type: String?, flags: UInt, data: String?)
        throws(SystemCallError)
    {
        _ = try sys("mount", "\(source ?? "none") on \(target)\(type.map { " type " + $0 } ?? "")") {
            Glibc.mount(source, target, type, flags, data)
        }
    }

    public static func unmount(_ target: String, flags: Int32 = 0) throws(SystemCallError) {
        _ = try sys("umount2", target) { umount2(target, flags) }
    }

    /// Bind-mounts `source` onto the directory or file held by `target` (an fd resolved inside a root),
    /// going through /proc/self/fd so a symlink swapped in after resolution cannot redirect it.
    public static func bind(source: String, onto target: FileDescriptor, recursive: Bool) throws(SystemCallError) {
        try mount(
            source: source, target: target.procPath, type: nil,
            flags: UInt(MS_BIND) | (recursive ? UInt(MS_REC) : 0), data: nil)
    }
}

/// Checks that a descriptor is on the filesystem it must be on (CVE-2019-16884: /proc must be procfs).
public enum FileSystemMagic {
    public static let proc: Int = 0x9fa0
    public static let sysfs: Int = 0x62656572
    public static let cgroup: Int = 0x27e0eb
    public static let cgroup2: Int = 0x63677270
    public static let tmpfs: Int = 0x01021994
    public static let overlay: Int = 0x794c7630

    public static func of(_ fd: FileDescriptor) throws(SystemCallError) -> Int {
        try sys("fstatfs") { berth_fstatfs_type(fd.rawValue) }
    }

    public static func of(path: String) throws(SystemCallError) -> Int {
        try sys("statfs", path) { berth_statfs_type(path) }
    }

    /// Opens `path`, refusing anything that is not on procfs (and refusing to follow a symlink at the end).
    /// O_TRUNC is applied only after the check, so a file that is not procfs is never modified.
    public static func openProc(_ path: String, _ flags: Int32) throws(SystemCallError) -> FileDescriptor {
        let fd = try FileDescriptor.open(path, (flags & ~O_TRUNC) | O_NOFOLLOW)
        if try of(fd) != proc {
            throw SystemCallError(call: "fstatfs", errno: EXDEV, subject: "\(path) is not on procfs")
        }
        if flags & O_TRUNC != 0 {
            _ = try sys("ftruncate", path) { ftruncate(fd.rawValue, 0) }
        }
        return fd
    }
}

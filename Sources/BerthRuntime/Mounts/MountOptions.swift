#if canImport(Glibc)
import Glibc
#endif

/// mount(2) flags by the names config.json uses (the mount(8) option names, as runc accepts them).
public struct MountOptions: Equatable, Sendable {
    /// Flags for the mount itself.
    public var flags: UInt = 0
    /// Propagation changes applied after mounting (MS_SHARED, MS_PRIVATE, … possibly with MS_REC).
    public var propagation: [UInt] = []
    /// Filesystem-specific options passed as mount data (e.g. `mode=755,size=65536k`).
    public var data: [String] = []
    public var isBind: Bool { flags & UInt(MS_BIND) != 0 }
    public var isRecursiveBind: Bool { isBind && flags & UInt(MS_REC) != 0 }
    /// Flags that a bind mount only takes on a second, MS_REMOUNT call.
    public var remountFlags: UInt { flags & ~UInt(MS_BIND | MS_REC | MS_REMOUNT) }

    static let setting: [String: UInt] = [
        "ro": UInt(MS_RDONLY), "nosuid": UInt(MS_NOSUID), "nodev": UInt(MS_NODEV), "noexec": UInt(MS_NOEXEC),
        "sync": UInt(MS_SYNCHRONOUS), "dirsync": UInt(MS_DIRSYNC), "remount": UInt(MS_REMOUNT),
        "mand": UInt(MS_MANDLOCK),
        "noatime": UInt(MS_NOATIME), "nodiratime": UInt(MS_NODIRATIME), "bind": UInt(MS_BIND),
        "rbind": UInt(MS_BIND | MS_REC), "relatime": UInt(MS_RELATIME), "strictatime": UInt(MS_STRICTATIME),
        "lazytime": UInt(1 << 25), "silent": UInt(MS_SILENT), "iversion": UInt(MS_I_VERSION),
    ]
    static let clearing: [String: UInt] = [
        "rw": UInt(MS_RDONLY), "suid": UInt(MS_NOSUID), "dev": UInt(MS_NODEV), "exec": UInt(MS_NOEXEC),
        "async": UInt(MS_SYNCHRONOUS), "nomand": UInt(MS_MANDLOCK), "atime": UInt(MS_NOATIME),
        "diratime": UInt(MS_NODIRATIME), "norelatime": UInt(MS_RELATIME), "nostrictatime": UInt(MS_STRICTATIME),
        "nolazytime": UInt(1 << 25), "loud": UInt(MS_SILENT), "noiversion": UInt(MS_I_VERSION), "defaults": 0,
    ]
    static let propagationFlags: [String: UInt] = [
        "private": UInt(MS_PRIVATE), "rprivate": UInt(MS_PRIVATE | MS_REC),
        "shared": UInt(MS_SHARED), "rshared": UInt(MS_SHARED | MS_REC),
        "slave": UInt(MS_SLAVE), "rslave": UInt(MS_SLAVE | MS_REC),
        "unbindable": UInt(MS_UNBINDABLE), "runbindable": UInt(MS_UNBINDABLE | MS_REC),
    ]
    /// Recursive attributes (mount_setattr) and runc extensions that Berth does not implement yet.
    static let unsupported: Set<String> = [
        "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec",
        "rnodiratime", "rdiratime", "rrelatime", "rnorelatime", "rnoatime",
        "ratime", "rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow",
        "idmap", "ridmap", "tmpcopyup",
    ]

    public init(_ options: [String]) {
        for option in options {
            if let flag = Self.setting[option] {
                flags |= flag
            } else if let flag = Self.clearing[option] {
                flags &= ~flag
            } else if let flag = Self.propagationFlags[option] {
                propagation.append(flag)
            } else {
                data.append(option)
            }
        }
    }

    public enum Check: Equatable { case ok, failure(String) }

    /// Options Berth cannot honour are rejected up front rather than silently ignored.
    public static func check(_ option: String) -> Check {
        if unsupported.contains(option) {
            return .failure("mount option \"\(option)\" is not supported by berth-runtime")
        }
        if option.isEmpty { return .failure("empty mount option") }
        return .ok
    }
}

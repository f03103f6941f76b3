#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// A Linux capability, numbered as in linux/capability.h (0 … 40 as of Linux 6.x).
public enum Capability: Int, CaseIterable, Sendable {
    case chown = 0, dacOverride, dacReadSearch, fowner, fsetid, kill, setgid, setuid, setpcap
    case linuxImmutable, netBindService, netBroadcast, netAdmin, netRaw, ipcLock, ipcOwner, sysModule
    case sysRawio, sysChroot, sysPtrace, sysPacct, sysAdmin, sysBoot, sysNice, sysResource, sysTime
    case sysTtyConfig, mknod, lease, auditWrite, auditControl, setfcap, macOverride, macAdmin, syslog
    case wakeAlarm, blockSuspend, auditRead, perfmon, bpf, checkpointRestore

    /// The kernel's name, e.g. "CAP_NET_ADMIN" — the spelling config.json uses.
    public var name: String { "CAP_" + Capability.bareNames[rawValue] }

    private static let bareNames = [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE",
    ]

    /// Looks up "CAP_NET_ADMIN". Like runc, the "CAP_" prefix is required; case must match.
    public init?(name: String) {
        guard name.hasPrefix("CAP_"), let index = Capability.bareNames.firstIndex(of: String(name.dropFirst(4))) else {
            return nil
        }
        self.init(rawValue: index)!
    }

    /// The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap), or the highest in
    /// this table when that cannot be read.
    public static func lastSupported() -> Int {
        if let fd = try? FileSystemMagic.openProc("/proc/sys/kernel/cap_last_cap", O_RDONLY),
            let bytes = try? fd.read(upTo: 16),
            let value = Int(String(decoding: bytes, as: UTF8.self).filter { $0.isNumber })
        {
            return value
        }
        return Capability.allCases.count - 1
    }
}

/// The five capability sets of config.json, resolved to bitmasks ready for capset(2).
public struct CapabilityPlan: Sendable, Equatable {
    public var bounding: UInt64 = 0
    public var effective: UInt64 = 0
    public var inheritable: UInt64 = 0
    public var permitted: UInt64 = 0
    public var ambient: UInt64 = 0
    /// The highest capability number the kernel supports; bits above it are never set.
    public var lastCapability: Int
    /// Names skipped because this kernel does not know them (runc warns likewise and carries on).
    public var warnings: [String] = []

    /// Resolves the sets. A name that is not a capability at all is an error naming its field; a real
    /// capability newer than the running kernel (above `lastCapability`) is skipped with a warning.
    /// `nil` capabilities means every set is empty (a process with no capabilities).
    public init(_ capabilities: Spec.Capabilities?, lastCapability: Int = Capability.lastSupported())
        throws(RuntimeError)
    {
        self.lastCapability = lastCapability
        guard let capabilities else { return }
        var skipped: [String] = []
        func mask(_ names: [String]?, _ set: String) throws(RuntimeError) -> UInt64 {
            var result: UInt64 = 0
            for (index, name) in (names ?? []).enumerated() {
                guard let capability = Capability(name: name) else {
                    let hint = Capability(name: "CAP_" + name.uppercased()).map { " (did you mean \($0.name)?)" } ?? ""
                    throw .invalidConfig(
                        field: "process.capabilities.\(set)[\(index)]", reason: "unknown capability \"\(name)\"\(hint)")
                }
                if capability.rawValue > lastCapability {
                    if !skipped.contains(name) { skipped.append(name) }
                    continue
                }
                result |= 1 << UInt64(capability.rawValue)
            }
            return result
        }
        bounding = try mask(capabilities.bounding, "bounding")
        effective = try mask(capabilities.effective, "effective")
        inheritable = try mask(capabilities.inheritable, "inheritable")
        permitted = try mask(capabilities.permitted, "permitted")
        ambient = try mask(capabilities.ambient, "ambient")
        if !skipped.isEmpty {
            warnings.append(
                "ignoring capabilities unknown to this kernel (cap_last_cap \(lastCapability)): \(skipped.joined(separator: ", "))"
            )
        }
    }

    /// Capabilities in a mask, lowest first.
    public static func capabilities(in mask: UInt64) -> [Capability] {
        Capability.allCases.filter { mask & (1 << UInt64($0.rawValue)) != 0 }
    }

    /// Capability numbers the bounding set must lose: every supported one not in `bounding`.
    public var boundingDrops: [Int] {
        (0...lastCapability).filter { bounding & (1 << UInt64($0)) == 0 }
    }
}

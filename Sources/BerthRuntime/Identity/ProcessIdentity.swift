#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// Switches the container's init to its configured user and capabilities, in runc's order.
///
/// Everything here acts on the calling thread (capabilities) or the whole process (ids, umask); call it
/// from the container's single-threaded init after pivot_root and before seccomp.
public enum ProcessIdentity {
    // prctl options (linux/prctl.h).
    static let PR_SET_KEEPCAPS: Int32 = 8
    static let PR_CAPBSET_DROP: Int32 = 24
    static let PR_SET_NO_NEW_PRIVS: Int32 = 38
    static let PR_CAP_AMBIENT: Int32 = 47
    static let PR_CAP_AMBIENT_RAISE: UInt = 2
    static let PR_CAP_AMBIENT_CLEAR_ALL: UInt = 4

    /// runc's order: drop the bounding set; keep capabilities across the uid change; setgroups, setgid,
    /// setuid; stop keeping; capset the effective/permitted/inheritable sets; raise ambient ones; umask
    /// (0022 when config.json has none, as runc).
    ///
    /// setgroups is skipped when the user namespace denies it (/proc/self/setgroups is "deny"); then
    /// additionalGids are an error unless empty. Returns warnings (e.g. an ambient capability that could
    /// not be raised because it is not both permitted and inheritable — runc only warns too).
    @discardableResult
    public static func apply(user: Spec.User, capabilities: CapabilityPlan, noNewPrivileges: Bool = false)
        throws(RuntimeError) -> [String]
    {
        try dropBoundingSet(capabilities)
        try prctl(PR_SET_KEEPCAPS, 1, "PR_SET_KEEPCAPS")
        try switchUser(user)
        try prctl(PR_SET_KEEPCAPS, 0, "PR_SET_KEEPCAPS")
        let warnings = try setCapabilities(capabilities)
        umask(mode_t(user.umask ?? 0o022))
        if noNewPrivileges { try setNoNewPrivileges() }
        return warnings
    }

    /// prctl(PR_SET_NO_NEW_PRIVS, 1): the caller applies it right before loading seccomp.
    public static func setNoNewPrivileges() throws(RuntimeError) {
        try prctl(PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")
    }

    /// Drops every supported capability that is not in the plan's bounding set (PR_CAPBSET_DROP).
    public static func dropBoundingSet(_ plan: CapabilityPlan) throws(RuntimeError) {
        for capability in plan.boundingDrops {
            let result = berth_prctl(PR_CAPBSET_DROP, UInt(capability), 0, 0, 0)
            if result != 0 && errno != EINVAL {  // EINVAL: the kernel does not know this capability
                throw .system(
                    SystemCallError(call: "prctl(PR_CAPBSET_DROP)", errno: errno, subject: "capability \(capability)"),
                    context: "dropping the bounding set")
            }
        }
    }

    /// setgroups (unless denied in this user namespace), setgid, setuid — all three real/effective/saved.
    public static func switchUser(_ user: Spec.User) throws(RuntimeError) {
        let groups = user.additionalGids ?? []
        if setgroupsAllowed() {
            let gids = groups.map { gid_t($0) }
            let result = gids.withUnsafeBufferPointer { setgroups(gids.count, $0.baseAddress) }
            if result != 0 {
                throw .system(
                    SystemCallError(call: "setgroups", errno: errno, subject: "\(groups)"),
                    context: "process.user.additionalGids")
            }
        } else if !groups.isEmpty {
            throw .invalidConfig(
                field: "process.user.additionalGids",
                reason: "setgroups is denied in this user namespace (/proc/self/setgroups is \"deny\")")
        }
        if setgid(gid_t(user.gid)) != 0 {  // as root: real, effective and saved
            throw .system(
                SystemCallError(call: "setgid", errno: errno, subject: "\(user.gid)"), context: "process.user.gid")
        }
        if setuid(uid_t(user.uid)) != 0 {
            throw .system(
                SystemCallError(call: "setuid", errno: errno, subject: "\(user.uid)"), context: "process.user.uid")
        }
    }

    /// capset(effective, permitted, inheritable), then clears and raises the ambient set.
    @discardableResult
    public static func setCapabilities(_ plan: CapabilityPlan) throws(RuntimeError) -> [String] {
        func words(_ mask: UInt64) -> [UInt32] {
            [UInt32(truncatingIfNeeded: mask), UInt32(truncatingIfNeeded: mask >> 32)]
        }
        let effective = words(plan.effective), permitted = words(plan.permitted), inheritable = words(plan.inheritable)
        if berth_capset(effective, permitted, inheritable) != 0 {
            throw .system(SystemCallError(call: "capset", errno: errno), context: "process.capabilities")
        }
        var warnings: [String] = []
        _ = berth_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        for capability in CapabilityPlan.capabilities(in: plan.ambient) {
            if berth_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, UInt(capability.rawValue), 0, 0) != 0 {
                warnings.append(
                    "cannot raise ambient capability \(capability.name): \(Errno.name(errno)) (it must be permitted and inheritable)"
                )
            }
        }
        return warnings
    }

    /// Reads the calling thread's effective, permitted and inheritable sets.
    public static func currentCapabilities() throws(RuntimeError) -> (
        effective: UInt64, permitted: UInt64, inheritable: UInt64
    ) {
        var effective: [UInt32] = [0, 0], permitted: [UInt32] = [0, 0], inheritable: [UInt32] = [0, 0]
        if berth_capget(0, &effective, &permitted, &inheritable) != 0 {
            throw .system(SystemCallError(call: "capget", errno: errno), context: "reading capabilities")
        }
        func mask(_ w: [UInt32]) -> UInt64 { UInt64(w[0]) | UInt64(w[1]) << 32 }
        return (mask(effective), mask(permitted), mask(inheritable))
    }

    /// Writes process.oomScoreAdj to /proc/self/oom_score_adj, opened through a descriptor verified to be
    /// on procfs.
    public static func setOOMScoreAdjustment(_ value: Int) throws(RuntimeError) {
        guard (-1000...1000).contains(value) else {
            throw .invalidConfig(field: "process.oomScoreAdj", reason: "\(value) is outside -1000…1000")
        }
        do {
            let fd = try FileSystemMagic.openProc("/proc/self/oom_score_adj", O_WRONLY)
            try fd.write(String(value))
        } catch {
            throw .system(error, context: "process.oomScoreAdj")
        }
    }

    private static func setgroupsAllowed() -> Bool {
        guard let fd = try? FileSystemMagic.openProc("/proc/self/setgroups", O_RDONLY),
            let bytes = try? fd.read(upTo: 16)
        else { return true }
        return !String(decoding: bytes, as: UTF8.self).hasPrefix("deny")
    }

    private static func prctl(_ option: Int32, _ value: UInt, _ name: String) throws(RuntimeError) {
        if berth_prctl(option, value, 0, 0, 0) != 0 {
            throw .system(SystemCallError(call: "prctl(\(name))", errno: errno), context: "")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import CSeccomp

/// A seccomp filter from config.json, built with libseccomp and loaded into the calling thread's
/// process (the container's init, right before exec).
public struct SeccompProgram: Sendable {
    /// The translation of `linux.seccomp`: actions, architectures, rules, flags.
    public let plan: SeccompPlan

    public init(_ spec: Spec.Seccomp) throws(RuntimeError) {
        plan = try SeccompPlan(spec)
    }

    public init(plan: SeccompPlan) {
        self.plan = plan
    }

    /// Builds the filter and loads it. The no_new_privs bit is left alone (the caller sets it from
    /// process.noNewPrivileges; without it, loading needs CAP_SYS_ADMIN). Returns the notify listener
    /// descriptor when a rule uses SCMP_ACT_NOTIFY, else nil.
    @discardableResult
    public func load() throws(RuntimeError) -> FileDescriptor? {
        guard let context = seccomp_init(plan.defaultAction) else {
            throw .seccomp("seccomp_init failed for default action 0x\(String(plan.defaultAction, radix: 16))")
        }
        defer { seccomp_release(context) }
        try check(seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0), "disabling no_new_privs in libseccomp")
        if plan.logFlag { try check(seccomp_attr_set(context, SCMP_FLTATR_CTL_LOG, 1), "linux.seccomp.flags: SECCOMP_FILTER_FLAG_LOG") }
        if plan.specAllowFlag { try check(seccomp_attr_set(context, SCMP_FLTATR_CTL_SSB, 1), "linux.seccomp.flags: SECCOMP_FILTER_FLAG_SPEC_ALLOW") }
        for arch in plan.architectures {
            let result = seccomp_arch_add(context, arch)
            if result != -EEXIST { try check(result, "linux.seccomp.architectures: adding arch token 0x\(String(arch, radix: 16))") }
        }
        for rule in plan.rules {
            let conditions = rule.conditions.map {
                scmp_arg_cmp(arg: $0.index, op: scmp_compare(rawValue: $0.op), datum_a: $0.value, datum_b: $0.valueTwo)
            }
            let result = conditions.withUnsafeBufferPointer {
                seccomp_rule_add_array(context, rule.action, rule.number, UInt32($0.count), $0.baseAddress)
            }
            try check(result, "adding the rule for \(rule.syscall)")
        }
        try check(seccomp_load(context), "loading the filter")
        guard plan.usesNotify else { return nil }
        let fd = seccomp_notify_fd(context)
        try check(fd, "getting the notify descriptor")
        return FileDescriptor(owning: fd)
    }

    private func check(_ result: Int32, _ what: String) throws(RuntimeError) {
        if result < 0 {
            throw .system(SystemCallError(call: "libseccomp", errno: -result, subject: what), context: "seccomp")
        }
    }

    /// Hands the notify descriptor to the seccomp agent at `path` (linux.seccomp.listenerPath): connects
    /// to the unix socket and sends `state` (the runtime-spec "container process state" JSON) with the
    /// descriptor attached (SCM_RIGHTS).
    public static func sendToListener(path: String, fd: FileDescriptor, state: [UInt8]) throws(RuntimeError) {
        let socketFD = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if socketFD < 0 {
            throw .system(SystemCallError(call: "socket", errno: errno, subject: path), context: "linux.seccomp.listenerPath")
        }
        let socket = FileDescriptor(owning: socketFD)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .invalidConfig(field: "linux.seccomp.listenerPath", reason: "\(path) is longer than a unix socket path may be")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in pathBytes.enumerated() { raw[i] = byte }
        }
        do throws(SystemCallError) {
            _ = try sys("connect", path) {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(socket.rawValue, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
            }
            _ = try sys("sendmsg(SCM_RIGHTS)", path) {
                state.withUnsafeBytes { berth_send_fd(socket.rawValue, fd.rawValue, $0.baseAddress, $0.count) }
            }
        } catch {
            throw .system(error, context: "linux.seccomp.listenerPath")
        }
    }
}

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
    ///
    /// With a `cache`, a filter without notify rules is compiled by libseccomp once and kept as BPF:
    /// later containers with the same plan load the kept program with seccomp(2) directly. Compiling
    /// docker's default profile costs more than the rest of a container's start; loading costs ~0.1 ms.
    @discardableResult
    public func load(cache: SeccompCache? = nil) throws(RuntimeError) -> FileDescriptor? {
        if let program = try prepare(cache: cache) {
            try loadCompiled(program)
            return nil
        }
        let context = try makeContext()
        defer { seccomp_release(context) }
        try check(seccomp_load(context), "loading the filter")
        guard plan.usesNotify else { return nil }
        let fd = seccomp_notify_fd(context)
        try check(fd, "getting the notify descriptor")
        return FileDescriptor(owning: fd)
    }

    /// The compiled filter, from the cache or compiled (and kept) now, when it can be loaded as BPF: with
    /// a cache and no notify rule. The init does this before it reports `created`, so that after
    /// `start` only the seccomp(2) call is left.
    public func prepare(cache: SeccompCache?) throws(RuntimeError) -> [UInt8]? {
        guard let cache, !plan.usesNotify else { return nil }
        let key = SeccompCache.key(plan)
        if let kept = cache.lookup(key) { return kept }
        let program = try compile()
        cache.store(key, program: program)
        return program
    }

    /// The filter as libseccomp generates it: classic BPF, 8 bytes per instruction.
    public func compile() throws(RuntimeError) -> [UInt8] {
        let context = try makeContext()
        defer { seccomp_release(context) }
        // Exported through a pipe: a filter has at most 4096 instructions (32 KiB), under a pipe's 64 KiB.
        let pipe: Pipe
        do { pipe = try Pipe() } catch { throw .system(error, context: "seccomp export") }
        try check(seccomp_export_bpf(context, pipe.writing.rawValue), "exporting the filter")
        pipe.writing.close()
        do { return try pipe.reading.readAll() } catch {
            throw .system(error, context: "seccomp export")
        }
    }

    /// Loads a compiled filter with the plan's flags (what libseccomp would pass to seccomp(2)).
    public func loadCompiled(_ program: [UInt8]) throws(RuntimeError) {
        guard !program.isEmpty, program.count % 8 == 0 else {
            throw .seccomp("a compiled filter of \(program.count) bytes")
        }
        var flags: UInt32 = 0
        if plan.logFlag { flags |= 2 }  // SECCOMP_FILTER_FLAG_LOG
        if plan.specAllowFlag { flags |= 4 }  // SECCOMP_FILTER_FLAG_SPEC_ALLOW
        let result = program.withUnsafeBytes {
            berth_seccomp_set_filter($0.baseAddress, UInt32(program.count / 8), flags)
        }
        if result < 0 {
            throw .system(
                SystemCallError(call: "seccomp(SECCOMP_SET_MODE_FILTER)", errno: errno, subject: "linux.seccomp"),
                context: "seccomp")
        }
    }

    /// A libseccomp context with the plan's attributes, architectures and rules.
    private func makeContext() throws(RuntimeError) -> scmp_filter_ctx {
        guard let context = seccomp_init(plan.defaultAction) else {
            throw .seccomp("seccomp_init failed for default action 0x\(String(plan.defaultAction, radix: 16))")
        }
        do throws(RuntimeError) {
            try check(seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0), "disabling no_new_privs in libseccomp")
            if plan.logFlag {
                try check(
                    seccomp_attr_set(context, SCMP_FLTATR_CTL_LOG, 1), "linux.seccomp.flags: SECCOMP_FILTER_FLAG_LOG")
            }
            if plan.specAllowFlag {
                try check(
                    seccomp_attr_set(context, SCMP_FLTATR_CTL_SSB, 1),
                    "linux.seccomp.flags: SECCOMP_FILTER_FLAG_SPEC_ALLOW")
            }
            for arch in plan.architectures {
                let result = seccomp_arch_add(context, arch)
                if result != -EEXIST {
                    try check(result, "linux.seccomp.architectures: adding arch token 0x\(String(arch, radix: 16))")
                }
            }
            for rule in plan.rules {
                let conditions = rule.conditions.map {
                    scmp_arg_cmp(
                        arg: $0.index, op: scmp_compare(rawValue: $0.op), datum_a: $0.value, datum_b: $0.valueTwo)
                }
                let result = conditions.withUnsafeBufferPointer {
                    seccomp_rule_add_array(context, rule.action, rule.number, UInt32($0.count), $0.baseAddress)
                }
                try check(result, "adding the rule for \(rule.syscall)")
            }
        } catch {
            seccomp_release(context)
            throw error
        }
        return context
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
            throw .system(
                SystemCallError(call: "socket", errno: errno, subject: path), context: "linux.seccomp.listenerPath")
        }
        let socket = FileDescriptor(owning: socketFD)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .invalidConfig(
                field: "linux.seccomp.listenerPath", reason: "\(path) is longer than a unix socket path may be")
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

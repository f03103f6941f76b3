import CSeccomp

/// `linux.seccomp` translated to libseccomp's terms, checked field by field. Building it touches no
/// kernel state (libseccomp only resolves names), so it is unit-testable; ``SeccompProgram/load()``
/// turns it into a filter.
public struct SeccompPlan: Sendable, Equatable {
    public struct Condition: Sendable, Equatable {
        public var index: UInt32
        /// enum scmp_compare value (SCMP_CMP_NE = 1 … SCMP_CMP_MASKED_EQ = 7).
        public var op: UInt32
        public var value: UInt64
        public var valueTwo: UInt64
    }

    public struct Rule: Sendable, Equatable {
        public var syscall: String
        /// The native syscall number libseccomp resolved.
        public var number: Int32
        public var action: UInt32
        public var conditions: [Condition]
    }

    public var defaultAction: UInt32
    /// libseccomp arch tokens (SCMP_ARCH_*) to add besides the native one.
    public var architectures: [UInt32] = []
    /// SECCOMP_FILTER_FLAG_LOG → SCMP_FLTATR_CTL_LOG.
    public var logFlag = false
    /// SECCOMP_FILTER_FLAG_SPEC_ALLOW → SCMP_FLTATR_CTL_SSB.
    public var specAllowFlag = false
    public var rules: [Rule] = []
    /// Syscall names this libseccomp does not know for the native architecture; skipped like runc.
    public var ignoredSyscalls: [String] = []
    /// True when some rule uses SCMP_ACT_NOTIFY: loading returns a listener descriptor.
    public var usesNotify = false

    // Actions (seccomp.h); ERRNO and TRACE carry a 16-bit data value.
    public static let actionKillThread: UInt32 = 0x0000_0000
    public static let actionKillProcess: UInt32 = 0x8000_0000
    public static let actionTrap: UInt32 = 0x0003_0000
    public static let actionErrnoBase: UInt32 = 0x0005_0000
    public static let actionTraceBase: UInt32 = 0x7ff0_0000
    public static let actionNotify: UInt32 = 0x7fc0_0000
    public static let actionLog: UInt32 = 0x7ffc_0000
    public static let actionAllow: UInt32 = 0x7fff_0000

    /// Action names config.json may use (runtime-spec; the `features` document lists them).
    public static let actionNames = [
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
    ]
    public static let operatorNames = [
        "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
        "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
    ]
    /// OCI architecture names and libseccomp's names for them.
    public static let architectureNames: [(oci: String, libseccomp: String)] = [
        ("SCMP_ARCH_X86", "x86"), ("SCMP_ARCH_X86_64", "x86_64"), ("SCMP_ARCH_X32", "x32"), ("SCMP_ARCH_ARM", "arm"),
        ("SCMP_ARCH_AARCH64", "aarch64"), ("SCMP_ARCH_MIPS", "mips"), ("SCMP_ARCH_MIPS64", "mips64"),
        ("SCMP_ARCH_MIPS64N32", "mips64n32"), ("SCMP_ARCH_MIPSEL", "mipsel"), ("SCMP_ARCH_MIPSEL64", "mipsel64"),
        ("SCMP_ARCH_MIPSEL64N32", "mipsel64n32"), ("SCMP_ARCH_PPC", "ppc"), ("SCMP_ARCH_PPC64", "ppc64"),
        ("SCMP_ARCH_PPC64LE", "ppc64le"), ("SCMP_ARCH_S390", "s390"), ("SCMP_ARCH_S390X", "s390x"),
        ("SCMP_ARCH_PARISC", "parisc"), ("SCMP_ARCH_PARISC64", "parisc64"), ("SCMP_ARCH_RISCV64", "riscv64"),
        ("SCMP_ARCH_LOONGARCH64", "loongarch64"),
    ]
    /// Flags this build accepts (WAIT_KILLABLE_RECV needs libseccomp ≥ 2.6; Debian 12 has 2.5.4).
    public static let flagNames = [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    ]

    public init(_ spec: Spec.Seccomp) throws(RuntimeError) {
        let f = "linux.seccomp"
        defaultAction = try Self.action(
            spec.defaultAction, errnoRet: spec.defaultErrnoRet,
            field: "\(f).defaultAction", errnoField: "\(f).defaultErrnoRet")
        if defaultAction == Self.actionNotify {
            throw .invalidConfig(field: "\(f).defaultAction", reason: "SCMP_ACT_NOTIFY cannot be the default action")
        }
        for (i, name) in (spec.architectures ?? []).enumerated() {
            guard let entry = Self.architectureNames.first(where: { $0.oci == name }) else {
                throw .invalidConfig(field: "\(f).architectures[\(i)]", reason: "unknown architecture \"\(name)\"")
            }
            let token = seccomp_arch_resolve_name(entry.libseccomp)
            guard token != 0 else {
                throw .invalidConfig(
                    field: "\(f).architectures[\(i)]",
                    reason: "\(name) is not supported by this libseccomp (\(Self.libraryVersion))")
            }
            if !architectures.contains(token) { architectures.append(token) }
        }
        for (i, flag) in (spec.flags ?? []).enumerated() {
            switch flag {
            case "SECCOMP_FILTER_FLAG_TSYNC":
                // libseccomp synchronises threads itself where needed; runc ignores it too.
                break
            case "SECCOMP_FILTER_FLAG_LOG": logFlag = true
            case "SECCOMP_FILTER_FLAG_SPEC_ALLOW": specAllowFlag = true
            case "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV":
                throw .invalidConfig(
                    field: "\(f).flags[\(i)]",
                    reason: "\(flag) needs libseccomp 2.6 or later; this is \(Self.libraryVersion)")
            default:
                throw .invalidConfig(field: "\(f).flags[\(i)]", reason: "unknown seccomp flag \"\(flag)\"")
            }
        }
        for (i, syscall) in (spec.syscalls ?? []).enumerated() {
            let field = "\(f).syscalls[\(i)]"
            let action = try Self.action(
                syscall.action, errnoRet: syscall.errnoRet, field: "\(field).action", errnoField: "\(field).errnoRet")
            var conditions: [Condition] = []
            for (j, arg) in (syscall.args ?? []).enumerated() {
                guard arg.index < 6 else {
                    throw .invalidConfig(
                        field: "\(field).args[\(j)].index", reason: "\(arg.index) is not an argument index 0…5")
                }
                guard let op = Self.operatorNames.firstIndex(of: arg.op) else {
                    throw .invalidConfig(field: "\(field).args[\(j)].op", reason: "unknown operator \"\(arg.op)\"")
                }
                conditions.append(
                    Condition(index: arg.index, op: UInt32(op + 1), value: arg.value, valueTwo: arg.valueTwo ?? 0))
            }
            if action == Self.actionNotify {
                usesNotify = true
                if syscall.names.contains("write") {
                    throw .invalidConfig(
                        field: "\(field).names",
                        reason:
                            "SCMP_ACT_NOTIFY cannot be used for write (the runtime needs it to hand over the listener)")
                }
            }
            // A rule with the default action changes nothing, and libseccomp rejects it: skip (runc does).
            if action == defaultAction { continue }
            // Conditions on the same argument are alternatives: one rule each (runc's behaviour); otherwise
            // one rule that requires all of them.
            let indices = conditions.map(\.index)
            let groups: [[Condition]] = Set(indices).count < indices.count ? conditions.map { [$0] } : [conditions]
            for name in syscall.names {
                let number = seccomp_syscall_resolve_name(name)
                if number == __NR_SCMP_ERROR {
                    if !ignoredSyscalls.contains(name) { ignoredSyscalls.append(name) }
                    continue
                }
                for group in groups {
                    rules.append(Rule(syscall: name, number: number, action: action, conditions: group))
                }
            }
        }
        if usesNotify && spec.listenerPath == nil {
            throw .invalidConfig(
                field: "\(f).listenerPath",
                reason: "SCMP_ACT_NOTIFY needs a listenerPath to hand the notify descriptor to")
        }
    }

    static func action(_ name: String, errnoRet: UInt32?, field: String, errnoField: String) throws(RuntimeError)
        -> UInt32
    {
        let base: UInt32
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": base = actionKillThread
        case "SCMP_ACT_KILL_PROCESS": base = actionKillProcess
        case "SCMP_ACT_TRAP": base = actionTrap
        case "SCMP_ACT_ALLOW": base = actionAllow
        case "SCMP_ACT_LOG": base = actionLog
        case "SCMP_ACT_NOTIFY": base = actionNotify
        case "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE":
            let value = errnoRet ?? 1  // EPERM, as runc
            guard value <= 0xffff else {
                throw .invalidConfig(field: errnoField, reason: "\(value) does not fit in 16 bits")
            }
            return (name == "SCMP_ACT_ERRNO" ? actionErrnoBase : actionTraceBase) | value
        default:
            throw .invalidConfig(field: field, reason: "unknown seccomp action \"\(name)\"")
        }
        if errnoRet != nil {
            throw .invalidConfig(
                field: errnoField, reason: "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno return value")
        }
        return base
    }

    static var libraryVersion: String {
        guard let version = seccomp_version() else { return "libseccomp" }
        return "libseccomp \(version.pointee.major).\(version.pointee.minor).\(version.pointee.micro)"
    }
}

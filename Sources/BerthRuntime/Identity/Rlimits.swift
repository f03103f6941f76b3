#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// process.rlimits resolved to resource numbers, applied with setrlimit in the container's init.
public struct RlimitPlan: Sendable, Equatable {
    public struct Limit: Sendable, Equatable {
        public var name: String
        public var resource: Int32
        public var soft: UInt64
        public var hard: UInt64
    }

    /// RLIMIT_* names and numbers (asm-generic/resource.h; the same on x86_64 and arm64).
    public static let resources: [(name: String, number: Int32)] = [
        ("RLIMIT_CPU", 0), ("RLIMIT_FSIZE", 1), ("RLIMIT_DATA", 2), ("RLIMIT_STACK", 3), ("RLIMIT_CORE", 4),
        ("RLIMIT_RSS", 5), ("RLIMIT_NPROC", 6), ("RLIMIT_NOFILE", 7), ("RLIMIT_MEMLOCK", 8), ("RLIMIT_AS", 9),
        ("RLIMIT_LOCKS", 10), ("RLIMIT_SIGPENDING", 11), ("RLIMIT_MSGQUEUE", 12), ("RLIMIT_NICE", 13),
        ("RLIMIT_RTPRIO", 14), ("RLIMIT_RTTIME", 15),
    ]

    public var limits: [Limit] = []

    /// Validates every entry: a known type (error names `process.rlimits[i].type`), no duplicates, and
    /// soft ≤ hard (error names `process.rlimits[i].soft`).
    public init(_ rlimits: [Spec.Rlimit]?) throws(RuntimeError) {
        for (index, rlimit) in (rlimits ?? []).enumerated() {
            guard let entry = RlimitPlan.resources.first(where: { $0.name == rlimit.type }) else {
                throw .invalidConfig(
                    field: "process.rlimits[\(index)].type", reason: "unknown rlimit type \"\(rlimit.type)\"")
            }
            if limits.contains(where: { $0.resource == entry.number }) {
                throw .invalidConfig(
                    field: "process.rlimits[\(index)].type", reason: "duplicate rlimit type \"\(rlimit.type)\"")
            }
            if rlimit.soft > rlimit.hard {
                throw .invalidConfig(
                    field: "process.rlimits[\(index)].soft",
                    reason: "\(rlimit.type) soft limit \(rlimit.soft) exceeds the hard limit \(rlimit.hard)")
            }
            limits.append(Limit(name: rlimit.type, resource: entry.number, soft: rlimit.soft, hard: rlimit.hard))
        }
    }

    /// setrlimit for each entry, in config order. Raising a hard limit needs CAP_SYS_RESOURCE; the EPERM
    /// error names the rlimit and the values.
    public func apply() throws(RuntimeError) {
        for limit in limits {
            var value = rlimit(rlim_cur: rlim_t(limit.soft), rlim_max: rlim_t(limit.hard))
            if setrlimit(__rlimit_resource_t(UInt32(limit.resource)), &value) != 0 {
                let code = errno
                let hint = code == EPERM ? " (raising a hard limit needs CAP_SYS_RESOURCE)" : ""
                throw .system(
                    SystemCallError(
                        call: "setrlimit", errno: code,
                        subject: "\(limit.name) soft=\(limit.soft) hard=\(limit.hard)\(hint)"),
                    context: "process.rlimits \(limit.name)")
            }
        }
    }

    /// The current (soft, hard) of a resource, for tests and `exec`.
    public static func current(_ resource: Int32) -> (soft: UInt64, hard: UInt64) {
        var value = rlimit()
        _ = getrlimit(__rlimit_resource_t(UInt32(resource)), &value)
        return (UInt64(value.rlim_cur), UInt64(value.rlim_max))
    }
}

import BerthOCI
import FoundationEssentials

/// docker's seccomp profile format (moby/profiles/seccomp): the OCI `linux.seccomp` section whose rules
/// may apply only to containers with a capability, on an architecture, or from a kernel version on;
/// and an `archMap` instead of a fixed architecture list. ``resolve(capabilities:host:)`` turns it into
/// the OCI section for one container, as docker's `setupSeccomp` does.
///
/// `--security-opt seccomp=FILE` profiles are read in this format (``decode(_:)``); the built-in one is
/// ``dockerDefault``.
public struct SeccompProfile: Codable, Sendable, Equatable {
    public var defaultAction: String
    public var defaultErrnoRet: UInt32?
    public var architectures: [String]?
    public var archMap: [ArchitectureMap]?
    public var flags: [String]?
    public var listenerPath: String?
    public var listenerMetadata: String?
    public var syscalls: [Rule]?

    public init(
        defaultAction: String, defaultErrnoRet: UInt32? = nil, architectures: [String]? = nil,
        archMap: [ArchitectureMap]? = nil, syscalls: [Rule]? = nil
    ) {
        self.defaultAction = defaultAction
        self.defaultErrnoRet = defaultErrnoRet
        self.architectures = architectures
        self.archMap = archMap
        self.syscalls = syscalls
    }

    /// A native architecture and the ones it can also execute (x86_64 runs x86 and x32 programs).
    public struct ArchitectureMap: Codable, Sendable, Equatable {
        public var architecture: String
        public var subArchitectures: [String]?
        public init(architecture: String, subArchitectures: [String]?) {
            self.architecture = architecture
            self.subArchitectures = subArchitectures
        }
    }

    /// When a rule applies. `includes`: all of its conditions must hold; `excludes`: any one holding
    /// drops the rule.
    public struct Filter: Codable, Sendable, Equatable {
        public var caps: [String]?
        /// Go architecture names (`amd64`, `arm64`, `s390x`).
        public var arches: [String]?
        /// `major.minor`.
        public var minKernel: String?
        public init(caps: [String]? = nil, arches: [String]? = nil, minKernel: String? = nil) {
            self.caps = caps
            self.arches = arches
            self.minKernel = minKernel
        }
    }

    public struct Rule: Codable, Sendable, Equatable {
        /// A profile may name one syscall with `name` or several with `names`, not both.
        public var name: String?
        public var names: [String]?
        public var action: String
        public var errnoRet: UInt32?
        public var args: [Spec.SyscallArg]?
        public var comment: String?
        public var includes: Filter?
        public var excludes: Filter?

        public init(
            names: [String], action: String, errnoRet: UInt32? = nil, args: [Spec.SyscallArg]? = nil,
            includes: Filter? = nil, excludes: Filter? = nil
        ) {
            self.names = names
            self.action = action
            self.errnoRet = errnoRet
            self.args = args
            self.includes = includes
            self.excludes = excludes
        }
    }

    /// Parses a profile in docker's JSON format.
    public static func decode(_ json: [UInt8]) throws(EngineError) -> SeccompProfile {
        do {
            return try JSONDecoder().decode(SeccompProfile.self, from: Data(json))
        } catch {
            throw .invalidArgument(what: "seccomp profile", reason: "Decoding seccomp profile failed: \(error)")
        }
    }

    /// The OCI seccomp section for a container whose bounding set is `capabilities`, on `host`; nil when
    /// the profile has neither a default action nor rules (docker: seccomp disabled).
    public func resolve(capabilities: [String], host: HostFacts) throws(EngineError) -> Spec.Seccomp? {
        let what = "seccomp profile"
        if defaultAction.isEmpty && (syscalls ?? []).isEmpty { return nil }
        if !(architectures ?? []).isEmpty && !(archMap ?? []).isEmpty {
            throw .invalidArgument(
                what: what,
                reason:
                    "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"
            )
        }
        var result = Spec.Seccomp(defaultAction: defaultAction)
        result.defaultErrnoRet = defaultErrnoRet
        result.flags = flags
        result.listenerPath = listenerPath
        result.listenerMetadata = listenerMetadata
        var architectures = self.architectures ?? []
        if let native = Self.nativeArchitecture[host.architecture],
            let entry = (archMap ?? []).first(where: { $0.architecture == native })
        {
            architectures += [entry.architecture] + (entry.subArchitectures ?? [])
        }
        result.architectures = architectures.isEmpty ? nil : architectures

        var rules: [Spec.Syscall] = []
        for rule in syscalls ?? [] {
            var names = rule.names ?? []
            if let name = rule.name, !name.isEmpty {
                guard names.isEmpty else {
                    throw .invalidArgument(
                        what: what,
                        reason:
                            "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"
                    )
                }
                names = [name]
            }
            if let excludes = rule.excludes {
                if let arches = excludes.arches, arches.contains(host.architecture) { continue }
                if let caps = excludes.caps, caps.contains(where: capabilities.contains) { continue }
                if let minimum = excludes.minKernel {
                    let version = try Self.kernelVersion(minimum)
                    if host.kernel >= version { continue }
                }
            }
            if let includes = rule.includes {
                if let arches = includes.arches, !arches.isEmpty, !arches.contains(host.architecture) { continue }
                if let caps = includes.caps, !caps.allSatisfy(capabilities.contains) { continue }
                if let minimum = includes.minKernel {
                    let version = try Self.kernelVersion(minimum)
                    if host.kernel < version { continue }
                }
            }
            rules.append(Spec.Syscall(names: names, action: rule.action, errnoRet: rule.errnoRet, args: rule.args))
        }
        result.syscalls = rules
        return result
    }

    /// Go architecture → the SCMP_ARCH_ name `archMap` is keyed by (moby's nativeToSeccomp).
    static let nativeArchitecture: [String: String] = [
        "x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "arm": "SCMP_ARCH_ARM", "arm64": "SCMP_ARCH_AARCH64",
        "mips64": "SCMP_ARCH_MIPS64", "mips64n32": "SCMP_ARCH_MIPS64N32", "mipsel64": "SCMP_ARCH_MIPSEL64",
        "mips3l64n32": "SCMP_ARCH_MIPSEL64N32", "mipsle": "SCMP_ARCH_MIPSEL", "ppc": "SCMP_ARCH_PPC",
        "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE", "riscv64": "SCMP_ARCH_RISCV64",
        "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
    ]

    /// `"4.8"` → 4.8, with docker's error for anything else.
    static func kernelVersion(_ text: String) throws(EngineError) -> HostFacts.KernelVersion {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = UInt8(parts[0]), let minor = UInt8(parts[1]), major > 0 || minor > 0 else {
            throw .invalidArgument(
                what: "seccomp profile", reason: "invalid kernel version: \"\(text)\", expected \"<kernel>.<major>\"")
        }
        return HostFacts.KernelVersion(Int(major), Int(minor))
    }
}

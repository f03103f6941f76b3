/// The runtime-spec features document (`features`): what this runtime accepts in config.json.
public struct RuntimeFeatures: Codable, Sendable {
    public var ociVersionMin: String
    public var ociVersionMax: String
    public var hooks: [String]
    public var mountOptions: [String]
    public var linux: LinuxFeatures
    public var annotations: [String: String]

    public struct LinuxFeatures: Codable, Sendable {
        public var namespaces: [String]
        public var capabilities: [String]
        public var cgroup: CgroupFeatures
        public var seccomp: SeccompFeatures
        public var apparmor: Enabled
        public var selinux: Enabled
        public var intelRdt: Enabled
        public var mountExtensions: MountExtensions
    }

    public struct CgroupFeatures: Codable, Sendable {
        public var v1: Bool
        public var v2: Bool
        public var systemd: Bool
        public var systemdUser: Bool
        public var rdma: Bool
    }

    public struct SeccompFeatures: Codable, Sendable {
        public var enabled: Bool
        public var actions: [String]
        public var operators: [String]
        public var archs: [String]
        public var knownFlags: [String]
        public var supportedFlags: [String]
    }

    public struct Enabled: Codable, Sendable { public var enabled: Bool }
    public struct MountExtensions: Codable, Sendable { public var idmap: Enabled }

    public static func document() -> RuntimeFeatures {
        let options =
            Array(MountOptions.setting.keys) + Array(MountOptions.clearing.keys)
            + Array(MountOptions.propagationFlags.keys)
        return RuntimeFeatures(
            ociVersionMin: "1.0.0", ociVersionMax: "1.2.0",
            hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
            mountOptions: options.sorted(),
            linux: LinuxFeatures(
                namespaces: ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
                capabilities: Capability.allCases.map(\.name),
                cgroup: CgroupFeatures(v1: true, v2: true, systemd: false, systemdUser: false, rdma: true),
                seccomp: SeccompFeatures(
                    enabled: true, actions: SeccompPlan.actionNames, operators: SeccompPlan.operatorNames,
                    archs: SeccompPlan.architectureNames.map(\.oci),
                    knownFlags: SeccompPlan.flagNames + ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                    supportedFlags: SeccompPlan.flagNames),
                apparmor: Enabled(enabled: true), selinux: Enabled(enabled: true), intelRdt: Enabled(enabled: false),
                mountExtensions: MountExtensions(idmap: Enabled(enabled: false))),
            annotations: [
                "org.opencontainers.runc.checkpoint.enabled": "false", "io.github.berth.runtime": "berth-runtime",
            ])
    }
}

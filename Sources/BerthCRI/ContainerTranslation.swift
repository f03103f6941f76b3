#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthEngine
import BerthOS
import GRPCCore

/// A CRI ContainerConfig as the engine's ContainerConfiguration, by containerd's rules where the CRI
/// leaves a choice: `command` replaces the image's ENTRYPOINT and drops its CMD, `args` replaces CMD; no
/// seccomp field means unconfined (the kubelet's default), RuntimeDefault the engine's default profile;
/// a memory limit without a swap limit means no swap; a missing bind source is made as a directory.
enum ContainerTranslation {
    static func configuration(
        _ config: Runtime_V1_ContainerConfig, sandbox: PodSandboxRecord, sandboxConfig: Runtime_V1_PodSandboxConfig,
        runtime: String?
    ) throws(RPCError) -> ContainerConfiguration {
        guard config.hasMetadata, !config.metadata.name.isEmpty else {
            throw CRIError.invalid("container config must include metadata with a name")
        }
        guard config.hasImage, !config.image.image.isEmpty else {
            throw CRIError.invalid("container config must include an image")
        }
        var c = ContainerConfiguration(image: config.image.image)
        if !config.command.isEmpty { c.entrypoint = config.command }
        if !config.args.isEmpty { c.cmd = config.args }
        if !config.command.isEmpty && config.args.isEmpty { c.cmd = [] }
        c.env = config.envs.map { "\($0.key)=" + String(decoding: $0.value, as: UTF8.self) }
        if !config.workingDir.isEmpty { c.workingDir = config.workingDir }
        c.tty = config.tty
        c.openStdin = config.stdin
        c.stdinOnce = config.stdinOnce
        c.labels = config.labels
        c.runtime = runtime
        c.networkMode = "none"
        c.restartPolicy = ContainerConfiguration.RestartPolicy(name: "no")
        c.logDriver = "cri"
        c.sysctls = sandbox.sysctls

        let linux = config.linux
        let security = linux.securityContext
        c.privileged = security.privileged
        c.readonlyRootfs = security.readonlyRootfs
        c.capAdd = security.capabilities.addCapabilities
        c.capDrop = security.capabilities.dropCapabilities
        c.user = try user(security)
        let groups =
            security.supplementalGroups.map(String.init)
            + sandboxConfig.linux.securityContext.supplementalGroups.map(String.init)
        if !groups.isEmpty { c.groupAdd = Array(Set(groups)).sorted() }
        if security.noNewPrivs { c.securityOpt.append("no-new-privileges") }
        c.securityOpt += try seccomp(security)
        try checkAppArmor(security)
        if !security.privileged {
            // The kubelet sends the lists it wants (its defaults unless procMount is Unmasked); an empty list is none.
            c.maskedPaths = security.maskedPaths
            c.readonlyPaths = security.readonlyPaths
        }

        let resources = linux.resources
        var r = ContainerConfiguration.Resources()
        if resources.cpuShares > 0 { r.cpuShares = resources.cpuShares }
        if resources.cpuPeriod > 0 { r.cpuPeriod = resources.cpuPeriod }
        if resources.cpuQuota > 0 { r.cpuQuota = resources.cpuQuota }
        if resources.memoryLimitInBytes > 0 {
            r.memory = resources.memoryLimitInBytes
            r.memorySwap =
                resources.memorySwapLimitInBytes > 0 ? resources.memorySwapLimitInBytes : resources.memoryLimitInBytes
        }
        if !resources.cpusetCpus.isEmpty { r.cpusetCpus = resources.cpusetCpus }
        if !resources.cpusetMems.isEmpty { r.cpusetMems = resources.cpusetMems }
        if !resources.hugepageLimits.isEmpty {
            r.hugepageLimits = Dictionary(
                resources.hugepageLimits.map { ($0.pageSize, Int64(clamping: $0.limit)) }, uniquingKeysWith: { $1 })
        }
        if !resources.unified.isEmpty { r.unified = resources.unified }
        c.resources = r
        if resources.oomScoreAdj != 0 { c.oomScoreAdj = Int(resources.oomScoreAdj) }

        for mount in config.mounts {
            guard mount.containerPath.hasPrefix("/") else {
                throw CRIError.invalid("mount \(mount.containerPath): the container path must be absolute")
            }
            guard mount.hostPath.hasPrefix("/") else {
                throw CRIError.invalid(
                    "mount \(mount.containerPath): the host path \"\(mount.hostPath)\" must be absolute")
            }
            if !FileSystem.exists(mount.hostPath) {
                do { try FileSystem.makeDirectories(mount.hostPath) } catch {
                    throw CRIError.from(error, "creating the host path of mount \(mount.containerPath)")
                }
            }
            var request = ContainerConfiguration.MountRequest(
                type: .bind, source: mount.hostPath, target: mount.containerPath, readOnly: mount.readonly)
            switch mount.propagation {
            case .propagationHostToContainer: request.propagation = "rslave"
            case .propagationBidirectional: request.propagation = "rshared"
            default: request.propagation = "rprivate"
            }
            c.mounts.append(request)
        }
        for device in config.devices {
            c.devices.append(
                ContainerConfiguration.DeviceMapping(
                    pathOnHost: device.hostPath, pathInContainer: device.containerPath,
                    cgroupPermissions: device.permissions.isEmpty ? "rwm" : device.permissions))
        }
        return c
    }

    /// runAsUser / runAsGroup / runAsUsername as the engine's `user[:group]`; nil for the image's user.
    static func user(_ security: Runtime_V1_LinuxContainerSecurityContext) throws(RPCError) -> String? {
        var user: String?
        if security.hasRunAsUser { user = String(security.runAsUser.value) }
        if !security.runAsUsername.isEmpty { user = security.runAsUsername }
        if security.hasRunAsGroup {
            guard let name = user else {
                throw CRIError.invalid("user group \(security.runAsGroup.value) is specified without user")
            }
            user = "\(name):\(security.runAsGroup.value)"
        }
        return user
    }

    /// The engine's `seccomp=` option for the container's profile (the `seccomp` field, else the
    /// deprecated `seccomp_profile_path`); nothing for RuntimeDefault, which is the engine's default.
    static func seccomp(_ security: Runtime_V1_LinuxContainerSecurityContext) throws(RPCError) -> [String] {
        if security.privileged { return ["seccomp=unconfined"] }
        if security.hasSeccomp {
            switch security.seccomp.profileType {
            case .runtimeDefault: return []
            case .unconfined: return ["seccomp=unconfined"]
            case .localhost: return [try localProfile(security.seccomp.localhostRef)]
            case .UNRECOGNIZED(let value): throw CRIError.invalid("unknown seccomp profile type \(value)")
            }
        }
        let path = security.seccompProfilePath
        switch path {
        case "", "unconfined": return ["seccomp=unconfined"]
        case "runtime/default", "docker/default": return []
        case _ where path.hasPrefix("localhost/"): return [try localProfile(String(path.dropFirst("localhost/".count)))]
        default: throw CRIError.invalid("unsupported seccomp profile \"\(path)\"")
        }
    }

    private static func localProfile(_ path: String) throws(RPCError) -> String {
        guard path.hasPrefix("/") else { throw CRIError.invalid("seccomp profile path \"\(path)\" must be absolute") }
        do { return "seccomp=" + (try FileSystem.readString(path)) } catch {
            throw CRIError.invalid("cannot load seccomp profile \"\(path)\": \(error)")
        }
    }

    /// AppArmor on a host without it: only "unconfined" (or nothing) is accepted, as containerd refuses
    /// a profile it cannot apply rather than run the container without it.
    static func checkAppArmor(_ security: Runtime_V1_LinuxContainerSecurityContext) throws(RPCError) {
        var requested = security.apparmorProfile
        if security.hasApparmor {
            switch security.apparmor.profileType {
            case .unconfined: requested = ""
            case .runtimeDefault: requested = "runtime/default"
            default: requested = "localhost/" + security.apparmor.localhostRef
            }
        }
        guard !requested.isEmpty, requested != "unconfined" else { return }
        guard appArmorEnabled else {
            throw CRIError.invalid("apparmor is not supported: cannot apply profile \"\(requested)\" on this host")
        }
        // Berth loads no AppArmor profiles: the runtime's default is accepted (and means none, which
        // the README says); a named profile is refused rather than silently not applied.
        guard requested == "runtime/default" else {
            throw CRIError.invalid("apparmor profile \"\(requested)\": Berth does not load AppArmor profiles")
        }
    }

    static let appArmorEnabled: Bool = {
        (try? FileSystem.readString("/sys/module/apparmor/parameters/enabled"))?.hasPrefix("Y") ?? false
    }()
}

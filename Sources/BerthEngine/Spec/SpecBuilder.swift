import BerthImage
import BerthOCI
import BerthOS

/// Everything the spec builder needs besides the user's request: decided by the engine before it builds.
public struct SpecInputs: Sendable {
    public var configuration: ContainerConfiguration
    /// The image's `config` section (Entrypoint, Cmd, Env, User, WorkingDir, StopSignal, …).
    public var image: ImageConfig.ContainerConfig?
    public var containerID: String
    /// Absolute path of the prepared root filesystem: user and group names are resolved in its
    /// /etc/passwd and /etc/group (contained: a hostile symlink there never reads outside it).
    public var rootfs: String
    /// The hostname the container gets (the request's, else the first 12 characters of the ID).
    public var hostname: String
    /// Files the engine manages and bind-mounts: destination (`/etc/hosts`, `/etc/hostname`,
    /// `/etc/resolv.conf`) → host path.
    public var managedFiles: [String: String]
    /// The network namespace: nil for a new one made by the runtime, "host" for none at all,
    /// else the path of a pinned namespace to join.
    public var networkNamespacePath: String?
    public var sharesHostNetwork: Bool
    /// Host directories backing the volume mounts, in the order of `configuration.mounts` (nil for
    /// bind and tmpfs entries).
    public var volumeSources: [String?]
    /// `linux.cgroupsPath`.
    public var cgroupsPath: String
    /// Host path of an init to run as PID 1 (`--init`): mounted at /sbin/docker-init, as docker does.
    public var initPath: String?

    public init(
        configuration: ContainerConfiguration, image: ImageConfig.ContainerConfig?, containerID: String,
        rootfs: String, hostname: String, managedFiles: [String: String] = [:],
        networkNamespacePath: String? = nil, sharesHostNetwork: Bool = false,
        volumeSources: [String?] = [], cgroupsPath: String, initPath: String? = nil
    ) {
        self.configuration = configuration
        self.image = image
        self.containerID = containerID
        self.rootfs = rootfs
        self.hostname = hostname
        self.managedFiles = managedFiles
        self.networkNamespacePath = networkNamespacePath
        self.sharesHostNetwork = sharesHostNetwork
        self.volumeSources = volumeSources
        self.cgroupsPath = cgroupsPath
        self.initPath = initPath
    }
}

/// Turns a request and its image's config into the OCI runtime spec docker 28 would give the runtime
/// (moby `daemon/oci_linux.go` createSpec over `oci/defaults.go`).
public enum SpecBuilder {
    /// The spec for `inputs` on this machine.
    public static func build(_ inputs: SpecInputs) throws(EngineError) -> Spec {
        try build(inputs, host: machine)
    }

    /// This machine's facts, read on first use: none of them change while the engine runs.
    static let machine = HostFacts.current()

    /// The program and its arguments, by docker's rules (``ContainerProcess/arguments(request:image:)``).
    public static func command(
        _ configuration: ContainerConfiguration,
        image: ImageConfig.ContainerConfig?
    ) throws(EngineError) -> [String] {
        try ContainerProcess.arguments(request: configuration, image: image)
    }

    /// A `--user` value resolved inside `rootfs` (``ContainerUser/resolve(_:groupAdd:rootfs:)``), for
    /// `exec -u` as for the container's own process.
    public static func resolveUser(_ text: String, rootfs: String) throws(EngineError) -> Spec.User {
        try ContainerUser.resolve(text, rootfs: rootfs)
    }

    /// The spec for `inputs` on a machine described by `host`.
    public static func build(_ inputs: SpecInputs, host: HostFacts) throws(EngineError) -> Spec {
        let request = inputs.configuration
        let security = try SecuritySettings(request.securityOpt)

        var arguments = try ContainerProcess.arguments(request: request, image: inputs.image)
        if request.initProcess { arguments = [ContainerMounts.initPath, "--"] + arguments }
        var process = Spec.Process(
            user: try ContainerUser.resolve(
                userSpec(request, inputs.image), groupAdd: request.groupAdd ?? [], rootfs: inputs.rootfs),
            args: arguments,
            env: ContainerProcess.environment(request: request, image: inputs.image, hostname: inputs.hostname),
            cwd: try ContainerProcess.workingDirectory(request: request, image: inputs.image))
        process.terminal = request.tty
        // docker gives a non-root user the same sets; the kernel clears its effective and permitted sets
        // at exec (there are no ambient capabilities), so it ends up with the bounding set only.
        let capabilities = try ContainerCapabilities.resolve(
            add: request.capAdd, drop: request.capDrop,
            privileged: request.privileged,
            available: host.availableCapabilities)
        process.capabilities = Spec.Capabilities(
            bounding: capabilities, effective: capabilities, permitted: capabilities)
        process.rlimits = try ContainerResources.rlimits(request.ulimits)
        process.noNewPrivileges = security.noNewPrivileges ? true : nil
        try request.checkTunables()
        process.oomScoreAdj = request.oomScoreAdj ?? 0

        var linux = Spec.Linux()
        linux.cgroupsPath = inputs.cgroupsPath
        linux.namespaces = namespaces(inputs, host: host)
        // A pod member sets the pod's sysctls in the sandbox's namespaces, as the pause container would.
        let ownNetwork =
            request.pod.map { !$0.hostNamespaces.contains("network") }
            ?? (!inputs.sharesHostNetwork && !request.networkMode.hasPrefix("container:"))
        linux.sysctl = try ContainerResources.sysctls(
            request, ownNetwork: ownNetwork,
            hostNetwork: inputs.sharesHostNetwork, host: host)
        let (devices, deviceRules) = try ContainerDevices.build(request)
        linux.devices = devices
        var resources = Spec.Resources()
        resources.devices = deviceRules
        resources.memory = try ContainerResources.memory(request.resources, host: host)
        resources.cpu = try ContainerResources.cpu(request.resources, host: host)
        resources.pids = ContainerResources.pids(request.resources)
        resources.hugepageLimits = ContainerResources.hugepages(request.resources)
        resources.unified = request.resources.unified
        linux.resources = resources
        if !request.privileged && !security.unconfinedSystemPaths {
            // A client's own lists replace the defaults whole, as dockerd's WithMaskedPaths does.
            linux.maskedPaths = request.maskedPaths ?? (maskedPaths + host.thermalThrottlePaths)
            linux.readonlyPaths = request.readonlyPaths ?? readonlyPaths
        }
        linux.seccomp = try seccomp(
            security.seccomp, privileged: request.privileged, capabilities: capabilities, host: host)

        let mounts = try ContainerMounts.build(inputs, writableCgroups: security.writableCgroups ?? request.privileged)
        linux.rootfsPropagation = try BindPropagation.rootfsPropagation(for: mounts) {
            (try? FileSystem.readFile("/proc/self/mountinfo")) ?? []
        }
        return Spec(
            ociVersion: ociVersion, process: process,
            root: Spec.Root(path: inputs.rootfs, readonly: request.readonlyRootfs ? true : nil),
            hostname: specHostname(inputs),
            domainname: (request.domainname ?? "").isEmpty ? nil : request.domainname,
            mounts: mounts, linux: linux)
    }

    /// The request's user, else the image's (an empty one counts as none, as in docker's merge).
    static func userSpec(_ request: ContainerConfiguration, _ image: ImageConfig.ContainerConfig?) -> String {
        [request.user, image?.User].compactMap { $0 }.first { !$0.isEmpty } ?? ""
    }

    /// The oldest runtime-spec version with every field used here (seccomp's defaultErrnoRet came in
    /// 1.0.2). docker 28 writes 1.2.1, which Debian 12's crun 1.8.1 refuses ("unknown version specified");
    /// runc and Berth's runtime take any 1.x.
    static let ociVersion = "1.0.2"

    /// mount, network, uts, pid, ipc as docker orders them; network joins a pinned namespace when the
    /// engine made one and is left out with the host's; cgroup only on a unified (v2) host, docker's
    /// default there (on v1 and hybrid hosts docker shares the host's).
    static func namespaces(_ inputs: SpecInputs, host: HostFacts) -> [Spec.Namespace] {
        if let pod = inputs.configuration.pod { return podNamespaces(pod, host: host) }
        var namespaces = [Spec.Namespace(type: "mount")]
        if !inputs.sharesHostNetwork {
            namespaces.append(Spec.Namespace(type: "network", path: inputs.networkNamespacePath))
        }
        namespaces += [Spec.Namespace(type: "uts"), Spec.Namespace(type: "pid"), Spec.Namespace(type: "ipc")]
        if host.unifiedCgroups { namespaces.append(Spec.Namespace(type: "cgroup")) }
        return namespaces
    }

    /// A pod member's: its own mount namespace; the sandbox's pinned network, IPC and UTS (and PID when
    /// the pod shares one); the host's where the pod asked for them (left out); its own for the rest.
    static func podNamespaces(_ pod: ContainerConfiguration.PodMembership, host: HostFacts) -> [Spec.Namespace] {
        var namespaces = [Spec.Namespace(type: "mount")]
        for type in ["network", "uts", "pid", "ipc"] where !pod.hostNamespaces.contains(type) {
            namespaces.append(Spec.Namespace(type: type, path: pod.namespacePaths[type]))
        }
        if host.unifiedCgroups { namespaces.append(Spec.Namespace(type: "cgroup")) }
        return namespaces
    }

    /// The hostname the spec sets: none when the container joins a UTS namespace it does not own (the
    /// sandbox's, whose hostname was set when it was pinned, or the host's), which runtimes refuse.
    static func specHostname(_ inputs: SpecInputs) -> String? {
        guard let pod = inputs.configuration.pod else { return inputs.hostname }
        if pod.hostNamespaces.contains("uts") || pod.namespacePaths["uts"] != nil { return nil }
        return pod.hostname
    }

    /// Kernel interfaces under /proc and /sys that leak host information or control the host: hidden
    /// (docker's list; each CPU's thermal_throttle directory is added from ``HostFacts``).
    static let maskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ]
    static let readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// docker's WithSeccomp: none when unconfined; privileged containers get a profile only when one was
    /// named explicitly; else the named profile or docker's default, resolved for the capabilities.
    static func seccomp(
        _ choice: SecuritySettings.Seccomp, privileged: Bool, capabilities: [String],
        host: HostFacts
    ) throws(EngineError) -> Spec.Seccomp? {
        switch choice {
        case .unconfined: return nil
        case .dockerDefault:
            return privileged ? nil : try SeccompProfile.dockerDefault.resolve(capabilities: capabilities, host: host)
        case .profile(let json):
            return try SeccompProfile.decode(json).resolve(capabilities: capabilities, host: host)
        }
    }
}

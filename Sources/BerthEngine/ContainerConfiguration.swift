/// What a user asked for when creating a container: docker's `Config` and `HostConfig` in one value,
/// field for field where docker has one, so the Docker Engine API maps onto it without translation.
/// Everything optional means "the image's value, else docker's default".
///
/// The CLI (`berth run/create`) and, later, the Docker API fill this in; ``SpecBuilder`` turns it plus
/// the image's config into an OCI runtime spec.
public struct ContainerConfiguration: Codable, Sendable, Equatable {
    // MARK: Config (the process and its identity)
    public var image: String
    public var entrypoint: [String]?
    public var cmd: [String]?
    /// `KEY=value` (or `KEY` to drop an image variable, as docker's `-e KEY` with KEY unset does).
    public var env: [String] = []
    public var workingDir: String?
    /// `user`, `uid`, `user:group`, `uid:gid` — names resolved in the container's /etc/passwd and /etc/group.
    public var user: String?
    /// Supplementary groups beyond the user's own (docker's `--group-add`, a pod's supplementalGroups):
    /// names resolved in the container's /etc/group, or numbers.
    public var groupAdd: [String]?
    public var hostname: String?
    public var domainname: String?
    public var labels: [String: String] = [:]
    public var tty = false
    public var openStdin = false
    /// docker's StdinOnce: the container's stdin is closed when the attached client's input ends. Nil
    /// (records written before it, the `berth` CLI) behaves as true.
    public var stdinOnce: Bool?
    /// `process.oomScoreAdj` (docker's OomScoreAdj, -1000…1000); nil is 0.
    public var oomScoreAdj: Int?
    /// Paths masked and made read-only in place of docker's defaults (the API's HostConfig.MaskedPaths and
    /// ReadonlyPaths, which a client sends to widen or narrow them); nil: the defaults.
    public var maskedPaths: [String]?
    public var readonlyPaths: [String]?
    public var stopSignal: String?
    /// Seconds `stop` waits before SIGKILL (docker's default 10).
    public var stopTimeout: Int?
    public var healthcheck: Healthcheck?
    /// Ports the container exposes (`80/tcp`), the image's plus `--expose`.
    public var exposedPorts: [String] = []

    // MARK: HostConfig (what the host grants it)
    public var runtime: String?
    public var autoRemove = false
    public var readonlyRootfs = false
    public var privileged = false
    public var capAdd: [String] = []
    public var capDrop: [String] = []
    /// `seccomp=FILE|unconfined`, `no-new-privileges[:true|false]`, `apparmor=…`, `label=…`.
    public var securityOpt: [String] = []
    public var ulimits: [Ulimit] = []
    public var devices: [DeviceMapping] = []
    public var tmpfs: [String: String] = [:]
    public var shmSize: Int64?
    public var initProcess = false
    public var restartPolicy = RestartPolicy()
    public var resources = Resources()
    public var sysctls: [String: String] = [:]
    /// Bind mounts, named/anonymous volumes and tmpfs mounts (`-v`, `--mount`), in the order given.
    public var mounts: [MountRequest] = []

    // MARK: Networking
    /// `bridge` (default), a user network name, `none`, `host`, `container:NAME`.
    public var networkMode = "bridge"
    /// `[ip:]hostPort:containerPort[/proto]` requests, parsed.
    public var portBindings: [PortBinding] = []
    public var publishAllPorts = false
    public var dns: [String] = []
    public var dnsSearch: [String] = []
    public var dnsOptions: [String] = []
    /// `host:ip` entries for /etc/hosts.
    public var extraHosts: [String] = []
    public var ipAddress: String?
    public var networkAliases: [String] = []
    /// Networks joined with `network connect`, attached after the first on every start (eth1, eth2 …).
    public var additionalNetworks: [String] = []
    /// `network connect --ip/--alias` of the additional networks, by network name (the first network's
    /// are ``ipAddress`` and ``networkAliases``). Optional: records written before it existed decode.
    public var additionalEndpoints: [String: EndpointSettings]?

    /// Every network was left with `network disconnect` (``networkMode`` is `none` since). Unlike a
    /// `--network none` container, such a container may join a network again (docker keeps its old mode
    /// and lets it), so it starts in a pinned namespace of its own, as a networked container does, where
    /// a connect can add an interface while it runs. Optional: records written before it existed decode.
    public var networksDisconnected: Bool?

    /// What a container asks of one network besides joining it.
    public struct EndpointSettings: Codable, Sendable, Equatable {
        public var ipAddress: String?
        public var aliases: [String]
        public init(ipAddress: String? = nil, aliases: [String] = []) {
            self.ipAddress = ipAddress
            self.aliases = aliases
        }
    }

    // MARK: Logging
    public var logDriver = "json-file"
    public var logOptions: [String: String] = [:]

    /// Set for a container of a CRI pod sandbox: it joins the sandbox's namespaces and files instead of
    /// the engine's networking, and logs where the kubelet reads. Nil for every docker-made container.
    public var pod: PodMembership?

    /// What a container in a CRI pod takes from its sandbox rather than from the engine's defaults.
    public struct PodMembership: Codable, Sendable, Equatable {
        public var sandboxID: String
        /// Pinned namespaces to join, by OCI type (`network`, `ipc`, `uts`, `pid`).
        public var namespacePaths: [String: String]
        /// Namespace types shared with the host (hostNetwork, hostPID, hostIPC): left out of the spec.
        public var hostNamespaces: [String]
        /// The pod's cgroup (the kubelet's `cgroup_parent`); the container's is `<parent>/<id>`.
        public var cgroupParent: String
        /// The CRI log file (`<log_directory>/<log_path>`), written in the CRI log format.
        public var logPath: String
        /// The sandbox's /etc/resolv.conf and /etc/hostname (container path → host path); a mount the
        /// request names at the same place (the kubelet's /etc/hosts) takes precedence.
        public var files: [String: String]
        /// The pod's hostname: set only when the container has a UTS namespace of its own.
        public var hostname: String

        public init(
            sandboxID: String, namespacePaths: [String: String], hostNamespaces: [String],
            cgroupParent: String, logPath: String, files: [String: String], hostname: String
        ) {
            self.sandboxID = sandboxID
            self.namespacePaths = namespacePaths
            self.hostNamespaces = hostNamespaces
            self.cgroupParent = cgroupParent
            self.logPath = logPath
            self.files = files
            self.hostname = hostname
        }
    }

    public init(image: String) { self.image = image }

    public struct Ulimit: Codable, Sendable, Equatable {
        /// Without the RLIMIT_ prefix, lower case: `nofile`, `nproc`.
        public var name: String
        public var soft: Int64
        public var hard: Int64
        public init(name: String, soft: Int64, hard: Int64) { self.name = name; self.soft = soft; self.hard = hard }
    }

    public struct DeviceMapping: Codable, Sendable, Equatable {
        public var pathOnHost: String
        public var pathInContainer: String
        /// Some of `rwm`.
        public var cgroupPermissions: String
        public init(pathOnHost: String, pathInContainer: String, cgroupPermissions: String = "rwm") {
            self.pathOnHost = pathOnHost
            self.pathInContainer = pathInContainer
            self.cgroupPermissions = cgroupPermissions
        }
    }

    public struct RestartPolicy: Codable, Sendable, Equatable {
        /// `no`, `on-failure`, `always`, `unless-stopped`.
        public var name = "no"
        public var maximumRetryCount = 0
        public init(name: String = "no", maximumRetryCount: Int = 0) {
            self.name = name
            self.maximumRetryCount = maximumRetryCount
        }
    }

    public struct Resources: Codable, Sendable, Equatable {
        /// Bytes.
        public var memory: Int64?
        /// Memory plus swap in bytes; -1 unlimited.
        public var memorySwap: Int64?
        public var memoryReservation: Int64?
        /// CPUs × 10⁹ (docker's NanoCPUs): `--cpus 1.5` is 1_500_000_000.
        public var nanoCPUs: Int64?
        public var cpuShares: Int64?
        public var cpuPeriod: Int64?
        public var cpuQuota: Int64?
        public var cpusetCpus: String?
        public var cpusetMems: String?
        public var pidsLimit: Int64?
        public var oomKillDisable: Bool?
        /// `--memory-swappiness` 0…100; nil (docker's -1) leaves the kernel's.
        public var memorySwappiness: Int64?
        /// hugetlb limits in bytes by page size (`2MB`, `1GB`), a pod's hugepages-* limits.
        public var hugepageLimits: [String: Int64]?
        /// cgroup v2 files to write as given (`memory.oom.group`: the kubelet's), the OCI spec's `unified`.
        public var unified: [String: String]?
        public init() {}
    }

    public struct Healthcheck: Codable, Sendable, Equatable {
        /// `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
        public var test: [String]
        /// Nanoseconds, as docker stores them; 0 means the default.
        public var interval: Int64 = 0
        public var timeout: Int64 = 0
        public var startPeriod: Int64 = 0
        public var startInterval: Int64 = 0
        public var retries = 0
        public init(test: [String]) { self.test = test }
    }

    public struct PortBinding: Codable, Sendable, Equatable, Hashable {
        public var containerPort: UInt16
        /// `tcp`, `udp` or `sctp`.
        public var proto: String
        /// Empty means every address.
        public var hostIP: String
        /// 0 means "pick a free port".
        public var hostPort: UInt16
        /// `8000-8010:80`: any free port of the range.
        public var hostPortEnd: UInt16?
        public init(containerPort: UInt16, proto: String = "tcp", hostIP: String = "", hostPort: UInt16 = 0) {
            self.containerPort = containerPort
            self.proto = proto
            self.hostIP = hostIP
            self.hostPort = hostPort
        }
    }

    public struct MountRequest: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable { case bind, volume, tmpfs }
        public var type: Kind
        /// Host path (bind) or volume name (volume; empty for an anonymous volume).
        public var source: String
        public var target: String
        public var readOnly = false
        /// `rprivate` (default), `private`, `rshared`, `shared`, `rslave`, `slave` — binds only.
        public var propagation: String?
        /// Copy the image's content at `target` into an empty volume on first use (docker's default).
        public var noCopy = false
        /// tmpfs size in bytes and mode.
        public var tmpfsSize: Int64?
        public var tmpfsMode: UInt32?
        /// Extra mount options (`-v src:dst:z,nosuid` keeps the unknown ones here).
        public var options: [String] = []
        public init(type: Kind, source: String, target: String, readOnly: Bool = false) {
            self.type = type
            self.source = source
            self.target = target
            self.readOnly = readOnly
        }
    }
}

extension ContainerConfiguration {
    /// The kernel tunables a container sets for itself, in docker's ranges (OomScoreAdj −1000…1000,
    /// MemorySwappiness 0…100, −1 or nil meaning the kernel's): checked where a configuration is made
    /// (the Docker API's create) and again where the spec is built from it.
    public func checkTunables() throws(EngineError) {
        if let adj = oomScoreAdj, !(-1000...1000).contains(adj) {
            throw .invalidArgument(
                what: "--oom-score-adj", reason: "Invalid value \(adj), range for oom score adj is [-1000, 1000]")
        }
        if let swappiness = resources.memorySwappiness, swappiness != -1, !(0...100).contains(swappiness) {
            throw .invalidArgument(
                what: "--memory-swappiness",
                reason: "Invalid value: \(swappiness), valid memory swappiness range is 0-100")
        }
    }
}

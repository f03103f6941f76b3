import BerthImage
import BerthOCI

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

    public init(configuration: ContainerConfiguration, image: ImageConfig.ContainerConfig?, containerID: String,
                rootfs: String, hostname: String, managedFiles: [String: String] = [:],
                networkNamespacePath: String? = nil, sharesHostNetwork: Bool = false,
                volumeSources: [String?] = [], cgroupsPath: String, initPath: String? = nil) {
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

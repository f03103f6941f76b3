/// What the runtime remembers about a container between invocations (`<root>/<id>/state.json`).
public struct ContainerRecord: Codable, Sendable {
    public var id: String
    public var bundle: String
    public var rootfs: String
    /// The container's init process in the runtime's pid namespace.
    public var pid: Int32
    /// Start time of `pid` (field 22 of /proc/<pid>/stat): guards against pid reuse.
    public var pidStartTime: UInt64
    public var created: String
    public var owner: String
    public var cgroup: CgroupState?
    /// The config the container was created from: later `exec`, `kill` and `delete` need its
    /// namespaces, seccomp profile and poststop hooks.
    public var config: Spec
    /// Set once poststop hooks have run, so a second delete does not repeat them.
    public var stoppedHooksRun: Bool?
    /// Without a mount namespace of its own (HostMountNamespace): the id of the mount the init made at
    /// the rootfs in the runtime's mount namespace, which delete detaches with the mounts under it.
    public var rootfsMount: UInt64?

    public init(
        id: String, bundle: String, rootfs: String, pid: Int32, pidStartTime: UInt64, created: String,
        owner: String, cgroup: CgroupState?, config: Spec
    ) {
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.pid = pid
        self.pidStartTime = pidStartTime
        self.created = created
        self.owner = owner
        self.cgroup = cgroup
        self.config = config
    }
}

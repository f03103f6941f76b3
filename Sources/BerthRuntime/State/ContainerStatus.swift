/// The OCI lifecycle states, as `state` reports them.
public enum ContainerStatus: String, Codable, Sendable {
    case creating, created, running, paused, stopped
}

/// The state JSON the OCI runtime spec defines (what `state` prints and hooks read on stdin).
public struct OCIState: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var id: String
    public var status: ContainerStatus
    public var pid: Int32?
    public var bundle: String
    public var annotations: [String: String]?

    public init(
        ociVersion: String, id: String, status: ContainerStatus, pid: Int32?, bundle: String,
        annotations: [String: String]?
    ) {
        self.ociVersion = ociVersion
        self.id = id
        self.status = status
        self.pid = pid
        self.bundle = bundle
        self.annotations = annotations
    }
}

/// runc's `state` output: the OCI state plus rootfs, created time and owner.
public struct StateReport: Codable, Sendable {
    public var ociVersion: String
    public var id: String
    public var pid: Int32
    public var status: ContainerStatus
    public var bundle: String
    public var rootfs: String
    public var created: String
    public var owner: String
    public var annotations: [String: String]?
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// Where the engine keeps things. Persistent state lives under the data root (shared with the image
/// store, so a container's rootfs, record and logs sit together); what dies with a reboot lives under
/// the run directory:
///
/// ```
/// <root>/containers/<id>/rootfs, upper, work   the snapshot (BerthImage)
/// <root>/containers/<id>/container.json         the engine's record (ContainerRecord)
/// <root>/containers/<id>/config.json            the OCI bundle's spec, written at every start
/// <root>/containers/<id>/hosts, hostname, resolv.conf   files the engine manages and bind-mounts
/// <root>/containers/<id>/<id>-json.log          the log (json-file; .1, .2 … when rotated)
/// <root>/containers/<id>/exit.json              written by the monitor when the init exits
/// <root>/engine.lock                            flock: held by whoever changes a container record
/// <run>/runtime/<runtime name>                  the OCI runtime's --root
/// <run>/m/<id prefix>/attach.sock, init.pid     the monitor's sockets and files
/// <run>/netns/<id>                              the container's pinned network namespace
/// ```
public struct EngineLayout: Sendable {
    public let root: String
    public let run: String

    /// The run directory: `BERTH_RUN` if set, else /run/berth.
    public static var defaultRun: String {
        if let env = getenv("BERTH_RUN"), env.pointee != 0 { return String(cString: env) }
        return "/run/berth"
    }

    public init(root: String, run: String = EngineLayout.defaultRun) {
        self.root = root
        self.run = run
    }

    public var containers: String { root + "/containers" }
    public func container(_ id: String) -> String { "\(containers)/\(id)" }
    public func record(_ id: String) -> String { container(id) + "/container.json" }
    public func exitFile(_ id: String) -> String { container(id) + "/exit.json" }
    public func logFile(_ id: String) -> String { container(id) + "/\(id)-json.log" }
    public var lockFile: String { root + "/engine.lock" }
    public func runtimeRoot(_ runtimeName: String) -> String { "\(run)/runtime/\(runtimeName)" }
    /// Short (the first 24 hex digits: 96 bits) because unix socket paths live here and must fit in 108 bytes.
    public func monitorState(_ id: String) -> String { "\(run)/m/\(id.prefix(24))" }
    public func attachSocket(_ id: String) -> String { monitorState(id) + "/attach.sock" }
    public func networkNamespace(_ id: String) -> String { "\(run)/netns/\(id)" }
    public var networks: String { root + "/networks" }
    public var volumes: String { root + "/volumes" }
}

/// An exclusive flock on the engine's lock file for the length of `body`: one changer of the set of
/// container names (create, rename) and of networks at a time, across the CLI, monitors' exit commands
/// and a daemon. Records are written under their container's lock (``withContainerLock(_:_:_:)``);
/// where both are held, the engine's is taken first.
func withEngineLock<T>(_ layout: EngineLayout, _ body: () throws -> T) throws -> T {
    let fd = open(layout.lockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
        throw EngineError.system(
            SystemCallError(call: "open", errno: errno, subject: layout.lockFile), context: "engine lock")
    }
    defer { close(fd) }
    while flock(fd, LOCK_EX) != 0 {
        if errno != EINTR {
            throw EngineError.system(
                SystemCallError(call: "flock", errno: errno, subject: layout.lockFile), context: "engine lock")
        }
    }
    return try body()
}

/// An exclusive flock on one container's lock file (`containers/ID/lock`) for the length of `body`: one
/// writer of its record at a time, across processes. A container removed meanwhile is no such container.
func withContainerLock<T>(_ layout: EngineLayout, _ id: String, _ body: () throws -> T) throws -> T {
    let lock = try ContainerLock(layout, id)
    defer { lock.release() }
    return try body()
}

/// A held container lock (released by closing its descriptor).
struct ContainerLock {
    let fd: Int32

    init(_ layout: EngineLayout, _ id: String) throws(EngineError) {
        let path = layout.container(id) + "/lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == ENOENT { throw .noSuchContainer(id) }
            throw .system(SystemCallError(call: "open", errno: errno, subject: path), context: "container lock")
        }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR {
                let error = SystemCallError(call: "flock", errno: errno, subject: path)
                close(fd)
                throw .system(error, context: "container lock")
            }
        }
    }

    func release() { close(fd) }
}

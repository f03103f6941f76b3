#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthOS
import FoundationEssentials

/// The runtime's state root (`--root`, default /run/berth-runtime): one directory per container holding
/// state.json and, between create and start, exec.fifo.
public struct StateStore: Sendable {
    public let root: String

    public static let defaultRoot = "/run/berth-runtime"

    public init(root: String) {
        self.root = root
    }

    public func directory(_ id: String) -> String { FileSystem.join(root, id) }
    /// Compiled seccomp filters (SeccompCache), beside the containers' directories under a name no
    /// container id can have (`@` is not allowed in one).
    public var seccompCacheDirectory: String { FileSystem.join(root, "@seccomp-cache") }
    public func fifoPath(_ id: String) -> String { FileSystem.join(directory(id), "exec.fifo") }

    /// Container ids as runc accepts them: letters, digits, `_`, `+`, `-`, `.`; not `.` or `..`.
    public static func validate(id: String) throws(RuntimeError) {
        let allowed = id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == 0x5f || byte == 0x2b || byte == 0x2d || byte == 0x2e
        }
        if id.isEmpty || !allowed || id == "." || id == ".." || id.utf8.count > 1024 {
            throw .invalidContainerID(id: id)
        }
    }

    /// Creates the container's directory; fails if the id is taken.
    public func reserve(_ id: String) throws(RuntimeError) {
        try Self.validate(id: id)
        try RuntimeError.wrap("creating state root \(root)") { () throws(SystemCallError) in
            try FileSystem.makeDirectories(root, mode: 0o711)
        }
        if mkdir(directory(id), 0o711) != 0 {
            if errno == EEXIST { throw .containerExists(id: id) }
            throw .system(
                SystemCallError(call: "mkdir", errno: errno, subject: directory(id)), context: "reserving container id")
        }
    }

    static func encode(_ record: ContainerRecord) throws(RuntimeError) -> [UInt8] {
        do { return try JSONTreeEncoder.encode(record) } catch { throw .other("encoding state: \(error)") }
    }

    /// Saves `record`; `encoded`, when given, is `record` as `encode` made it earlier.
    public func save(_ record: ContainerRecord, encoded: [UInt8]? = nil) throws(RuntimeError) {
        let bytes: [UInt8]
        if let encoded { bytes = encoded } else { bytes = try Self.encode(record) }
        try RuntimeError.wrap("saving state of \(record.id)") { () throws(SystemCallError) in
            // Containers do not outlive a reboot: no fsync (runc does not either).
            try FileSystem.writeAtomically(
                FileSystem.join(directory(record.id), "state.json"), bytes, mode: 0o600, durable: false)
        }
    }

    public func load(_ id: String) throws(RuntimeError) -> ContainerRecord {
        let (bytes, path) = try read(id)
        do { return try JSONTreeDecoder.decode(ContainerRecord.self, from: bytes) } catch {
            throw .other("state of \(id) is corrupt (\(path)): \(error)")
        }
    }

    /// The record as `delete` needs it: everything but the config, of which only the version, the
    /// annotations and the hooks (the OCI state and poststop hooks). Decoding the whole spec was the
    /// largest part of a delete, which runs for every container that ends. Never to be saved: the
    /// rest of its config is empty.
    public func loadForTeardown(_ id: String) throws(RuntimeError) -> ContainerRecord {
        let (bytes, path) = try read(id)
        struct Teardown: Decodable {
            struct ConfigHead: Decodable {
                var ociVersion: String
                var hooks: Spec.Hooks?
                var annotations: [String: String]?
            }
            var id: String
            var bundle: String
            var rootfs: String
            var pid: Int32
            var pidStartTime: UInt64
            var created: String
            var owner: String
            var cgroup: CgroupState?
            var config: ConfigHead
            var stoppedHooksRun: Bool?
            var rootfsMount: UInt64?
        }
        let head: Teardown
        do { head = try JSONTreeDecoder.decode(Teardown.self, from: bytes) } catch {
            throw .other("state of \(id) is corrupt (\(path)): \(error)")
        }
        var record = ContainerRecord(
            id: head.id, bundle: head.bundle, rootfs: head.rootfs, pid: head.pid, pidStartTime: head.pidStartTime,
            created: head.created, owner: head.owner, cgroup: head.cgroup,
            config: Spec(
                ociVersion: head.config.ociVersion, hooks: head.config.hooks, annotations: head.config.annotations))
        record.stoppedHooksRun = head.stoppedHooksRun
        record.rootfsMount = head.rootfsMount
        return record
    }

    private func read(_ id: String) throws(RuntimeError) -> (bytes: [UInt8], path: String) {
        try Self.validate(id: id)
        let path = FileSystem.join(directory(id), "state.json")
        do { return (try FileSystem.readFile(path), path) } catch {
            if error.errno == ENOENT { throw .containerNotFound(id: id) }
            throw .system(error, context: "reading state of \(id)")
        }
    }

    public func remove(_ id: String) throws(RuntimeError) {
        try RuntimeError.wrap("removing state of \(id)") { () throws(SystemCallError) in
            try FileSystem.removeTree(directory(id))
        }
    }

    public func ids() -> [String] {
        (try? FileSystem.listDirectory(root))?.filter {
            FileSystem.exists(FileSystem.join(directory($0), "state.json"))
        } ?? []
    }
}

#if canImport(Glibc)
import BerthJSON
import Glibc
#endif
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
            throw .system(SystemCallError(call: "mkdir", errno: errno, subject: directory(id)), context: "reserving container id")
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
            try FileSystem.writeAtomically(FileSystem.join(directory(record.id), "state.json"), bytes, mode: 0o600, durable: false)
        }
    }

    public func load(_ id: String) throws(RuntimeError) -> ContainerRecord {
        try Self.validate(id: id)
        let path = FileSystem.join(directory(id), "state.json")
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch {
            if error.errno == ENOENT { throw .containerNotFound(id: id) }
            throw .system(error, context: "reading state of \(id)")
        }
        do { return try JSONTreeDecoder.decode(ContainerRecord.self, from: bytes) } catch {
            throw .other("state of \(id) is corrupt (\(path)): \(error)")
        }
    }

    public func remove(_ id: String) throws(RuntimeError) {
        try RuntimeError.wrap("removing state of \(id)") { () throws(SystemCallError) in
            try FileSystem.removeTree(directory(id))
        }
    }

    public func ids() -> [String] {
        (try? FileSystem.listDirectory(root))?.filter { FileSystem.exists(FileSystem.join(directory($0), "state.json")) } ?? []
    }
}

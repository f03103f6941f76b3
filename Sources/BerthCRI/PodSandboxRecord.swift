#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthJSON
import BerthNetwork
import BerthOS
import Synchronization

/// One pod sandbox as the CRI server keeps it: the kubelet's config (kept whole, in its protobuf form, to
/// answer status and list with the labels and annotations it gave) and what running it made — pinned
/// namespaces, the pod's address, its resolv.conf and hostname files. No process holds a sandbox unless
/// the pod shares one PID namespace: then a pause process is its init (``PodPIDInit``).
struct PodSandboxRecord: Codable, Sendable {
    enum State: String, Codable, Sendable { case ready, notReady }

    var id: String
    /// Unique per metadata (`<name>_<namespace>_<uid>_<attempt>`), as containerd reserves it.
    var name: String
    /// Nanoseconds since the epoch.
    var createdAt: Int64
    var state: State
    /// Pins by OCI namespace type (`network`, `ipc`, `uts`, `pid`) that the pod's containers join.
    var namespacePaths: [String: String]
    /// OCI namespace types shared with the host.
    var hostNamespaces: [String]
    /// The pause process holding a shared PID namespace (0: none).
    var pausePID: Int32 = 0
    var hostname: String
    var cgroupParent: String
    var logDirectory: String
    var runtimeHandler: String
    /// The network the pod was attached to (an engine network or a CNI configuration's name).
    var network: String?
    var ip: String?
    var additionalIPs: [String] = []
    var ports: [PortMapping] = []
    var sysctls: [String: String] = [:]
    /// The files every container of the pod mounts (container path → host path).
    var files: [String: String] = [:]
}

/// The sandboxes, in memory and on disk (`<root>/sandboxes/<id>/record.json` and `config.pb`), read back
/// when the server starts so that a restarted engine knows its pods.
final class PodSandboxStore: Sendable {
    let root: String
    private let entries = Mutex<[String: Entry]>([:])

    struct Entry: Sendable {
        var record: PodSandboxRecord
        var config: Runtime_V1_PodSandboxConfig
    }

    init(root: String) throws(SystemCallError) {
        self.root = root
        try FileSystem.makeDirectories(root, mode: 0o700)
        var loaded: [String: Entry] = [:]
        for id in (try? FileSystem.listSubdirectories(root)) ?? [] {
            guard let bytes = try? FileSystem.readFile("\(root)/\(id)/record.json"),
                let record = try? JSONTreeDecoder.decode(PodSandboxRecord.self, from: bytes),
                let configBytes = try? FileSystem.readFile("\(root)/\(id)/config.pb"),
                let config = try? Runtime_V1_PodSandboxConfig(serializedBytes: configBytes)
            else { continue }
            loaded[id] = Entry(record: record, config: config)
        }
        entries.withLock { $0 = loaded }
    }

    func directory(_ id: String) -> String { "\(root)/\(id)" }

    var all: [Entry] { entries.withLock { Array($0.values) } }

    /// The entries `isIncluded` keeps, copied out of the lock (the agent lists one pod's sandboxes per
    /// sync; copying every entry for that was most of a list's cost on a full node).
    func filter(_ isIncluded: (Entry) -> Bool) -> [Entry] {
        entries.withLock { map in map.values.filter(isIncluded) }
    }

    func get(_ id: String) -> Entry? { entries.withLock { $0[id] } }

    /// The sandbox whose ID is `reference` or starts with it (crictl passes short IDs), if only one.
    func find(_ reference: String) -> Entry? {
        entries.withLock { map in
            if let exact = map[reference] { return exact }
            let matches = map.values.filter { $0.record.id.hasPrefix(reference) }
            return matches.count == 1 ? matches[0] : nil
        }
    }

    /// Records `entry` in memory and on disk (config first: a record without one is never loaded).
    func save(_ entry: Entry) throws(SystemCallError) {
        let directory = directory(entry.record.id)
        try FileSystem.makeDirectories(directory, mode: 0o700)
        let config = (try? entry.config.serializedBytes() as [UInt8]) ?? []
        try FileSystem.writeAtomically("\(directory)/config.pb", config, mode: 0o600, durable: false)
        let record = (try? JSONTreeEncoder.encode(entry.record)) ?? []
        try FileSystem.writeAtomically("\(directory)/record.json", record, mode: 0o600, durable: false)
        entries.withLock { $0[entry.record.id] = entry }
    }

    /// Claims `name` for `id` unless another sandbox holds it: returns the holder's ID then.
    func reserve(_ entry: Entry) -> String? {
        entries.withLock { map in
            if let holder = map.values.first(where: { $0.record.name == entry.record.name }) {
                return holder.record.id
            }
            map[entry.record.id] = entry
            return nil
        }
    }

    func forget(_ id: String) {
        entries.withLock { _ = $0.removeValue(forKey: id) }
        try? FileSystem.removeTree(directory(id))
    }
}

/// Wall-clock nanoseconds since the epoch, the CRI's timestamps.
enum Nanoseconds {
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// An engine timestamp (RFC 3339 with nanoseconds) as nanoseconds; 0 for none.
    static func from(_ text: String) -> Int64 {
        guard let (seconds, nanoseconds) = Timestamp.parse(text) else { return 0 }
        return Int64(seconds) * 1_000_000_000 + Int64(nanoseconds)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthOS
import Synchronization

/// The CRI's side of its containers: the kubelet's ContainerConfig for each engine container made
/// through the CRI (`<root>/<id>.pb`), kept to answer status and list with its metadata, labels,
/// annotations, image and mounts. The engine's record holds everything else (state, pid, exit code).
final class CRIContainerStore: Sendable {
    let root: String
    private let configs = Mutex<[String: Entry]>([:])

    struct Entry: Sendable {
        var sandboxID: String
        var config: Runtime_V1_ContainerConfig
    }

    init(root: String) throws(SystemCallError) {
        self.root = root
        try FileSystem.makeDirectories(root, mode: 0o700)
        var loaded: [String: Entry] = [:]
        for file in (try? FileSystem.listDirectory(root)) ?? [] where file.hasSuffix(".pb") {
            guard let bytes = try? FileSystem.readFile("\(root)/\(file)"),
                let stored = try? Runtime_V1_CreateContainerRequest(serializedBytes: bytes)
            else { continue }
            loaded[String(file.dropLast(3))] = Entry(sandboxID: stored.podSandboxID, config: stored.config)
        }
        configs.withLock { $0 = loaded }
    }

    var all: [String: Entry] { configs.withLock { $0 } }

    func get(_ id: String) -> Entry? { configs.withLock { $0[id] } }

    /// The container whose ID is `reference` or starts with it, if only one.
    func find(_ reference: String) -> (id: String, entry: Entry)? {
        configs.withLock { map in
            if let exact = map[reference] { return (reference, exact) }
            let matches = map.filter { $0.key.hasPrefix(reference) }
            return matches.count == 1 ? (matches.first!.key, matches.first!.value) : nil
        }
    }

    func save(_ id: String, _ entry: Entry) throws(SystemCallError) {
        var stored = Runtime_V1_CreateContainerRequest()
        stored.podSandboxID = entry.sandboxID
        stored.config = entry.config
        let bytes = (try? stored.serializedBytes() as [UInt8]) ?? []
        try FileSystem.writeAtomically("\(root)/\(id).pb", bytes, mode: 0o600, durable: false)
        configs.withLock { $0[id] = entry }
    }

    func forget(_ id: String) {
        configs.withLock { _ = $0.removeValue(forKey: id) }
        unlink("\(root)/\(id).pb")
    }
}

import ArgumentParser
import BerthStore
import Foundation

/// `berth bench store`: raw store throughput, concurrent creates straight into the KVStore (no API
/// server). Moved out of `swift test`, where it printed a figure and asserted nothing (issue 14.6);
/// correctness under concurrent writers is `StoreSuite.concurrentWritersAllAcknowledgedWritesPersist`.
struct StoreBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Concurrent creates straight into the store (SQLite, or etcd at --etcd-endpoints); prints creates/s.")
    @Option(help: "sqlite or etcd.") var datastore: String = "sqlite"
    @Option(help: "etcd client URLs, comma-separated (with --datastore etcd).") var etcdEndpoints: String =
        "http://127.0.0.1:2379"
    @Option(help: "Concurrent writers.") var writers: Int = 16
    @Option(help: "Creates per writer.") var creates: Int = 50
    @Option(help: "Bytes per value.") var valueBytes: Int = 300
    @Option(help: "Scratch directory for SQLite (removed afterwards).") var dataDir: String = "/tmp/berth-bench-store"

    func run() async throws {
        let store: any KVStore
        let prefix = "/bench-store/\(UUID().uuidString.prefix(8))/"
        switch datastore {
        case "sqlite":
            try? FileManager.default.removeItem(atPath: dataDir)
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
            store = try SQLiteStore(path: dataDir + "/state.db")
        case "etcd":
            store = EtcdStore(endpoints: etcdEndpoints.split(separator: ",").map(String.init))
        default:
            throw ValidationError("--datastore must be sqlite or etcd")
        }
        defer { if datastore == "sqlite" { try? FileManager.default.removeItem(atPath: dataDir) } }
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: valueBytes)
        let (writers, creates) = (self.writers, self.creates)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { g in
            for w in 0..<writers {
                g.addTask { for i in 0..<creates { _ = try await store.create("\(prefix)\(w)-\(i)", value: value) } }
            }
            try await g.waitForAll()
        }
        let seconds = (ContinuousClock.now - start).seconds
        let listed = try await store.list(prefix: prefix, startAfter: nil, limit: 0, revision: nil).items.count
        if datastore == "etcd" {
            for w in 0..<writers {
                for i in 0..<creates { _ = try? await store.delete("\(prefix)\(w)-\(i)", expectedRevision: nil) }
            }
        }
        await store.close()
        print(
            "store=\(datastore) writers=\(writers) creates=\(writers * creates) in \(String(format: "%.2f", seconds))s "
                + "→ \(Int(Double(writers * creates) / seconds)) creates/s (all stored: \(listed == writers * creates ? "yes" : "NO, \(listed)"))"
        )
        if listed != writers * creates { throw ExitCode(1) }
    }
}

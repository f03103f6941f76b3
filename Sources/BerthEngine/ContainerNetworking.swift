#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// A container's network: what `--network` asked for, set up before the runtime creates the container
/// and torn down on every path that ends it.
struct ContainerNetworking: Sendable {
    let layout: EngineLayout

    struct Setup {
        /// A namespace to join (nil: the runtime makes a new, empty one, or none with `sharesHost`).
        var namespacePath: String?
        var sharesHost: Bool
    }

    func setUp(_ record: inout ContainerRecord) throws(EngineError) -> Setup {
        let mode = record.configuration.networkMode
        switch mode {
        case "none":
            return Setup(namespacePath: nil, sharesHost: false)
        case "host":
            return Setup(namespacePath: nil, sharesHost: true)
        default:
            if mode.hasPrefix("container:") {
                let other = String(mode.dropFirst("container:".count))
                let engineRecord = try? Engine.readRecord(layout, other)
                guard let peer = engineRecord, peer.state.status == .running || peer.state.status == .paused, peer.state.pid > 0 else {
                    throw .conflict("cannot join network of a non running container: \(other)")
                }
                return Setup(namespacePath: "/proc/\(peer.state.pid)/ns/net", sharesHost: false)
            }
            throw .network("network \(mode): bridge networking is not available in this build")
        }
    }

    func tearDown(_ record: inout ContainerRecord) {
        record.networks = []
    }
}

extension Engine {
    /// A record by ID or name, without the liveness refresh (for lookups from inside other operations).
    static func readRecord(_ layout: EngineLayout, _ reference: String) throws(EngineError) -> ContainerRecord {
        if let record = RecordFile.read(ContainerRecord.self, layout.record(reference)) { return record }
        for id in (try? FileSystem.listSubdirectories(layout.containers)) ?? [] {
            if let record = RecordFile.read(ContainerRecord.self, layout.record(id)), record.name == reference || id.hasPrefix(reference) {
                return record
            }
        }
        throw .noSuchContainer(reference)
    }
}

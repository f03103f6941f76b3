import BerthEngine
import BerthOS
import Foundation
import Synchronization
import Testing

/// The engine's event log followed across its rotation (renamed away past 4 MiB): a follower — docker
/// events, the CRI's GetContainerEvents — goes on to the new file instead of watching the old one.
struct EventLogTests {
    final class Seen: Sendable {
        let actions = Mutex<[String]>([])
        let stop = Atomic(false)
    }

    @Test func aFollowerGoesOnAfterTheLogRotates() async throws {
        let root = NSTemporaryDirectory() + "berth-events-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let log = EventLog(layout: EngineLayout(root: root, run: root + "/run"))
        log.append(type: "network", action: "before", id: "x", attributes: [:])
        let seen = Seen()
        let follower = Thread {
            log.read(
                since: nil, until: nil, filter: EventLog.Filter(),
                emit: { event in seen.actions.withLock { $0.append(event.Action) } },
                shouldStop: { seen.stop.load(ordering: .relaxed) })
        }
        follower.start()
        defer { seen.stop.store(true, ordering: .relaxed) }
        // Live once it has seen an event written after it started.
        var attempt = 0
        while !seen.actions.withLock({ $0.contains("ready") }) {
            attempt += 1
            try #require(attempt < 200, "the follower saw nothing")
            log.append(type: "network", action: "ready", id: "x", attributes: [:])
            try await Task.sleep(for: .milliseconds(50))
        }
        // Past the rotation size, then one more event: it is in the new file.
        let filler = [String: String](
            uniqueKeysWithValues: (0..<20).map { ("key\($0)", String(repeating: "v", count: 40)) })
        while FileManager.default.fileExists(atPath: root + "/events.jsonl.1") == false {
            log.append(type: "network", action: "filler", id: "x", attributes: filler)
        }
        log.append(type: "network", action: "after-rotation", id: "x", attributes: [:])
        var waited = 0
        while !seen.actions.withLock({ $0.contains("after-rotation") }) {
            waited += 1
            try #require(waited < 200, "the follower did not follow the rotated log")
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

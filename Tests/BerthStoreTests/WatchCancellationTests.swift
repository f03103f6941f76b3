import BerthStore
import Foundation
import Testing

/// Readers of watches cancelled while writes fan out to them. A stream ends inside its reader's
/// cancellation, holding that task's status lock; a fan-out yields to the reader holding the store's
/// lock. When ending a stream took the store's lock, each thread waited for the other: the fan-out and
/// everything after it stopped for good (a server stopping with hollow nodes hung this way).
@Suite("SQLite watches cancelled under writes")
struct WatchCancellationTests {
    @Test func cancellingReadersWhileWritesFanOutNeverWedgesTheStore() async throws {
        let dir = NSTemporaryDirectory() + "berth-sq-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/db")
        // A wedged store cannot be recovered from inside the process (the pool's threads are stuck):
        // the watchdog fails the run with a message instead of letting it hang to CI's time limit.
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            if done.wait(timeout: .now() + 60) == .timedOut {
                fatalError("the store wedged: watch readers cancelled during a fan-out deadlocked it")
            }
        }
        let writer = Task {
            var i = 0
            while !Task.isCancelled {
                _ = try? await store.create("/w/k\(i)", value: Array("v".utf8))
                i += 1
            }
        }
        for _ in 0..<300 {
            let from = try await store.currentRevision()
            var readers: [Task<Void, Never>] = []
            for _ in 0..<8 {
                let events = try await store.watch(prefix: "/w/", afterRevision: from)
                readers.append(Task { do { for try await _ in events {} } catch {} })
            }
            // Let events reach them, then end them mid-stream.
            await Task.yield()
            for reader in readers { reader.cancel() }
            for reader in readers { await reader.value }
        }
        writer.cancel()
        _ = await writer.value
        // The store still answers, and a new watch sees a new write.
        let from = try await store.currentRevision()
        let events = try await store.watch(prefix: "/w/", afterRevision: from)
        let revision = try await store.create("/w/last", value: Array("v".utf8))
        var iterator = events.makeAsyncIterator()
        #expect(try await iterator.next()?.revision == revision)
        done.signal()
        await store.close()
    }
}

import BerthStore
import Foundation
import Testing

extension StoreTests {
/// Not a timed assertion: prints concurrent create throughput of each backend (for the benchmark notes).
@Suite("throughput probe", .serialized)
struct ThroughputProbe {
    @Test(arguments: Backend.allCases)
    func concurrentCreates(_ backend: Backend) async throws {
        let h = try await Harness(backend)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { g in
            for w in 0..<16 { g.addTask { for i in 0..<50 { _ = try await h.store.create("/t/\(w)-\(i)", value: Array(repeating: 120, count: 300)) } } }
            try await g.waitForAll()
        }
        let d = ContinuousClock.now - start
        print("throughput \(backend): 800 creates in \(d) → \(Int(800 / (Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)))/s")
        await h.close()
    }
}
}

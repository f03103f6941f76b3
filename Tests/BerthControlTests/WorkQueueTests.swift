@testable import BerthControl
import Testing

/// The controllers' work queue: one entry per key, coalesced delayed adds.
@Suite("work queue")
struct WorkQueueTests {
    @Test func aKeyIsQueuedOnceAndReprocessedAfterDone() async {
        let q = WorkQueue(name: "t")
        await q.add("a"); await q.add("a"); await q.add("b")
        #expect(await q.depth == 2)
        #expect(await q.get() == "a")
        await q.add("a")  // while processing: again after done, not twice at once
        #expect(await q.get() == "b")
        #expect(await q.depth == 0)
        await q.done("a")
        #expect(await q.get() == "a")
    }

    @Test func aBurstOfSoonAddsIsOneSync() async {
        let q = WorkQueue(name: "t")
        for _ in 0..<1000 { await q.addSoon("rs", after: .milliseconds(20)) }
        #expect(await q.depth == 0)
        #expect(await q.get() == "rs")  // waits for the delayed add
        await q.done("rs")
        #expect(await q.depth == 0)
        // Once fired, a later burst schedules another.
        await q.addSoon("rs", after: .milliseconds(1))
        #expect(await q.get() == "rs")
        await q.done("rs")
        #expect(await q.depth == 0)
    }
}

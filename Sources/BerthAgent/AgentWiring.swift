import BerthControl
import BerthKube

/// The pods bound to a node, as its agent reads them: its own informer's cache on a real node, or —
/// for hollow nodes — that node's share of one informer that serves thousands of them.
protocol BoundPods: Sendable {
    func get(_ key: String) -> CoreV1.Pod?
    func list() -> [CoreV1.Pod]
}

extension Informer: BoundPods where Object == CoreV1.Pod {}

/// Where the agent queues the pods it must sync again: its own queue and workers on a real node; for
/// hollow nodes one queue and one pool of workers for all of them, each node's keys under its prefix.
struct PodQueue: Sendable {
    let work: WorkQueue
    /// Put before every key (`<node>|`), empty for a queue of one node's pods.
    let prefix: String

    func add(_ key: String) async { await work.add(prefix + key) }
    func addSoon(_ key: String, after delay: Duration) async { await work.addSoon(prefix + key, after: delay) }
}

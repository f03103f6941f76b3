import Foundation
import Logging
import Testing

@testable import BerthControl

/// A ``FakeCluster`` with the context its controllers run in, what the `…FakeTests` suites build on: no
/// server, no store, no root; the test stands in for the kubelet and the API server's other users.
struct FakeControlPlane {
    let cluster = FakeCluster()
    let context: ControllerContext

    init(label: String, config: ControlPlaneConfig = ControlPlaneConfig()) {
        let logger = Logger(label: label)
        let cluster = self.cluster
        context = ControllerContext(
            client: { _ in cluster }, informers: InformerFactory(provider: cluster, logger: logger),
            events: EventRecorder(), logger: logger, config: config)
    }

    /// Runs the informers, the event recorder and the controller `make` builds, once the informers
    /// have synced; cancel the task to stop them.
    func start(_ make: (ControllerContext) -> any ControlLoop) async -> Task<Void, Never> {
        let (informers, events, cluster) = (context.informers, context.events, self.cluster)
        let loop = make(context)
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await informers.run() }
                group.addTask { await events.run(client: cluster) }
                await informers.waitForSync()
                group.addTask { await loop.run() }
            }
        }
        await informers.waitForSync()
        return task
    }

    /// Polls `condition` until it holds, or records an issue naming `what` (and `detail()`, what the
    /// test shows about the cluster then) after 20 s.
    func eventually(_ what: String, detail: () -> String = { "" }, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            if ContinuousClock.now > deadline {
                Issue.record("timed out waiting for \(what) \(detail())")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

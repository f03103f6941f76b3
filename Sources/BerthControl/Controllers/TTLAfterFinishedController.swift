import BerthAPI
import BerthKube
import Foundation
import Logging

/// Deletes finished Jobs once their `ttlSecondsAfterFinished` has passed since they completed or failed
/// (kube-controller-manager's ttl-after-finished controller); their pods go with them (Background
/// propagation). A Job whose TTL changes is looked at again.
struct TTLAfterFinishedController: ControlLoop {
    typealias Job = BatchV1.Job

    let name = "ttl-after-finished-controller"
    let client: any KubeClient
    let jobs: Informer<Job>
    let queue = WorkQueue(name: "ttl-after-finished")
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("ttl-after-finished-controller")
        jobs = ctx.informers.informer(Job.self)
        logger = ctx.logger
        let queue = self.queue
        jobs.onChange { e in
            guard case .deleted = e else {
                let job = e.object
                if job.spec.ttlSecondsAfterFinished != nil, job.isFinished, !job.isTerminating {
                    Task { await queue.add(job.cacheKey) }
                }
                return
            }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("ttl-after-finished sync failed", metadata: ["job": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ key: String) async throws {
        guard let job = jobs.get(key), !job.isTerminating, let ttl = job.spec.ttlSecondsAfterFinished,
            let finished = job.finishedAt
        else { return }
        let left = finished.addingTimeInterval(TimeInterval(ttl)).timeIntervalSinceNow
        if left > 0 {
            queue.add(key, after: .milliseconds(Int64(left * 1000) + 10))
            return
        }
        do {
            try await client.delete(
                Job.self, namespace: job.metadata.namespace, name: job.metadata.name ?? "", uid: job.metadata.uid,
                propagation: "Background")
        } catch let error as APIError where error.code == 404 {}
    }
}

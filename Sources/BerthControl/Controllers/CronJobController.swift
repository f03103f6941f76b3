import BerthAPI
import BerthKube
import Foundation
import Logging

/// Makes each CronJob's Jobs on its schedule (kube-controller-manager's cronjob controller): the plan
/// for the moment (CronJobPlan) carried out — Jobs replaced or pruned deleted with their pods, the Job
/// for the latest scheduled time made, warnings recorded, the status written — and the CronJob looked
/// at again at its next scheduled time, or when one of its Jobs changes.
struct CronJobController: ControlLoop {
    typealias CronJob = BatchV1.CronJob
    typealias Job = BatchV1.Job

    let name = "cronjob-controller"
    let client: any KubeClient
    let cronJobs: Informer<CronJob>
    let jobs: Informer<Job>
    let queue = WorkQueue(name: "cronjob")
    let events: ComponentRecorder
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("cronjob-controller")
        cronJobs = ctx.informers.informer(CronJob.self)
        jobs = ctx.informers.informer(Job.self)
        events = ctx.events.component("cronjob-controller")
        logger = ctx.logger
        jobs.addIndex(ReplicaSetController.ownerIndex) { $0.controllerUIDs }
        let queue = self.queue
        cronJobs.onChange { e in Task { await queue.add(e.object.cacheKey) } }
        jobs.onChange { e in
            guard let ref = e.object.controllerRef(kind: "CronJob"), let ns = e.object.metadata.namespace else {
                return
            }
            Task { await queue.add(Objects.key(namespace: ns, name: ref.name)) }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("cronjob sync failed", metadata: ["cronjob": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ key: String) async throws {
        guard let cronJob = cronJobs.get(key), !cronJob.isTerminating else { return }
        let owned = jobs.byIndex(ReplicaSetController.ownerIndex, cronJob.metadata.uid ?? "")
        var plan = CronJobPlan.make(cronJob, jobs: owned, now: Date())
        for job in plan.deletions {
            do {
                try await client.delete(
                    Job.self, namespace: job.metadata.namespace, name: job.metadata.name ?? "", uid: job.metadata.uid,
                    propagation: "Background")
            } catch let error as APIError where error.code == 404 {}
            events.record(cronJob, reason: "SuccessfulDelete", message: "Deleted job \(job.metadata.name ?? "")")
        }
        for (reason, message) in plan.warnings {
            events.record(cronJob, type: "Warning", reason: reason, message: message)
        }
        if let job = plan.create {
            do {
                let made = try await client.create(job)
                plan.status.active.append(CronJobPlan.reference(made))
                events.record(cronJob, reason: "SuccessfulCreate", message: "Created job \(job.metadata.name ?? "")")
            } catch let error as APIError where error.reason == "AlreadyExists" {
                // Made before (a restart between the create and the status write).
            } catch {
                events.record(
                    cronJob, type: "Warning", reason: "FailedCreate",
                    message: "Error creating job: \(error)")
                throw error
            }
        }
        if plan.status != cronJob.status {
            var updated = cronJob
            updated.status = plan.status
            _ = try await client.updateStatus(updated)
        }
        if let after = plan.requeueAfter { queue.add(key, after: .milliseconds(Int64(after * 1000))) }
    }
}

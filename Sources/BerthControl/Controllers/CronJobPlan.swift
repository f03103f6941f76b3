import BerthKube
import Foundation

/// What the cronjob controller does for one CronJob at one moment (upstream pkg/controller/cronjob,
/// controllerv2's syncCronJob), as a value so that every rule can be tested without a clock: the
/// status (active Jobs, last schedule and success), the Job to make for the most recent scheduled time
/// not yet run, the Jobs to delete (replaced, or beyond the history limits), warnings, and when to look
/// again.
struct CronJobPlan {
    typealias CronJob = BatchV1.CronJob
    typealias Job = BatchV1.Job

    static let scheduledTimestampAnnotation = "batch.kubernetes.io/cronjob-scheduled-timestamp"
    /// Upstream gives up counting missed start times past this many.
    static let missedLimit = 100

    var status: BatchV1.CronJobStatus
    var create: Job?
    var deletions: [Job] = []
    var warnings: [(reason: String, message: String)] = []
    var requeueAfter: TimeInterval?

    static func make(_ cronJob: CronJob, jobs: [Job], now: Date, localZone: TimeZone = .current) -> CronJobPlan {
        var plan = CronJobPlan(status: cronJob.status)
        let spec = cronJob.spec
        let active = jobs.filter { !$0.isFinished }.sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
        plan.status.active = active.map(reference)
        let completions = jobs.filter(\.succeeded).compactMap(\.status.completionTime)
        if let latest = completions.max(by: { $0.secondsSince1970 < $1.secondsSince1970 }),
            latest.secondsSince1970 > plan.status.lastSuccessfulTime?.secondsSince1970 ?? .min
        {
            plan.status.lastSuccessfulTime = latest
        }
        plan.pruneHistory(
            jobs, successful: Int(spec.successfulJobsHistoryLimit ?? 3), failed: Int(spec.failedJobsHistoryLimit ?? 1))
        if spec.suspend == true { return plan }

        let schedule: CronSchedule
        do { schedule = try CronSchedule(spec.schedule) } catch {
            plan.warnings.append(
                ("UnparseableSchedule", "unparseable schedule: \(spec.schedule) : \(error.description)"))
            return plan
        }
        let zone = spec.timeZone.flatMap(TimeZone.init(identifier:)) ?? localZone
        var earliest = Date(
            timeIntervalSince1970: TimeInterval(
                cronJob.status.lastScheduleTime?.secondsSince1970 ?? cronJob.metadata.creationTimestamp?
                    .secondsSince1970 ?? 0))
        if let deadline = spec.startingDeadlineSeconds {
            earliest = max(earliest, now.addingTimeInterval(-TimeInterval(deadline)))
        }
        var mostRecent: Date?
        var missed = 0
        var t = schedule.next(after: earliest, in: zone)
        while let scheduled = t, scheduled <= now {
            mostRecent = scheduled
            missed += 1
            t = schedule.next(after: scheduled, in: zone)
        }
        if missed > missedLimit {
            plan.warnings.append(
                (
                    "TooManyMissedTimes",
                    "too many missed start times: \(missed). Set or decrease .spec.startingDeadlineSeconds or check clock skew"
                ))
        }
        if let next = schedule.next(after: now, in: zone) { plan.requeueAfter = next.timeIntervalSince(now) + 0.1 }
        guard let scheduled = mostRecent else { return plan }
        if let deadline = spec.startingDeadlineSeconds, scheduled < now.addingTimeInterval(-TimeInterval(deadline)) {
            plan.warnings.append(("MissSchedule", "Missed scheduled time to start a job: \(rfc3339(scheduled, zone))"))
            return plan
        }
        let name = jobName(cronJob, scheduled)
        if jobs.contains(where: { $0.metadata.name == name }) {
            plan.status.lastScheduleTime = MetaV1.Time(secondsSince1970: Int64(scheduled.timeIntervalSince1970))
            return plan
        }
        switch spec.concurrencyPolicy?.rawValue ?? "Allow" {
        case "Forbid" where !active.isEmpty:
            return plan
        case "Replace":
            plan.deletions += active
            plan.status.active = []
        default: break
        }
        plan.create = job(from: cronJob, name: name, scheduled: scheduled, zone: zone)
        plan.status.lastScheduleTime = MetaV1.Time(secondsSince1970: Int64(scheduled.timeIntervalSince1970))
        return plan
    }

    /// `<cronjob>-<scheduled time in minutes since the epoch>`: the same name for the same scheduled time,
    /// so a second controller or a restart cannot run it twice.
    static func jobName(_ cronJob: CronJob, _ scheduled: Date) -> String {
        "\(cronJob.metadata.name ?? "")-\(Int64(scheduled.timeIntervalSince1970) / 60)"
    }

    static func job(from cronJob: CronJob, name: String, scheduled: Date, zone: TimeZone) -> Job {
        var job = Job()
        job.metadata.name = name
        job.metadata.namespace = cronJob.metadata.namespace
        job.metadata.labels = cronJob.spec.jobTemplate.metadata.labels
        job.metadata.annotations = cronJob.spec.jobTemplate.metadata.annotations
        job.metadata.annotations[scheduledTimestampAnnotation] = rfc3339(scheduled, zone)
        job.metadata.ownerReferences = [cronJob.controllerOwnerReference]
        job.spec = cronJob.spec.jobTemplate.spec
        return job
    }

    static func rfc3339(_ date: Date, _ zone: TimeZone) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = zone
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    static func reference(_ job: Job) -> CoreV1.ObjectReference {
        var reference = CoreV1.ObjectReference()
        reference.kind = "Job"
        reference.apiVersion = "batch/v1"
        reference.namespace = job.metadata.namespace
        reference.name = job.metadata.name
        reference.uid = job.metadata.uid
        reference.resourceVersion = job.metadata.resourceVersion
        return reference
    }

    /// Finished Jobs beyond the history limits go, oldest first (by start time, then creation).
    mutating func pruneHistory(_ jobs: [Job], successful: Int, failed: Int) {
        func started(_ job: Job) -> Int64 {
            job.status.startTime?.secondsSince1970 ?? job.metadata.creationTimestamp?.secondsSince1970 ?? 0
        }
        for (kept, limit) in [(jobs.filter(\.succeeded), successful), (jobs.filter(\.failedForGood), failed)] {
            let oldestFirst = kept.sorted { started($0) < started($1) }
            deletions += oldestFirst.prefix(max(0, oldestFirst.count - limit))
        }
    }
}

extension BatchV1.Job {
    var succeeded: Bool { status.conditions.contains { $0.type == .complete && $0.status == .true } }
    var failedForGood: Bool { status.conditions.contains { $0.type == .failed && $0.status == .true } }
}

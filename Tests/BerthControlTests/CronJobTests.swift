import BerthAPI
import BerthKube
import Foundation
import Testing

@testable import BerthControl

/// The cronjob controller's decisions without a clock (CronJobPlan): the Job for the latest missed
/// time, the concurrency policies, the starting deadline, the history limits, suspension.
struct CronJobPlanTests {
    let utc = TimeZone(identifier: "UTC")!

    func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
    func time(_ text: String) -> MetaV1.Time { MetaV1.Time(secondsSince1970: Int64(date(text).timeIntervalSince1970)) }

    func cronJob(_ schedule: String = "*/5 * * * *", policy: String? = nil, deadline: Int64? = nil) -> BatchV1.CronJob {
        var cronJob = BatchV1.CronJob()
        cronJob.metadata.name = "report"
        cronJob.metadata.namespace = "default"
        cronJob.metadata.uid = "cj-uid"
        cronJob.metadata.creationTimestamp = time("2026-12-05T10:00:00Z")
        cronJob.spec.schedule = schedule
        cronJob.spec.timeZone = "UTC"
        cronJob.spec.concurrencyPolicy = policy.map { .init(rawValue: $0) }
        cronJob.spec.startingDeadlineSeconds = deadline
        cronJob.spec.jobTemplate.metadata.labels = ["app": "report"]
        return cronJob
    }

    func job(_ name: String, finished: String? = nil, started: String = "2026-12-05T10:00:00Z") -> BatchV1.Job {
        var job = BatchV1.Job()
        job.metadata.name = name
        job.metadata.namespace = "default"
        job.status.startTime = time(started)
        if let finished {
            var condition = BatchV1.JobCondition()
            condition.type = .init(rawValue: finished)
            condition.status = .true
            job.status.conditions = [condition]
            if finished == "Complete" { job.status.completionTime = time(started) }
        }
        return job
    }

    @Test func theLatestMissedTimeGetsOneJob() throws {
        let plan = CronJobPlan.make(cronJob(), jobs: [], now: date("2026-12-05T10:17:30Z"), localZone: utc)
        let made = try #require(plan.create)
        // 10:15 is 29,443,695 minutes after the epoch.
        #expect(made.metadata.name == "report-\(Int64(date("2026-12-05T10:15:00Z").timeIntervalSince1970) / 60)")
        #expect(made.metadata.annotations[CronJobPlan.scheduledTimestampAnnotation] == "2026-12-05T10:15:00Z")
        #expect(made.metadata.labels == ["app": "report"])
        #expect(made.metadata.ownerReferences.first?.kind == "CronJob")
        #expect(plan.status.lastScheduleTime == time("2026-12-05T10:15:00Z"))
        #expect(abs((plan.requeueAfter ?? 0) - 150.1) < 0.01)
        // Already made: nothing more.
        let again = CronJobPlan.make(cronJob(), jobs: [made], now: date("2026-12-05T10:18:00Z"), localZone: utc)
        #expect(again.create == nil)
    }

    @Test func concurrencyPolicies() {
        let now = date("2026-12-05T10:10:30Z")
        let running = job("report-1")
        var plan = CronJobPlan.make(cronJob(policy: "Forbid"), jobs: [running], now: now, localZone: utc)
        #expect(plan.create == nil && plan.deletions.isEmpty)
        #expect(plan.status.active.map(\.name) == ["report-1"])
        plan = CronJobPlan.make(cronJob(policy: "Replace"), jobs: [running], now: now, localZone: utc)
        #expect(plan.create != nil && plan.deletions.map(\.metadata.name) == ["report-1"])
        plan = CronJobPlan.make(cronJob(policy: "Allow"), jobs: [running], now: now, localZone: utc)
        #expect(plan.create != nil && plan.deletions.isEmpty)
    }

    @Test func aStartingDeadlineSkipsLateTimesAndTooManyMissedTimesAreReported() {
        // Due at 10:10: 5 s late is within a 10 s deadline, 25 s late is not (skipped, as upstream: the
        // deadline bounds the times looked at).
        var plan = CronJobPlan.make(
            cronJob(deadline: 10), jobs: [], now: date("2026-12-05T10:10:05Z"), localZone: utc)
        #expect(plan.create != nil)
        plan = CronJobPlan.make(cronJob(deadline: 10), jobs: [], now: date("2026-12-05T10:10:25Z"), localZone: utc)
        #expect(plan.create == nil && plan.warnings.isEmpty)
        // Every minute for three hours without a run: more than a hundred missed.
        plan = CronJobPlan.make(cronJob("* * * * *"), jobs: [], now: date("2026-12-05T13:00:30Z"), localZone: utc)
        #expect(plan.create != nil)
        #expect(plan.warnings.first?.message.hasPrefix("too many missed start times: 180.") == true)
    }

    @Test func historyBeyondTheLimitsGoesOldestFirstAndSuspendStops() {
        var suspended = cronJob()
        suspended.spec.suspend = true
        suspended.spec.successfulJobsHistoryLimit = 1
        suspended.spec.failedJobsHistoryLimit = 0
        let jobs = [
            job("old", finished: "Complete", started: "2026-12-05T10:00:00Z"),
            job("new", finished: "Complete", started: "2026-12-05T10:05:00Z"),
            job("broken", finished: "Failed"),
        ]
        let plan = CronJobPlan.make(suspended, jobs: jobs, now: date("2026-12-05T10:17:00Z"), localZone: utc)
        #expect(plan.create == nil)
        #expect(Set(plan.deletions.map { $0.metadata.name ?? "" }) == ["old", "broken"])
        #expect(plan.status.lastSuccessfulTime == time("2026-12-05T10:05:00Z"))
    }
}

extension ControlTests {
    /// batch/v1 CronJob through kubectl against the control plane: served with its defaults, checks and
    /// columns, and the controller making the Job at the next minute.
    @Suite("cron jobs", .serialized) struct CronJobTests {
        @Test func aCronJobMakesItsJobOnTime() async throws {
            let c = try await Cluster()
            defer { Task { await c.stop() } }
            // kubectl's generator sends protobuf.
            let created = try c.kubectl(
                "create", "cronjob", "tick", "--image=busybox", "--schedule=* * * * *", "--", "date")
            #expect(created.ok, "\(created.stderr)")
            let defaults = try c.kubectl(
                "get", "cj", "tick", "-o",
                "jsonpath={.spec.concurrencyPolicy}/{.spec.suspend}/{.spec.successfulJobsHistoryLimit}/{.spec.failedJobsHistoryLimit}"
            )
            #expect(defaults.stdout == "Allow/false/3/1", "\(defaults.stdout)")
            let table = try c.kubectl("get", "cronjobs")
            #expect(table.stdout.contains("SCHEDULE") && table.stdout.contains("* * * * *"), "\(table.stdout)")

            // kubectl create job --from: a Job from the template, made by kubectl itself.
            let manual = try c.kubectl("create", "job", "by-hand", "--from=cronjob/tick")
            #expect(manual.ok, "\(manual.stderr)")

            // The controller's, at the next whole minute (within 61 s).
            var name = ""
            let deadline = Date().addingTimeInterval(75)
            while Date() < deadline {
                // Not kubectl's (it also names the CronJob its owner).
                name =
                    try c.kubectl("get", "jobs", "-o", "name").stdout.split(separator: "\n")
                    .map { String($0.dropFirst("job.batch/".count)) }.first { $0.hasPrefix("tick-") } ?? ""
                if !name.isEmpty { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(name.hasPrefix("tick-"), "\(name)")
            let minutes = Int64(name.dropFirst(5)) ?? 0
            let annotation = try c.kubectl(
                "get", "job", name, "-o",
                "jsonpath={.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp}"
            ).stdout
            let formatter = ISO8601DateFormatter()
            #expect(
                formatter.date(from: annotation).map { Int64($0.timeIntervalSince1970) / 60 } == minutes,
                "\(annotation)")
            var active = ""
            for _ in 0..<20 {
                active = try c.kubectl("get", "cj", "tick", "-o", "jsonpath={.status.active[*].name}").stdout
                if active.split(separator: " ").contains(Substring(name)) { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            // kubectl's Job counts too: it names the CronJob its controller.
            #expect(active.split(separator: " ").sorted() == ["by-hand", Substring(name)], "\(active)")
            #expect(!(try c.kubectl("get", "cj", "tick", "-o", "jsonpath={.status.lastScheduleTime}").stdout.isEmpty))
        }

        @Test func badCronJobsAreRefused() async throws {
            let c = try await Cluster()
            defer { Task { await c.stop() } }
            let bad = """
                apiVersion: batch/v1
                kind: CronJob
                metadata: {name: a-name-that-is-far-too-long-for-a-cronjob-whose-jobs-need-room}
                spec:
                  schedule: "61 * * * *"
                  timeZone: Mars/Olympus_Mons
                  concurrencyPolicy: Sometimes
                  jobTemplate:
                    spec:
                      template:
                        spec:
                          containers: [{name: c, image: busybox}]
                """
            let refused = try c.kubectl("apply", "-f", "-", stdin: bad)
            for expected in [
                "metadata.name: Invalid value:", "must be no more than 52 characters",
                "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
                "spec.timeZone: Invalid value: \"Mars/Olympus_Mons\": unknown time zone Mars/Olympus_Mons",
                "spec.concurrencyPolicy: Unsupported value: \"Sometimes\"",
                "spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: \"Always\"",
            ] {
                #expect(refused.stderr.contains(expected), "\(expected) in \(refused.stderr)")
            }
            let tz = try c.kubectl(
                "create", "cronjob", "tz", "--image=busybox", "--schedule=TZ=UTC 0 * * * *")
            #expect(
                tz.stderr.contains("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"), "\(tz.stderr)")
        }
    }
}

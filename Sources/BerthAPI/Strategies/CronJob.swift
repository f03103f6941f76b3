import BerthKube
import Foundation

/// batch/v1 CronJob (upstream pkg/registry/batch/cronjob and pkg/apis/batch/validation): a Job made on a
/// cron schedule in a time zone. Defaults as v1's SetDefaults_CronJob (Allow, not suspended, three
/// successful and one failed Job kept); the schedule and zone must parse; its status is the cronjob
/// controller's.
struct CronJobStrategy: ResourceStrategy {
    /// A CronJob's Jobs are named `<name>-<minutes>` (11 more characters), within a label's 63.
    static let maxNameLength = 52

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        var spec = obj["spec"]
        if spec["concurrencyPolicy"].isNull { spec["concurrencyPolicy"] = "Allow" }
        if spec["suspend"].isNull { spec["suspend"] = false }
        if spec["successfulJobsHistoryLimit"].isNull { spec["successfulJobsHistoryLimit"] = 3 }
        if spec["failedJobsHistoryLimit"].isNull { spec["failedJobsHistoryLimit"] = 1 }
        var podSpec = spec["jobTemplate"]["spec"]["template"]["spec"]
        PodTemplate.applyDefaults(&podSpec)
        spec["jobTemplate"]["spec"]["template"]["spec"] = podSpec
        obj["spec"] = spec
    }

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) { obj["status"] = [:] }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs: [APIError.Cause] = []
        let name = obj["metadata"]["name"].string ?? ""
        if name.count > Self.maxNameLength {
            errs.append(FieldChecks.invalid("metadata.name", .string(name), "must be no more than 52 characters"))
        }
        errs += Self.scheduleErrors(spec)
        errs += FieldChecks.supported(
            spec["concurrencyPolicy"], ["Allow", "Forbid", "Replace"], "spec.concurrencyPolicy")
        for field in ["startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
            if let value = spec[field].int, value < 0 {
                errs.append(FieldChecks.invalid("spec.\(field)", .int(value), "must be greater than or equal to 0"))
            }
        }
        let job = spec["jobTemplate"]["spec"]
        errs += FieldChecks.supported(
            job["template"]["spec"]["restartPolicy"], ["OnFailure", "Never"],
            "spec.jobTemplate.spec.template.spec.restartPolicy")
        errs += PodTemplate.validate(job["template"]["spec"], path: "spec.jobTemplate.spec.template.spec")
        if !job["selector"].isNull && job["manualSelector"].bool != true {
            errs.append(
                FieldChecks.invalid(
                    "spec.jobTemplate.spec.selector", job["selector"],
                    "`selector` will be auto-generated"))
        }
        return errs
    }

    /// The schedule parses as a cron spec (TZ= inside it is refused for the timeZone field), and the
    /// zone is one the system's database knows.
    static func scheduleErrors(_ spec: JSON) -> [APIError.Cause] {
        let schedule = spec["schedule"].string ?? ""
        if schedule.isEmpty { return [FieldChecks.required("spec.schedule")] }
        var errs: [APIError.Cause] = []
        if schedule.hasPrefix("TZ=") || schedule.hasPrefix("CRON_TZ=") {
            errs.append(
                FieldChecks.invalid(
                    "spec.schedule", .string(schedule),
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
        } else {
            do { _ = try CronSchedule(schedule) } catch {
                errs.append(FieldChecks.invalid("spec.schedule", .string(schedule), error.description))
            }
        }
        if let zone = spec["timeZone"].string, TimeZone(identifier: zone) == nil || zone.isEmpty {
            errs.append(FieldChecks.invalid("spec.timeZone", .string(zone), "unknown time zone \(zone)"))
        }
        return errs
    }

    /// kubectl's columns: schedule, zone, suspend, active Jobs, when it last fired.
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Schedule"), .init(name: "Timezone"), .init(name: "Suspend"),
            .init(name: "Active", type: "integer"), .init(name: "Last Schedule"), Tables.ageColumn,
            .init(name: "Containers", priority: 1), .init(name: "Images", priority: 1),
            .init(name: "Selector", priority: 1),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"], status = obj["status"]
        var last = "<none>"
        if let time = status["lastScheduleTime"].string.flatMap(APITime.parse) {
            last = Tables.duration(Date().timeIntervalSince(time))
        }
        let (containers, images) = Tables.containers(spec["jobTemplate"]["spec"]["template"]["spec"])
        let selector = spec["jobTemplate"]["spec"]["selector"]
        return [
            Tables.nameCell(obj), .string(spec["schedule"].string ?? ""), .string(spec["timeZone"].string ?? "<none>"),
            .string(String(spec["suspend"].bool ?? false)), .int(Int64((status["active"].array ?? []).count)),
            .string(last), Tables.ageCell(obj), .string(containers), .string(images),
            .string(selector.isNull ? "<none>" : LabelSelector(object: selector).text),
        ]
    }
}

/// events.k8s.io/v1 Event: the same objects as core/v1 Events, stored as them and converted on the way
/// in and out (upstream's events/v1 conversion): involvedObject is `regarding`, message `note`, source
/// `deprecatedSource`, reportingComponent `reportingController`, firstTimestamp/lastTimestamp/count the
/// `deprecated…` fields. New events through this group must say who reports what as upstream requires
/// (eventTime, reportingController, reportingInstance, action, reason).
struct EventsV1EventStrategy: ResourceStrategy {
    /// events.k8s.io/v1 name → core/v1 name.
    static let renamed: [(events: String, core: String)] = [
        ("regarding", "involvedObject"), ("note", "message"), ("deprecatedSource", "source"),
        ("reportingController", "reportingComponent"), ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count"),
    ]

    func toStorage(_ obj: JSON) -> JSON {
        var out = obj
        for (events, core) in Self.renamed {
            out[core] = obj[events]
            out[events] = .null
        }
        out["apiVersion"] = "v1"
        return out
    }

    func fromStorage(_ obj: inout JSON) {
        let stored = obj
        for (events, core) in Self.renamed {
            obj[events] = stored[core]
            obj[core] = .null
        }
        // A core Event's zero values (count 0, an empty source) are not set fields here.
        if obj["deprecatedCount"].int == 0 { obj["deprecatedCount"] = .null }
        if (obj["deprecatedSource"].object ?? [:]).isEmpty { obj["deprecatedSource"] = .null }
    }

    /// ValidateEventCreate for events.k8s.io/v1 requests.
    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        if (obj["eventTime"].string ?? "").isEmpty { errs.append(FieldChecks.required("eventTime")) }
        let type = obj["type"].string ?? ""
        if type != "Normal" && type != "Warning" {
            errs.append(FieldChecks.invalid("type", "", "has invalid value: \(type)"))
        }
        for field in ["deprecatedFirstTimestamp", "deprecatedLastTimestamp"] where !obj[field].isNull {
            errs.append(FieldChecks.invalid(field, "", "needs to be unset"))
        }
        if let count = obj["deprecatedCount"].int, count != 0 {
            errs.append(FieldChecks.invalid("deprecatedCount", "", "needs to be unset"))
        }
        if !(obj["deprecatedSource"]["component"].string ?? "").isEmpty
            || !(obj["deprecatedSource"]["host"].string ?? "").isEmpty
        {
            errs.append(FieldChecks.invalid("deprecatedSource", "", "needs to be unset"))
        }
        let series = obj["series"]
        if !series.isNull {
            if (series["count"].int ?? 0) < 2 {
                errs.append(FieldChecks.invalid("series.count", "", "should be at least 2"))
            }
            if (series["lastObservedTime"].string ?? "").isEmpty {
                errs.append(FieldChecks.required("series.lastObservedTime"))
            }
        }
        let controller = obj["reportingController"].string ?? ""
        if controller.isEmpty {
            errs.append(FieldChecks.required("reportingController"))
        } else {
            errs += FieldChecks.qualifiedName(controller, "reportingController")
        }
        for (field, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
            let value = obj[field].string ?? ""
            if value.isEmpty {
                errs.append(FieldChecks.required(field))
            } else if value.utf8.count > limit {
                errs.append(FieldChecks.invalid(field, "", "can have at most \(limit) characters"))
            }
        }
        if (obj["note"].string ?? "").utf8.count > 1024 {
            errs.append(FieldChecks.invalid("note", "", "can have at most 1024 characters"))
        }
        return errs
    }

    /// An update may change only the series (upstream's ValidateEventUpdate for this group).
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        for field in [
            "regarding", "related", "reportingController", "reportingInstance", "action", "reason", "note", "type",
            "eventTime",
        ] where obj[field] != old[field] {
            errs.append(FieldChecks.invalid(field, obj[field], "field is immutable"))
        }
        return errs
    }

    /// events.k8s.io/v1's field labels (its conversion's list).
    var fieldLabels: FieldLabelSet {
        var getters: [String: FieldLabels.Getter] = [:]
        for field in ["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"] {
            getters["regarding.\(field)"] = FieldLabels.string("regarding.\(field)")
        }
        for field in ["reason", "reportingController", "type"] { getters[field] = FieldLabels.string(field) }
        return FieldLabelSet(getters: getters, ownConversion: true)
    }

    /// kubectl prints these as it prints core Events.
    var tableColumns: [Tables.Column] { EventStrategy().tableColumns }
    func tableCells(_ obj: JSON) -> [JSON] { EventStrategy().tableCells(toStorage(obj)) }
}

extension Schema {
    /// events.k8s.io/v1 Event in the table form of SchemaDefinitions.swift, by hand (the model's facts do
    /// not cover the events group); its parts are core/v1's.
    static let eventsV1Text = """
        events.v1.Event kind:s apiVersion:s metadata:@meta.v1.ObjectMeta eventTime:t series:@events.v1.EventSeries
          reportingController:s reportingInstance:s action:s reason:s regarding:@core.v1.ObjectReference
          related:@core.v1.ObjectReference note:s type:s deprecatedSource:@core.v1.EventSource
          deprecatedFirstTimestamp:t deprecatedLastTimestamp:t deprecatedCount:i
        events.v1.EventSeries count:i lastObservedTime:t
        """
}

/// apps/v1 ControllerRevision (upstream pkg/registry/apps/controllerrevision/strategy.go): an immutable
/// snapshot of a DaemonSet's or StatefulSet's template, which `kubectl rollout history/undo` read. The
/// controllers write them; `data` never changes after create (only `revision` moves, on a rollback).
struct ControllerRevisionStrategy: ResourceStrategy {
    /// ValidateControllerRevision: data is required and the revision is not negative.
    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        if obj["data"].isNull { errs.append(FieldChecks.required("data")) }
        if let revision = obj["revision"].int, revision < 0 {
            errs.append(FieldChecks.invalid("revision", obj["revision"], "must be greater than or equal to 0"))
        }
        return errs
    }

    /// ValidateControllerRevisionUpdate: `data` is immutable (the history would lie otherwise).
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        FieldChecks.immutable(obj["data"], old["data"], "data")
    }

    /// kubectl's columns (printControllerRevision): the controller as `kind.group/name`, lower-cased as
    /// formatResourceName writes it.
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Controller"), .init(name: "Revision", type: "integer"),
            Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let owner = (obj["metadata"]["ownerReferences"].array ?? []).first { $0["controller"].bool == true }
        var controller = "<none>"
        if let owner {
            let apiVersion = owner["apiVersion"].string ?? ""
            let group = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
            let kind = owner["kind"].string ?? ""
            controller = (group.isEmpty ? kind : kind + "." + group).lowercased() + "/" + (owner["name"].string ?? "")
        }
        return [Tables.nameCell(obj), .string(controller), Tables.int(obj["revision"]), Tables.ageCell(obj)]
    }
}

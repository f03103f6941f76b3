import Foundation

/// Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): the columns kubectl shows.
/// Each kind's columns and cells are in its strategy (`ResourceStrategy.tableColumns`, `tableCells`); this is
/// the shared part: the table itself, rows, and the formatting kubectl's printers share.
enum Tables {
    struct Column { var name: String; var type = "string"; var format = ""; var priority = 0; var description = "" }

    /// The columns every kind starts (Name) or ends (Age) with.
    static let nameColumn = Column(name: "Name", format: "name", description: "Name must be unique within a namespace.")
    static let ageColumn = Column(
        name: "Age",
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.")
    static func nameCell(_ obj: JSON) -> JSON { .string(obj["metadata"]["name"].string ?? "") }
    static func ageCell(_ obj: JSON) -> JSON { .string(age(obj)) }

    static func age(_ obj: JSON, now: Date = Date()) -> String {
        guard let ts = obj["metadata"]["creationTimestamp"].string, let d = APITime.parse(ts) else {
            return "<unknown>"
        }
        return duration(now.timeIntervalSince(d))
    }
    /// kubectl's HumanDuration.
    static func duration(_ secs: Double) -> String {
        let s = Int(max(0, secs))
        if s < 120 { return "\(s)s" }
        let m = s / 60
        if m < 10 { return s % 60 == 0 ? "\(m)m" : "\(m)m\(s % 60)s" }
        if m < 180 { return "\(m)m" }
        let h = s / 3600
        if h < 8 { return (m % 60) == 0 ? "\(h)h" : "\(h)h\(m % 60)m" }
        if h < 48 { return "\(h)h" }
        let d = h / 24
        if d < 8 { return h % 24 == 0 ? "\(d)d" : "\(d)d\(h % 24)h" }
        if d < 365 * 2 { return "\(d)d" }
        return "\(d / 365)y"
    }

    static func int(_ v: JSON) -> JSON { .int(v.int ?? 0) }
    static func containers(_ spec: JSON) -> (String, String) {
        let cs = spec["containers"].array ?? []
        return (
            cs.compactMap { $0["name"].string }.joined(separator: ","),
            cs.compactMap { $0["image"].string }.joined(separator: ",")
        )
    }

    static func definitions(_ r: ResourceType) -> JSON {
        .array(
            r.strategy.tableColumns.map {
                [
                    "name": .string($0.name), "type": .string($0.type), "format": .string($0.format),
                    "description": .string($0.description), "priority": .int(Int64($0.priority)),
                ]
            })
    }

    static func table(
        _ objs: [JSON], _ r: ResourceType, resourceVersion: String, continueToken: String?, includeObject: String
    ) -> JSON {
        var meta: JSON = ["resourceVersion": .string(resourceVersion)]
        if let continueToken { meta["continue"] = .string(continueToken) }
        return [
            "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": definitions(r), "rows": .array(objs.map { row($0, r, includeObject: includeObject) }),
        ]
    }

    static func row(_ obj: JSON, _ r: ResourceType, includeObject: String) -> JSON {
        var row: JSON = ["cells": .array(r.strategy.tableCells(obj))]
        switch includeObject {
        case "None": break
        case "Object": row["object"] = obj
        default:
            row["object"] = [
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"],
            ]
        }
        return row
    }
}

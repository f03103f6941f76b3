import Foundation

/// core/v1 Event (upstream pkg/registry/core/event/strategy.go).
struct EventStrategy: ResourceStrategy {
    var fieldLabels: FieldLabelSet {
        .init(
            getters: [
                "involvedObject.kind": FieldLabels.string("involvedObject.kind"),
                "involvedObject.namespace": FieldLabels.string("involvedObject.namespace"),
                "involvedObject.name": FieldLabels.string("involvedObject.name"),
                "involvedObject.uid": FieldLabels.string("involvedObject.uid"),
                "involvedObject.apiVersion": FieldLabels.string("involvedObject.apiVersion"),
                "involvedObject.resourceVersion": FieldLabels.string("involvedObject.resourceVersion"),
                "involvedObject.fieldPath": FieldLabels.string("involvedObject.fieldPath"),
                "reason": FieldLabels.string("reason"),
                "reportingComponent": FieldLabels.string("reportingComponent"),
                // Not a path: source.component, or the reporting controller of events written through
                // events.k8s.io, which have no source.
                "source": { e in
                    let component = e["source"]["component"].string ?? ""
                    return component.isEmpty ? e["reportingComponent"].string ?? "" : component
                },
                "type": FieldLabels.string("type"),
            ], ownConversion: true)
    }

    /// kubectl's event printer: no Name first, no Age; the name last.
    var tableColumns: [Tables.Column] {
        [
            .init(name: "Last Seen"), .init(name: "Type"), .init(name: "Reason"), .init(name: "Object"),
            .init(name: "Message"),
            .init(name: "Source", priority: 1), .init(name: "First Seen", priority: 1),
            .init(name: "Count", type: "integer", priority: 1),
            Tables.nameColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let io = obj["involvedObject"]
        let last = obj["lastTimestamp"].string ?? obj["eventTime"].string ?? obj["metadata"]["creationTimestamp"].string
        let since =
            last.flatMap { APITime.parse($0) }.map { Tables.duration(Date().timeIntervalSince($0)) } ?? "<unknown>"
        return [
            .string(since), .string(obj["type"].string ?? ""), .string(obj["reason"].string ?? ""),
            .string("\((io["kind"].string ?? "").lowercased())/\(io["name"].string ?? "")"),
            .string(obj["message"].string ?? ""),
            .string(obj["source"]["component"].string ?? ""), .string(since), Tables.int(obj["count"]),
            Tables.nameCell(obj),
        ]
    }
}

/// core/v1 Node (upstream pkg/registry/core/node/strategy.go). A node agent registers its Node with status
/// (upstream's node strategy keeps it on create), so only the status subresource split applies on update.
struct NodeStrategy: ResourceStrategy {
    var fieldLabels: FieldLabelSet {
        .init(getters: ["spec.unschedulable": FieldLabels.bool("spec.unschedulable")], ownConversion: true)
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Status"), .init(name: "Roles"), Tables.ageColumn, .init(name: "Version"),
            .init(name: "Internal-IP", priority: 1), .init(name: "External-IP", priority: 1),
            .init(name: "OS-Image", priority: 1),
            .init(name: "Kernel-Version", priority: 1), .init(name: "Container-Runtime", priority: 1),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let status = obj["status"]
        let ready = (status["conditions"].array ?? []).first { $0["type"].string == "Ready" }
        var st = ready?["status"].string == "True" ? "Ready" : (ready == nil ? "Unknown" : "NotReady")
        if obj["spec"]["unschedulable"].bool == true { st += ",SchedulingDisabled" }
        let roles = obj["metadata"]["labels"].stringMap.keys.filter { $0.hasPrefix("node-role.kubernetes.io/") }
            .map { String($0.dropFirst("node-role.kubernetes.io/".count)) }.sorted()
        let addr = { (t: String) in
            (status["addresses"].array ?? []).first { $0["type"].string == t }?["address"].string ?? "<none>"
        }
        let info = status["nodeInfo"]
        return [
            Tables.nameCell(obj), .string(st), .string(roles.isEmpty ? "<none>" : roles.joined(separator: ",")),
            Tables.ageCell(obj),
            .string(info["kubeletVersion"].string ?? ""), .string(addr("InternalIP")), .string(addr("ExternalIP")),
            .string(info["osImage"].string ?? "<unknown>"), .string(info["kernelVersion"].string ?? "<unknown>"),
            .string(info["containerRuntimeVersion"].string ?? "<unknown>"),
        ]
    }
}

/// core/v1 PodTemplate (upstream pkg/registry/core/podtemplate): a stored pod template other tools
/// instantiate; its template gets the pod-spec defaults and checks the workloads' templates get.
struct PodTemplateStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        var spec = obj["template"]["spec"]
        PodTemplate.applyDefaults(&spec)
        obj["template"]["spec"] = spec
        if obj["template"]["metadata"]["creationTimestamp"].isNull {
            obj["template"]["metadata"]["creationTimestamp"] = .null
        }
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        PodTemplate.validate(obj["template"]["spec"], path: "template.spec")
    }

    /// kubectl's columns: the template's containers, images and labels.
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Containers"), .init(name: "Images"), .init(name: "Pod Labels"),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let (containers, images) = Tables.containers(obj["template"]["spec"])
        let labels = obj["template"]["metadata"]["labels"].stringMap.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return [Tables.nameCell(obj), .string(containers), .string(images), .string(labels)]
    }
}

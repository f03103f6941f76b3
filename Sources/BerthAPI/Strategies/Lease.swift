/// coordination.k8s.io/v1 Lease (upstream pkg/registry/coordination/lease/strategy.go): node heartbeats and
/// leader election. It has a spec but no status subresource, so writers change the spec freely.
struct LeaseStrategy: ResourceStrategy {
    var tableColumns: [Tables.Column] { [Tables.nameColumn, .init(name: "Holder"), Tables.ageColumn] }
    func tableCells(_ obj: JSON) -> [JSON] {
        [Tables.nameCell(obj), .string(obj["spec"]["holderIdentity"].string ?? ""), Tables.ageCell(obj)]
    }
}

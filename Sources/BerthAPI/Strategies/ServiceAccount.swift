/// core/v1 ServiceAccount (upstream pkg/registry/core/serviceaccount/strategy.go).
struct ServiceAccountStrategy: ResourceStrategy {
    var tableColumns: [Tables.Column] {
        [Tables.nameColumn, .init(name: "Secrets", type: "integer"), Tables.ageColumn]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        [Tables.nameCell(obj), .int(Int64(obj["secrets"].array?.count ?? 0)), Tables.ageCell(obj)]
    }
}

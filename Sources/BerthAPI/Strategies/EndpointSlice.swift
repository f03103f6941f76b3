/// discovery.k8s.io/v1 EndpointSlice (upstream pkg/registry/discovery/endpointslice/strategy.go): written
/// by the EndpointSlice controller; nothing beyond printing.
struct EndpointSliceStrategy: ResourceStrategy {
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "AddressType"), .init(name: "Ports"), .init(name: "Endpoints"),
            Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let ports = (obj["ports"].array ?? []).compactMap { $0["port"].int.map(String.init) }.joined(separator: ",")
        let addrs = (obj["endpoints"].array ?? []).flatMap { ($0["addresses"].array ?? []).compactMap(\.string) }
        return [
            Tables.nameCell(obj), .string(obj["addressType"].string ?? ""), .string(ports.isEmpty ? "<unset>" : ports),
            .string(addrs.isEmpty ? "<unset>" : addrs.prefix(3).joined(separator: ",")), Tables.ageCell(obj),
        ]
    }
}

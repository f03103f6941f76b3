/// core/v1 Endpoints (upstream pkg/registry/core/endpoint/strategy.go): written by the endpoints
/// controller; nothing beyond printing.
struct EndpointsStrategy: ResourceStrategy {
    var tableColumns: [Tables.Column] { [Tables.nameColumn, .init(name: "Endpoints"), Tables.ageColumn] }
    func tableCells(_ obj: JSON) -> [JSON] {
        var eps: [String] = []
        for s in obj["subsets"].array ?? [] {
            for a in s["addresses"].array ?? [] {
                for p in s["ports"].array ?? [[:]] { eps.append("\(a["ip"].string ?? ""):\(p["port"].int ?? 0)") }
            }
        }
        let shown = eps.prefix(3).joined(separator: ",") + (eps.count > 3 ? " + \(eps.count - 3) more..." : "")
        return [Tables.nameCell(obj), .string(eps.isEmpty ? "<none>" : shown), Tables.ageCell(obj)]
    }
}

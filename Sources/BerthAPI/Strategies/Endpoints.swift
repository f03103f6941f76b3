/// core/v1 Endpoints (upstream pkg/registry/core/endpoint/strategy.go): written by the endpoints
/// controller, or by hand for a Service without a selector. Validation is upstream's for the addresses
/// (ValidateEndpoints → validateEndpointSubsets → validateEndpointAddress); ports are not checked yet.
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

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let allowLoopback = Self.isAPIServerEndpoints(obj)
        for (i, subset) in (obj["subsets"].array ?? []).enumerated() {
            let at = "subsets[\(i)]"
            let ready = subset["addresses"].array ?? [], notReady = subset["notReadyAddresses"].array ?? []
            if ready.isEmpty && notReady.isEmpty {
                errs.append(FieldChecks.required(at, "must specify `addresses` or `notReadyAddresses`"))
            }
            for (field, addresses) in [("addresses", ready), ("notReadyAddresses", notReady)] {
                for (j, address) in addresses.enumerated() {
                    errs += Self.validateAddress(address, "\(at).\(field)[\(j)]", allowLoopback: allowLoopback)
                }
            }
        }
        return errs
    }

    /// validateEndpointAddress.
    static func validateAddress(_ address: JSON, _ path: String, allowLoopback: Bool) -> [APIError.Cause] {
        let ip = address["ip"].string ?? ""
        var errs = FieldChecks.ip(ip, "\(path).ip")
        if let hostname = address["hostname"].string, !hostname.isEmpty {
            errs += FieldChecks.dns1123Label(hostname, "\(path).hostname")
        }
        if let node = address["nodeName"].string { errs += FieldChecks.dns1123Subdomain(node, "\(path).nodeName") }
        return errs + FieldChecks.endpointIP(ip, "\(path).ip", allowLoopback: allowLoopback)
    }

    /// default/kubernetes, which the API server writes with its own address. Berth publishes 127.0.0.1
    /// there when it listens on loopback or on every address (`ServiceBackends.apiServerAddress`): a
    /// single-host cluster has no other address it is sure to answer on, where kube-apiserver would pick
    /// a host interface as its advertise address. Refusing it would leave the `kubernetes` Service
    /// without endpoints, so only this object may name a loopback address; every other check applies.
    static func isAPIServerEndpoints(_ obj: JSON) -> Bool {
        obj["metadata"]["namespace"].string == "default" && obj["metadata"]["name"].string == "kubernetes"
    }
}

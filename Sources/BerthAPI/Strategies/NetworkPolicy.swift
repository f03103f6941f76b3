/// networking.k8s.io/v1 NetworkPolicy (upstream pkg/apis/networking/validation ValidateNetworkPolicySpec
/// and SetDefaults_NetworkPolicySpec): which traffic reaches and leaves the pods a policy selects. Stored
/// and checked here; the node agents enforce it.
struct NetworkPolicyStrategy: ResourceStrategy {
    static let protocols = ["TCP", "UDP", "SCTP"]

    /// Ports default to TCP; a policy without policyTypes covers Ingress, and Egress too when it has
    /// egress rules.
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        for direction in ["ingress", "egress"] {
            guard var rules = obj["spec"][direction].array else { continue }
            for index in rules.indices {
                guard var ports = rules[index]["ports"].array else { continue }
                for p in ports.indices where ports[p]["protocol"].isNull { ports[p]["protocol"] = "TCP" }
                rules[index]["ports"] = .array(ports)
            }
            obj["spec"][direction] = .array(rules)
        }
        if (obj["spec"]["policyTypes"].array ?? []).isEmpty {
            var types: [JSON] = ["Ingress"]
            if !(obj["spec"]["egress"].array ?? []).isEmpty { types.append("Egress") }
            obj["spec"]["policyTypes"] = .array(types)
        }
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs = FieldChecks.labelSelector(spec["podSelector"], "spec.podSelector")
        for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
            for (index, rule) in (spec[direction].array ?? []).enumerated() {
                let at = "spec.\(direction)[\(index)]"
                for (p, port) in (rule["ports"].array ?? []).enumerated() {
                    errs += Self.portErrors(port, "\(at).ports[\(p)]")
                }
                for (p, peer) in (rule[peers].array ?? []).enumerated() {
                    errs += Self.peerErrors(peer, "\(at).\(peers)[\(p)]")
                }
            }
        }
        let types = spec["policyTypes"].array ?? []
        for (index, type) in types.enumerated() {
            errs += FieldChecks.supported(type, ["Ingress", "Egress"], "spec.policyTypes[\(index)]")
        }
        if types.count > 2 {
            errs.append(
                FieldChecks.invalid(
                    "spec.policyTypes", spec["policyTypes"], "may not specify more than two policyTypes"))
        }
        return errs
    }

    static func portErrors(_ port: JSON, _ path: String) -> [APIError.Cause] {
        var errs = FieldChecks.supported(port["protocol"], protocols, "\(path).protocol")
        if !port["port"].isNull { errs += FieldChecks.portNumberOrName(port["port"], "\(path).port") }
        guard let end = port["endPort"].int else { return errs }
        if port["port"].isNull {
            errs.append(FieldChecks.required("\(path).endPort", "may not be specified when `port` is not specified"))
        } else if let start = port["port"].int {
            if end < start {
                errs.append(
                    FieldChecks.invalid("\(path).endPort", .int(end), "must be greater than or equal to `port`"))
            }
            errs += FieldChecks.portNumber(end, "\(path).endPort")
        } else {
            errs.append(
                FieldChecks.invalid("\(path).endPort", .int(end), "may not be specified when `port` is non-numeric"))
        }
        return errs
    }

    /// A peer is pods (by pod and namespace selectors) or an ipBlock, never both or neither.
    static func peerErrors(_ peer: JSON, _ path: String) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        var kinds = 0
        if !peer["podSelector"].isNull {
            kinds += 1
            errs += FieldChecks.labelSelector(peer["podSelector"], "\(path).podSelector")
        }
        if !peer["namespaceSelector"].isNull {
            kinds += 1
            errs += FieldChecks.labelSelector(peer["namespaceSelector"], "\(path).namespaceSelector")
        }
        if !peer["ipBlock"].isNull {
            kinds += 1
            errs += ipBlockErrors(peer["ipBlock"], "\(path).ipBlock")
        }
        if kinds == 0 {
            errs.append(FieldChecks.required(path, "must specify a peer"))
        } else if !peer["ipBlock"].isNull && kinds > 1 {
            errs.append(FieldChecks.forbidden(path, "may not specify both ipBlock and another peer"))
        }
        return errs
    }

    /// The block's CIDR, and exceptions that lie strictly inside it.
    static func ipBlockErrors(_ block: JSON, _ path: String) -> [APIError.Cause] {
        let text = block["cidr"].string ?? ""
        if text.isEmpty { return [FieldChecks.required("\(path).cidr")] }
        guard let network = FieldChecks.cidr(text) else {
            return [
                FieldChecks.invalid(
                    "\(path).cidr", .string(text), "must be a valid CIDR value, (e.g. 10.9.0.0/16 or 2001:db8::/64)")
            ]
        }
        var errs: [APIError.Cause] = []
        for (index, except) in (block["except"].array ?? []).enumerated() {
            let at = "\(path).except[\(index)]"
            guard let exceptText = except.string, let inner = FieldChecks.cidr(exceptText) else {
                errs.append(
                    FieldChecks.invalid(at, except, "must be a valid CIDR value, (e.g. 10.9.0.0/16 or 2001:db8::/64)"))
                continue
            }
            if !FieldChecks.contains(network, inner) || inner.prefix == network.prefix {
                errs.append(FieldChecks.invalid(at, except, "must be a strict subset of `cidr`"))
            }
        }
        return errs
    }

    /// kubectl's columns: the selector of the pods the policy applies to.
    var tableColumns: [Tables.Column] { [Tables.nameColumn, .init(name: "Pod-Selector"), Tables.ageColumn] }
    func tableCells(_ obj: JSON) -> [JSON] {
        let selector = LabelSelector(object: obj["spec"]["podSelector"])
        return [Tables.nameCell(obj), .string(selector.isEmpty ? "<none>" : selector.text), Tables.ageCell(obj)]
    }
}

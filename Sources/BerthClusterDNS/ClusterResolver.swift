import BerthDNS

/// What the cluster DNS answers for one question (the Kubernetes DNS-Based Service Discovery
/// specification, as CoreDNS's kubernetes plugin implements it):
///
/// - `svc.ns.svc.<zone>`: A of the cluster IP; of every ready endpoint for a headless Service; a CNAME
///   for an ExternalName Service (for any type, as CNAME owns its name).
/// - `host.svc.ns.svc.<zone>`: A of the headless Service's endpoint with that hostname (or that address
///   with dashes).
/// - `_port._proto.svc.ns.svc.<zone>` and `svc.ns.svc.<zone>` SRV: one per port (and per endpoint for
///   a headless Service), the targets' A records in the additional section.
/// - `a-b-c-d.ns.pod.<zone>`: A of that address (CoreDNS's `pods insecure`, its default).
/// - PTR of cluster IPs and of headless endpoints.
/// - Any other name in the zone: NXDOMAIN; a name that exists without that type: NOERROR and no
///   answer; both with the zone's SOA in the authority section (what resolvers cache them by).
/// Names outside the zone are not ours: forwarded.
public enum ClusterResolver {
    /// CoreDNS's kubernetes plugin TTL.
    public static let ttl: UInt32 = 5

    public enum Outcome: Equatable, Sendable {
        case answer(
            code: DNSMessage.ResponseCode, answers: [DNSRecord], authority: [DNSRecord], additional: [DNSRecord])
        /// An ExternalName: the CNAME, then whatever the upstream answers for its target.
        case chase(cname: DNSRecord, target: String)
        case forward
    }

    public static func resolve(_ query: DNSMessage.Query, in zone: ClusterZone) -> Outcome {
        guard query.opcode == 0, query.qclass == DNSMessage.classIN else { return .forward }
        let labels = query.labels
        if query.type == DNSMessage.RecordType.ptr, let address = DNSMessage.reverseAddress(labels) {
            guard let name = zone.reverse[address] else { return .forward }
            return .answer(
                code: .noError, answers: [DNSRecord(name: query.name, ttl: ttl, data: .ptr(name))], authority: [],
                additional: [])
        }
        guard labels.count >= zone.domain.count, Array(labels.suffix(zone.domain.count)) == zone.domain else {
            return .forward
        }
        let zoneName = zone.domain.joined(separator: ".")
        let soa = DNSRecord(
            name: zoneName, ttl: ttl,
            data: .soa(
                primary: "ns.dns." + zoneName, mailbox: "hostmaster." + zoneName, serial: 1, refresh: 7200,
                retry: 1800, expire: 86400, minimum: ttl))
        let nameError = Outcome.answer(code: .nameError, answers: [], authority: [soa], additional: [])
        let noData = Outcome.answer(code: .noError, answers: [], authority: [soa], additional: [])
        let type = query.type
        let a = DNSMessage.RecordType.a
        let srv = DNSMessage.RecordType.srv
        let any = DNSMessage.RecordType.any
        func answer(_ records: [DNSRecord], additional: [DNSRecord] = []) -> Outcome {
            records.isEmpty ? noData : .answer(code: .noError, answers: records, authority: [], additional: additional)
        }
        let relative = Array(labels.dropLast(zone.domain.count))
        switch relative.count {
        case 0:
            return type == DNSMessage.RecordType.soa || type == any ? answer([soa]) : noData
        case 1:
            return relative[0] == "svc" || relative[0] == "pod" ? noData : nameError
        case 2 where relative[1] == "svc":
            return zone.namespaces.contains(relative[0]) ? noData : nameError
        case 3 where relative[2] == "pod":
            // `a-b-c-d.ns.pod.zone`: any well-formed address answers (CoreDNS's `pods insecure`).
            guard let address = IPv4Address(relative[0].replacingCharacter("-", with: ".")) else { return nameError }
            return type == a || type == any
                ? answer([DNSRecord(name: query.name, ttl: ttl, data: .a(address))]) : noData
        case 3 where relative[2] == "svc":
            let key = relative[0] + "." + relative[1]
            guard let service = zone.services[key] else { return nameError }
            let serviceName = "\(key).svc.\(zoneName)"
            if let target = service.externalName {
                let cname = DNSRecord(name: query.name, ttl: ttl, data: .cname(target))
                return type == DNSMessage.RecordType.cname || type == any || target.isEmpty
                    ? answer([cname]) : .chase(cname: cname, target: target)
            }
            if service.isHeadless && service.endpoints.isEmpty { return nameError }
            switch type {
            case a, any:
                if let clusterIP = service.clusterIP {
                    return answer([DNSRecord(name: query.name, ttl: ttl, data: .a(clusterIP))])
                }
                return answer(service.endpoints.map { DNSRecord(name: query.name, ttl: ttl, data: .a($0.address)) })
            case srv:
                return serviceRecords(service, name: serviceName, ports: service.ports, owner: query.name)
                    .map { answer($0.answers, additional: $0.additional) } ?? noData
            default:
                return noData
            }
        case 4 where relative[3] == "svc":
            // `host.svc.ns.svc.zone`: one endpoint of a headless Service.
            let key = relative[1] + "." + relative[2]
            guard let service = zone.services[key], service.isHeadless,
                let endpoint = service.endpoints.first(where: { $0.label == relative[0] })
            else { return nameError }
            return type == a || type == any
                ? answer([DNSRecord(name: query.name, ttl: ttl, data: .a(endpoint.address))]) : noData
        case 5 where relative[4] == "svc" && relative[0].hasPrefix("_") && relative[1].hasPrefix("_"):
            let key = relative[2] + "." + relative[3]
            guard let service = zone.services[key] else { return nameError }
            let portName = String(relative[0].dropFirst())
            let transport = String(relative[1].dropFirst())
            let ports = service.ports.filter { $0.name == portName && $0.transport == transport }
            guard !ports.isEmpty else { return nameError }
            guard type == srv || type == any else { return noData }
            return serviceRecords(service, name: "\(key).svc.\(zoneName)", ports: ports, owner: query.name)
                .map { answer($0.answers, additional: $0.additional) } ?? nameError
        default:
            return nameError
        }
    }

    /// SRV records for `ports` of a Service: the Service's own name for one with a cluster IP, each
    /// endpoint's for a headless one (with the endpoint's own port number), and the A records of the
    /// targets for the additional section.
    static func serviceRecords(
        _ service: ClusterZone.Service, name: String, ports: [ClusterZone.NamedPort], owner: String
    ) -> (answers: [DNSRecord], additional: [DNSRecord])? {
        var answers: [DNSRecord] = []
        var additional: [DNSRecord] = []
        if let clusterIP = service.clusterIP {
            for port in ports {
                answers.append(
                    DNSRecord(
                        name: owner, ttl: ttl, data: .srv(priority: 0, weight: 100, port: port.port, target: name)))
            }
            additional.append(DNSRecord(name: name, ttl: ttl, data: .a(clusterIP)))
        } else {
            let weight = UInt16(max(1, 100 / max(1, service.endpoints.count)))
            for endpoint in service.endpoints {
                let target = endpoint.label + "." + name
                var found = false
                for port in ports {
                    guard
                        let number = endpoint.ports.first(where: {
                            $0.name == port.name && $0.transport == port.transport
                        })?.port
                    else { continue }
                    found = true
                    answers.append(
                        DNSRecord(
                            name: owner, ttl: ttl, data: .srv(priority: 0, weight: weight, port: number, target: target)
                        ))
                }
                if found { additional.append(DNSRecord(name: target, ttl: ttl, data: .a(endpoint.address))) }
            }
        }
        return answers.isEmpty ? nil : (answers, additional)
    }
}

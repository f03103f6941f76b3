import BerthDNS
import BerthKube
import Testing

@testable import BerthClusterDNS

/// The Kubernetes DNS specification's names, answered from Services and EndpointSlices.
struct ClusterResolverTests {
    static func service(
        _ name: String, namespace: String = "default", clusterIP: String? = "10.96.0.20",
        ports: [CoreV1.ServicePort] = [CoreV1.ServicePort(name: "http", port: 80)],
        edit: (inout CoreV1.Service) -> Void = { _ in }
    ) -> CoreV1.Service {
        var service = CoreV1.Service()
        service.metadata.name = name
        service.metadata.namespace = namespace
        service.spec.clusterIP = clusterIP
        service.spec.ports = ports
        edit(&service)
        return service
    }

    static func slice(
        _ service: String, port: Int32 = 8080, _ endpoints: [(ip: String, hostname: String?, ready: Bool)]
    ) -> DiscoveryV1.EndpointSlice {
        var slice = DiscoveryV1.EndpointSlice()
        slice.metadata.name = service + "-abc"
        slice.metadata.namespace = "default"
        slice.metadata.labels = ["kubernetes.io/service-name": service]
        slice.addressType = "IPv4"
        slice.ports = [DiscoveryV1.EndpointPort(name: "http", protocol: .tcp, port: port)]
        slice.endpoints = endpoints.map {
            var endpoint = DiscoveryV1.Endpoint()
            endpoint.addresses = [$0.ip]
            endpoint.hostname = $0.hostname
            endpoint.conditions.ready = $0.ready
            return endpoint
        }
        return slice
    }

    static let zone = ClusterZone(
        domain: "cluster.local",
        services: [
            service("web"),
            service("db", clusterIP: "None"),
            service("mail", clusterIP: nil) {
                $0.spec.type = .externalName
                $0.spec.externalName = "smtp.example.com"
            },
        ],
        slices: [
            slice("web", [("10.244.0.5", nil, true)]),
            slice(
                "db", port: 5432, [("10.244.0.7", "db-0", true), ("10.244.0.8", nil, true), ("10.244.0.9", nil, false)]),
        ])

    static func ask(_ name: String, _ type: UInt16) -> ClusterResolver.Outcome {
        let packet = DNSMessage.query(id: 7, name: name, type: type)
        return ClusterResolver.resolve(try! DNSMessage.parseQuery(packet), in: zone)
    }

    static func answers(_ outcome: ClusterResolver.Outcome) -> [DNSRecord.Data] {
        guard case .answer(.noError, let answers, _, _) = outcome else { return [] }
        return answers.map(\.data)
    }

    let a = DNSMessage.RecordType.a
    let srv = DNSMessage.RecordType.srv

    @Test func aServiceIsItsClusterIPAndAHeadlessOneItsReadyEndpoints() {
        #expect(Self.answers(Self.ask("web.default.svc.cluster.local", a)) == [.a(IPv4Address("10.96.0.20")!)])
        #expect(
            Self.answers(Self.ask("db.default.svc.cluster.local", a)) == [
                .a(IPv4Address("10.244.0.7")!), .a(IPv4Address("10.244.0.8")!),
            ])
        // One endpoint by its hostname, another by its address with dashes.
        #expect(Self.answers(Self.ask("db-0.db.default.svc.cluster.local", a)) == [.a(IPv4Address("10.244.0.7")!)])
        #expect(
            Self.answers(Self.ask("10-244-0-8.db.default.svc.cluster.local", a)) == [.a(IPv4Address("10.244.0.8")!)])
        // Names are case-insensitive.
        #expect(Self.answers(Self.ask("WEB.Default.SVC.cluster.local", a)).count == 1)
    }

    @Test func namesThatAreNotThereAreNXDOMAINAndTypesThatAreNotThereNODATA() {
        guard case .answer(.nameError, [], let authority, _) = Self.ask("nope.default.svc.cluster.local", a) else {
            Issue.record("not NXDOMAIN")
            return
        }
        #expect(authority.first?.data.type == DNSMessage.RecordType.soa)
        guard
            case .answer(.noError, [], let soa, _) = Self.ask(
                "web.default.svc.cluster.local", DNSMessage.RecordType.aaaa)
        else {
            Issue.record("not NODATA")
            return
        }
        #expect(soa.count == 1)
        // What a pod's search list makes of an outside name: NXDOMAIN at once, not forwarded.
        if case .answer(.nameError, _, _, _) = Self.ask("example.com.default.svc.cluster.local", a) {
        } else {
            Issue.record("a search-list expansion was not NXDOMAIN")
        }
        #expect(Self.ask("example.com", a) == .forward)
        #expect(
            Self.ask("default.svc.cluster.local", a)
                == .answer(code: .noError, answers: [], authority: soa, additional: []))
    }

    @Test func srvRecordsNameEachPortAndEachEndpoint() {
        guard
            case .answer(.noError, let answers, _, let additional) = Self.ask(
                "_http._tcp.web.default.svc.cluster.local", srv)
        else {
            Issue.record("no SRV")
            return
        }
        #expect(
            answers.map(\.data) == [.srv(priority: 0, weight: 100, port: 80, target: "web.default.svc.cluster.local")])
        #expect(additional.map(\.data) == [.a(IPv4Address("10.96.0.20")!)])
        guard case .answer(.noError, let headless, _, _) = Self.ask("_http._tcp.db.default.svc.cluster.local", srv)
        else {
            Issue.record("no headless SRV")
            return
        }
        #expect(
            headless.map(\.data) == [
                .srv(priority: 0, weight: 50, port: 5432, target: "db-0.db.default.svc.cluster.local"),
                .srv(priority: 0, weight: 50, port: 5432, target: "10-244-0-8.db.default.svc.cluster.local"),
            ])
        if case .answer(.nameError, _, _, _) = Self.ask("_nope._tcp.web.default.svc.cluster.local", srv) {
        } else {
            Issue.record("an unknown port was not NXDOMAIN")
        }
    }

    @Test func externalNamesPodsAndReverseNames() {
        #expect(
            Self.ask("mail.default.svc.cluster.local", a)
                == .chase(
                    cname: DNSRecord(name: "mail.default.svc.cluster.local", ttl: 5, data: .cname("smtp.example.com")),
                    target: "smtp.example.com"))
        #expect(Self.answers(Self.ask("10-244-1-2.default.pod.cluster.local", a)) == [.a(IPv4Address("10.244.1.2")!)])
        #expect(
            Self.answers(Self.ask("20.0.96.10.in-addr.arpa", DNSMessage.RecordType.ptr)) == [
                .ptr("web.default.svc.cluster.local")
            ])
        #expect(
            Self.answers(Self.ask("7.0.244.10.in-addr.arpa", DNSMessage.RecordType.ptr)) == [
                .ptr("db-0.db.default.svc.cluster.local")
            ])
        #expect(Self.ask("1.1.168.192.in-addr.arpa", DNSMessage.RecordType.ptr) == .forward)
    }

    @Test func responsesTooLargeForUDPAreTruncated() throws {
        let query = try DNSMessage.parseQuery(DNSMessage.query(id: 9, name: "many.default.svc.cluster.local", type: 1))
        let records = (0..<60).map {
            DNSRecord(name: query.name, ttl: 5, data: .a(IPv4Address(UInt32(0x0A00_0000 + $0))))
        }
        let reply = DNSMessage.response(
            to: query, code: .noError, answers: records, authoritative: true, udpLimit: DNSMessage.classicUDPLimit)
        #expect(reply[2] & 0x02 == 0x02)
        #expect(reply[7] == 0)
        let full = DNSMessage.response(to: query, code: .noError, answers: records, authoritative: true)
        #expect(full.count > 512)
        #expect(DNSMessage.minimumTTL(full) == 5)
        #expect(DNSMessage.answerRecords(full).count == 60)
    }
}

/// What the cache does to an answer it keeps.
struct DNSCacheAgingTests {
    @Test func ttlsAgeButNeverBelowZero() throws {
        let query = try DNSMessage.parseQuery(DNSMessage.query(id: 1, name: "a.example", type: 1))
        var reply = DNSMessage.response(
            to: query, code: .noError,
            answers: [
                DNSRecord(name: "a.example", ttl: 60, data: .a(IPv4Address("192.0.2.1")!)),
                DNSRecord(name: "a.example", ttl: 5, data: .a(IPv4Address("192.0.2.2")!)),
            ], authoritative: false)
        #expect(DNSMessage.ageTTLs(&reply, by: 10))
        #expect(DNSMessage.answerRecords(reply).map(\.ttl) == [50, 0])
        var short: [UInt8] = [0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 1]
        #expect(!DNSMessage.ageTTLs(&short, by: 1))
    }
}

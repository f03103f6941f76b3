import BerthOS
import Testing
@testable import BerthDNS
@testable import BerthNetwork

@Suite struct EmbeddedResolverTests {
    typealias Endpoint = ResolverPeer.Endpoint
    let front = Endpoint(network: "front", networkID: "f1", address: IPv4Address("10.90.0.2")!)
    var asker: ResolverPeer {
        ResolverPeer(id: String(repeating: "a", count: 64), name: "client", running: true, endpoints: [front])
    }

    func peer(_ name: String, id: Character, _ endpoints: [Endpoint], running: Bool = true) -> ResolverPeer {
        ResolverPeer(id: String(repeating: id, count: 64), name: name, running: running, endpoints: endpoints)
    }

    func resolve(_ name: String, type: UInt16 = DNSMessage.RecordType.a, peers: [ResolverPeer]) throws
        -> EmbeddedResolver.Outcome
    {
        EmbeddedResolver.resolve(try DNSMessage.parseQuery(dnsQuery(name, type: type)), asker: asker, peers: peers)
    }

    @Test func aContainerOnASharedNetworkIsFoundByNameAliasAndShortIDInAnyCase() throws {
        let web = peer(
            "Web", id: "b",
            [Endpoint(network: "front", networkID: "f1", address: IPv4Address("10.90.0.3")!, aliases: ["www", "Site"])])
        let answer = EmbeddedResolver.Outcome.answer([.a(IPv4Address("10.90.0.3")!)])
        for name in ["web", "WEB", "web.", "www", "site", "bbbbbbbbbbbb", "web.front"] {
            #expect(try resolve(name, peers: [asker, web]) == answer, "\(name)")
        }
        // Not a 12-digit prefix, not a network of the asker's.
        #expect(try resolve("bbbbbb", peers: [asker, web]) == .forward)
        #expect(try resolve("web.back", peers: [asker, web]) == .forward)
        // Known name, no IPv6: NOERROR without answers; unknown names go upstream.
        #expect(try resolve("web", type: DNSMessage.RecordType.aaaa, peers: [asker, web]) == .answer([]))
        #expect(try resolve("example.org", peers: [asker, web]) == .forward)
        #expect(try resolve("client", peers: [asker, web]) == .answer([.a(IPv4Address("10.90.0.2")!)]))
    }

    @Test func onlyRunningContainersThatShareANetworkResolve() throws {
        let elsewhere = peer(
            "db", id: "c", [Endpoint(network: "back", networkID: "b1", address: IPv4Address("10.91.0.2")!)])
        let stopped = peer(
            "old", id: "d", [Endpoint(network: "front", networkID: "f1", address: IPv4Address("10.90.0.9")!)],
            running: false)
        #expect(try resolve("db", peers: [asker, elsewhere, stopped]) == .forward)
        #expect(try resolve("old", peers: [asker, elsewhere, stopped]) == .forward)
        // On both networks: the address on the shared one.
        let both = peer(
            "api", id: "e",
            [
                Endpoint(network: "back", networkID: "b1", address: IPv4Address("10.91.0.7")!),
                Endpoint(network: "front", networkID: "f1", address: IPv4Address("10.90.0.7")!),
            ])
        #expect(try resolve("api", peers: [asker, both]) == .answer([.a(IPv4Address("10.90.0.7")!)]))
        // Several with one alias: all of them.
        let one = peer(
            "w1", id: "1",
            [Endpoint(network: "front", networkID: "f1", address: IPv4Address("10.90.0.11")!, aliases: ["pool"])])
        let two = peer(
            "w2", id: "2",
            [Endpoint(network: "front", networkID: "f1", address: IPv4Address("10.90.0.12")!, aliases: ["pool"])])
        #expect(
            try resolve("pool", peers: [asker, one, two])
                == .answer([.a(IPv4Address("10.90.0.11")!), .a(IPv4Address("10.90.0.12")!)]))
    }

    @Test func reverseLookupsOfPeersAnswerNameDotNetwork() throws {
        let web = peer(
            "web", id: "b", [Endpoint(network: "front", networkID: "f1", address: IPv4Address("10.90.0.3")!)])
        #expect(
            try resolve("3.0.90.10.in-addr.arpa", type: DNSMessage.RecordType.ptr, peers: [asker, web])
                == .answer([.ptr("web.front")]))
        #expect(
            try resolve("4.0.90.10.in-addr.arpa", type: DNSMessage.RecordType.ptr, peers: [asker, web]) == .forward)
    }

    @Test func peersAreDecodedFromTheEnginesRecords() throws {
        let record = """
            {"id":"0123456789abcdef","name":"web","created":"x","configuration":{"networkMode":"front","networkAliases":["www"],"dns":[]},
             "state":{"status":"running","pid":5},"networks":[
               {"network":"front","networkID":"f1","interface":"eth0","address":"10.90.0.3/16","gateway":"10.90.0.1","macAddress":"x"},
               {"network":"back","networkID":"b1","interface":"eth1","address":"10.91.0.3/16","gateway":"10.91.0.1","macAddress":"x"}]}
            """
        let peer = try #require(ResolverPeer.decode(record: Array(record.utf8)))
        #expect(peer.running)
        #expect(
            peer.endpoints == [
                Endpoint(network: "front", networkID: "f1", address: IPv4Address("10.90.0.3")!, aliases: ["www"]),
                Endpoint(network: "back", networkID: "b1", address: IPv4Address("10.91.0.3")!),
            ])
        #expect(ResolverPeer.decode(record: Array("{\"id\":".utf8)) == nil)
    }

    @Test func theDirectorySeesChangedRecords() throws {
        let directory = temporaryDirectory("resolver")
        defer { try? FileSystem.removeTree(directory) }
        let resolver = ResolverDirectory(containers: directory)
        #expect(resolver.peers().isEmpty)
        try FileSystem.makeDirectories(directory + "/c1")
        func write(_ status: String) throws {
            let text = "{\"id\":\"c1\",\"name\":\"one\",\"state\":{\"status\":\"\(status)\"},\"networks\":[]}"
            try FileSystem.writeAtomically(directory + "/c1/container.json", Array(text.utf8))
        }
        try write("running")
        #expect(resolver.peers().map(\.running) == [true])
        try write("exited")
        #expect(resolver.peers().map(\.running) == [false])
    }
}

@Suite struct EmbeddedResolverResolvConfTests {
    @Test func theFileNamesOnlyTheResolverWithTheHostsSearchAndNdots0() {
        let host = "nameserver 127.0.0.53\nsearch corp.example\noptions edns0\n"
        #expect(
            ResolvConf.forEmbeddedResolver(hostContents: host)
                == "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 ndots:0\n")
        #expect(
            ResolvConf.forEmbeddedResolver(hostContents: host, search: ["svc"], options: ["ndots:3"])
                == "nameserver 127.0.0.11\nsearch svc\noptions ndots:3\n")
    }

    @Test func upstreamsAreDnsElseTheHostsServersLoopbackIncluded() {
        let host = "nameserver 127.0.0.53\nnameserver ::1\n"
        #expect(ResolvConf.embeddedResolverUpstreams(hostContents: host) == ["127.0.0.53"])
        #expect(ResolvConf.embeddedResolverUpstreams(hostContents: host, dns: ["127.0.0.1"]) == ["127.0.0.1"])
        #expect(ResolvConf.embeddedResolverUpstreams(hostContents: "") == ["8.8.8.8", "8.8.4.4"])
    }
}

/// Container records are read with BerthJSON's parser (RecordJSON, the resolver's own, is gone).
@Suite struct RecordJSONTests {
    @Test func recordsAreReadWithEscapesNumbersAndNesting() throws {
        let text = #"{"a": [1, -2.5e3, true, false, null], "s": "q\"\\\/\n\u0041\u00e9", "o": {"k": []}}"#
        let value = try JSON.parse(Array(text.utf8))
        #expect(value["s"].string == "q\"\\/\nAé")
        #expect(value["a"] == [1, -2500, true, false, nil])
        #expect(value["o"]["k"] == .array([]))
    }

    @Test func malformedRecordsAreNoPeer() {
        for text in ["", "{", "{\"a\":}", "[1,]", "{\"a\" 1}", "\"open", "tru", "{} x", "[\"\\u12\"]", #"{"id":"x"}"#] {
            #expect(ResolverPeer.decode(record: Array(text.utf8)) == nil, "\(text)")
        }
    }
}

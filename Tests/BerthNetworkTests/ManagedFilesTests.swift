import BerthOS
import Testing
@testable import BerthNetwork

@Suite struct ResolvConfTests {
    let host = """
        # managed by someone
        nameserver 127.0.0.1
        nameserver 192.0.2.53
        nameserver ::1
        nameserver 2001:db8::53
        search corp.example lab.example
        options ndots:2 timeout:1
        sortlist 130.155.160.0/255.255.240.0
        """

    @Test func loopbackAndIPv6NameserversOfTheHostAreDropped() {
        #expect(
            ResolvConf.build(hostContents: host) == """
                sortlist 130.155.160.0/255.255.240.0
                nameserver 192.0.2.53
                search corp.example lab.example
                options ndots:2 timeout:1

                """)
    }

    @Test func googlesServersOnlyWhenNoNameserverIsLeft() {
        let onlyLocal = "nameserver 127.0.0.53\nnameserver 127.0.1.1\n"
        #expect(ResolvConf.parse(ResolvConf.build(hostContents: onlyLocal)).nameservers == ["8.8.8.8", "8.8.4.4"])
        #expect(ResolvConf.parse(ResolvConf.build(hostContents: "")).nameservers == ["8.8.8.8", "8.8.4.4"])
    }

    @Test func optionsReplaceTheirKindOfLine() {
        let text = ResolvConf.build(
            hostContents: host, dns: ["10.0.0.2", "10.0.0.3"], search: ["svc.local"], options: ["ndots:5"])
        let parsed = ResolvConf.parse(text)
        #expect(parsed.nameservers == ["10.0.0.2", "10.0.0.3"])
        #expect(parsed.search == ["svc.local"])
        #expect(parsed.options == ["ndots:5"])
        // `--dns-search .` removes the search line.
        #expect(!ResolvConf.build(hostContents: host, search: ["."]).contains("search"))
    }

    @Test func theHostFileIsReadAndSystemdResolvedsStubIsLookedThrough() throws {
        let directory = temporaryDirectory("berth-resolv")
        defer { try? FileSystem.removeTree(directory) }
        try writeFile("\(directory)/resolv.conf", "nameserver 127.0.0.53\noptions edns0\n")
        try writeFile("\(directory)/upstream.conf", "nameserver 192.0.2.1\n")
        let text = ResolvConf.forContainer(
            hostResolvConf: "\(directory)/resolv.conf",
            systemdResolvedPath: "\(directory)/upstream.conf")
        #expect(text == "nameserver 192.0.2.1\n")
        let missing = ResolvConf.forContainer(
            hostResolvConf: "\(directory)/nosuch", systemdResolvedPath: "\(directory)/nosuch")
        #expect(ResolvConf.parse(missing).nameservers == ResolvConf.fallbackNameservers)
    }
}

@Suite struct HostsFileTests {
    @Test func theFileIsDockersHeadThenExtraHostsThenTheContainer() throws {
        let text = try HostsFile.build(
            hostname: "web1", addresses: ["10.89.0.2"],
            extraHosts: ["db:10.0.0.9", "v6=[2001:db8::1]", "gw:host-gateway"], hostGateway: "10.89.0.1")
        #expect(
            text == """
                127.0.0.1\tlocalhost
                ::1\tlocalhost ip6-localhost ip6-loopback
                fe00::0\tip6-localnet
                ff00::0\tip6-mcastprefix
                ff02::1\tip6-allnodes
                ff02::2\tip6-allrouters
                10.0.0.9\tdb
                2001:db8::1\tv6
                10.89.0.1\tgw
                10.89.0.2\tweb1

                """)
    }

    @Test func aDomainNameGivesTheFullNameFirst() throws {
        let text = try HostsFile.build(
            hostname: "web1", domainname: "example.org", addresses: ["10.89.0.2", "10.90.0.5"])
        #expect(text.hasSuffix("10.89.0.2\tweb1.example.org web1\n10.90.0.5\tweb1.example.org web1\n"))
        #expect(try HostsFile.build(hostname: "solo", addresses: []).hasSuffix("ff02::2\tip6-allrouters\n"))
    }

    @Test func malformedAddHostValuesAreRefused() throws {
        for bad in ["nocolon", ":10.0.0.1", "name:", "name:300.1.1.1", "name:host-gateway", "a b:1.2.3.4", "x:[::1"] {
            do {
                _ = try HostsFile.parseExtraHost(bad, hostGateway: nil)
                Issue.record("expected \(bad) to be refused")
            } catch {
                #expect(error.description.hasPrefix("invalid --add-host \(bad): "))
            }
        }
        #expect(try HostsFile.parseExtraHost("name:::1", hostGateway: nil) == .init(address: "::1", names: ["name"]))
    }
}

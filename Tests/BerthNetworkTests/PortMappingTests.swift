import Testing
@testable import BerthNetwork

@Suite struct PortMappingParsingTests {
    @Test func aContainerPortAloneGetsAnAutomaticHostPort() throws {
        #expect(try PortMapping.parse("80") == [PortMapping(hostIP: "", hostPort: 0, containerPort: 80, proto: "tcp")])
    }

    @Test func hostAndContainerPorts() throws {
        #expect(try PortMapping.parse("8080:80") == [PortMapping(hostPort: 8080, containerPort: 80)])
    }

    @Test func aHostAddressLimitsThePublishedPort() throws {
        #expect(
            try PortMapping.parse("127.0.0.1:8080:80") == [
                PortMapping(hostIP: "127.0.0.1", hostPort: 8080, containerPort: 80)
            ])
        #expect(
            try PortMapping.parse("127.0.0.1::80") == [PortMapping(hostIP: "127.0.0.1", hostPort: 0, containerPort: 80)]
        )
    }

    @Test func theProtocolFollowsASlash() throws {
        #expect(try PortMapping.parse("8080:80/udp") == [PortMapping(hostPort: 8080, containerPort: 80, proto: "udp")])
        #expect(try PortMapping.parse("53/UDP").first?.proto == "udp")
        #expect(try PortMapping.parse("9000:9000/sctp").first?.proto == "sctp")
    }

    @Test func rangesOfEqualLengthMapPortByPort() throws {
        #expect(
            try PortMapping.parse("8000-8001:80-81") == [
                PortMapping(hostPort: 8000, containerPort: 80), PortMapping(hostPort: 8001, containerPort: 81),
            ])
        #expect(try PortMapping.parse("80-82").map(\.containerPort) == [80, 81, 82])
    }

    @Test func aHostRangeForOneContainerPortIsAChoice() throws {
        let mappings = try PortMapping.parse("8000-8010:80")
        #expect(mappings == [PortMapping(hostPort: 8000, hostPortEnd: 8010, containerPort: 80)])
    }

    @Test func anIPv6HostAddressGoesInBrackets() throws {
        #expect(
            try PortMapping.parse("[::1]:8080:80") == [PortMapping(hostIP: "::1", hostPort: 8080, containerPort: 80)])
        #expect(
            try PortMapping.parse("[::1]::80/udp") == [
                PortMapping(hostIP: "::1", hostPort: 0, containerPort: 80, proto: "udp")
            ])
    }

    @Test(arguments: [
        "", "abc", "0", "65536", "80:", ":", "8080:abc", "abc:80", "80/tcpx", "80/", "1.2.3:8080:80",
        "300.1.1.1:8080:80", "::1:8080:80", "[::1]:80", "[::1:8080:80", "[zz]:8080:80", "1:2:3:4",
        "8000-8002:80-81", "81-80", "8080:80-81", "-80", "80-", "8080:0", "1.2.3.4:8080:80:90", "08x0",
    ])
    func malformedSpecificationsAreRefused(spec: String) {
        #expect(throws: NetworkError.self) { try PortMapping.parse(spec) }
    }

    @Test func errorsNameTheSpecificationAndTheBadPart() {
        do {
            _ = try PortMapping.parse("8080:abc")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "invalid port specification \"8080:abc\": invalid containerPort: abc")
        }
        do {
            _ = try PortMapping.parse("80/icmp")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("invalid proto: icmp"))
        }
    }

    @Test func publishAllTakesEveryExposedPortOnAFreeHostPort() throws {
        let mappings = try PortMapping.publishAll(exposedPorts: ["80/tcp", "53/udp", "8000-8001", "80/tcp"])
        #expect(
            mappings == [
                PortMapping(containerPort: 80), PortMapping(containerPort: 53, proto: "udp"),
                PortMapping(containerPort: 8000), PortMapping(containerPort: 8001),
            ])
        #expect(throws: NetworkError.self) { try PortMapping.publishAll(exposedPorts: ["80/foo"]) }
    }

    @Test func capabilityEntriesAreWhatPortmapReads() throws {
        let entry = PortMapping(hostIP: "127.0.0.1", hostPort: 8080, containerPort: 80, proto: "udp").capabilityEntry
        #expect(entry == ["hostPort": 8080, "containerPort": 80, "protocol": "udp", "hostIP": "127.0.0.1"])
        #expect(PortMapping(hostPort: 1, containerPort: 2).capabilityEntry["hostIP"] == nil)
    }

    @Test func descriptionIsDockersNotation() {
        #expect(
            PortMapping(hostIP: "127.0.0.1", hostPort: 8080, containerPort: 80).description == "127.0.0.1:8080:80/tcp")
        #expect(
            PortMapping(hostIP: "::1", hostPort: 8080, containerPort: 80, proto: "udp").description
                == "[::1]:8080:80/udp")
        #expect(PortMapping(containerPort: 80).description == "80/tcp")
    }
}

import Testing
@testable import BerthNetwork

@Suite struct SubnetTests {
    @Test func subnetsParseStrictlyAndAnswerContainmentAndOverlap() throws {
        let subnet = try #require(IPv4Subnet("10.89.0.0/16"))
        #expect(subnet.description == "10.89.0.0/16")
        #expect(subnet.first.description == "10.89.0.0")
        #expect(subnet.last.description == "10.89.255.255")
        #expect(subnet.address(1).description == "10.89.0.1")
        #expect(subnet.contains(IPv4Address("10.89.200.3")!))
        #expect(!subnet.contains(IPv4Address("10.90.0.1")!))
        #expect(subnet.overlaps(IPv4Subnet("10.89.4.0/24")!))
        #expect(IPv4Subnet("10.0.0.0/8")!.overlaps(subnet))
        #expect(!subnet.overlaps(IPv4Subnet("10.90.0.0/24")!))
        #expect(IPv4Subnet("10.89.0.1/16") == nil)
        #expect(IPv4Subnet("10.89.0.1/16", strict: false)?.description == "10.89.0.0/16")
        for bad in [
            "10.89.0.0", "10.89.0/16", "10.89.0.0/33", "10.89.0.0/-1", "a.b.c.d/8", "010.1.1.0/24", "1.2.3.4/ 8", "",
        ] {
            #expect(IPv4Subnet(bad, strict: false) == nil, "\(bad)")
        }
    }

    @Test func thePoolGivesTheFirstSubnetThatOverlapsNothing() throws {
        let pool = SubnetPool.default
        #expect(pool.allocate(avoiding: [])?.description == "10.90.0.0/24")
        let used = [IPv4Subnet("10.90.0.0/24")!, IPv4Subnet("10.90.1.128/25")!, IPv4Subnet("192.168.1.0/24")!]
        #expect(pool.allocate(avoiding: used)?.description == "10.90.2.0/24")
        // A route covering many candidates is skipped in one step.
        #expect(pool.allocate(avoiding: [IPv4Subnet("10.90.0.0/16")!])?.description == "10.91.0.0/24")
        #expect(pool.allocate(avoiding: [IPv4Subnet("10.0.0.0/8")!]) == nil)
        let small = SubnetPool(base: IPv4Subnet("172.30.0.0/23")!, size: 24)
        #expect(small.allocate(avoiding: [IPv4Subnet("172.30.0.0/24")!, IPv4Subnet("172.30.1.0/24")!]) == nil)
    }

    @Test func hostRoutesAreReadFromTheKernelsTableWithoutTheDefaultRoute() {
        let table = """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
            berth0\t0000590A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
            """
        #expect(HostRoutes.parse(table).map(\.description) == ["192.0.2.0/24", "10.89.0.0/16"])
    }
}

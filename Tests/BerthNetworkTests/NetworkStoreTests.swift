import BerthOS
import Testing
@testable import BerthNetwork

@Suite struct NetworkStoreTests {
    /// A store in a temporary directory whose host has one route, to 10.90.1.0/24.
    func makeStore(configDirectory: String? = nil) -> NetworkStore {
        let root = temporaryDirectory("berth-store")
        return NetworkStore(
            root: root, configDirectories: configDirectory.map { [$0] } ?? [],
            hostRoutes: { [IPv4Subnet("10.90.1.0/24")!] })
    }

    @Test func bridgeNoneAndHostAlwaysExistAsDockerListsThem() throws {
        let store = makeStore()
        defer { try? FileSystem.removeTree(store.root) }
        let networks = try store.list()
        #expect(networks.map(\.name) == ["bridge", "host", "none"])
        #expect(networks.map(\.driver) == ["bridge", "host", "null"])
        let bridge = try store.inspect("bridge")
        #expect(bridge.subnet == "10.89.0.0/16")
        #expect(bridge.gateway == "10.89.0.1")
        #expect(bridge.bridge == "berth0")
        #expect(bridge.id.count == 64 && bridge.id.allSatisfy(\.isHexDigit))
        // IDs are stable across reads (and processes).
        #expect(try NetworkStore(root: store.root, configDirectories: []).inspect("bridge").id == bridge.id)
        #expect(throws: NetworkError.self) { try store.configList(for: store.inspect("none")) }
        #expect(try store.configList(for: bridge).plugins[0].json["bridge"] == "berth0")
    }

    @Test func createTakesTheNextFreeSubnetSkippingNetworksAndHostRoutes() throws {
        let store = makeStore()
        defer { try? FileSystem.removeTree(store.root) }
        let first = try store.create(name: "one", labels: ["team": "a"])
        #expect(first.subnet == "10.90.0.0/24")
        #expect(first.gateway == "10.90.0.1")
        #expect(first.driver == "bridge")
        #expect(first.bridge == "br-" + first.id.prefix(12))
        #expect(first.labels == ["team": "a"])
        #expect(first.created.hasSuffix("Z") && first.created.count == 30)
        // 10.90.1.0/24 is routed on the host.
        #expect(try store.create(name: "two").subnet == "10.90.2.0/24")
        #expect(try store.create(name: "three", internal: true).internal)
        #expect(try store.list().map(\.name) == ["bridge", "host", "none", "one", "three", "two"])
    }

    @Test func givenSubnetsAreValidatedNamingTheOption() throws {
        let store = makeStore()
        defer { try? FileSystem.removeTree(store.root) }
        let made = try store.create(name: "given", subnet: "10.123.0.0/16", gateway: "10.123.0.254")
        #expect(made.subnet == "10.123.0.0/16")
        #expect(made.gateway == "10.123.0.254")
        let cases: [(String?, String?, String)] = [
            ("10.124.0.0", nil, "invalid --subnet 10.124.0.0"),
            ("10.124.0.1/16", nil, "host bits are set (did you mean 10.124.0.0/16?)"),
            ("fd00::/64", nil, "IPv6"),
            ("10.124.0.0/31", nil, "prefix length"),
            ("10.124.0.0/16", "10.125.0.1", "invalid --gateway 10.125.0.1: not inside subnet 10.124.0.0/16"),
            ("10.124.0.0/16", "10.124.0.0", "network or broadcast"),
            ("10.124.0.0/16", "nonsense", "not an IPv4 address"),
            (nil, "10.124.0.1", "a gateway needs a --subnet"),
            ("10.123.4.0/24", nil, "overlaps with 10.123.0.0/16 of network given"),
            ("10.88.0.0/14", nil, "overlaps with 10.89.0.0/16 of network bridge"),
        ]
        for (subnet, gateway, message) in cases {
            do {
                _ = try store.create(name: "bad\(randomSuffix())", subnet: subnet, gateway: gateway)
                Issue.record("expected an error for \(subnet ?? "-") \(gateway ?? "-")")
            } catch {
                #expect(error.description.contains(message), "\(error.description)")
            }
        }
    }

    @Test func namesFollowDockersRuleAndAreUnique() throws {
        let store = makeStore()
        defer { try? FileSystem.removeTree(store.root) }
        for bad in ["", "-x", ".x", "a b", "a/b", "ä", "x:y"] {
            #expect(throws: NetworkError.self) { try store.create(name: bad) }
        }
        _ = try store.create(name: "Ok_1.2-3")
        for taken in ["Ok_1.2-3", "bridge", "none", "host"] {
            do {
                _ = try store.create(name: taken)
                Issue.record("expected \(taken) to exist")
            } catch {
                #expect(error.description == "network with name \(taken) already exists")
            }
        }
    }

    @Test func inspectFindsByIDNameAndUniquePrefix() throws {
        let store = makeStore()
        defer { try? FileSystem.removeTree(store.root) }
        let made = try store.create(name: "lookup")
        #expect(try store.inspect(made.id).name == "lookup")
        #expect(try store.inspect("lookup").id == made.id)
        #expect(try store.inspect(String(made.id.prefix(12))).name == "lookup")
        do {
            _ = try store.inspect("nosuch")
            Issue.record("expected not found")
        } catch {
            #expect(error.description == "network nosuch not found")
        }
    }

    @Test func removeDropsTheDefinitionAndLeasesButNotPredefinedNetworks() throws {
        let store = makeStore()
        defer { try? FileSystem.removeTree(store.root) }
        let made = try store.create(name: "gone")
        let leases = store.ipamDirectory(for: made) + "/gone"
        try FileSystem.makeDirectories(leases)
        try writeFile(leases + "/10.90.0.2", "container\neth0")
        try store.remove("gone")
        #expect(!FileSystem.exists(store.ipamDirectory(for: made)))
        #expect(throws: NetworkError.self) { try store.inspect("gone") }
        #expect(try store.create(name: "again").subnet == "10.90.0.0/24")  // its subnet is free again
        for predefined in ["bridge", "none", "host"] {
            do {
                try store.remove(predefined)
                Issue.record("expected \(predefined) to stay")
            } catch {
                #expect(error.description == "\(predefined) is a pre-defined network and cannot be removed")
            }
        }
    }

    @Test func conflistsInTheConfigDirectoryAppearAsNetworks() throws {
        let directory = temporaryDirectory("berth-netd")
        defer { try? FileSystem.removeTree(directory) }
        try writeFile(
            "\(directory)/10-mine.conflist",
            """
            {"cniVersion":"1.0.0","name":"mine","plugins":[{"type":"macvlan","master":"eth0",
             "ipam":{"type":"host-local","ranges":[[{"subnet":"10.140.0.0/24","gateway":"10.140.0.1"}]]}}]}
            """)
        try writeFile(
            "\(directory)/20-single.conf",
            #"{"cniVersion":"0.4.0","name":"single","type":"ptp","ipam":{"type":"host-local","subnet":"10.141.0.0/24"}}"#
        )
        try writeFile("\(directory)/30-broken.conflist", "{ not json")
        try writeFile("\(directory)/README", "ignored")
        let store = makeStore(configDirectory: directory)
        defer { try? FileSystem.removeTree(store.root) }
        let mine = try store.inspect("mine")
        #expect(mine.driver == "macvlan")
        #expect(mine.subnet == "10.140.0.0/24")
        #expect(mine.gateway == "10.140.0.1")
        #expect(mine.configFile == "\(directory)/10-mine.conflist")
        #expect(mine.id == (try store.inspect("mine")).id)
        #expect(try store.inspect("single").driver == "ptp")
        #expect(try store.list().map(\.name) == ["bridge", "host", "mine", "none", "single"])
        #expect(try store.configList(for: mine).plugins[0].json["master"] == "eth0")
        // Their subnets are in use for new networks, and they cannot be removed here.
        #expect(throws: NetworkError.self) { try store.create(name: "clash", subnet: "10.140.0.0/25") }
        #expect(throws: NetworkError.self) { try store.create(name: "mine") }
        #expect(throws: NetworkError.self) { try store.remove("mine") }
    }
}

import BerthOS
import Testing
@testable import BerthNetwork

@Suite struct ConfigListTests {
    let conflist = """
        {"cniVersion":"1.0.0","name":"mynet","disableCheck":true,"plugins":[
          {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local","ranges":[[{"subnet":"10.22.0.0/16","gateway":"10.22.0.1"}]]}},
          {"type":"portmap","capabilities":{"portMappings":true,"other":false},"snat":true}]}
        """

    @Test func aConflistKeepsEveryPluginKey() throws {
        let list = try NetworkConfigList(parsing: Array(conflist.utf8), source: "test")
        #expect(list.name == "mynet")
        #expect(list.cniVersion == "1.0.0")
        #expect(list.disableCheck)
        #expect(list.plugins.map(\.type) == ["bridge", "portmap"])
        #expect(list.plugins[0].json["bridge"] == "cni0")
        #expect(list.plugins[1].capabilities == ["portMappings"])
    }

    @Test func aSingleConfIsWrappedIntoAListOfOne() throws {
        let conf = #"{"cniVersion":"0.4.0","name":"single","type":"bridge","bridge":"x0"}"#
        let list = try NetworkConfigList(parsing: Array(conf.utf8), source: "single.conf")
        #expect(list.name == "single")
        #expect(list.cniVersion == "0.4.0")
        #expect(list.plugins.count == 1)
        #expect(list.plugins[0].type == "bridge")
        #expect(list.supportsCheck)
        let old = try NetworkConfigList(parsing: Array(#"{"name":"old","type":"bridge"}"#.utf8), source: "old")
        #expect(old.cniVersion == "0.2.0")
        #expect(!old.supportsCheck)
    }

    @Test(arguments: [
        "not json", "[]", #"{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#,
        #"{"name":"x","plugins":[]}"#, #"{"name":"x","plugins":[{"bridge":"b"}]}"#, #"{"name":"x"}"#,
        #"{"name":"x","type":"../../bin/sh"}"#, #"{"name":"../x","type":"bridge"}"#, #"{"name":"a b","type":"bridge"}"#,
        #"{"name":"x","plugins":{"type":"bridge"}}"#,
    ])
    func invalidConfigurationsAreRefusedWithTheirSource(text: String) {
        do {
            _ = try NetworkConfigList(parsing: Array(text.utf8), source: "/etc/cni/net.d/bad.conflist")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("invalid network configuration /etc/cni/net.d/bad.conflist:"))
        }
    }

    @Test func pluginInputCarriesNameVersionDeclaredCapabilitiesAndPrevResult() throws {
        let list = try NetworkConfigList(parsing: Array(conflist.utf8), source: "test")
        let capabilities: [String: JSON] = ["portMappings": [["hostPort": 8080]], "ips": ["10.22.0.5/16"]]
        let bridge = list.pluginInput(0, capabilityArgs: capabilities, prevResult: nil)
        #expect(bridge["name"] == "mynet")
        #expect(bridge["cniVersion"] == "1.0.0")
        #expect(bridge["runtimeConfig"] == nil)  // the bridge declared no capability
        #expect(bridge["prevResult"] == nil)
        let previous: JSON = ["cniVersion": "1.0.0", "ips": []]
        let portmap = list.pluginInput(1, capabilityArgs: capabilities, prevResult: previous)
        #expect(portmap["runtimeConfig"] == ["portMappings": [["hostPort": 8080]]])
        #expect(portmap["prevResult"] == previous)
        #expect(portmap["snat"] == true)
    }

    @Test func aListRoundTripsThroughItsJSON() throws {
        let list = try NetworkConfigList(parsing: Array(conflist.utf8), source: "test")
        var again = try NetworkConfigList(parsing: list.encoded(), source: "test")
        again.source = list.source
        #expect(again == list)
    }

    @Test func aNetworksRulesMasqueradeItsSubnetAndAcceptItsForwarding() {
        let network = Network(
            name: "web", id: String(repeating: "cd", count: 32), driver: "bridge", subnet: "10.90.4.0/24",
            gateway: "10.90.4.1", bridge: "br-cdcdcdcdcdcd", created: "")
        let rules = NetworkRules.rules(network)
        #expect(rules.map(\.table) == ["nat", "filter", "filter"])
        #expect(rules[0].spec.prefix(6) == ["-s", "10.90.4.0/24", "!", "-o", "br-cdcdcdcdcdcd", "-j"])
        #expect(rules.allSatisfy { $0.spec.contains("berth-network-br-cdcdcdcdcdcd") })
        // Every data root's default network is on berth0: one set of rules for all, not one per root.
        let defaults = ["ab", "ef"].map {
            Network(
                name: "bridge", id: String(repeating: $0, count: 32), driver: "bridge", subnet: "10.89.0.0/16",
                gateway: "10.89.0.1", bridge: "berth0", created: "")
        }
        #expect(NetworkRules.rules(defaults[0]).map(\.spec) == NetworkRules.rules(defaults[1]).map(\.spec))
        var closed = network
        closed.internal = true
        // No way out for an internal network: no masquerade, forwarding only between its own containers.
        #expect(NetworkRules.rules(closed).map(\.table) == ["filter"])
        #expect(NetworkRules.rules(closed)[0].spec.prefix(4) == ["-i", "br-cdcdcdcdcdcd", "-o", "br-cdcdcdcdcdcd"])
    }

    @Test func aPodNetworksRulesKeepClusterTrafficUnNATedAndClampItsMSS() {
        let pods = Network(
            name: "berth-pods", id: String(repeating: "ab", count: 32), driver: "bridge", subnet: "10.42.1.0/24",
            gateway: "10.42.1.1", bridge: "berth-pods", created: "", clusterCIDR: "10.42.0.0/16")
        let rules = NetworkRules.rules(pods)
        // Masquerade only what leaves the cluster's range.
        #expect(
            rules[0].table == "nat"
                && rules[0].spec.prefix(6) == ["-s", "10.42.1.0/24", "!", "-d", "10.42.0.0/16", "!"])
        // Pods at the link's MTU, a tunnel with less: SYNs to and from the cluster's pods get the
        // route's MSS, in the mangle table, whichever way the connection goes.
        let clamps = rules.filter { $0.spec.contains("--clamp-mss-to-pmtu") }
        #expect(clamps.map(\.table) == ["mangle", "mangle"])
        #expect(clamps.map { Array($0.spec.prefix(2)) } == [["-d", "10.42.0.0/16"], ["-s", "10.42.0.0/16"]])
        #expect(clamps.allSatisfy { $0.spec.contains("SYN,RST") && $0.chain == "FORWARD" })
    }

    @Test func anAttachmentRunsPortmapAndTuningOnlyForWhatItAsks() {
        var network = Network(
            name: "pods", id: String(repeating: "ef", count: 32), driver: "bridge", subnet: "10.90.5.0/24",
            gateway: "10.90.5.1", bridge: "br-efefefefefef", created: "")
        let list = BridgeNetworkConfig.configList(for: network, ipamDirectory: "/tmp/ipam")
        func chain(_ capabilities: [String: JSON]) -> [String] {
            NetworkManager.chain(list, of: network, capabilityArgs: capabilities).plugins.map(\.type)
        }
        #expect(chain([:]) == ["bridge"])
        #expect(chain(["portMappings": .array([])]) == ["bridge", "portmap"])
        #expect(chain(["mac": "02:42:ac:11:00:02"]) == ["bridge", "tuning"])
        #expect(
            chain(["portMappings": .array([]), "mac": "02:42:ac:11:00:02", "ips": .array([])]) == [
                "bridge", "portmap", "tuning",
            ])
        // A configuration file's chain is the user's: run as written.
        network.configFile = "/etc/cni/net.d/10-pods.conflist"
        #expect(chain([:]) == ["bridge", "portmap", "tuning"])
    }

    @Test func bridgeNetworksGenerateTheDockerLikePluginChain() throws {
        let network = Network(
            name: "web", id: String(repeating: "ab", count: 32), driver: "bridge", subnet: "10.90.3.0/24",
            gateway: "10.90.3.1", bridge: "br-abababababab", created: "")
        let list = BridgeNetworkConfig.configList(for: network, ipamDirectory: "/var/lib/berth/networks/ipam/abab")
        #expect(list.name == "web")
        #expect(list.cniVersion == "1.0.0")
        // NAT and forwarding are the network's own rules (NetworkRules), not per-container plugin work.
        #expect(list.plugins.map(\.type) == ["bridge", "portmap", "tuning"])
        let bridge = list.plugins[0].json
        #expect(bridge["bridge"] == "br-abababababab")
        #expect(bridge["isGateway"] == true)
        #expect(bridge["ipMasq"] == false)
        #expect(bridge["hairpinMode"] == true)
        #expect(list.plugins[0].capabilities == ["ips"])
        let ipam = try #require(bridge["ipam"])
        #expect(ipam["type"] == "host-local")
        #expect(ipam["dataDir"] == "/var/lib/berth/networks/ipam/abab")
        #expect(ipam["ranges"] == [[["subnet": "10.90.3.0/24", "gateway": "10.90.3.1"]]])
        #expect(ipam["routes"] == [["dst": "0.0.0.0/0"]])
        #expect(list.plugins[1].capabilities == ["portMappings"])
        #expect(list.plugins[1].json["snat"] == true)
        #expect(list.plugins[2].capabilities == ["mac"])
        // It is a valid configuration list for the parser too.
        #expect(try NetworkConfigList(parsing: list.encoded(), source: "generated").plugins.count == 3)
    }

    @Test func internalNetworksHaveNoMasqueradeNoDefaultRouteAndNoPortmap() {
        let network = Network(
            name: "private", id: "ff", driver: "bridge", subnet: "10.90.4.0/24", gateway: "10.90.4.1",
            bridge: "br-ff", internal: true, created: "")
        let list = BridgeNetworkConfig.configList(for: network, ipamDirectory: "/x")
        #expect(list.plugins[0].json["ipMasq"] == false)
        #expect(list.plugins[0].json["ipam"]?["routes"].isNull == true)
        #expect(!list.plugins.map(\.type).contains("portmap"))
    }
}

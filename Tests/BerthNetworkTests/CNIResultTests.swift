import Testing
@testable import BerthNetwork

@Suite struct CNIResultTests {
    /// What the bridge plugin printed for an ADD here (containernetworking-plugins 1.1.1).
    let bridgeResult = """
        {"cniVersion":"1.0.0","interfaces":[{"name":"btrial0","mac":"26:13:05:33:71:f2"},
          {"name":"veth349966ed","mac":"5a:76:7c:e7:de:48"},{"name":"eth0","mac":"be:66:b7:7e:6a:0e","sandbox":"/run/netns/trial1"}],
         "ips":[{"interface":2,"address":"10.123.45.2/24","gateway":"10.123.45.1"}],
         "routes":[{"dst":"0.0.0.0/0"}],"dns":{}}
        """

    @Test func aResultGivesInterfacesAddressesRoutesAndDNS() throws {
        let result = try CNIResult(json: JSONCoding.decode(JSON.self, from: Array(bridgeResult.utf8)))
        #expect(result.cniVersion == "1.0.0")
        #expect(result.interfaces.map(\.name) == ["btrial0", "veth349966ed", "eth0"])
        #expect(result.interfaces[0].sandbox == nil)
        #expect(result.interfaces[2].sandbox == "/run/netns/trial1")
        #expect(result.ips == [.init(address: "10.123.45.2/24", gateway: "10.123.45.1", interface: 2)])
        #expect(result.ips[0].ip == "10.123.45.2")
        #expect(result.ips[0].prefixLength == 24)
        #expect(result.routes == [.init(destination: "0.0.0.0/0", gateway: nil)])
        #expect(result.dns == .init())
        #expect(result.containerInterface("eth0")?.index == 2)
        #expect(result.containerInterface("eth0")?.interface.mac == "be:66:b7:7e:6a:0e")
        #expect(result.ipv4(on: "eth0")?.address == "10.123.45.2/24")
    }

    @Test func olderResultsAreReadToo() throws {
        let v04: JSON = [
            "cniVersion": "0.4.0", "ips": [["version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1"]],
            "dns": ["nameservers": ["10.1.0.1"], "search": ["corp"], "domain": "corp", "options": ["ndots:2"]],
        ]
        let result = try CNIResult(json: v04)
        #expect(result.ipv4(on: "eth0")?.gateway == "10.1.0.1")
        #expect(result.dns.nameservers == ["10.1.0.1"])
        #expect(result.dns.search == ["corp"])
        #expect(result.dns.domain == "corp")
        #expect(result.dns.options == ["ndots:2"])
        let v02: JSON = ["cniVersion": "0.2.0", "ip4": ["ip": "10.2.0.9/24", "gateway": "10.2.0.1"]]
        #expect(try CNIResult(json: v02).ips.map(\.address) == ["10.2.0.9/24"])
    }

    @Test(arguments: [
        JSON.array([]), ["ips": [["gateway": "1.2.3.4"]]], ["ips": [["address": "10.0.0.1"]]],
        ["interfaces": [["mac": "aa"]]], ["routes": [["gw": "1.2.3.4"]]],
    ])
    func malformedResultsAreRefused(json: JSON) {
        #expect(throws: NetworkError.self) { try CNIResult(json: json) }
    }
}

@Suite struct CNIErrorTests {
    @Test func thePluginsErrorObjectIsSurfacedWithPluginAndNetwork() {
        let stdout = #"{"cniVersion":"1.0.0","code":7,"msg":"invalid config","details":"bridge name too long"}"#
        let error = CNIPluginError.from(
            stdout: Array(stdout.utf8), stderr: [], exitStatus: "exit status 1",
            plugin: "bridge", network: "web", command: "ADD")
        #expect(error.code == 7)
        #expect(error.message == "invalid config")
        #expect(error.details == "bridge name too long")
        #expect(error.codeMeaning == "invalid network config")
        #expect(
            error.description
                == "network web: CNI plugin bridge failed (ADD): invalid config: bridge name too long [code 7, invalid network config]"
        )
    }

    @Test func withoutAnErrorObjectStderrAndTheExitStatusAreShown() {
        let error = CNIPluginError.from(
            stdout: Array("panic".utf8), stderr: Array("  segfault\n".utf8),
            exitStatus: "killed by signal 11", plugin: "portmap", network: "n", command: "DEL")
        #expect(error.code == 0)
        #expect(error.description == "network n: CNI plugin portmap failed (DEL): killed by signal 11: segfault")
    }

    @Test func pluginSpecificCodesHaveNoWellKnownMeaning() {
        let stdout = #"{"code":101,"msg":"lease conflict"}"#
        let error = CNIPluginError.from(
            stdout: Array(stdout.utf8), stderr: [], exitStatus: "exit status 1",
            plugin: "host-local", network: "n", command: "ADD")
        #expect(error.codeMeaning == nil)
        #expect(error.description.hasSuffix("lease conflict [code 101]"))
    }
}

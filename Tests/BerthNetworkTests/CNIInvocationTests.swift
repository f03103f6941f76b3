import BerthOS
import Testing
@testable import BerthNetwork

/// CNI invocation against fake plugins (small Python programs), so the protocol the runtime owns —
/// order, environment, prevResult chaining, capability filtering, the cache, cleanup of a failed ADD —
/// is checked without root. Each plugin appends what it saw to the log file named in its config.
struct FakePlugins {
    let directory: String
    let log: String

    static let program = """
        #!/usr/bin/python3
        import json, os, sys
        config = json.load(sys.stdin)
        with open(config["log"], "a") as log:
            log.write(json.dumps({"command": os.environ["CNI_COMMAND"], "plugin": config["type"],
                                  "containerID": os.environ["CNI_CONTAINERID"], "ifName": os.environ["CNI_IFNAME"],
                                  "netns": os.environ["CNI_NETNS"], "path": os.environ["CNI_PATH"],
                                  "args": os.environ.get("CNI_ARGS", ""), "config": config}) + "\\n")
        fail = config.get("failOn")
        if fail == os.environ["CNI_COMMAND"]:
            print(json.dumps({"cniVersion": config["cniVersion"], "code": 7, "msg": "refused", "details": config["type"]}))
            sys.exit(1)
        if os.environ["CNI_COMMAND"] == "ADD":
            result = config.get("prevResult") or {"cniVersion": config["cniVersion"], "interfaces": [], "ips": []}
            index = len(result["interfaces"])
            result["interfaces"].append({"name": os.environ["CNI_IFNAME"] if index == 0 else config["type"],
                                         "mac": "02:00:00:00:00:%02x" % index, "sandbox": os.environ["CNI_NETNS"]})
            if not result["ips"]:
                result["ips"].append({"interface": 0, "address": "10.77.0.2/24", "gateway": "10.77.0.1"})
            print(json.dumps(result))
        """

    init() throws {
        directory = temporaryDirectory("berth-cni-fake")
        log = "\(directory)/log"
        for name in ["one", "two", "three"] {
            try writeFile("\(directory)/\(name)", Self.program, mode: 0o755)
        }
    }

    func list(_ name: String = "fake", plugins: [[String: JSON]]) -> NetworkConfigList {
        NetworkConfigList(
            name: name,
            plugins: plugins.map { entry in
                var json = entry
                json["log"] = .string(log)
                return .init(json: json)
            })
    }

    var cni: CNI { CNI(pluginDirectories: ["/nonexistent", directory], cacheDirectory: "\(directory)/results") }

    /// The log's entries, in order.
    func calls() throws -> [JSON] {
        guard FileSystem.exists(log) else { return [] }
        return try FileSystem.readString(log).split(separator: "\n").map {
            try JSONCoding.decode(JSON.self, from: Array($0.utf8))
        }
    }

    func clearLog() { _ = try? FileSystem.removeTree(log) }
}

@Suite struct CNIInvocationTests {
    @Test func addRunsPluginsInOrderChainingPrevResultAndCachesTheResult() throws {
        let fake = try FakePlugins()
        defer { try? FileSystem.removeTree(fake.directory) }
        let list = fake.list(plugins: [
            ["type": "one"], ["type": "two", "capabilities": ["portMappings": true]], ["type": "three"],
        ])
        let ports: JSON = [["hostPort": 8080, "containerPort": 80, "protocol": "tcp"]]
        let result = try fake.cni.add(
            network: list, containerID: "c1", netnsPath: "/run/x", ifName: "eth0",
            capabilityArgs: ["portMappings": ports, "mac": "02:aa:bb:cc:dd:ee"],
            args: [("IgnoreUnknown", "1")])
        let calls = try fake.calls()
        #expect(calls.map { $0["command"] } == ["ADD", "ADD", "ADD"])
        #expect(calls.map { $0["plugin"] } == ["one", "two", "three"])
        #expect(calls.allSatisfy { $0["containerID"] == "c1" && $0["ifName"] == "eth0" && $0["netns"] == "/run/x" })
        #expect(calls[0]["path"] == .string("/nonexistent:\(fake.directory)"))
        #expect(calls[0]["args"] == "IgnoreUnknown=1")
        #expect(calls[0]["config"]["name"] == "fake")
        #expect(calls[0]["config"]["prevResult"] == nil)
        #expect(calls[0]["config"]["runtimeConfig"] == nil)
        #expect(calls[1]["config"]["runtimeConfig"] == ["portMappings": ports])
        #expect(calls[1]["config"]["prevResult"]["interfaces"].array?.count == 1)
        #expect(calls[2]["config"]["prevResult"]["interfaces"].array?.count == 2)
        #expect(result.interfaces.map(\.name) == ["eth0", "two", "three"])
        #expect(result.ipv4(on: "eth0")?.address == "10.77.0.2/24")
        let cached = try #require(fake.cni.cachedEntry(network: "fake", containerID: "c1", ifName: "eth0"))
        #expect(cached.result == result.json)
        #expect(cached.network.plugins.map(\.type) == ["one", "two", "three"])
        #expect(cached.capabilityArgs["portMappings"] == ports)
        #expect(FileSystem.exists("\(fake.directory)/results/fake-c1-eth0.json"))
    }

    @Test func delRunsInReverseWithTheCachedResultAndConfigThenForgetsIt() throws {
        let fake = try FakePlugins()
        defer { try? FileSystem.removeTree(fake.directory) }
        let list = fake.list(plugins: [["type": "one"], ["type": "two"]])
        let result = try fake.cni.add(network: list, containerID: "c2", netnsPath: "/run/y", ifName: "eth1")
        fake.clearLog()
        // The network was redefined meanwhile: DEL must still undo what ADD did, with ADD's configuration.
        let redefined = fake.list(plugins: [["type": "three"]])
        try fake.cni.del(network: redefined, containerID: "c2", netnsPath: "/run/y", ifName: "eth1")
        let calls = try fake.calls()
        #expect(calls.map { $0["plugin"] } == ["two", "one"])
        #expect(calls.allSatisfy { $0["command"] == "DEL" && $0["config"]["prevResult"] == result.json })
        #expect(fake.cni.cachedEntry(network: "fake", containerID: "c2", ifName: "eth1") == nil)
        // A second DEL (nothing cached) still runs the plugins, which treat "already gone" as success.
        fake.clearLog()
        try fake.cni.del(network: redefined, containerID: "c2", netnsPath: "/run/y", ifName: "eth1")
        #expect(try fake.calls().map { $0["plugin"] } == ["three"])
        #expect(try fake.calls().first?["config"]["prevResult"].isNull == true)
    }

    @Test func aFailedAddIsUndoneWithDelAndSurfacesThePluginsError() throws {
        let fake = try FakePlugins()
        defer { try? FileSystem.removeTree(fake.directory) }
        let list = fake.list(plugins: [["type": "one"], ["type": "two", "failOn": "ADD"], ["type": "three"]])
        do {
            _ = try fake.cni.add(network: list, containerID: "c3", netnsPath: "/run/z", ifName: "eth0")
            Issue.record("expected the ADD to fail")
        } catch {
            guard case .plugin(let error) = error else {
                Issue.record("expected a plugin error, got \(error)")
                return
            }
            #expect(error.plugin == "two")
            #expect(error.network == "fake")
            #expect(error.command == "ADD")
            #expect(error.code == 7)
            #expect(error.message == "refused")
            #expect(error.details == "two")
        }
        let calls = try fake.calls()
        #expect(
            calls.map { "\($0["command"].string!) \($0["plugin"].string!)" }
                == ["ADD one", "ADD two", "DEL three", "DEL two", "DEL one"])
        #expect(fake.cni.cachedEntry(network: "fake", containerID: "c3", ifName: "eth0") == nil)
    }

    @Test func delTriesEveryPluginEvenWhenOneFails() throws {
        let fake = try FakePlugins()
        defer { try? FileSystem.removeTree(fake.directory) }
        let list = fake.list(plugins: [["type": "one"], ["type": "two", "failOn": "DEL"], ["type": "three"]])
        try fake.cni.add(network: list, containerID: "c4", netnsPath: "/run/w", ifName: "eth0")
        fake.clearLog()
        #expect(throws: NetworkError.self) {
            try fake.cni.del(network: list, containerID: "c4", netnsPath: "/run/w", ifName: "eth0")
        }
        #expect(try fake.calls().map { $0["plugin"] } == ["three", "two", "one"])
        // Kept, so a later DEL can retry with the result.
        #expect(fake.cni.cachedEntry(network: "fake", containerID: "c4", ifName: "eth0") != nil)
    }

    @Test func checkUsesTheCachedResultAndNeedsAnAdd() throws {
        let fake = try FakePlugins()
        defer { try? FileSystem.removeTree(fake.directory) }
        let list = fake.list(plugins: [["type": "one"], ["type": "two"]])
        #expect(throws: NetworkError.self) {
            try fake.cni.check(network: list, containerID: "c5", netnsPath: "/run/v", ifName: "eth0")
        }
        let result = try fake.cni.add(network: list, containerID: "c5", netnsPath: "/run/v", ifName: "eth0")
        fake.clearLog()
        try fake.cni.check(network: list, containerID: "c5", netnsPath: "/run/v", ifName: "eth0")
        let calls = try fake.calls()
        #expect(calls.map { $0["plugin"] } == ["one", "two"])
        #expect(calls.allSatisfy { $0["command"] == "CHECK" && $0["config"]["prevResult"] == result.json })
        let failing = fake.list(plugins: [["type": "one", "failOn": "CHECK"]])
        #expect(throws: NetworkError.self) {
            try fake.cni.check(network: failing, containerID: "c5", netnsPath: "/run/v", ifName: "eth0")
        }
    }

    @Test func aMissingPluginIsNamedWithTheDirectoriesSearched() throws {
        let fake = try FakePlugins()
        defer { try? FileSystem.removeTree(fake.directory) }
        do {
            try fake.cni.add(
                network: fake.list("nets", plugins: [["type": "nosuch"]]), containerID: "c", netnsPath: "/n",
                ifName: "eth0")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "network nets: CNI plugin nosuch not found in /nonexistent:\(fake.directory)")
        }
    }

    @Test func cachedEntriesOfAContainerAreFoundEvenWithDashesInNames() throws {
        let fake = try FakePlugins()
        defer { try? FileSystem.removeTree(fake.directory) }
        try fake.cni.add(
            network: fake.list("my-net", plugins: [["type": "one"]]), containerID: "abc", netnsPath: "/n",
            ifName: "eth0")
        try fake.cni.add(
            network: fake.list("other", plugins: [["type": "one"]]), containerID: "abc", netnsPath: "/n", ifName: "eth1"
        )
        try fake.cni.add(
            network: fake.list("other", plugins: [["type": "one"]]), containerID: "abcd", netnsPath: "/n",
            ifName: "eth0")
        let entries = fake.cni.cachedEntries(containerID: "abc")
        #expect(entries.map(\.network.name) == ["my-net", "other"])
        #expect(entries.map(\.ifName) == ["eth0", "eth1"])
    }

    @Test func aPluginThatExitsWithoutReadingItsInputIsAnErrorNotASIGPIPE() throws {
        let fake = try FakePlugins()
        defer { try? FileSystem.removeTree(fake.directory) }
        try writeFile(
            "\(fake.directory)/early",
            "#!/bin/sh\necho '{\"code\":4,\"msg\":\"required env variables missing\"}'\nexit 1\n", mode: 0o755)
        // More input than a pipe holds: the write cannot finish before the plugin is gone.
        let padding = JSON.string(String(repeating: "x", count: 1 << 20))
        let list = NetworkConfigList(name: "early", plugins: [.init(json: ["type": "early", "padding": padding])])
        do {
            try fake.cni.add(network: list, containerID: "c", netnsPath: "/n", ifName: "eth0")
            Issue.record("expected an error")
        } catch {
            guard case .plugin(let error) = error else {
                Issue.record("expected a plugin error, got \(error)")
                return
            }
            #expect(error.code == 4)
            #expect(error.message == "required env variables missing")
        }
    }

    @Test func containerIDsAndInterfaceNamesFollowTheSpec() throws {
        let fake = try FakePlugins()
        defer { try? FileSystem.removeTree(fake.directory) }
        let list = fake.list(plugins: [["type": "one"]])
        for (containerID, ifName) in [
            ("../etc", "eth0"), ("", "eth0"), ("ok", "averyveryverylongname"), ("ok", "a/b"),
            ("ok", ""), ("ok", "e th0"), ("ok", ".."),
        ] {
            #expect(throws: NetworkError.self, "\(containerID) \(ifName)") {
                try fake.cni.add(network: list, containerID: containerID, netnsPath: "/n", ifName: ifName)
            }
            #expect(throws: NetworkError.self) {
                try fake.cni.del(network: list, containerID: containerID, netnsPath: "/n", ifName: ifName)
            }
        }
        #expect(try fake.calls().isEmpty)
    }
}

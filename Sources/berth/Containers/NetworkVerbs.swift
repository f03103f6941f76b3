import ArgumentParser
import BerthEngine
import BerthNetwork

/// `berth network create/ls/inspect/rm/prune/connect/disconnect`, as docker's.
struct NetworkGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network", abstract: "Manage networks.",
        subcommands: [
            NetworkCreate.self, NetworkList.self, NetworkInspect.self, NetworkRemove.self, NetworkPrune.self,
            NetworkConnect.self, NetworkDisconnect.self,
        ])
}

struct NetworkCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a network.")
    @OptionGroup var options: ImageOptions
    @Option(name: .shortAndLong, help: "Driver to manage the network (bridge).") var driver = "bridge"
    @Option(help: "Subnet in CIDR format (e.g. 10.91.0.0/24).") var subnet: String?
    @Option(help: "IPv4 gateway for the subnet.") var gateway: String?
    @Flag(help: "Restrict external access to the network.") var `internal` = false
    @Option(help: "Set metadata on a network (KEY=value).") var label: [String] = []
    @Argument(help: "Network name.") var name: String

    func run() async throws {
        guard driver == "bridge" else { throw ValidationError("plugin \"\(driver)\" not found") }
        var labels: [String: String] = [:]
        for entry in label {
            let parts = entry.split(separator: "=", maxSplits: 1)
            labels[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        let created = try await withEngine(options) { engine in
            try engine.createNetwork(
                name: name, subnet: subnet, gateway: gateway, internal: self.internal, labels: labels)
        }
        print(created.id)
    }
}

struct NetworkList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.", aliases: ["list"])
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Only display network IDs.") var quiet = false
    @Flag(name: .customLong("no-trunc"), help: "Do not truncate the output.") var noTrunc = false
    @Option(name: .shortAndLong, help: "Filter output (name=, id=, driver=, label=).") var filter: [String] = []
    @Option(help: "Format output: table, json, or {{.Name}} templates.") var format: String?

    func run() async throws {
        var networks = try await withEngine(options) { engine in
            do { return try engine.networks.store.list() } catch { throw EngineError.network("\(error)") }
        }
        for f in filter {
            let parts = f.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("bad format of filter (expected name=value)") }
            switch parts[0] {
            case "name": networks = networks.filter { $0.name.contains(parts[1]) }
            case "id": networks = networks.filter { $0.id.hasPrefix(parts[1]) }
            case "driver": networks = networks.filter { $0.driver == parts[1] }
            case "label":
                let kv = parts[1].split(separator: "=", maxSplits: 1).map(String.init)
                networks = networks.filter { n in n.labels[kv[0]].map { kv.count == 1 || $0 == kv[1] } ?? false }
            default: throw ValidationError("invalid filter '\(parts[0])'")
            }
        }
        if quiet { for n in networks { print(noTrunc ? n.id : n.shortID) }; return }
        let rows = networks.map {
            [
                "ID": noTrunc ? $0.id : $0.shortID, "Name": $0.name, "Driver": $0.driver, "Scope": $0.scope,
                "Internal": $0.internal ? "true" : "false", "CreatedAt": $0.created, "IPv6": "false",
                "Labels": $0.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
            ]
        }
        try printRows(
            rows, format: format, columns: ["NETWORK ID": "ID", "NAME": "Name", "DRIVER": "Driver", "SCOPE": "Scope"])
    }
}

struct NetworkInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Display detailed information on networks.")
    @OptionGroup var options: ImageOptions
    @Option(name: .shortAndLong, help: "Format the output using a Go-template subset.") var format: String?
    @Argument(help: "Networks.") var names: [String]

    struct Shown: Encodable {
        struct IPAMConfig: Encodable { var Subnet: String; var Gateway: String }
        struct IPAM: Encodable { var Driver = "default"; var Config: [IPAMConfig] }
        struct Endpoint: Encodable {
            var Name: String; var EndpointID: String; var MacAddress: String; var IPv4Address: String;
            var IPv6Address = ""
        }
        var Name: String, Id: String, Created: String, Scope: String, Driver: String, EnableIPv6 = false
        var IPAM: IPAM
        var Internal: Bool, Attachable = false, Ingress = false
        var Containers: [String: Endpoint]
        var Options: [String: String]
        var Labels: [String: String]
    }

    func run() async throws {
        let (shown, missing): ([Shown], [String]) = try await withEngine(options) { engine in
            var shown: [Shown] = []
            var missing: [String] = []
            for name in names {
                guard let n = try? engine.networks.store.inspect(name) else { missing.append(name); continue }
                var containers: [String: Shown.Endpoint] = [:]
                for (r, a) in engine.endpoints(on: n) {
                    containers[r.id] = Shown.Endpoint(
                        Name: r.name, EndpointID: a.endpointID(container: r.id), MacAddress: a.macAddress,
                        IPv4Address: a.address)
                }
                shown.append(
                    Shown(
                        Name: n.name, Id: n.id, Created: n.created, Scope: n.scope, Driver: n.driver,
                        IPAM: .init(Config: n.subnet.map { [.init(Subnet: $0, Gateway: n.gateway ?? "")] } ?? []),
                        Internal: n.internal, Containers: containers,
                        Options: n.bridge.map { ["com.docker.network.bridge.name": $0] } ?? [:], Labels: n.labels))
            }
            return (shown, missing)
        }
        if let format { for s in shown { print(try renderInspect(format, s)) } } else { print(prettyJSON(shown)) }
        for name in missing { printError("Error response from daemon: network \(name) not found") }
        if !missing.isEmpty { throw ExitCode(1) }
    }
}

struct NetworkRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove one or more networks.", aliases: ["remove"])
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Do not error if the network does not exist.") var force = false
    @Argument(help: "Networks.") var names: [String]

    func run() async throws {
        try await forEachName(options, names) { engine, name in
            do throws(EngineError) { try engine.removeNetwork(name) } catch {
                guard force, case .noSuchNetwork = error else { throw error }
            }
        }
    }
}

struct NetworkPrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove all unused networks.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false

    func run() async throws {
        let removed = try await withEngine(options) { engine in engine.pruneNetworks().map(\.name) }
        if !removed.isEmpty { print("Deleted Networks:"); for name in removed { print(name) } }
    }
}

struct NetworkConnect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect", abstract: "Connect a container to a network.")
    @OptionGroup var options: ImageOptions
    @Option(help: "IPv4 address (e.g. 10.90.0.20).") var ip: String?
    @Option(help: "Add network-scoped alias for the container.") var alias: [String] = []
    @Argument(help: "Network.") var network: String
    @Argument(help: "Container.") var container: String

    func run() async throws {
        try await withEngine(options) { engine in
            try engine.connect(container, to: network, ipAddress: ip, aliases: alias)
        }
    }
}

struct NetworkDisconnect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disconnect", abstract: "Disconnect a container from a network.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Force the container to disconnect from a network.") var force = false
    @Argument(help: "Network.") var network: String
    @Argument(help: "Container.") var container: String

    func run() async throws {
        try await withEngine(options) { engine in try engine.disconnect(container, from: network, force: force) }
    }
}

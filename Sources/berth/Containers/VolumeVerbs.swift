import ArgumentParser
import BerthEngine

/// `berth volume create/ls/inspect/rm/prune`, as docker's.
struct VolumeGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume", abstract: "Manage volumes.",
        subcommands: [VolumeCreate.self, VolumeList.self, VolumeInspect.self, VolumeRemove.self, VolumePrune.self])
}

struct VolumeCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a volume.")
    @OptionGroup var options: ImageOptions
    @Option(name: .shortAndLong, help: "Specify volume driver name (only local).") var driver = "local"
    @Option(help: "Set metadata for a volume (KEY=value).") var label: [String] = []
    @Argument(help: "Volume name (a random one if omitted).") var name: String?

    func run() async throws {
        guard driver == "local" else {
            throw ValidationError("error looking up volume plugin \(driver): plugin \"\(driver)\" not found")
        }
        var labels: [String: String] = [:]
        for entry in label {
            let parts = entry.split(separator: "=", maxSplits: 1)
            labels[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        let record = try await withEngine(options) { engine in try engine.volumes.create(name, labels: labels) }
        print(record.Name)
    }
}

struct VolumeList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List volumes.", aliases: ["list"])
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Only display volume names.") var quiet = false
    @Option(name: .shortAndLong, help: "Filter output (dangling=true|false, name=, label=).") var filter: [String] = []
    @Option(help: "Format output: table, json, or {{.Name}} templates.") var format: String?

    func run() async throws {
        let (volumes, used) = try await withEngine(options) { engine in (engine.volumes.list(), engine.volumesInUse()) }
        var selected = volumes
        for f in filter {
            let parts = f.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("bad format of filter (expected name=value)") }
            switch parts[0] {
            case "dangling":
                selected = selected.filter { used.contains($0.Name) != (parts[1] == "true" || parts[1] == "1") }
            case "name": selected = selected.filter { $0.Name.contains(parts[1]) }
            case "label":
                let kv = parts[1].split(separator: "=", maxSplits: 1).map(String.init)
                selected = selected.filter { v in v.Labels[kv[0]].map { kv.count == 1 || $0 == kv[1] } ?? false }
            default: throw ValidationError("invalid filter '\(parts[0])'")
            }
        }
        if quiet { for v in selected { print(v.Name) }; return }
        let rows = selected.map {
            [
                "Driver": $0.Driver, "Name": $0.Name, "Mountpoint": $0.Mountpoint, "Scope": $0.Scope,
                "Labels": $0.Labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
            ]
        }
        try printRows(rows, format: format, columns: ["DRIVER": "Driver", "VOLUME NAME": "Name"])
    }
}

struct VolumeInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Display detailed information on volumes.")
    @OptionGroup var options: ImageOptions
    @Option(name: .shortAndLong, help: "Format the output using a Go-template subset.") var format: String?
    @Argument(help: "Volumes.") var names: [String]

    struct Shown: Encodable {
        var CreatedAt: String, Driver: String, Labels: [String: String], Mountpoint: String, Name: String,
            Options: [String: String], Scope: String
    }

    func run() async throws {
        let found = try await withEngine(options) { engine in names.map { engine.volumes.inspect($0) } }
        var shown: [Shown] = []
        var missing = false
        for (name, volume) in zip(names, found) {
            guard let v = volume else {
                printError("Error response from daemon: get \(name): no such volume"); missing = true; continue
            }
            shown.append(
                Shown(
                    CreatedAt: v.CreatedAt, Driver: v.Driver, Labels: v.Labels, Mountpoint: v.Mountpoint, Name: v.Name,
                    Options: v.Options, Scope: v.Scope))
        }
        if let format { for s in shown { print(try renderInspect(format, s)) } } else { print(prettyJSON(shown)) }
        if missing { throw ExitCode(1) }
    }
}

struct VolumeRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove one or more volumes.", aliases: ["remove"])
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Force the removal of one or more volumes (a missing one is not an error).")
    var force = false
    @Argument(help: "Volumes.") var names: [String]

    func run() async throws {
        try await forEachName(options, names) { engine, name in
            try engine.removeVolume(name, force: force)
        }
    }
}

struct VolumePrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove unused local volumes.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Remove all unused volumes, not just anonymous ones.") var all = false
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false

    func run() async throws {
        let removed = try await withEngine(options) { engine in engine.pruneVolumes(all: all) }
        if !removed.isEmpty { print("Deleted Volumes:"); for entry in removed { print(entry.volume.Name) }; print("") }
        print("Total reclaimed space: \(humanSize(removed.reduce(0) { $0 + $1.bytes }))")
    }
}

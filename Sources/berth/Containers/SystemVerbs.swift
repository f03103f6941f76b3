import ArgumentParser
import BerthEngine
import BerthImage
import BerthNetwork
import BerthOS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `berth system info/df/prune/events`, and `berth info` / `berth container prune`, as docker's.
struct SystemGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system", abstract: "Manage Berth.",
        subcommands: [SystemInfoCommand.self, SystemDiskUsage.self, SystemPrune.self, SystemEventsCommand.self, SystemRestore.self])
}

struct SystemInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Display system-wide information.")
    @OptionGroup var options: ImageOptions
    @Option(name: .shortAndLong, help: "Format the output: json or a Go-template subset.") var format: String?

    struct Info: Encodable {
        var ID: String, Containers: Int, ContainersRunning: Int, ContainersPaused: Int, ContainersStopped: Int, Images: Int
        var Driver: String, LoggingDriver: String, CgroupDriver = "cgroupfs", CgroupVersion: String
        var KernelVersion: String, OperatingSystem: String, OSType = "linux", Architecture: String, NCPU: Int, MemTotal: Int64
        var Name: String, ServerVersion = "berth", DockerRootDir: String, DefaultRuntime: String, Runtimes: [String: [String: String]]
        var RegistryMirrors: [String], InsecureRegistries: [String]
    }

    func run() async throws {
        let info: Info = try await withEngine(options) { engine in
            let containers = engine.list()
            var uts = utsname()
            uname(&uts)
            func text<T>(_ value: T) -> String { withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
            let osRelease = (try? FileSystem.readString("/etc/os-release")) ?? ""
            let pretty = osRelease.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
                .map { String($0.dropFirst(12)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) } ?? "Linux"
            var runtimes: [String: [String: String]] = [:]
            for name in ["berth", "runc", "crun"] + engine.configuration.runtimes.keys.sorted() {
                if let r = try? OCIRuntime(name: name, layout: engine.layout, named: engine.configuration.runtimes) { runtimes[name] = ["path": r.path] }
            }
            let v2 = (try? FileSystemMagic.of(path: "/sys/fs/cgroup")) == FileSystemMagic.cgroup2
            return Info(ID: String(ContainerNamesPublic.machineID().prefix(36)), Containers: containers.count,
                        ContainersRunning: containers.filter { $0.state.status == .running }.count,
                        ContainersPaused: containers.filter { $0.state.status == .paused }.count,
                        ContainersStopped: containers.filter { !$0.state.running }.count,
                        Images: engine.images.store.images().count, Driver: Snapshotter.preferred == .overlay ? "overlay2" : "vfs",
                        LoggingDriver: engine.configuration.logDriver ?? "json-file", CgroupVersion: v2 ? "2" : "1",
                        KernelVersion: text(uts.release), OperatingSystem: pretty, Architecture: text(uts.machine),
                        NCPU: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
                        MemTotal: Int64(sysconf(Int32(_SC_PHYS_PAGES))) * Int64(sysconf(Int32(_SC_PAGESIZE))),
                        Name: text(uts.nodename), DockerRootDir: engine.layout.root,
                        DefaultRuntime: engine.configuration.defaultRuntime ?? "berth", Runtimes: runtimes,
                        RegistryMirrors: engine.configuration.registryMirrors, InsecureRegistries: engine.configuration.insecureRegistries)
        }
        switch format {
        case "json"?: print(String(decoding: try JSONEncoderLite.encode(info), as: UTF8.self))
        case let template?: print(try renderInspect(template, info))
        case nil:
            print("""
            Server:
             Containers: \(info.Containers)
              Running: \(info.ContainersRunning)
              Paused: \(info.ContainersPaused)
              Stopped: \(info.ContainersStopped)
             Images: \(info.Images)
             Server Version: \(info.ServerVersion)
             Storage Driver: \(info.Driver)
             Logging Driver: \(info.LoggingDriver)
             Cgroup Driver: \(info.CgroupDriver)
             Cgroup Version: \(info.CgroupVersion)
             Runtimes: \(info.Runtimes.keys.sorted().joined(separator: " "))
             Default Runtime: \(info.DefaultRuntime)
             Kernel Version: \(info.KernelVersion)
             Operating System: \(info.OperatingSystem)
             OSType: \(info.OSType)
             Architecture: \(info.Architecture)
             CPUs: \(info.NCPU)
             Total Memory: \(binarySize(UInt64(info.MemTotal)))
             Name: \(info.Name)
             Docker Root Dir: \(info.DockerRootDir)
            """)
            if !info.RegistryMirrors.isEmpty { print(" Registry Mirrors:"); for m in info.RegistryMirrors { print("  \(m)") } }
        }
    }
}

/// Disk space a directory tree takes (st_blocks, hard links counted once), as `du -s` in bytes.
func diskUsage(_ path: String) -> Int64 {
    let output = try? ChildProcess.run("/usr/bin/du", arguments: ["du", "-s", "-B1", "--", path], environment: ["PATH=/usr/bin:/bin"])
    return output.flatMap { Int64($0.stdoutText.split(separator: "\t").first ?? "") } ?? 0
}

/// `berth system restore`: what the engine does anyway on its first command after a boot (records the
/// containers the reboot stopped, restarts those whose policy says so; see BerthEngine.BootRecovery),
/// run by packaging/systemd/berth-restore.service at boot so `always` containers do not wait for a user.
struct SystemRestore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restore", abstract: "Restart the containers whose restart policy asks for it after a reboot.")
    @OptionGroup var options: ImageOptions

    func run() async throws {
        try await withEngine(options) { _ in }
    }
}

struct SystemDiskUsage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "df", abstract: "Show Berth disk usage.")
    @OptionGroup var options: ImageOptions

    func run() async throws {
        let rows: [[String]] = try await withEngine(options) { engine in
            let containers = engine.list()
            let images = engine.images.store.images()
            let usedImages = Set(containers.map(\.imageName))
            let imageBytes = images.reduce(Int64(0)) { $0 + $1.size }
            let unusedImageBytes = images.filter { !usedImages.contains($0.name) }.reduce(Int64(0)) { $0 + $1.size }
            let containerBytes = containers.map { diskUsage(engine.layout.container($0.id) + "/upper") }
            let stoppedBytes = zip(containers, containerBytes).filter { !$0.0.state.running }.reduce(Int64(0)) { $0 + $1.1 }
            let volumes = engine.volumes.list()
            let usedVolumes = Set(containers.flatMap { $0.configuration.mounts.filter { $0.type == .volume }.map(\.source) })
            let volumeBytes = volumes.map { diskUsage($0.Mountpoint) }
            let unusedVolumeBytes = zip(volumes, volumeBytes).filter { !usedVolumes.contains($0.0.Name) }.reduce(Int64(0)) { $0 + $1.1 }
            func reclaim(_ part: Int64, _ whole: Int64) -> String {
                whole == 0 ? "0B" : "\(humanSize(part)) (\(Int((Double(part) / Double(whole) * 100).rounded()))%)"
            }
            return [["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                    ["Images", String(images.count), String(usedImages.count), humanSize(imageBytes), reclaim(unusedImageBytes, imageBytes)],
                    ["Containers", String(containers.count), String(containers.filter { $0.state.running }.count),
                     humanSize(containerBytes.reduce(0, +)), reclaim(stoppedBytes, containerBytes.reduce(0, +))],
                    ["Local Volumes", String(volumes.count), String(volumes.filter { usedVolumes.contains($0.Name) }.count),
                     humanSize(volumeBytes.reduce(0, +)), reclaim(unusedVolumeBytes, volumeBytes.reduce(0, +))],
                    ["Build Cache", "0", "0", "0B", "0B"]]
        }
        printTable(rows)
    }
}

/// Removes stopped containers (and with `all` their volumes' anonymous ones too), returning their IDs.
func pruneContainers(_ engine: Engine) -> [String] {
    var removed: [String] = []
    for record in engine.list() where !record.state.running {
        if (try? engine.remove(record.id, force: false)) != nil { removed.append(record.id) }
    }
    return removed
}

struct ContainerPruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove all stopped containers.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false

    func run() async throws {
        let removed = try await withEngine(options) { engine in pruneContainers(engine) }
        if !removed.isEmpty { print("Deleted Containers:"); for id in removed { print(id) }; print("") }
        print("Total reclaimed space: 0B")
    }
}

struct SystemPrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove unused data.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Remove all unused images, not just dangling ones.") var all = false
    @Flag(help: "Prune anonymous volumes.") var volumes = false
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false

    func run() async throws {
        if !force {
            print("WARNING! This will remove all stopped containers, all networks not used by at least one container,"
                  + (volumes ? " all anonymous volumes not used by at least one container," : "")
                  + (all ? " all images without at least one container associated to them." : " all dangling images."))
            print("Are you sure you want to continue? [y/N] ", terminator: "")
            guard let answer = readLine(), answer.lowercased().hasPrefix("y") else { return }
        }
        let report: [String] = try await withEngine(options) { engine in
            var lines: [String] = []
            let containers = pruneContainers(engine)
            if !containers.isEmpty { lines += ["Deleted Containers:"] + containers + [""] }
            var networks: [String] = []
            let remaining = engine.list()
            for network in (try? engine.networks.store.list()) ?? [] where !Network.predefinedNames.contains(network.name) && network.configFile == nil {
                let used = remaining.contains { r in r.configuration.networkMode == network.name || r.configuration.additionalNetworks.contains(network.name) }
                if !used, (try? engine.networks.store.remove(network.name)) != nil { networks.append(network.name) }
            }
            if !networks.isEmpty { lines += ["Deleted Networks:"] + networks + [""] }
            if volumes {
                var removed: [String] = []
                let used = Set(remaining.flatMap { $0.configuration.mounts.filter { $0.type == .volume }.map(\.source) })
                for volume in engine.volumes.list() where volume.anonymous && !used.contains(volume.Name) {
                    if (try? engine.volumes.remove(volume.Name, usedBy: remaining)) != nil { removed.append(volume.Name) }
                }
                if !removed.isEmpty { lines += ["Deleted Volumes:"] + removed + [""] }
            }
            if all {
                let usedImages = Set(remaining.map(\.imageName))
                var removed: [String] = []
                for image in engine.images.store.images() where !usedImages.contains(image.name) {
                    if (try? await engine.images.remove(image.name)) != nil { removed.append("untagged: \(image.name)") }
                }
                if !removed.isEmpty { lines += ["Deleted Images:"] + removed + [""] }
            }
            _ = try? engine.images.store.collectGarbage()
            return lines
        }
        for line in report { print(line) }
        print("Total reclaimed space: 0B")
    }
}

enum ContainerNamesPublic {
    /// /etc/machine-id, as docker's info ID stands for this host.
    static func machineID() -> String {
        ((try? FileSystem.readString("/etc/machine-id")) ?? "unknown").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

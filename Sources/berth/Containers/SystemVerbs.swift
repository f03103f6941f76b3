import ArgumentParser
import BerthEngine
import BerthImage
import BerthOS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `berth system info/df/prune/events`, and `berth info` / `berth container prune`, as docker's.
struct SystemGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system", abstract: "Manage Berth.",
        subcommands: [
            SystemInfoCommand.self, SystemDiskUsage.self, SystemPrune.self, SystemEventsCommand.self,
            SystemRestore.self,
        ])
}

struct SystemInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Display system-wide information.")
    @OptionGroup var options: ImageOptions
    @Option(name: .shortAndLong, help: "Format the output: json or a Go-template subset.") var format: String?

    struct Info: Encodable {
        var ID: String, Containers: Int, ContainersRunning: Int, ContainersPaused: Int, ContainersStopped: Int,
            Images: Int
        var Driver: String, LoggingDriver: String, CgroupDriver = "cgroupfs", CgroupVersion: String
        var KernelVersion: String, OperatingSystem: String, OSType = "linux", Architecture: String, NCPU: Int,
            MemTotal: Int64
        var Name: String, ServerVersion = "berth", DockerRootDir: String, DefaultRuntime: String,
            Runtimes: [String: [String: String]]
        var RegistryMirrors: [String], InsecureRegistries: [String]
    }

    func run() async throws {
        let info: Info = try await withEngine(options) { engine in
            let containers = engine.list()
            var uts = utsname()
            uname(&uts)
            func text<T>(_ value: T) -> String {
                withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            }
            let osRelease = (try? FileSystem.readString("/etc/os-release")) ?? ""
            let pretty =
                osRelease.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
                .map { String($0.dropFirst(12)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) } ?? "Linux"
            var runtimes: [String: [String: String]] = [:]
            for name in ["berth", "runc", "crun"] + engine.configuration.runtimes.keys.sorted() {
                if let r = try? OCIRuntime(name: name, layout: engine.layout, named: engine.configuration.runtimes) {
                    runtimes[name] = ["path": r.path]
                }
            }
            let v2 = (try? FileSystemMagic.of(path: "/sys/fs/cgroup")) == FileSystemMagic.cgroup2
            return Info(
                ID: String(ContainerNamesPublic.machineID().prefix(36)), Containers: containers.count,
                ContainersRunning: containers.filter { $0.state.status == .running }.count,
                ContainersPaused: containers.filter { $0.state.status == .paused }.count,
                ContainersStopped: containers.filter { !$0.state.running }.count,
                Images: engine.images.store.images().count,
                Driver: Snapshotter.preferred == .overlay ? "overlay2" : "vfs",
                LoggingDriver: engine.configuration.logDriver ?? "json-file", CgroupVersion: v2 ? "2" : "1",
                KernelVersion: text(uts.release), OperatingSystem: pretty, Architecture: text(uts.machine),
                NCPU: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
                MemTotal: Int64(sysconf(Int32(_SC_PHYS_PAGES))) * Int64(sysconf(Int32(_SC_PAGESIZE))),
                Name: text(uts.nodename), DockerRootDir: engine.layout.root,
                DefaultRuntime: engine.configuration.defaultRuntime ?? "berth", Runtimes: runtimes,
                RegistryMirrors: engine.configuration.registryMirrors,
                InsecureRegistries: engine.configuration.insecureRegistries)
        }
        switch format {
        case "json"?: print(String(decoding: try JSONEncoderLite.encode(info), as: UTF8.self))
        case let template?: print(try renderInspect(template, info))
        case nil:
            print(
                """
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
            if !info.RegistryMirrors.isEmpty {
                print(" Registry Mirrors:"); for m in info.RegistryMirrors { print("  \(m)") }
            }
        }
    }
}

/// `berth system restore`: what the engine does anyway on its first command after a boot (records the
/// containers the reboot stopped, restarts those whose policy says so; see BerthEngine.BootRecovery),
/// run by packaging/systemd/berth-restore.service at boot so `always` containers do not wait for a user.
struct SystemRestore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Restart the containers whose restart policy asks for it after a reboot.")
    @OptionGroup var options: ImageOptions

    func run() async throws {
        try await withEngine(options) { _ in }
    }
}

struct SystemDiskUsage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "df", abstract: "Show Berth disk usage.")
    @OptionGroup var options: ImageOptions

    func run() async throws {
        let usage = try await withEngine(options) { engine in engine.diskUsage() }
        func reclaim(_ part: Int64, _ whole: Int64) -> String {
            whole == 0 ? "0B" : "\(humanSize(part)) (\(Int((Double(part) / Double(whole) * 100).rounded()))%)"
        }
        let imageBytes = usage.images.reduce(Int64(0)) { $0 + $1.size }
        let unusedImageBytes = usage.images.filter { $0.containers == 0 }.reduce(Int64(0)) { $0 + $1.size }
        let containerBytes = usage.containers.reduce(Int64(0)) { $0 + $1.size }
        let stoppedBytes = usage.containers.filter { !$0.record.state.running }.reduce(Int64(0)) { $0 + $1.size }
        let volumeBytes = usage.volumes.reduce(Int64(0)) { $0 + $1.size }
        let unusedVolumeBytes = usage.volumes.filter { $0.containers == 0 }.reduce(Int64(0)) { $0 + $1.size }
        let header = ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        let imageRow = [
            "Images", String(usage.images.count), String(usage.images.filter { $0.containers > 0 }.count),
            humanSize(imageBytes), reclaim(unusedImageBytes, imageBytes),
        ]
        let running = usage.containers.filter { $0.record.state.running }.count
        let containerRow = [
            "Containers", String(usage.containers.count), String(running), humanSize(containerBytes),
            reclaim(stoppedBytes, containerBytes),
        ]
        let mounted = usage.volumes.filter { $0.containers > 0 }.count
        let volumeRow = [
            "Local Volumes", String(usage.volumes.count), String(mounted), humanSize(volumeBytes),
            reclaim(unusedVolumeBytes, volumeBytes),
        ]
        let rows: [[String]] = [header, imageRow, containerRow, volumeRow, ["Build Cache", "0", "0", "0B", "0B"]]
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
            print(
                "WARNING! This will remove all stopped containers, all networks not used by at least one container,"
                    + (volumes ? " all anonymous volumes not used by at least one container," : "")
                    + (all ? " all images without at least one container associated to them." : " all dangling images.")
            )
            print("Are you sure you want to continue? [y/N] ", terminator: "")
            guard let answer = readLine(), answer.lowercased().hasPrefix("y") else { return }
        }
        let report: [String] = try await withEngine(options) { engine in
            var lines: [String] = []
            let containers = pruneContainers(engine)
            if !containers.isEmpty { lines += ["Deleted Containers:"] + containers + [""] }
            let networks = engine.pruneNetworks().map(\.name)
            let remaining = engine.list()
            if !networks.isEmpty { lines += ["Deleted Networks:"] + networks + [""] }
            if volumes {
                let removed = engine.pruneVolumes(all: false).map(\.volume.Name)
                if !removed.isEmpty { lines += ["Deleted Volumes:"] + removed + [""] }
            }
            if all {
                let usedImages = Set(remaining.map(\.imageName))
                var removed: [String] = []
                for image in engine.images.store.images() where !usedImages.contains(image.name) {
                    if (try? await engine.images.remove(image.name)) != nil {
                        removed.append("untagged: \(image.name)")
                    }
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

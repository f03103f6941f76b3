#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import FoundationEssentials

/// A named volume as docker shows it (`docker volume inspect`).
public struct VolumeRecord: Codable, Sendable {
    public var Name: String
    public var Driver = "local"
    public var Mountpoint: String
    public var CreatedAt: String
    public var Labels: [String: String]
    public var Scope = "local"
    public var Options: [String: String] = [:]
    /// Made for one container (`-v /data`, or an image's VOLUME): removed with it by `rm -v` and `--rm`.
    public var anonymous = false
}

/// Named and anonymous volumes: `<root>/volumes/<name>/_data`, and `volume.json` beside it.
public struct VolumeStore: Sendable {
    let layout: EngineLayout

    public init(layout: EngineLayout) { self.layout = layout }

    func directory(_ name: String) -> String { "\(layout.volumes)/\(name)" }
    public func dataPath(_ name: String) -> String { directory(name) + "/_data" }

    public func list() -> [VolumeRecord] {
        ((try? FileSystem.listSubdirectories(layout.volumes)) ?? []).compactMap { inspect($0) }.sorted {
            $0.Name < $1.Name
        }
    }

    public func inspect(_ name: String) -> VolumeRecord? {
        RecordFile.read(VolumeRecord.self, directory(name) + "/volume.json")
    }

    /// Creates a volume (an existing one of that name is returned as it is, as docker does).
    @discardableResult
    public func create(_ requested: String? = nil, labels: [String: String] = [:], anonymous: Bool = false)
        throws(EngineError) -> VolumeRecord
    {
        let name = requested ?? ContainerNames.randomID()
        try VolumeStore.validate(name)
        if let existing = inspect(name) { return existing }
        let record = VolumeRecord(
            Name: name, Mountpoint: dataPath(name), CreatedAt: Timestamp.now(), Labels: labels, anonymous: anonymous)
        do { try FileSystem.makeDirectories(dataPath(name), mode: 0o755) } catch {
            throw .system(error, context: "creating volume \(name)")
        }
        try RecordFile.write(record, directory(name) + "/volume.json")
        EventLog(layout: layout).append(type: "volume", action: "create", id: name, attributes: ["driver": "local"])
        return record
    }

    /// docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at least two characters.
    static func validate(_ name: String) throws(EngineError) {
        let bytes = Array(name.utf8)
        func alnum(_ b: UInt8) -> Bool { (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) }
        guard bytes.count >= 2, alnum(bytes[0]),
            bytes.dropFirst().allSatisfy({ alnum($0) || $0 == 95 || $0 == 46 || $0 == 45 })
        else {
            throw .invalidArgument(
                what: "volume name",
                reason:
                    "\"\(name)\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )
        }
    }

    /// Removes a volume; one a container uses (running or not) is refused unless `force` is false… never
    /// removed while referenced, as docker: `volume is in use`.
    public func remove(_ name: String, usedBy containers: [ContainerRecord]) throws(EngineError) {
        guard inspect(name) != nil else { throw .noSuchVolume(name) }
        let users = containers.filter { $0.configuration.mounts.contains { $0.type == .volume && $0.source == name } }
        if !users.isEmpty {
            throw .conflict("remove \(name): volume is in use - [\(users.map(\.id).joined(separator: ", "))]")
        }
        do { try FileSystem.removeTree(directory(name)) } catch {
            throw .system(error, context: "removing volume \(name)")
        }
        EventLog(layout: layout).append(type: "volume", action: "destroy", id: name, attributes: ["driver": "local"])
    }

    /// Whether the volume's data directory is empty (docker copies the image's content only then).
    func isEmpty(_ name: String) -> Bool {
        ((try? FileSystem.listDirectory(dataPath(name))) ?? []).isEmpty
    }

    /// Copies what the image has at `target` into an empty volume, resolving `target` inside the rootfs
    /// (a symlink in the image never leads the copy outside it).
    func populate(_ name: String, from rootfs: String, target: String) throws(EngineError) {
        guard isEmpty(name) else { return }
        let root: Root
        do { root = try Root(path: rootfs) } catch { return }
        let source: FileDescriptor
        do { source = try root.open(target, BERTH_O_PATH | O_DIRECTORY | O_CLOEXEC) } catch { return }
        let copied: ChildProcess.Output
        do {
            // Through our pid (not /proc/self, which would be cp's): the directory resolved inside the root.
            copied = try ChildProcess.run(
                "/bin/cp", arguments: ["cp", "-a", "--", "/proc/\(getpid())/fd/\(source.rawValue)/.", dataPath(name)],
                environment: ["PATH=/usr/bin:/bin"])
        } catch { throw .system(error, context: "copying \(target) into volume \(name)") }
        guard copied.status.succeeded else {
            throw .other("copying \(target) into volume \(name): \(copied.stderrText)")
        }
    }
}

extension Engine {
    public var volumes: VolumeStore { VolumeStore(layout: layout) }

    /// Gives every anonymous volume (`-v /data`, the image's VOLUME paths not otherwise mounted) a name,
    /// creates the named ones that do not exist, and fills empty ones from the image.
    func prepareVolumes(_ configuration: inout ContainerConfiguration, imageVolumes: [String], rootfs: String)
        throws(EngineError)
    {
        let store = volumes
        let targets = Set(configuration.mounts.map(\.target))
        for path in imageVolumes.sorted() where !targets.contains(path) {
            var mount = ContainerConfiguration.MountRequest(type: .volume, source: "", target: path)
            mount.noCopy = false
            configuration.mounts.append(mount)
        }
        for index in configuration.mounts.indices where configuration.mounts[index].type == .volume {
            let anonymous = configuration.mounts[index].source.isEmpty
            let volume = try store.create(anonymous ? nil : configuration.mounts[index].source, anonymous: anonymous)
            configuration.mounts[index].source = volume.Name
            if !configuration.mounts[index].noCopy {
                try store.populate(volume.Name, from: rootfs, target: configuration.mounts[index].target)
            }
        }
    }

    /// Host directories backing each mount of the container (nil for binds and tmpfs).
    func volumeSources(_ configuration: ContainerConfiguration) -> [String?] {
        configuration.mounts.map { $0.type == .volume ? volumes.dataPath($0.source) : nil }
    }

    /// Names of the volumes some container mounts, running or not: docker's "in use".
    public func volumesInUse() -> Set<String> {
        Set(list().flatMap { $0.configuration.mounts.filter { $0.type == .volume }.map(\.source) })
    }

    /// `volume rm`: refused while a container mounts it; with `force`, a volume that does not exist is
    /// not an error (dockerd's purge-on-error).
    public func removeVolume(_ name: String, force: Bool = false) throws(EngineError) {
        do throws(EngineError) { try volumes.remove(name, usedBy: list()) } catch {
            guard force, case .noSuchVolume = error else { throw error }
        }
    }

    /// `volume prune`: the volumes no container mounts that `include` accepts — only anonymous ones
    /// unless `all` (dockerd's rule since API 1.42). Returns each removed volume with its size.
    public func pruneVolumes(all: Bool, where include: (VolumeRecord) -> Bool = { _ in true }) -> [(
        volume: VolumeRecord, bytes: Int64
    )] {
        let containers = list()
        let used = volumesInUse()
        var removed: [(VolumeRecord, Int64)] = []
        for volume in volumes.list() where !used.contains(volume.Name) && (all || volume.anonymous) && include(volume) {
            let bytes = DiskUsage.bytes(volume.Mountpoint)
            if (try? volumes.remove(volume.Name, usedBy: containers)) != nil { removed.append((volume, bytes)) }
        }
        return removed
    }

    /// `volume mount` events for a start, one per volume, as dockerd writes them.
    func volumeMountEvents(_ record: ContainerRecord) {
        for mount in record.configuration.mounts where mount.type == .volume {
            events.append(
                type: "volume", action: "mount", id: mount.source,
                attributes: [
                    "container": record.id, "destination": mount.target, "driver": "local",
                    "propagation": mount.propagation ?? "", "read/write": mount.readOnly ? "false" : "true",
                ])
        }
    }

    /// Removes the container's anonymous volumes (`rm -v`, `--rm`).
    func removeAnonymousVolumes(of record: ContainerRecord) {
        let store = volumes
        for mount in record.configuration.mounts where mount.type == .volume {
            guard let volume = store.inspect(mount.source), volume.anonymous else { continue }
            let others = list().filter { $0.id != record.id }
            try? store.remove(mount.source, usedBy: others)
        }
    }
}

import BerthJSON
import BerthImage
import BerthOS
import FoundationEssentials

/// A container's lifecycle, as docker names its states. Transitions happen in ``Engine`` only.
public enum ContainerStatus: String, Codable, Sendable {
    /// Made (rootfs, record), never started or not started since a reboot.
    case created
    case running
    case paused
    /// Exited and waiting for its restart policy's back-off.
    case restarting
    /// Being removed.
    case removing
    case exited
    /// Something went wrong that needs a human (its monitor vanished with the container's fate unknown).
    case dead
}

/// What the engine remembers about one container (`container.json`), in docker's inspect vocabulary.
public struct ContainerRecord: Codable, Sendable {
    public var id: String
    /// Without docker's leading slash.
    public var name: String
    /// RFC 3339 with nanoseconds.
    public var created: String
    /// The image as the user named it, its stored name, and its ID (the config digest, `sha256:…`).
    public var imageReference: String
    public var imageName: String
    public var imageID: String
    public var configuration: ContainerConfiguration
    /// The image's own config section, kept so that a start never needs the image's blobs.
    public var imageConfig: ImageConfig.ContainerConfig?
    /// `berth`, `runc`, `crun`, or a path.
    public var runtime: String
    /// What the container runs (docker's Path and Args).
    public var path: String
    public var args: [String]
    public var hostname: String
    public var state = State()
    public var restartCount = 0
    /// Networks the container is attached to while running.
    public var networks: [NetworkAttachment] = []
    /// Host ports actually bound (an asked-for 0 resolved), kept across restarts.
    public var publishedPorts: [ContainerConfiguration.PortBinding] = []
    /// The index of the next interface `network connect` adds to the running container (`eth<N>`): one
    /// past every index used since it started, as docker's sandbox counts, so a disconnected `eth1` is
    /// not reused by the next connect. Optional: records written before it existed decode.
    public var nextInterfaceIndex: Int?

    public struct State: Codable, Sendable {
        public var status: ContainerStatus = .created
        /// The init's pid on the host while running.
        public var pid: Int32 = 0
        /// The monitor's pid and its start time (clock ticks since boot, /proc/PID/stat field 22), so a
        /// reused pid is never mistaken for it.
        public var monitorPid: Int32 = 0
        public var monitorStartTime: UInt64 = 0
        public var exitCode: Int32 = 0
        /// The run ended in the memory cgroup's OOM killer (docker's `State.OOMKilled`). Optional:
        /// records written before it existed decode.
        public var oomKilled: Bool?
        public var error = ""
        public var startedAt = ""
        public var finishedAt = ""
        /// Stopped by a user (`stop`, `kill`): `unless-stopped` and `always` do not restart it until started.
        public var stoppedByUser = false
        public var health: Health?
        public init() {}

        public var running: Bool { status == .running || status == .paused || status == .restarting }
    }

    public struct Health: Codable, Sendable {
        /// `starting`, `healthy`, `unhealthy`.
        public var status: String
        public var failingStreak: Int
        public var log: [HealthLog]
    }

    public struct HealthLog: Codable, Sendable {
        public var start: String
        public var end: String
        public var exitCode: Int32
        public var output: String
        /// As the monitor writes them (docker's names).
        enum CodingKeys: String, CodingKey {
            case start = "Start", end = "End", exitCode = "ExitCode", output = "Output"
        }
    }

    public struct NetworkAttachment: Codable, Sendable, Equatable {
        public var network: String
        public var networkID: String
        public var interface: String
        /// `10.89.0.5/16`.
        public var address: String
        public var gateway: String
        public var macAddress: String
        /// `--network-alias` / `network connect --alias` on this network (what inspect shows as Aliases, and
        /// names a resolver may answer). Optional: records written before it existed decode.
        public var aliases: [String]?
        public init(
            network: String, networkID: String, interface: String, address: String, gateway: String, macAddress: String,
            aliases: [String]? = nil
        ) {
            self.network = network
            self.networkID = networkID
            self.interface = interface
            self.address = address
            self.gateway = gateway
            self.macAddress = macAddress
            self.aliases = aliases
        }
    }

    public var shortID: String { String(id.prefix(12)) }
    /// The ports the image and `--expose` declare (`80/tcp`, `53/udp`, or a bare `8080`), in that order.
    public var exposedPorts: [String] {
        (imageConfig?.ExposedPorts.map { Array($0.keys) } ?? []) + configuration.exposedPorts
    }
}

/// What the monitor writes when the init exits (`exit.json`).
public struct ExitRecord: Codable, Sendable {
    public var exitCode: Int32
    public var finishedAt: String
    public var pid: Int32
    /// Whether the kernel's OOM killer struck in the container's memory cgroup during the run.
    /// Optional: monitors that predate it leave it out.
    public var oomKilled: Bool?
    /// Whether the monitor has deleted the runtime's container: false while it is doing so (or if the
    /// runtime refused), absent from monitors that left the delete to the engine (see RuntimeRelease).
    public var runtimeDeleted: Bool?
}

/// The engine's files (records, specs, exit files): BerthJSON's coders, which a fresh CLI process runs
/// at a fraction of Foundation's cost (see JSONTreeEncoder). What users read (inspect) stays Foundation's.
enum RecordFile {
    static func read<T: Decodable>(_ type: T.Type, _ path: String) -> T? {
        guard let bytes = try? FileSystem.readFile(path) else { return nil }
        return try? JSONTreeDecoder.decode(type, from: bytes)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> T? {
        try? JSONTreeDecoder.decode(type, from: bytes)
    }

    static func write<T: Encodable>(_ value: T, _ path: String, durable: Bool = true) throws(EngineError) {
        let bytes: [UInt8]
        do { bytes = try JSONTreeEncoder.encode(value) } catch { throw .other("encoding \(path): \(error)") }
        do { try FileSystem.writeAtomically(path, bytes, mode: 0o600, durable: durable) } catch {
            throw .system(error, context: "writing \(path)")
        }
    }

    /// Compact: BerthJSON's bytes (the same as JSONEncoder's with sorted keys). Pretty: Foundation's
    /// layout, which `inspect`-like output has always had.
    static func encode<T: Encodable>(_ value: T, pretty: Bool = false) -> [UInt8] {
        if !pretty { return (try? JSONTreeEncoder.encode(value)) ?? [] }
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(value))) ?? []
    }
}

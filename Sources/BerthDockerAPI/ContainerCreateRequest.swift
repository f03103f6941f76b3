#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthImage
import BerthOS
import FoundationEssentials

/// `POST /containers/create`'s body: docker's Config with HostConfig and NetworkingConfig, the fields
/// the engine supports. Unknown fields are ignored (as dockerd's Go decoder does); a field Berth does
/// not support set to anything but its zero value is refused with a 400 naming it, rather than
/// silently dropped.
public struct ContainerCreateRequest: Decodable, Sendable {
    public var Hostname: String?
    public var Domainname: String?
    public var User: String?
    public var ExposedPorts: [String: IgnoredValue]?
    public var Tty: Bool?
    public var OpenStdin: Bool?
    public var StdinOnce: Bool?
    public var Env: [String]?
    public var Cmd: StringList?
    public var Healthcheck: HealthConfig?
    public var Image: String?
    public var Volumes: [String: IgnoredValue]?
    public var WorkingDir: String?
    public var Entrypoint: StringList?
    public var MacAddress: String?
    public var Labels: [String: String]?
    public var StopSignal: String?
    public var StopTimeout: Int?
    public var HostConfig: HostConfigSection?
    public var NetworkingConfig: NetworkingSection?

    /// The same fields as an image's HEALTHCHECK (durations in nanoseconds).
    public typealias HealthConfig = ImageConfig.HealthConfig

    public struct HostConfigSection: Decodable, Sendable {
        public var Binds: [String]?
        public var LogConfig: LogConfigSection?
        public var NetworkMode: String?
        public var PortBindings: [String: [PortBindingSection]?]?
        public var RestartPolicy: RestartPolicySection?
        public var AutoRemove: Bool?
        public var VolumeDriver: String?
        public var VolumesFrom: [String]?
        public var Mounts: [MountSection]?
        public var CapAdd: [String]?
        public var CapDrop: [String]?
        public var CgroupnsMode: String?
        public var Dns: [String]?
        public var DnsOptions: [String]?
        public var DnsSearch: [String]?
        public var ExtraHosts: [String]?
        public var GroupAdd: [String]?
        public var IpcMode: String?
        public var Cgroup: String?
        public var Links: [String]?
        public var PidMode: String?
        public var Privileged: Bool?
        public var PublishAllPorts: Bool?
        public var ReadonlyRootfs: Bool?
        public var SecurityOpt: [String]?
        public var Tmpfs: [String: String]?
        public var UTSMode: String?
        public var UsernsMode: String?
        public var ShmSize: Int64?
        public var Sysctls: [String: String]?
        public var Runtime: String?
        public var CpuShares: Int64?
        public var Memory: Int64?
        public var NanoCpus: Int64?
        public var CgroupParent: String?
        public var CpuPeriod: Int64?
        public var CpuQuota: Int64?
        public var CpusetCpus: String?
        public var CpusetMems: String?
        public var Devices: [DeviceSection]?
        public var DeviceRequests: [IgnoredValue]?
        public var MemoryReservation: Int64?
        public var MemorySwap: Int64?
        public var OomKillDisable: Bool?
        public var PidsLimit: Int64?
        public var Ulimits: [UlimitSection]?
        public var Init: Bool?
        public var OomScoreAdj: Int?
        public var MemorySwappiness: Int64?
        public var MaskedPaths: [String]?
        public var ReadonlyPaths: [String]?
        public var Isolation: String?
        // Sent by the docker CLI with zero values; anything else is refused by name (see apply).
        public var BlkioWeight: Int64?
        public var BlkioWeightDevice: [IgnoredValue]?
        public var BlkioDeviceReadBps: [IgnoredValue]?
        public var BlkioDeviceWriteBps: [IgnoredValue]?
        public var BlkioDeviceReadIOps: [IgnoredValue]?
        public var BlkioDeviceWriteIOps: [IgnoredValue]?
        public var DeviceCgroupRules: [String]?
        public var CpuRealtimePeriod: Int64?
        public var CpuRealtimeRuntime: Int64?
        public var KernelMemory: Int64?
        public var KernelMemoryTCP: Int64?
        public var CpuCount: Int64?
        public var CpuPercent: Int64?
        public var IOMaximumIOps: Int64?
        public var IOMaximumBandwidth: Int64?
    }

    public struct LogConfigSection: Decodable, Sendable {
        public var `Type`: String?
        public var Config: [String: String]?
    }

    public struct PortBindingSection: Decodable, Sendable {
        public var HostIp: String?
        public var HostPort: String?
    }

    public struct RestartPolicySection: Decodable, Sendable {
        public var Name: String?
        public var MaximumRetryCount: Int?
    }

    public struct MountSection: Decodable, Sendable {
        public var `Type`: String?
        public var Source: String?
        public var Target: String?
        public var ReadOnly: Bool?
        public var BindOptions: BindOptionsSection?
        public var VolumeOptions: VolumeOptionsSection?
        public var TmpfsOptions: TmpfsOptionsSection?

        public struct BindOptionsSection: Decodable, Sendable {
            public var Propagation: String?
        }
        public struct VolumeOptionsSection: Decodable, Sendable {
            public var NoCopy: Bool?
            public var DriverConfig: DriverConfigSection?
            public struct DriverConfigSection: Decodable, Sendable {
                public var Name: String?
            }
        }
        public struct TmpfsOptionsSection: Decodable, Sendable {
            public var SizeBytes: Int64?
            public var Mode: UInt32?
        }
    }

    public struct DeviceSection: Decodable, Sendable {
        public var PathOnHost: String?
        public var PathInContainer: String?
        public var CgroupPermissions: String?
    }

    public struct UlimitSection: Decodable, Sendable {
        public var Name: String
        public var Soft: Int64
        public var Hard: Int64
    }

    public struct NetworkingSection: Decodable, Sendable {
        public var EndpointsConfig: [String: EndpointSection?]?
    }

    public struct EndpointSection: Decodable, Sendable {
        public var IPAMConfig: IPAMSection?
        public var Aliases: [String]?
        public struct IPAMSection: Decodable, Sendable {
            public var IPv4Address: String?
        }
    }

    /// docker's strslice: a JSON string or an array of strings (or null).
    public struct StringList: Decodable, Sendable, Equatable {
        public var values: [String]
        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) {
                values = [one]
            } else {
                values = try container.decode([String].self)
            }
        }
    }

    /// A value whose content does not matter (`ExposedPorts`' `{}`), any JSON accepted.
    public struct IgnoredValue: Decodable, Sendable {
        public init(from decoder: any Decoder) throws {}
    }

    /// Decodes a request body; malformed JSON or a wrong type is a 400 saying where.
    public static func decode(_ body: [UInt8]) throws(DockerAPIError) -> ContainerCreateRequest {
        guard body.contains(where: { !($0 == 32 || $0 == 9 || $0 == 10 || $0 == 13) }) else {
            throw .badRequest("config cannot be empty in order to create a container")
        }
        do {
            return try JSONDecoder().decode(ContainerCreateRequest.self, from: Data(body))
        } catch let error as DecodingError {
            throw .badRequest(describe(error))
        } catch {
            throw .badRequest("invalid JSON: \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "invalid JSON: wrong type for field \(path(context.codingPath)): expected \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "invalid JSON: field \(path(context.codingPath)) must be \(typeName(type)), not null"
        case .keyNotFound(let key, let context):
            return "invalid JSON: field \(path(context.codingPath + [key])) is required"
        case .dataCorrupted(let context):
            let at = context.codingPath.isEmpty ? "" : " at \(path(context.codingPath))"
            return "invalid JSON\(at): \(context.debugDescription)"
        @unknown default:
            return "invalid JSON: \(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type, is UInt32.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }

    /// The engine's configuration for this request, checked as dockerd checks it. `defaults` supplies
    /// the engine configuration's log driver and options when the request names none.
    public func configuration(defaults: EngineConfiguration = EngineConfiguration()) throws(DockerAPIError)
        -> ContainerConfiguration
    {
        guard let image = Image, !image.isEmpty else {
            throw .badRequest("no image specified in the container configuration")
        }
        var c = ContainerConfiguration(image: image)
        if let cmd = Cmd?.values, !cmd.isEmpty { c.cmd = cmd }
        if let entrypoint = Entrypoint?.values, !entrypoint.isEmpty { c.entrypoint = entrypoint }
        c.env = Env ?? []
        if let dir = WorkingDir, !dir.isEmpty {
            guard dir.hasPrefix("/") else {
                throw .badRequest("the working directory '\(dir)' is invalid, it needs to be an absolute path")
            }
            c.workingDir = dir
        }
        c.user = User.flatMap { $0.isEmpty ? nil : $0 }
        c.hostname = Hostname.flatMap { $0.isEmpty ? nil : $0 }
        c.domainname = Domainname.flatMap { $0.isEmpty ? nil : $0 }
        c.labels = Labels ?? [:]
        c.tty = Tty ?? false
        c.openStdin = OpenStdin ?? false
        c.stdinOnce = StdinOnce ?? false
        c.stopSignal = StopSignal.flatMap { $0.isEmpty ? nil : $0 }
        c.stopTimeout = StopTimeout
        if let stopSignal = c.stopSignal {
            do { _ = try RunOptionParser.parseSignal(stopSignal, option: "StopSignal") } catch {
                throw .badRequest("\(error)")
            }
        }
        if let mac = MacAddress, !mac.isEmpty { throw unsupported("MacAddress") }
        if let health = Healthcheck, let test = health.Test, !test.isEmpty {
            guard ["NONE", "CMD", "CMD-SHELL"].contains(test[0]) else {
                throw .badRequest("invalid healthcheck: Test must start with NONE, CMD or CMD-SHELL, not \(test[0])")
            }
            var check = ContainerConfiguration.Healthcheck(test: test)
            check.interval = health.Interval ?? 0
            check.timeout = health.Timeout ?? 0
            check.startPeriod = health.StartPeriod ?? 0
            check.startInterval = health.StartInterval ?? 0
            check.retries = health.Retries ?? 0
            for (name, value) in [
                ("Interval", check.interval), ("Timeout", check.timeout), ("StartPeriod", check.startPeriod),
                ("StartInterval", check.startInterval),
            ]
            where value != 0 && value < 1_000_000 {
                throw .badRequest("Healthcheck.\(name) in Healthcheck cannot be less than 1ms")
            }
            if check.retries < 0 { throw .badRequest("Healthcheck.Retries in Healthcheck cannot be negative") }
            c.healthcheck = check
        }
        for port in (ExposedPorts ?? [:]).keys.sorted() { c.exposedPorts.append(try Self.port(port).key) }
        let host = HostConfig
        try host?.apply(to: &c, defaults: defaults)
        if host?.LogConfig?.Type.map({ $0.isEmpty }) ?? true {
            if let driver = defaults.logDriver { c.logDriver = driver }
            for (key, value) in defaults.logOptions where c.logOptions[key] == nil { c.logOptions[key] = value }
        }
        // Anonymous volumes (`-v /data`) travel as Config.Volumes; a mount at the same place wins.
        for target in (Volumes ?? [:]).keys.sorted() where !c.mounts.contains(where: { $0.target == target }) {
            guard target.hasPrefix("/") else {
                throw .badRequest("invalid volume specification: '\(target)': the path must be absolute")
            }
            c.mounts.append(ContainerConfiguration.MountRequest(type: .volume, source: "", target: target))
        }
        try applyNetworking(to: &c)
        return c
    }

    private func applyNetworking(to c: inout ContainerConfiguration) throws(DockerAPIError) {
        guard let endpoints = NetworkingConfig?.EndpointsConfig, !endpoints.isEmpty else { return }
        let primary = c.networkMode
        for (key, endpoint) in endpoints.sorted(by: { $0.key < $1.key }) {
            // `default` is the CLI's name for the default network, the bridge.
            let name = key == "default" ? "bridge" : key
            let address = endpoint?.IPAMConfig?.IPv4Address.flatMap { $0.isEmpty ? nil : $0 }
            let aliases = endpoint?.Aliases ?? []
            if name == primary {
                c.ipAddress = address
                c.networkAliases = aliases
            } else if ["host", "none"].contains(primary) || primary.hasPrefix("container:") {
                throw .badRequest(
                    "container sharing network namespace with another container or host cannot be connected to any other network"
                )
            } else {
                c.additionalNetworks.append(name)
                var extra = c.additionalEndpoints ?? [:]
                extra[name] = ContainerConfiguration.EndpointSettings(ipAddress: address, aliases: aliases)
                c.additionalEndpoints = extra
            }
        }
    }

    /// `80/tcp`, `53/udp`, or `8080` (tcp).
    static func port(_ text: String) throws(DockerAPIError) -> (key: String, port: UInt16, proto: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, let port = UInt16(first), port > 0 else {
            throw .badRequest("invalid port specification: \"\(text)\"")
        }
        let proto = parts.count > 1 ? parts[1].lowercased() : "tcp"
        guard ["tcp", "udp", "sctp"].contains(proto) else { throw .badRequest("invalid proto: \(proto)") }
        return ("\(port)/\(proto)", port, proto)
    }
}

func unsupported(_ field: String) -> DockerAPIError {
    .badRequest("\(field) is not supported by Berth yet")
}

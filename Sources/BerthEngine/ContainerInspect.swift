/// `docker inspect`'s JSON for a container (the Docker Engine API's ContainerInspectResponse), built from
/// the engine's record: the CLI prints it, the Docker API serves it.
public struct ContainerInspect: Encodable, Sendable {
    public var Id: String
    public var Created: String
    public var Path: String
    public var Args: [String]
    public var State: StateSection
    public var Image: String
    public var ResolvConfPath: String
    public var HostnamePath: String
    public var HostsPath: String
    public var LogPath: String
    public var Name: String
    public var RestartCount: Int
    public var Driver: String
    public var Platform = "linux"
    public var MountLabel = ""
    public var ProcessLabel = ""
    public var AppArmorProfile = ""
    public var Config: ConfigSection
    public var HostConfig: HostConfigSection
    public var NetworkSettings: NetworkSection
    public var Mounts: [MountSection]

    public struct StateSection: Encodable, Sendable {
        public var Status: String
        public var Running: Bool
        public var Paused: Bool
        public var Restarting: Bool
        public var OOMKilled = false
        public var Dead: Bool
        public var Pid: Int32
        public var ExitCode: Int32
        public var Error: String
        public var StartedAt: String
        public var FinishedAt: String
        public var Health: HealthSection?
    }

    public struct HealthSection: Encodable, Sendable {
        public var Status: String
        public var FailingStreak: Int
        public var Log: [HealthLogSection]
    }

    public struct HealthLogSection: Encodable, Sendable {
        public var Start: String
        public var End: String
        public var ExitCode: Int32
        public var Output: String
    }

    public struct ConfigSection: Encodable, Sendable {
        public var Hostname: String
        public var Domainname: String
        public var User: String
        public var AttachStdin: Bool
        public var AttachStdout: Bool
        public var AttachStderr: Bool
        public var ExposedPorts: [String: [String: String]]?
        public var Tty: Bool
        public var OpenStdin: Bool
        public var StdinOnce: Bool
        public var Env: [String]
        public var Cmd: [String]?
        public var Image: String
        public var Volumes: [String: [String: String]]?
        public var WorkingDir: String
        public var Entrypoint: [String]?
        public var Labels: [String: String]
        public var StopSignal: String?
        public var StopTimeout: Int?
    }

    public struct HostConfigSection: Encodable, Sendable {
        public var NetworkMode: String
        public var PortBindings: [String: [PortBindingSection]]
        public var RestartPolicy: RestartPolicySection
        public var AutoRemove: Bool
        public var Runtime: String
        public var Privileged: Bool
        public var ReadonlyRootfs: Bool
        public var CapAdd: [String]?
        public var CapDrop: [String]?
        public var SecurityOpt: [String]?
        public var Dns: [String]
        public var DnsSearch: [String]
        public var DnsOptions: [String]
        public var ExtraHosts: [String]?
        public var LogConfig: LogConfigSection
        public var Memory: Int64
        public var MemorySwap: Int64
        public var NanoCpus: Int64
        public var CpuShares: Int64
        public var CpusetCpus: String
        public var PidsLimit: Int64?
        public var OomScoreAdj: Int
        public var OomKillDisable: Bool?
        public var MemorySwappiness: Int64?
        public var MaskedPaths: [String]?
        public var ReadonlyPaths: [String]?
        public var Init: Bool?
        public var ShmSize: Int64
        public var Tmpfs: [String: String]?
        public var Sysctls: [String: String]?
    }

    public struct PortBindingSection: Encodable, Sendable {
        public var HostIp: String
        public var HostPort: String
    }

    public struct RestartPolicySection: Encodable, Sendable {
        public var Name: String
        public var MaximumRetryCount: Int
    }

    public struct LogConfigSection: Encodable, Sendable {
        public var `Type`: String
        public var Config: [String: String]
    }

    public struct NetworkSection: Encodable, Sendable {
        public var Bridge = ""
        public var SandboxID: String
        public var SandboxKey: String
        public var Ports: [String: [PortBindingSection]?]
        public var Gateway: String
        public var IPAddress: String
        public var IPPrefixLen: Int
        public var MacAddress: String
        public var Networks: [String: EndpointSection]
    }

    public struct EndpointSection: Encodable, Sendable {
        public var NetworkID: String
        public var EndpointID: String
        public var Gateway: String
        public var IPAddress: String
        public var IPPrefixLen: Int
        public var MacAddress: String
        public var Aliases: [String]?
    }

    public struct MountSection: Encodable, Sendable {
        public var `Type`: String
        public var Name: String?
        public var Source: String
        public var Destination: String
        public var Mode: String
        public var RW: Bool
        public var Propagation: String
    }

    public init(_ record: ContainerRecord, layout: EngineLayout) {
        let c = record.configuration
        let s = record.state
        Id = record.id
        Created = record.created
        Path = record.path
        Args = record.args
        State = StateSection(
            Status: s.status.rawValue, Running: s.status == .running || s.status == .paused,
            Paused: s.status == .paused,
            Restarting: s.status == .restarting, OOMKilled: s.oomKilled ?? false, Dead: s.status == .dead,
            Pid: s.status == .running || s.status == .paused ? s.pid : 0,
            ExitCode: s.exitCode, Error: s.error, StartedAt: s.startedAt.isEmpty ? "0001-01-01T00:00:00Z" : s.startedAt,
            FinishedAt: s.finishedAt.isEmpty ? "0001-01-01T00:00:00Z" : s.finishedAt,
            Health: s.health.map { h in
                HealthSection(
                    Status: h.status, FailingStreak: h.failingStreak,
                    Log: h.log.map {
                        HealthLogSection(Start: $0.start, End: $0.end, ExitCode: $0.exitCode, Output: $0.output)
                    })
            })
        Image = record.imageID
        let directory = layout.container(record.id)
        ResolvConfPath = directory + "/resolv.conf"
        HostnamePath = directory + "/hostname"
        HostsPath = directory + "/hosts"
        LogPath = c.logDriver == "none" ? "" : layout.logFile(record.id)
        Name = "/" + record.name
        RestartCount = record.restartCount
        Driver = "overlay2"
        let image = record.imageConfig
        let exposed = Set(record.exposedPorts + c.portBindings.map { "\($0.containerPort)/\($0.proto)" })
        var env = image?.Env ?? []
        for e in c.env {
            let key = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
            env.removeAll { $0 == key || $0.hasPrefix(key + "=") }
            if e.contains("=") { env.append(e) }
        }
        Config = ConfigSection(
            Hostname: record.hostname, Domainname: c.domainname ?? "", User: c.user ?? image?.User ?? "",
            AttachStdin: c.openStdin, AttachStdout: true, AttachStderr: true,
            ExposedPorts: exposed.isEmpty ? nil : Dictionary(uniqueKeysWithValues: exposed.map { ($0, [:]) }),
            Tty: c.tty, OpenStdin: c.openStdin, StdinOnce: c.stdinOnce ?? c.openStdin, Env: env,
            Cmd: c.cmd ?? (c.entrypoint == nil ? image?.Cmd : nil), Image: record.imageReference,
            Volumes: image?.Volumes.map { Dictionary(uniqueKeysWithValues: $0.keys.map { ($0, [:]) }) },
            WorkingDir: c.workingDir ?? image?.WorkingDir ?? "", Entrypoint: c.entrypoint ?? image?.Entrypoint,
            Labels: (image?.Labels ?? [:]).merging(c.labels) { $1 }, StopSignal: c.stopSignal ?? image?.StopSignal,
            StopTimeout: c.stopTimeout)
        var bindings: [String: [PortBindingSection]] = [:]
        for p in c.portBindings {
            bindings["\(p.containerPort)/\(p.proto)", default: []].append(
                PortBindingSection(HostIp: p.hostIP, HostPort: p.hostPort == 0 ? "" : String(p.hostPort)))
        }
        HostConfig = HostConfigSection(
            NetworkMode: c.networkMode, PortBindings: bindings,
            RestartPolicy: RestartPolicySection(
                Name: c.restartPolicy.name, MaximumRetryCount: c.restartPolicy.maximumRetryCount),
            AutoRemove: c.autoRemove, Runtime: record.runtime, Privileged: c.privileged,
            ReadonlyRootfs: c.readonlyRootfs,
            CapAdd: c.capAdd.isEmpty ? nil : c.capAdd, CapDrop: c.capDrop.isEmpty ? nil : c.capDrop,
            SecurityOpt: c.securityOpt.isEmpty ? nil : c.securityOpt, Dns: c.dns, DnsSearch: c.dnsSearch,
            DnsOptions: c.dnsOptions,
            ExtraHosts: c.extraHosts.isEmpty ? nil : c.extraHosts,
            LogConfig: LogConfigSection(Type: c.logDriver, Config: c.logOptions),
            Memory: c.resources.memory ?? 0, MemorySwap: c.resources.memorySwap ?? 0,
            NanoCpus: c.resources.nanoCPUs ?? 0,
            CpuShares: c.resources.cpuShares ?? 0, CpusetCpus: c.resources.cpusetCpus ?? "",
            PidsLimit: c.resources.pidsLimit,
            OomScoreAdj: c.oomScoreAdj ?? 0, OomKillDisable: c.resources.oomKillDisable,
            MemorySwappiness: c.resources.memorySwappiness, MaskedPaths: c.maskedPaths, ReadonlyPaths: c.readonlyPaths,
            Init: c.initProcess ? true : nil, ShmSize: c.shmSize ?? 64 * 1024 * 1024,
            Tmpfs: c.tmpfs.isEmpty ? nil : c.tmpfs,
            Sysctls: c.sysctls.isEmpty ? nil : c.sysctls)
        var ports: [String: [PortBindingSection]?] = [:]
        for port in exposed { ports[port] = .some(nil) }
        for p in record.publishedPorts where s.running {
            let key = "\(p.containerPort)/\(p.proto)"
            var list = ports[key].flatMap { $0 } ?? []
            list.append(
                PortBindingSection(HostIp: p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP, HostPort: String(p.hostPort)))
            ports[key] = list
        }
        var endpoints: [String: EndpointSection] = [:]
        for n in record.networks {
            let parts = n.address.split(separator: "/")
            // A record from before per-network aliases: the configuration's were the first network's.
            let aliases = n.aliases ?? (n.interface == "eth0" ? c.networkAliases : [])
            endpoints[n.network] = EndpointSection(
                NetworkID: n.networkID, EndpointID: n.endpointID(container: record.id),
                Gateway: n.gateway, IPAddress: parts.first.map(String.init) ?? "",
                IPPrefixLen: parts.count > 1 ? Int(parts[1]) ?? 0 : 0, MacAddress: n.macAddress,
                Aliases: aliases.isEmpty ? nil : aliases)
        }
        let primary = record.networks.first
        let primaryParts = primary?.address.split(separator: "/") ?? []
        NetworkSettings = NetworkSection(
            SandboxID: s.running ? String(record.id.prefix(64)) : "",
            SandboxKey: s.running && !record.networks.isEmpty ? layout.networkNamespace(record.id) : "",
            Ports: ports, Gateway: primary?.gateway ?? "", IPAddress: primaryParts.first.map(String.init) ?? "",
            IPPrefixLen: primaryParts.count > 1 ? Int(primaryParts[1]) ?? 0 : 0, MacAddress: primary?.macAddress ?? "",
            Networks: endpoints)
        Mounts = c.mounts.map { m in
            MountSection(
                Type: m.type.rawValue, Name: m.type == .volume ? m.source : nil, Source: m.source,
                Destination: m.target,
                Mode: m.readOnly ? "ro" : "", RW: !m.readOnly,
                Propagation: m.propagation ?? (m.type == .bind ? "rprivate" : ""))
        }
    }

    /// Pretty JSON with docker's two-space indentation.
    public static func render(_ values: [ContainerInspect]) -> String {
        String(decoding: RecordFile.encode(values, pretty: true), as: UTF8.self)
    }
}

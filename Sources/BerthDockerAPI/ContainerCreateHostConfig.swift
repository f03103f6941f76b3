#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthOS

/// HostConfig: what the host grants the container, checked as dockerd checks it.
extension ContainerCreateRequest.HostConfigSection {
    func apply(to c: inout ContainerConfiguration, defaults: EngineConfiguration) throws(DockerAPIError) {
        // What Berth cannot do yet, refused by name instead of ignored.
        for (name, value) in [
            ("PidMode", PidMode), ("UTSMode", UTSMode), ("UsernsMode", UsernsMode), ("CgroupParent", CgroupParent),
            ("Cgroup", Cgroup),
        ] where !(value ?? "").isEmpty {
            throw unsupported("HostConfig.\(name)")
        }
        if let ipc = IpcMode, !["", "private", "shareable"].contains(ipc) {
            throw unsupported("HostConfig.IpcMode \(ipc)")
        }
        if let mode = CgroupnsMode, !["", "private"].contains(mode) {
            throw unsupported("HostConfig.CgroupnsMode \(mode)")
        }
        for (name, list) in [("VolumesFrom", VolumesFrom), ("Links", Links)]
        where !(list ?? []).isEmpty {
            throw unsupported("HostConfig.\(name)")
        }
        if !(DeviceRequests ?? []).isEmpty { throw unsupported("HostConfig.DeviceRequests") }
        for (name, list) in [
            ("BlkioWeightDevice", BlkioWeightDevice), ("BlkioDeviceReadBps", BlkioDeviceReadBps),
            ("BlkioDeviceWriteBps", BlkioDeviceWriteBps), ("BlkioDeviceReadIOps", BlkioDeviceReadIOps),
            ("BlkioDeviceWriteIOps", BlkioDeviceWriteIOps),
        ] where !(list ?? []).isEmpty {
            throw unsupported("HostConfig.\(name)")
        }
        if !(DeviceCgroupRules ?? []).isEmpty { throw unsupported("HostConfig.DeviceCgroupRules") }
        for (name, value) in [
            ("BlkioWeight", BlkioWeight), ("CpuRealtimePeriod", CpuRealtimePeriod),
            ("CpuRealtimeRuntime", CpuRealtimeRuntime), ("KernelMemory", KernelMemory),
            ("KernelMemoryTCP", KernelMemoryTCP), ("CpuCount", CpuCount), ("CpuPercent", CpuPercent),
            ("IOMaximumIOps", IOMaximumIOps), ("IOMaximumBandwidth", IOMaximumBandwidth),
        ] where (value ?? 0) != 0 {
            throw unsupported("HostConfig.\(name)")
        }
        // dockerd on Linux: only the default isolation.
        if let isolation = Isolation, !["", "default"].contains(isolation.lowercased()) {
            throw .badRequest("invalid isolation: \(isolation). linux only supports 'default'")
        }
        if let driver = VolumeDriver, !driver.isEmpty && driver != "local" {
            throw unsupported("volume driver \(driver)")
        }

        c.autoRemove = AutoRemove ?? false
        c.readonlyRootfs = ReadonlyRootfs ?? false
        c.privileged = Privileged ?? false
        c.capAdd = CapAdd ?? []
        c.capDrop = CapDrop ?? []
        c.groupAdd = GroupAdd.flatMap { $0.isEmpty ? nil : $0 }
        c.securityOpt = SecurityOpt ?? []
        c.runtime = Runtime.flatMap { $0.isEmpty ? nil : $0 }
        c.initProcess = Init ?? false
        c.oomScoreAdj = OomScoreAdj.flatMap { $0 == 0 ? nil : $0 }
        c.maskedPaths = MaskedPaths
        c.readonlyPaths = ReadonlyPaths
        c.tmpfs = Tmpfs ?? [:]
        c.sysctls = Sysctls ?? [:]
        c.dns = Dns ?? []
        c.dnsSearch = DnsSearch ?? []
        c.dnsOptions = DnsOptions ?? []
        c.publishAllPorts = PublishAllPorts ?? false
        do {
            for sysctl in c.sysctls.keys { try RunOptionParser.validateSysctl(sysctl) }
            c.extraHosts = try (ExtraHosts ?? []).map { entry throws(EngineError) in
                try RunOptionParser.parseAddHost(entry)
            }
        } catch { throw .badRequest("\(error)") }
        if let shm = ShmSize, shm != 0 {
            guard shm > 0 else { throw .badRequest("SHM size can not be less than 0") }
            c.shmSize = shm
        }
        if let mode = NetworkMode, !mode.isEmpty && mode != "default" { c.networkMode = mode }

        if let policy = RestartPolicy {
            let name = policy.Name ?? ""
            let retries = policy.MaximumRetryCount ?? 0
            switch name {
            case "", "no", "always", "unless-stopped":
                if retries != 0 {
                    throw .badRequest("invalid restart policy: maximum retry count can only be used with 'on-failure'")
                }
                c.restartPolicy = .init(name: name.isEmpty ? "no" : name)
            case "on-failure":
                if retries < 0 { throw .badRequest("invalid restart policy: maximum retry count cannot be negative") }
                c.restartPolicy = .init(name: name, maximumRetryCount: retries)
            default:
                throw .badRequest(
                    "invalid restart policy: unknown policy '\(name)'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
                )
            }
        }

        if let log = LogConfig, let type = log.Type, !type.isEmpty {
            c.logDriver = type
            c.logOptions = log.Config ?? [:]
        }

        var resources = ContainerConfiguration.Resources()
        func positive(_ value: Int64?) -> Int64? { value.flatMap { $0 == 0 ? nil : $0 } }
        resources.memory = positive(Memory)
        resources.memorySwap = positive(MemorySwap)
        resources.memoryReservation = positive(MemoryReservation)
        resources.nanoCPUs = positive(NanoCpus)
        resources.cpuShares = positive(CpuShares)
        resources.cpuPeriod = positive(CpuPeriod)
        resources.cpuQuota = positive(CpuQuota)
        resources.cpusetCpus = CpusetCpus.flatMap { $0.isEmpty ? nil : $0 }
        resources.cpusetMems = CpusetMems.flatMap { $0.isEmpty ? nil : $0 }
        resources.pidsLimit = positive(PidsLimit)
        resources.oomKillDisable = OomKillDisable
        if let swappiness = MemorySwappiness, swappiness != -1 { resources.memorySwappiness = swappiness }
        if (resources.memory ?? 0) < 0 { throw .badRequest("invalid Memory: must not be negative") }
        if let memory = resources.memory, memory < 6 * 1024 * 1024 {
            throw .badRequest("Minimum memory limit allowed is 6MB")
        }
        if (resources.nanoCPUs ?? 0) < 0 { throw .badRequest("invalid NanoCpus: must not be negative") }
        if resources.nanoCPUs != nil && (resources.cpuPeriod != nil || resources.cpuQuota != nil) {
            throw .badRequest("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        }
        c.resources = resources
        do { try c.checkTunables() } catch {
            // dockerd's message alone, without the engine's option name in front.
            if case .invalidArgument(_, let reason) = error { throw .badRequest(reason) }
            throw .badRequest("\(error)")
        }

        c.ulimits = (Ulimits ?? []).map { .init(name: $0.Name, soft: $0.Soft, hard: $0.Hard) }
        for limit in c.ulimits where limit.soft > limit.hard && limit.hard >= 0 {
            throw .badRequest(
                "ulimit soft limit must be less than or equal to hard limit: \(limit.soft) > \(limit.hard)")
        }
        for device in Devices ?? [] {
            guard let source = device.PathOnHost, !source.isEmpty else {
                throw .badRequest("invalid device: PathOnHost is required")
            }
            let permissions = device.CgroupPermissions.flatMap { $0.isEmpty ? nil : $0 } ?? "rwm"
            guard RunOptionParser.isDeviceMode(permissions) else {
                throw .badRequest("invalid device mode: \(permissions)")
            }
            let target = device.PathInContainer.flatMap { $0.isEmpty ? nil : $0 } ?? source
            c.devices.append(.init(pathOnHost: source, pathInContainer: target, cgroupPermissions: permissions))
        }

        for (key, bindings) in (PortBindings ?? [:]).sorted(by: { $0.key < $1.key }) {
            let port = try ContainerCreateRequest.port(key)
            for binding in bindings ?? [] {
                var request = ContainerConfiguration.PortBinding(
                    containerPort: port.port, proto: port.proto, hostIP: binding.HostIp ?? "")
                let hostPort = binding.HostPort ?? ""
                if !hostPort.isEmpty {
                    let range = hostPort.split(separator: "-", maxSplits: 1).map { UInt16($0) }
                    guard let low = range.first ?? nil, range.count == 1 || range[1] != nil else {
                        throw .badRequest("invalid port specification: \"\(hostPort)\"")
                    }
                    request.hostPort = low
                    if range.count == 2, let high = range[1] {
                        guard high >= low else { throw .badRequest("invalid port range: \(hostPort)") }
                        if high != low { request.hostPortEnd = high }
                    }
                }
                c.portBindings.append(request)
            }
            if !c.exposedPorts.contains(port.key) { c.exposedPorts.append(port.key) }
        }

        do {
            for bind in Binds ?? [] {
                let mount = try RunOptionParser.parseVolume(bind)
                // dockerd creates a missing host directory of a Binds entry (not of a Mounts one).
                if mount.type == .bind && !FileSystem.exists(mount.source) {
                    try? FileSystem.makeDirectories(mount.source, mode: 0o755)
                }
                c.mounts.append(mount)
            }
        } catch { throw .badRequest("\(error)") }
        for mount in Mounts ?? [] { c.mounts.append(try Self.mount(mount)) }
        var targets = Set<String>()
        for mount in c.mounts where !targets.insert(mount.target).inserted {
            throw .badRequest("Duplicate mount point: \(mount.target)")
        }
    }

    static func mount(_ m: ContainerCreateRequest.MountSection) throws(DockerAPIError)
        -> ContainerConfiguration.MountRequest
    {
        guard let target = m.Target, target.hasPrefix("/") else {
            throw .badRequest("invalid mount config: Target must be an absolute path")
        }
        let kind: ContainerConfiguration.MountRequest.Kind
        switch m.Type ?? "" {
        case "bind": kind = .bind
        case "volume": kind = .volume
        case "tmpfs": kind = .tmpfs
        case "": throw .badRequest("invalid mount config: mount type must be specified")
        case let other: throw unsupported("mount type \(other)")
        }
        let source = m.Source ?? ""
        if kind == .bind {
            guard source.hasPrefix("/") else {
                throw .badRequest(
                    "invalid mount config for type \"bind\": invalid mount path: '\(source)' mount path must be absolute"
                )
            }
            guard FileSystem.exists(source) else {
                throw .badRequest("invalid mount config for type \"bind\": bind source path does not exist: \(source)")
            }
        }
        if kind == .tmpfs && !source.isEmpty {
            throw .badRequest("invalid mount config for type \"tmpfs\": Source must not be specified")
        }
        if let driver = m.VolumeOptions?.DriverConfig?.Name, !driver.isEmpty && driver != "local" {
            throw unsupported("volume driver \(driver)")
        }
        var mount = ContainerConfiguration.MountRequest(
            type: kind, source: source, target: target, readOnly: m.ReadOnly ?? false)
        if let propagation = m.BindOptions?.Propagation, !propagation.isEmpty {
            guard kind == .bind else {
                throw .badRequest("invalid mount config: BindOptions must not be specified for type \(kind.rawValue)")
            }
            guard ["rprivate", "private", "rshared", "shared", "rslave", "slave"].contains(propagation) else {
                throw .badRequest("invalid propagation mode: \(propagation)")
            }
            mount.propagation = propagation
        }
        mount.noCopy = m.VolumeOptions?.NoCopy ?? false
        mount.tmpfsSize = m.TmpfsOptions?.SizeBytes.flatMap { $0 == 0 ? nil : $0 }
        mount.tmpfsMode = m.TmpfsOptions?.Mode.flatMap { $0 == 0 ? nil : $0 }
        return mount
    }
}

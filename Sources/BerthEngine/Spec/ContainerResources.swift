import BerthOCI

/// `linux.resources` (besides devices), `linux.sysctl` and `process.rlimits` from a request, with
/// docker's validation and defaults (moby `daemon_unix.go` verifyPlatformContainerResources,
/// adaptContainerSettings, getMemoryResources, getCPUResources, getPidsLimit).
enum ContainerResources {
    /// docker's smallest memory limit and reservation.
    static let minimumMemory: Int64 = 6 << 20
    /// CFS period docker uses with `--cpus`: 100 ms in µs.
    static let cpuPeriod: UInt64 = 100_000

    static func memory(_ r: ContainerConfiguration.Resources, host: HostFacts) throws(EngineError) -> Spec.Memory? {
        let limit = r.memory ?? 0, reservation = r.memoryReservation ?? 0
        var swap = r.memorySwap ?? 0
        if limit != 0 && limit < minimumMemory {
            throw .invalidArgument(what: "--memory", reason: "Minimum memory limit allowed is 6MB")
        }
        if limit > 0 && swap > 0 && swap < limit {
            throw .invalidArgument(
                what: "--memory-swap", reason: "Minimum memoryswap limit should be larger than memory limit, see usage")
        }
        if limit == 0 && swap > 0 {
            throw .invalidArgument(
                what: "--memory-swap",
                reason: "You should always set the Memory limit when using Memoryswap limit, see usage")
        }
        if reservation > 0 && reservation < minimumMemory {
            throw .invalidArgument(what: "--memory-reservation", reason: "Minimum memory reservation allowed is 6MB")
        }
        if limit > 0 && reservation > 0 && limit < reservation {
            throw .invalidArgument(
                what: "--memory",
                reason: "Minimum memory limit can not be less than memory reservation limit, see usage")
        }
        // docker: with a limit and no swap setting, memory+swap is twice the limit; no swap limit at all
        // where the kernel does not account swap.
        if limit > 0 && swap == 0 { swap = limit * 2 }
        if !host.swapLimit { swap = 0 }
        var memory = Spec.Memory()
        if limit > 0 { memory.limit = limit }
        if reservation > 0 { memory.reservation = reservation }
        if swap > 0 { memory.swap = swap }
        if let disable = r.oomKillDisable { memory.disableOOMKiller = disable }
        // In range: checked by ContainerConfiguration.checkTunables before the spec is built.
        if let swappiness = r.memorySwappiness, swappiness != -1 { memory.swappiness = UInt64(swappiness) }
        return memory == Spec.Memory() ? nil : memory
    }

    /// hugetlb limits by page size, in the page sizes' order.
    static func hugepages(_ r: ContainerConfiguration.Resources) -> [Spec.HugepageLimit]? {
        r.hugepageLimits.map { limits in
            limits.keys.sorted().map { Spec.HugepageLimit(pageSize: $0, limit: UInt64(max(0, limits[$0]!))) }
        }
    }

    static func cpu(_ r: ContainerConfiguration.Resources, host: HostFacts) throws(EngineError) -> Spec.CPU? {
        let nano = r.nanoCPUs ?? 0, period = r.cpuPeriod ?? 0, quota = r.cpuQuota ?? 0, shares = r.cpuShares ?? 0
        if nano > 0 && period > 0 {
            throw .invalidArgument(
                what: "--cpus", reason: "Conflicting options: Nano CPUs and CPU Period cannot both be set")
        }
        if nano > 0 && quota > 0 {
            throw .invalidArgument(
                what: "--cpus", reason: "Conflicting options: Nano CPUs and CPU Quota cannot both be set")
        }
        if nano != 0 && (nano < 0 || nano > Int64(host.cpuCount) * 1_000_000_000) {
            throw .invalidArgument(
                what: "--cpus",
                reason:
                    "range of CPUs is from 0.01 to \(host.cpuCount).00, as there are only \(host.cpuCount) CPUs available"
            )
        }
        if period != 0 && (period < 1000 || period > 1_000_000) {
            throw .invalidArgument(
                what: "--cpu-period",
                reason: "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
        }
        if quota > 0 && quota < 1000 {
            throw .invalidArgument(what: "--cpu-quota", reason: "CPU cfs quota can not be less than 1ms (i.e. 1000)")
        }
        if shares < 0 {
            throw .invalidArgument(
                what: "--cpu-shares", reason: "invalid CPU shares (\(shares)): value must be a positive integer")
        }
        var cpu = Spec.CPU()
        if shares != 0 { cpu.shares = UInt64(shares) }
        if let cpus = r.cpusetCpus, !cpus.isEmpty { cpu.cpus = cpus }
        if let mems = r.cpusetMems, !mems.isEmpty { cpu.mems = mems }
        if nano > 0 {
            cpu.period = cpuPeriod
            cpu.quota = nano * Int64(cpuPeriod) / 1_000_000_000
        }
        if period != 0 { cpu.period = UInt64(period) }
        if quota != 0 { cpu.quota = quota }
        return cpu == Spec.CPU() ? nil : cpu
    }

    /// docker: 0 or less means unlimited, which runc spells -1.
    static func pids(_ r: ContainerConfiguration.Resources) -> Spec.Pids? {
        guard let limit = r.pidsLimit else { return nil }
        return Spec.Pids(limit: limit <= 0 ? -1 : limit)
    }

    /// `--ulimit` entries as rlimits; -1 (unlimited) becomes RLIM_INFINITY. None by default: the
    /// container inherits the runtime's limits, as with docker without `default-ulimits`.
    static func rlimits(_ ulimits: [ContainerConfiguration.Ulimit]) throws(EngineError) -> [Spec.Rlimit]? {
        guard !ulimits.isEmpty else { return nil }
        var result: [Spec.Rlimit] = []
        for ulimit in ulimits {
            guard RunOptionParser.ulimitNames.contains(ulimit.name) else {
                throw .invalidArgument(what: "--ulimit", reason: "invalid ulimit type: \(ulimit.name)")
            }
            result.append(
                Spec.Rlimit(
                    type: "RLIMIT_" + ulimit.name.uppercased(),
                    hard: UInt64(bitPattern: ulimit.hard), soft: UInt64(bitPattern: ulimit.soft)))
        }
        return result
    }

    /// docker's defaults for a container's own network namespace (unprivileged ping, low ports without
    /// CAP_NET_BIND_SERVICE), then the request's, which win; each checked to be namespaced.
    static func sysctls(
        _ request: ContainerConfiguration, ownNetwork: Bool, hostNetwork: Bool,
        host: HostFacts
    ) throws(EngineError) -> [String: String]? {
        var result: [String: String] = [:]
        if ownNetwork {
            if host.hasPingGroupRange { result["net.ipv4.ping_group_range"] = "0 2147483647" }
            if host.hasUnprivilegedPortStart { result["net.ipv4.ip_unprivileged_port_start"] = "0" }
        }
        for (key, value) in request.sysctls {
            try RunOptionParser.validateSysctl(key)
            if hostNetwork && key.hasPrefix("net.") {
                throw .invalidArgument(
                    what: "--sysctl", reason: "sysctl '\(key)' is not allowed in the host's network namespace")
            }
            result[key] = value
        }
        return result.isEmpty ? nil : result
    }
}

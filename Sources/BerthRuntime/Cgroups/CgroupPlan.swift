/// One value to write into a cgroup file, and the config.json field it comes from.
public struct CgroupWrite: Sendable, Equatable, CustomStringConvertible {
    /// v1: the controller whose hierarchy holds the file ("memory"); "" for the cgroup2 directory
    /// (v2 hosts, or the unified hierarchy of a hybrid host).
    public var controller: String
    public var file: String
    public var value: String
    /// The JSON path of the field this write implements, for error messages.
    public var field: String
    /// Files to use instead of `file` when present, first match wins (e.g. blkio.bfq.weight).
    public var preferred: [String] = []
    /// Skip silently when the file does not exist (e.g. memory.memsw.* without swap accounting).
    public var optional = false
    /// When the kernel rejects this write with EINVAL, retry it after the rest of the plan (runc's
    /// order dance for cfs period/quota/burst and rt period/runtime).
    public var retryAfterRest = false

    public init(
        _ controller: String, _ file: String, _ value: String, field: String,
        preferred: [String] = [], optional: Bool = false, retryAfterRest: Bool = false
    ) {
        self.controller = controller
        self.file = file
        self.value = value
        self.field = field
        self.preferred = preferred
        self.optional = optional
        self.retryAfterRest = retryAfterRest
    }

    public var description: String { "\(controller.isEmpty ? "" : controller + "/")\(file)=\(value)" }
}

/// What `linux.resources` turns into on one cgroup version: the writes in order, plus warnings for
/// fields the version cannot honour that runc also ignores.
public struct CgroupPlan: Sendable, Equatable {
    public var writes: [CgroupWrite] = []
    public var warnings: [String] = []
    /// v2 only: device rules that need a BPF_PROG_TYPE_CGROUP_DEVICE program.
    public var deviceProgram: [Spec.DeviceRule]?

    public enum Version: Sendable, Equatable {
        /// `hugetlbOnUnified`: a hybrid host whose hugetlb controller is on the cgroup2 hierarchy.
        case v1(hugetlbOnUnified: Bool)
        case v2
    }

    /// Translates every `linux.resources` field. Invalid values throw `.invalidConfig` naming the field.
    /// `currentMemoryLimit` (v1) is the cgroup's memory.limit_in_bytes, needed to order limit and swap
    /// writes when both change (as runc).
    public init(_ resources: Spec.Resources, version: Version, currentMemoryLimit: UInt64? = nil) throws(RuntimeError) {
        let base = "linux.resources"
        switch version {
        case .v1(let hugetlbOnUnified):
            try planMemoryV1(resources.memory, currentLimit: currentMemoryLimit)
            try planCPUV1(resources.cpu)
            try planCPUSet(resources.cpu, controller: "cpuset")
            if let pids = resources.pids {
                writes.append(
                    .init("pids", "pids.max", pids.limit > 0 ? String(pids.limit) : "max", field: "\(base).pids.limit"))
            }
            try planBlockIOV1(resources.blockIO)
            try planHugepages(
                resources.hugepageLimits, v2: hugetlbOnUnified, controller: hugetlbOnUnified ? "" : "hugetlb")
            if let network = resources.network {
                if let classID = network.classID {
                    writes.append(
                        .init("net_cls", "net_cls.classid", String(classID), field: "\(base).network.classID"))
                }
                for (i, p) in (network.priorities ?? []).enumerated() {
                    try Self.checkInterfaceName(p.name, field: "\(base).network.priorities[\(i)].name")
                    writes.append(
                        .init(
                            "net_prio", "net_prio.ifpriomap", "\(p.name) \(p.priority)",
                            field: "\(base).network.priorities[\(i)]"))
                }
            }
            for (i, rule) in (resources.devices ?? []).enumerated() {
                let text = try Self.deviceRuleText(rule, field: "\(base).devices[\(i)]")
                writes.append(
                    .init(
                        "devices", rule.allow ? "devices.allow" : "devices.deny", text, field: "\(base).devices[\(i)]"))
            }
            try planRdma(resources.rdma, controller: "rdma")
            if let unified = resources.unified, !unified.isEmpty {
                throw .invalidConfig(
                    field: "\(base).unified", reason: "unified resources need cgroup v2; this host uses cgroup v1")
            }
        case .v2:
            try planMemoryV2(resources.memory)
            try planCPUV2(resources.cpu)
            try planCPUSet(resources.cpu, controller: "")
            if let pids = resources.pids {
                writes.append(
                    .init("", "pids.max", pids.limit > 0 ? String(pids.limit) : "max", field: "\(base).pids.limit"))
            }
            try planIOV2(resources.blockIO)
            try planHugepages(resources.hugepageLimits, v2: true, controller: "")
            if let network = resources.network, network.classID != nil || !(network.priorities ?? []).isEmpty {
                warnings.append("\(base).network is ignored: net_cls and net_prio do not exist on cgroup v2")
            }
            if let rules = resources.devices, !rules.isEmpty {
                for (i, rule) in rules.enumerated() {
                    _ = try Self.deviceRuleText(rule, field: "\(base).devices[\(i)]")
                }
                deviceProgram = rules
            }
            try planRdma(resources.rdma, controller: "")
            try planUnified(resources.unified)
        }
    }

    // MARK: Memory

    private mutating func planMemoryV1(_ memory: Spec.Memory?, currentLimit: UInt64?) throws(RuntimeError) {
        guard let memory else { return }
        let f = "linux.resources.memory"
        let limit = memory.limit ?? 0
        var swap = memory.swap ?? 0
        try Self.checkMemory(limit, field: "\(f).limit")
        try Self.checkMemory(swap, field: "\(f).swap")
        var swapOptional = false
        // runc: an unlimited memory limit with no swap given means unlimited swap too, where swap exists.
        if limit == -1 && swap == 0 { swap = -1; swapOptional = true }
        if limit > 0 && swap > 0 && swap < limit {
            throw .invalidConfig(
                field: "\(f).swap",
                reason: "memory+swap limit \(swap) must be >= the memory limit \(limit) on cgroup v1")
        }
        let limitWrite = CgroupWrite("memory", "memory.limit_in_bytes", String(limit), field: "\(f).limit")
        let swapWrite = CgroupWrite(
            "memory", "memory.memsw.limit_in_bytes", String(swap), field: "\(f).swap", optional: swapOptional)
        if limit != 0 && swap != 0 {
            // Raising both: memsw must grow first; lowering both: the limit must shrink first.
            if swap == -1 || (currentLimit ?? UInt64.max) < UInt64(swap) {
                writes += [swapWrite, limitWrite]
            } else {
                writes += [limitWrite, swapWrite]
            }
        } else {
            if limit != 0 { writes.append(limitWrite) }
            if swap != 0 { writes.append(swapWrite) }
        }
        if let reservation = memory.reservation, reservation != 0 {
            try Self.checkMemory(reservation, field: "\(f).reservation")
            writes.append(.init("memory", "memory.soft_limit_in_bytes", String(reservation), field: "\(f).reservation"))
        }
        if memory.kernel != nil && memory.kernel != 0 {
            warnings.append(
                "\(f).kernel is ignored: kernel memory limits were removed from Linux (5.16+), as runc ignores them")
        }
        if let tcp = memory.kernelTCP, tcp != 0 {
            try Self.checkMemory(tcp, field: "\(f).kernelTCP")
            writes.append(.init("memory", "memory.kmem.tcp.limit_in_bytes", String(tcp), field: "\(f).kernelTCP"))
        }
        if let swappiness = memory.swappiness {
            guard swappiness <= 100 else {
                throw .invalidConfig(field: "\(f).swappiness", reason: "\(swappiness) is above 100")
            }
            writes.append(.init("memory", "memory.swappiness", String(swappiness), field: "\(f).swappiness"))
        }
        if memory.disableOOMKiller == true {
            writes.append(.init("memory", "memory.oom_control", "1", field: "\(f).disableOOMKiller"))
        }
        if let hierarchy = memory.useHierarchy {
            writes.append(.init("memory", "memory.use_hierarchy", hierarchy ? "1" : "0", field: "\(f).useHierarchy"))
        }
    }

    private mutating func planMemoryV2(_ memory: Spec.Memory?) throws(RuntimeError) {
        guard let memory else { return }
        let f = "linux.resources.memory"
        let limit = memory.limit ?? 0
        let swap = memory.swap ?? 0
        try Self.checkMemory(limit, field: "\(f).limit")
        try Self.checkMemory(swap, field: "\(f).swap")
        let swapV2 = try Self.convertSwapToV2(swap: swap, limit: limit)
        // Swap first, as runc: memory.swap.max is independent of memory.max on v2.
        if swapV2 != 0 {
            writes.append(.init("", "memory.swap.max", swapV2 == -1 ? "max" : String(swapV2), field: "\(f).swap"))
        }
        if limit != 0 {
            writes.append(.init("", "memory.max", limit == -1 ? "max" : String(limit), field: "\(f).limit"))
        }
        if let reservation = memory.reservation, reservation != 0 {
            try Self.checkMemory(reservation, field: "\(f).reservation")
            writes.append(
                .init("", "memory.low", reservation == -1 ? "max" : String(reservation), field: "\(f).reservation"))
        }
        if let swappiness = memory.swappiness, swappiness > 100 {
            throw .invalidConfig(field: "\(f).swappiness", reason: "\(swappiness) is above 100")
        }
        for (present, name) in [
            (memory.kernel.map { $0 != 0 } ?? false, "kernel"),
            (memory.kernelTCP.map { $0 != 0 } ?? false, "kernelTCP"),
            (memory.swappiness != nil, "swappiness"), (memory.disableOOMKiller == true, "disableOOMKiller"),
            (memory.useHierarchy != nil, "useHierarchy"),
        ] where present {
            warnings.append("\(f).\(name) is ignored: cgroup v2 has no such setting (runc ignores it too)")
        }
    }

    /// runc's ConvertMemorySwapToCgroupV2Value: OCI swap is memory+swap; v2's memory.swap.max is swap alone.
    public static func convertSwapToV2(swap: Int64, limit: Int64) throws(RuntimeError) -> Int64 {
        if limit == -1 && swap == 0 { return -1 }
        if swap == -1 || swap == 0 { return swap }
        if limit == 0 || limit == -1 {
            throw .invalidConfig(
                field: "linux.resources.memory.swap", reason: "a swap limit needs a memory limit on cgroup v2")
        }
        if swap < limit {
            throw .invalidConfig(
                field: "linux.resources.memory.swap",
                reason: "memory+swap limit \(swap) must be >= the memory limit \(limit)")
        }
        return swap - limit
    }

    private static func checkMemory(_ value: Int64, field: String) throws(RuntimeError) {
        if value < -1 { throw .invalidConfig(field: field, reason: "\(value) is negative (use -1 for unlimited)") }
    }

    // MARK: CPU

    private mutating func planCPUV1(_ cpu: Spec.CPU?) throws(RuntimeError) {
        guard let cpu else { return }
        let f = "linux.resources.cpu"
        if let period = cpu.realtimePeriod, period != 0 {
            writes.append(
                .init(
                    "cpu", "cpu.rt_period_us", String(period), field: "\(f).realtimePeriod",
                    retryAfterRest: cpu.realtimeRuntime != nil))
        }
        if let runtime = cpu.realtimeRuntime, runtime != 0 {
            writes.append(.init("cpu", "cpu.rt_runtime_us", String(runtime), field: "\(f).realtimeRuntime"))
        }
        if let shares = cpu.shares, shares != 0 {
            guard shares >= 2 && shares <= 262144 else {
                throw .invalidConfig(field: "\(f).shares", reason: "\(shares) is outside 2…262144")
            }
            writes.append(.init("cpu", "cpu.shares", String(shares), field: "\(f).shares"))
        }
        let quotaSet = (cpu.quota ?? 0) != 0
        if let period = cpu.period, period != 0 {
            writes.append(
                .init("cpu", "cpu.cfs_period_us", String(period), field: "\(f).period", retryAfterRest: quotaSet))
        }
        if let burst = cpu.burst {
            writes.append(
                .init("cpu", "cpu.cfs_burst_us", String(burst), field: "\(f).burst", retryAfterRest: quotaSet))
        }
        if let quota = cpu.quota, quota != 0 {
            writes.append(.init("cpu", "cpu.cfs_quota_us", String(quota < 0 ? -1 : quota), field: "\(f).quota"))
        }
        if let idle = cpu.idle {
            guard idle == 0 || idle == 1 else {
                throw .invalidConfig(field: "\(f).idle", reason: "must be 0 or 1, not \(idle)")
            }
            writes.append(.init("cpu", "cpu.idle", String(idle), field: "\(f).idle"))
        }
    }

    private mutating func planCPUV2(_ cpu: Spec.CPU?) throws(RuntimeError) {
        guard let cpu else { return }
        let f = "linux.resources.cpu"
        if (cpu.realtimeRuntime ?? 0) != 0 || (cpu.realtimePeriod ?? 0) != 0 {
            let field = (cpu.realtimeRuntime ?? 0) != 0 ? "\(f).realtimeRuntime" : "\(f).realtimePeriod"
            throw .invalidConfig(field: field, reason: "realtime scheduling limits are not supported on cgroup v2")
        }
        if let idle = cpu.idle {
            guard idle == 0 || idle == 1 else {
                throw .invalidConfig(field: "\(f).idle", reason: "must be 0 or 1, not \(idle)")
            }
            writes.append(.init("", "cpu.idle", String(idle), field: "\(f).idle"))
        }
        if let shares = cpu.shares, shares != 0 {
            guard shares >= 2 && shares <= 262144 else {
                throw .invalidConfig(field: "\(f).shares", reason: "\(shares) is outside 2…262144")
            }
            writes.append(.init("", "cpu.weight", String(Self.convertSharesToWeight(shares)), field: "\(f).shares"))
        }
        let quota = cpu.quota ?? 0, period = cpu.period ?? 0
        if let burst = cpu.burst {
            writes.append(
                .init(
                    "", "cpu.max.burst", String(burst), field: "\(f).burst", retryAfterRest: quota != 0 || period != 0))
        }
        if quota != 0 || period != 0 {
            let quotaText = quota > 0 ? String(quota) : "max"
            writes.append(
                .init(
                    "", "cpu.max", "\(quotaText) \(period != 0 ? period : 100_000)",
                    field: quota != 0 ? "\(f).quota" : "\(f).period"))
        }
    }

    /// runc's ConvertCPUSharesToCgroupV2Value: maps [2, 262144] onto cpu.weight's [1, 10000].
    public static func convertSharesToWeight(_ shares: UInt64) -> UInt64 {
        shares == 0 ? 0 : 1 + ((shares - 2) * 9999) / 262142
    }

    private mutating func planCPUSet(_ cpu: Spec.CPU?, controller: String) throws(RuntimeError) {
        guard let cpu else { return }
        if let cpus = cpu.cpus, !cpus.isEmpty {
            try Self.checkList(cpus, field: "linux.resources.cpu.cpus")
            writes.append(.init(controller, "cpuset.cpus", cpus, field: "linux.resources.cpu.cpus"))
        }
        if let mems = cpu.mems, !mems.isEmpty {
            try Self.checkList(mems, field: "linux.resources.cpu.mems")
            writes.append(.init(controller, "cpuset.mems", mems, field: "linux.resources.cpu.mems"))
        }
    }

    /// A cpuset list: "0-3,5,7-8".
    private static func checkList(_ list: String, field: String) throws(RuntimeError) {
        for part in list.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            let numbers = bounds.compactMap { UInt32($0.filter { $0 != " " }) }
            guard bounds.count == 1 || bounds.count == 2, numbers.count == bounds.count, numbers.first! <= numbers.last!
            else {
                throw .invalidConfig(field: field, reason: "\"\(list)\" is not a list such as 0-3,5")
            }
        }
    }

    // MARK: Block I/O

    private mutating func planBlockIOV1(_ io: Spec.BlockIO?) throws(RuntimeError) {
        guard let io else { return }
        let f = "linux.resources.blockIO"
        if let weight = io.weight, weight != 0 {
            try Self.checkWeight(weight, field: "\(f).weight")
            writes.append(
                .init("blkio", "blkio.weight", String(weight), field: "\(f).weight", preferred: ["blkio.bfq.weight"]))
        }
        if let leaf = io.leafWeight, leaf != 0 {
            try Self.checkWeight(leaf, field: "\(f).leafWeight")
            writes.append(.init("blkio", "blkio.leaf_weight", String(leaf), field: "\(f).leafWeight"))
        }
        for (i, device) in (io.weightDevice ?? []).enumerated() {
            if let weight = device.weight, weight != 0 {
                try Self.checkWeight(weight, field: "\(f).weightDevice[\(i)].weight")
                writes.append(
                    .init(
                        "blkio", "blkio.weight_device", "\(device.major):\(device.minor) \(weight)",
                        field: "\(f).weightDevice[\(i)].weight", preferred: ["blkio.bfq.weight_device"]))
            }
            if let leaf = device.leafWeight, leaf != 0 {
                try Self.checkWeight(leaf, field: "\(f).weightDevice[\(i)].leafWeight")
                writes.append(
                    .init(
                        "blkio", "blkio.leaf_weight_device", "\(device.major):\(device.minor) \(leaf)",
                        field: "\(f).weightDevice[\(i)].leafWeight"))
            }
        }
        for (list, name, file) in [
            (io.throttleReadBpsDevice, "throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
            (io.throttleWriteBpsDevice, "throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
            (io.throttleReadIOPSDevice, "throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
            (io.throttleWriteIOPSDevice, "throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"),
        ] {
            for (i, device) in (list ?? []).enumerated() {
                try Self.checkDevice(device.major, device.minor, field: "\(f).\(name)[\(i)]")
                writes.append(
                    .init("blkio", file, "\(device.major):\(device.minor) \(device.rate)", field: "\(f).\(name)[\(i)]"))
            }
        }
    }

    private mutating func planIOV2(_ io: Spec.BlockIO?) throws(RuntimeError) {
        guard let io else { return }
        let f = "linux.resources.blockIO"
        if let weight = io.weight, weight != 0 {
            try Self.checkWeight(weight, field: "\(f).weight")
            // BFQ takes the v1 range directly; io.weight needs runc's conversion.
            writes.append(
                .init("", "io.weight", String(Self.convertBlkioWeightToIOWeight(UInt64(weight))), field: "\(f).weight"))
            bfqWeight = weight
        }
        if io.leafWeight != nil && io.leafWeight != 0 {
            warnings.append("\(f).leafWeight is ignored: cgroup v2 has no leaf weights")
        }
        for (i, device) in (io.weightDevice ?? []).enumerated() {
            if let weight = device.weight, weight != 0 {
                try Self.checkWeight(weight, field: "\(f).weightDevice[\(i)].weight")
                // Per-device weights exist only with BFQ on v2 (io.bfq.weight); skipped without it, as runc.
                writes.append(
                    .init(
                        "", "io.bfq.weight", "\(device.major):\(device.minor) \(weight)",
                        field: "\(f).weightDevice[\(i)].weight", optional: true))
            }
        }
        for (list, name, key) in [
            (io.throttleReadBpsDevice, "throttleReadBpsDevice", "rbps"),
            (io.throttleWriteBpsDevice, "throttleWriteBpsDevice", "wbps"),
            (io.throttleReadIOPSDevice, "throttleReadIOPSDevice", "riops"),
            (io.throttleWriteIOPSDevice, "throttleWriteIOPSDevice", "wiops"),
        ] {
            for (i, device) in (list ?? []).enumerated() {
                try Self.checkDevice(device.major, device.minor, field: "\(f).\(name)[\(i)]")
                writes.append(
                    .init(
                        "", "io.max",
                        "\(device.major):\(device.minor) \(key)=\(device.rate == 0 ? "max" : String(device.rate))",
                        field: "\(f).\(name)[\(i)]"))
            }
        }
    }

    /// v2: the blkio weight as written to io.bfq.weight when that file exists (the manager decides).
    public var bfqWeight: UInt16?

    /// runc's ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000].
    public static func convertBlkioWeightToIOWeight(_ weight: UInt64) -> UInt64 {
        weight == 0 ? 0 : 1 + (weight - 10) * 9999 / 990
    }

    private static func checkWeight(_ weight: UInt16, field: String) throws(RuntimeError) {
        guard weight >= 10 && weight <= 1000 else {
            throw .invalidConfig(field: field, reason: "\(weight) is outside 10…1000")
        }
    }

    private static func checkDevice(_ major: Int64, _ minor: Int64, field: String) throws(RuntimeError) {
        guard major >= 0 && minor >= 0 else {
            throw .invalidConfig(field: field, reason: "major and minor must not be negative")
        }
    }

    // MARK: Hugepages, RDMA, unified

    private mutating func planHugepages(_ limits: [Spec.HugepageLimit]?, v2: Bool, controller: String)
        throws(RuntimeError)
    {
        for (i, limit) in (limits ?? []).enumerated() {
            let size = limit.pageSize
            let digits = size.prefix(while: { $0.isNumber })
            guard !digits.isEmpty, ["KB", "MB", "GB"].contains(String(size.dropFirst(digits.count))) else {
                throw .invalidConfig(
                    field: "linux.resources.hugepageLimits[\(i)].pageSize",
                    reason: "\"\(size)\" is not a page size such as 2MB or 1GB")
            }
            let file = v2 ? "hugetlb.\(size).max" : "hugetlb.\(size).limit_in_bytes"
            writes.append(.init(controller, file, String(limit.limit), field: "linux.resources.hugepageLimits[\(i)]"))
        }
    }

    private mutating func planRdma(_ rdma: [String: RdmaLimit]?, controller: String) throws(RuntimeError) {
        for device in (rdma ?? [:]).keys.sorted() {
            let limit = rdma![device]!
            var parts: [String] = []
            if let handles = limit.hcaHandles { parts.append("hca_handle=\(handles)") }
            if let objects = limit.hcaObjects { parts.append("hca_object=\(objects)") }
            guard !parts.isEmpty else { continue }
            guard !device.isEmpty, !device.contains(" "), !device.contains("/") else {
                throw .invalidConfig(field: "linux.resources.rdma", reason: "\"\(device)\" is not an RDMA device name")
            }
            writes.append(
                .init(
                    controller, "rdma.max", "\(device) \(parts.joined(separator: " "))",
                    field: "linux.resources.rdma.\(device)"))
        }
    }
    typealias RdmaLimit = Spec.RdmaLimit

    /// Files the runtime manages itself; writing them through `unified` would break the container.
    static let reservedUnifiedKeys: Set<String> = [
        "cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.kill", "cgroup.freeze", "cgroup.type",
    ]

    private mutating func planUnified(_ unified: [String: String]?) throws(RuntimeError) {
        for key in (unified ?? [:]).keys.sorted() {
            let field = "linux.resources.unified.\(key)"
            let parts = key.split(separator: ".", omittingEmptySubsequences: false)
            let allowed = key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" }
            guard parts.count >= 2, !parts.contains(where: \.isEmpty), allowed else {
                throw .invalidConfig(field: field, reason: "\"\(key)\" is not a cgroup file name such as memory.high")
            }
            guard !Self.reservedUnifiedKeys.contains(key) else {
                throw .invalidConfig(field: field, reason: "\(key) is managed by the runtime")
            }
            let value = unified![key]!
            guard !value.dropLast(value.hasSuffix("\n") ? 1 : 0).contains("\n") else {
                throw .invalidConfig(field: field, reason: "the value must be a single line")
            }
            writes.append(.init("", key, value, field: field))
        }
    }

    // MARK: Devices

    /// "c 1:3 rwm" for a device rule; defaults as runc: type a, any major/minor, access rwm.
    public static func deviceRuleText(_ rule: Spec.DeviceRule, field: String) throws(RuntimeError) -> String {
        let type = rule.type ?? "a"
        guard ["a", "b", "c"].contains(type) else {
            throw .invalidConfig(field: "\(field).type", reason: "\"\(type)\" is not a, b or c")
        }
        let access = rule.access ?? "rwm"
        guard !access.isEmpty, access.allSatisfy({ "rwm".contains($0) }) else {
            throw .invalidConfig(field: "\(field).access", reason: "\"\(access)\" is not a combination of r, w and m")
        }
        if (rule.major ?? 0) < -1 || (rule.minor ?? 0) < -1 {
            throw .invalidConfig(field: field, reason: "major and minor must be -1 (any) or a device number")
        }
        func number(_ value: Int64?) -> String { value.map { $0 < 0 ? "*" : String($0) } ?? "*" }
        if type == "a" { return "a *:* \(access)" }
        return "\(type) \(number(rule.major)):\(number(rule.minor)) \(access)"
    }

    private static func checkInterfaceName(_ name: String, field: String) throws(RuntimeError) {
        guard !name.isEmpty, name.utf8.count < 16, !name.contains(" "), !name.contains("/") else {
            throw .invalidConfig(field: field, reason: "\"\(name)\" is not a network interface name")
        }
    }
}

extension Cgroups {
    /// runc's default device rules (libcontainer/specconv AllowedDevices), appended after the config's
    /// own rules, plus an allow rule for each `linux.devices` entry, so /dev entries the runtime creates
    /// are usable.
    public static func deviceRules(_ resources: [Spec.DeviceRule]?, devices: [Spec.Device]?) -> [Spec.DeviceRule] {
        var rules = resources ?? []
        rules += [
            .init(allow: true, type: "c", major: nil, minor: nil, access: "m"),
            .init(allow: true, type: "b", major: nil, minor: nil, access: "m"),
            .init(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),  // /dev/null
            .init(allow: true, type: "c", major: 1, minor: 8, access: "rwm"),  // /dev/random
            .init(allow: true, type: "c", major: 1, minor: 7, access: "rwm"),  // /dev/full
            .init(allow: true, type: "c", major: 5, minor: 0, access: "rwm"),  // /dev/tty
            .init(allow: true, type: "c", major: 1, minor: 5, access: "rwm"),  // /dev/zero
            .init(allow: true, type: "c", major: 1, minor: 9, access: "rwm"),  // /dev/urandom
            .init(allow: true, type: "c", major: 136, minor: nil, access: "rwm"),  // /dev/pts/*
            .init(allow: true, type: "c", major: 5, minor: 2, access: "rwm"),  // /dev/ptmx
            .init(allow: true, type: "c", major: 10, minor: 200, access: "rwm"),  // /dev/net/tun
        ]
        for device in devices ?? [] where device.type == "c" || device.type == "b" || device.type == "u" {
            rules.append(
                .init(
                    allow: true, type: device.type == "u" ? "c" : device.type, major: device.major, minor: device.minor,
                    access: "rwm"))
        }
        return rules
    }
}

import Testing
@testable import BerthRuntime

/// The field named by a thrown `.invalidConfig`, or nil.
func invalidField(_ body: () throws -> Void) -> String? {
    do { try body() } catch {
        if case .invalidConfig(let field, _)? = error as? RuntimeError { return field }
        return "not invalidConfig: \(error)"
    }
    return nil
}

private func plan(_ resources: Spec.Resources, _ version: CgroupPlan.Version, current: UInt64? = nil) throws
    -> CgroupPlan
{
    try CgroupPlan(resources, version: version, currentMemoryLimit: current)
}

private func texts(_ plan: CgroupPlan) -> [String] { plan.writes.map(\.description) }

@Suite struct CgroupPlanTests {
    let v1 = CgroupPlan.Version.v1(hugetlbOnUnified: false)

    @Test func v1MemoryOnAFreshCgroupWritesTheLimitBeforeSwap() throws {
        var r = Spec.Resources()
        r.memory = Spec.Memory()
        r.memory!.limit = 64 << 20
        r.memory!.swap = 128 << 20
        r.memory!.reservation = 32 << 20
        r.memory!.swappiness = 10
        r.memory!.disableOOMKiller = true
        r.memory!.kernelTCP = 1 << 20
        r.memory!.useHierarchy = true
        let p = try plan(r, v1, current: 9_223_372_036_854_771_712)
        #expect(
            texts(p) == [
                "memory/memory.limit_in_bytes=67108864", "memory/memory.memsw.limit_in_bytes=134217728",
                "memory/memory.soft_limit_in_bytes=33554432", "memory/memory.kmem.tcp.limit_in_bytes=1048576",
                "memory/memory.swappiness=10", "memory/memory.oom_control=1", "memory/memory.use_hierarchy=1",
            ])
        #expect(p.writes[1].field == "linux.resources.memory.swap")
    }

    @Test func v1MemoryRaisedAboveTheCurrentLimitWritesSwapFirst() throws {
        var r = Spec.Resources()
        r.memory = Spec.Memory()
        r.memory!.limit = 256 << 20
        r.memory!.swap = 512 << 20
        let p = try plan(r, v1, current: 64 << 20)
        #expect(p.writes.map(\.file) == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"])
    }

    @Test func v1UnlimitedMemoryAlsoUnlimitsSwapWhereSwapExists() throws {
        var r = Spec.Resources()
        r.memory = Spec.Memory()
        r.memory!.limit = -1
        let p = try plan(r, v1)
        #expect(texts(p) == ["memory/memory.memsw.limit_in_bytes=-1", "memory/memory.limit_in_bytes=-1"])
        #expect(p.writes[0].optional)
        #expect(!p.writes[1].optional)
    }

    @Test func memoryErrorsNameTheirField() {
        var r = Spec.Resources()
        r.memory = Spec.Memory()
        r.memory!.limit = 128 << 20
        r.memory!.swap = 64 << 20
        #expect(
            invalidField { _ = try CgroupPlan(r, version: .v1(hugetlbOnUnified: false)) }
                == "linux.resources.memory.swap")
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.memory.swap")
        r.memory = Spec.Memory()
        r.memory!.swappiness = 101
        #expect(
            invalidField { _ = try CgroupPlan(r, version: .v1(hugetlbOnUnified: false)) }
                == "linux.resources.memory.swappiness")
        r.memory = Spec.Memory()
        r.memory!.limit = -5
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.memory.limit")
    }

    @Test func v2MemoryConvertsSwapToSwapOnlyAndWarnsAboutV1OnlyFields() throws {
        var r = Spec.Resources()
        r.memory = Spec.Memory()
        r.memory!.limit = 100
        r.memory!.swap = 300
        r.memory!.reservation = 50
        r.memory!.swappiness = 60
        let p = try plan(r, .v2)
        #expect(texts(p) == ["memory.swap.max=200", "memory.max=100", "memory.low=50"])
        #expect(p.warnings.count == 1 && p.warnings[0].contains("swappiness"))
        #expect(try CgroupPlan.convertSwapToV2(swap: 0, limit: -1) == -1)
        #expect(try CgroupPlan.convertSwapToV2(swap: -1, limit: 100) == -1)
        #expect(
            invalidField { _ = try CgroupPlan.convertSwapToV2(swap: 200, limit: 0) } == "linux.resources.memory.swap")
        r.memory = Spec.Memory()
        r.memory!.limit = -1
        #expect(texts(try plan(r, .v2)) == ["memory.swap.max=max", "memory.max=max"])
    }

    @Test func v1CPUWritesEveryFieldWithRuncsRetryOrder() throws {
        var r = Spec.Resources()
        r.cpu = Spec.CPU()
        r.cpu!.shares = 512
        r.cpu!.quota = 50_000
        r.cpu!.period = 100_000
        r.cpu!.burst = 10_000
        r.cpu!.realtimePeriod = 1_000_000
        r.cpu!.realtimeRuntime = 950_000
        r.cpu!.idle = 0
        r.cpu!.cpus = "0-1,3"
        r.cpu!.mems = "0"
        let p = try plan(r, v1)
        #expect(
            texts(p) == [
                "cpu/cpu.rt_period_us=1000000", "cpu/cpu.rt_runtime_us=950000", "cpu/cpu.shares=512",
                "cpu/cpu.cfs_period_us=100000", "cpu/cpu.cfs_burst_us=10000", "cpu/cpu.cfs_quota_us=50000",
                "cpu/cpu.idle=0", "cpuset/cpuset.cpus=0-1,3", "cpuset/cpuset.mems=0",
            ])
        #expect(p.writes[3].retryAfterRest && p.writes[4].retryAfterRest && !p.writes[5].retryAfterRest)
    }

    @Test func v2CPUConvertsSharesAndBuildsCPUMax() throws {
        #expect(CgroupPlan.convertSharesToWeight(2) == 1)
        #expect(CgroupPlan.convertSharesToWeight(1024) == 39)
        #expect(CgroupPlan.convertSharesToWeight(262_144) == 10_000)
        var r = Spec.Resources()
        r.cpu = Spec.CPU()
        r.cpu!.shares = 1024
        r.cpu!.quota = 50_000
        r.cpu!.burst = 1000
        r.cpu!.idle = 1
        let p = try plan(r, .v2)
        #expect(texts(p) == ["cpu.idle=1", "cpu.weight=39", "cpu.max.burst=1000", "cpu.max=50000 100000"])
        r.cpu = Spec.CPU()
        r.cpu!.period = 20_000
        #expect(texts(try plan(r, .v2)) == ["cpu.max=max 20000"])
        r.cpu = Spec.CPU()
        r.cpu!.quota = -1
        r.cpu!.period = 50_000
        #expect(texts(try plan(r, .v2)) == ["cpu.max=max 50000"])
    }

    @Test func cpuErrorsNameTheirField() {
        var r = Spec.Resources()
        r.cpu = Spec.CPU()
        r.cpu!.realtimeRuntime = 1000
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.cpu.realtimeRuntime")
        r.cpu = Spec.CPU()
        r.cpu!.shares = 1
        #expect(
            invalidField { _ = try CgroupPlan(r, version: .v1(hugetlbOnUnified: false)) }
                == "linux.resources.cpu.shares")
        r.cpu = Spec.CPU()
        r.cpu!.cpus = "0-a"
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.cpu.cpus")
        r.cpu = Spec.CPU()
        r.cpu!.mems = "3-1"
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.cpu.mems")
        r.cpu = Spec.CPU()
        r.cpu!.idle = 2
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.cpu.idle")
    }

    @Test func pidsLimitZeroOrNegativeIsMax() throws {
        var r = Spec.Resources()
        r.pids = Spec.Pids(limit: 100)
        #expect(texts(try plan(r, v1)) == ["pids/pids.max=100"])
        r.pids = Spec.Pids(limit: -1)
        #expect(texts(try plan(r, .v2)) == ["pids.max=max"])
    }

    @Test func blockIOOnV1PrefersBFQAndWritesEveryThrottle() throws {
        var r = Spec.Resources()
        r.blockIO = Spec.BlockIO()
        r.blockIO!.weight = 500
        r.blockIO!.leafWeight = 300
        r.blockIO!.weightDevice = [Spec.WeightDevice(major: 8, minor: 0, weight: 600, leafWeight: 200)]
        r.blockIO!.throttleReadBpsDevice = [Spec.ThrottleDevice(major: 8, minor: 0, rate: 1000)]
        r.blockIO!.throttleWriteBpsDevice = [Spec.ThrottleDevice(major: 8, minor: 0, rate: 2000)]
        r.blockIO!.throttleReadIOPSDevice = [Spec.ThrottleDevice(major: 8, minor: 16, rate: 30)]
        r.blockIO!.throttleWriteIOPSDevice = [Spec.ThrottleDevice(major: 8, minor: 16, rate: 40)]
        let p = try plan(r, v1)
        #expect(
            texts(p) == [
                "blkio/blkio.weight=500", "blkio/blkio.leaf_weight=300", "blkio/blkio.weight_device=8:0 600",
                "blkio/blkio.leaf_weight_device=8:0 200", "blkio/blkio.throttle.read_bps_device=8:0 1000",
                "blkio/blkio.throttle.write_bps_device=8:0 2000", "blkio/blkio.throttle.read_iops_device=8:16 30",
                "blkio/blkio.throttle.write_iops_device=8:16 40",
            ])
        #expect(p.writes[0].preferred == ["blkio.bfq.weight"])
        #expect(p.writes[2].preferred == ["blkio.bfq.weight_device"])
    }

    @Test func blockIOOnV2ConvertsWeightAndUsesIOMax() throws {
        #expect(CgroupPlan.convertBlkioWeightToIOWeight(10) == 1)
        #expect(CgroupPlan.convertBlkioWeightToIOWeight(500) == 4950)
        #expect(CgroupPlan.convertBlkioWeightToIOWeight(1000) == 10_000)
        var r = Spec.Resources()
        r.blockIO = Spec.BlockIO()
        r.blockIO!.weight = 500
        r.blockIO!.throttleReadBpsDevice = [Spec.ThrottleDevice(major: 8, minor: 0, rate: 1000)]
        r.blockIO!.throttleWriteIOPSDevice = [Spec.ThrottleDevice(major: 8, minor: 0, rate: 0)]
        let p = try plan(r, .v2)
        #expect(texts(p) == ["io.weight=4950", "io.max=8:0 rbps=1000", "io.max=8:0 wiops=max"])
        #expect(p.bfqWeight == 500)
        r.blockIO = Spec.BlockIO()
        r.blockIO!.weight = 5
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.blockIO.weight")
        r.blockIO = Spec.BlockIO()
        r.blockIO!.throttleReadBpsDevice = [Spec.ThrottleDevice(major: -1, minor: 0, rate: 1)]
        #expect(
            invalidField { _ = try CgroupPlan(r, version: .v1(hugetlbOnUnified: false)) }
                == "linux.resources.blockIO.throttleReadBpsDevice[0]")
    }

    @Test func hugepageLimitsUseEachVersionsFileName() throws {
        var r = Spec.Resources()
        r.hugepageLimits = [
            Spec.HugepageLimit(pageSize: "2MB", limit: 4 << 20), Spec.HugepageLimit(pageSize: "1GB", limit: 0),
        ]
        #expect(
            texts(try plan(r, v1)) == [
                "hugetlb/hugetlb.2MB.limit_in_bytes=4194304", "hugetlb/hugetlb.1GB.limit_in_bytes=0",
            ])
        #expect(texts(try plan(r, .v2)) == ["hugetlb.2MB.max=4194304", "hugetlb.1GB.max=0"])
        // Hybrid host whose hugetlb lives on the cgroup2 hierarchy.
        #expect(texts(try plan(r, .v1(hugetlbOnUnified: true))) == ["hugetlb.2MB.max=4194304", "hugetlb.1GB.max=0"])
        r.hugepageLimits = [Spec.HugepageLimit(pageSize: "2M", limit: 1)]
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.hugepageLimits[0].pageSize")
    }

    @Test func networkIsV1OnlyAndWarnsOnV2() throws {
        var r = Spec.Resources()
        r.network = Spec.Network(
            classID: 0x100001,
            priorities: [
                Spec.InterfacePriority(name: "eth0", priority: 5), Spec.InterfacePriority(name: "lo", priority: 2),
            ])
        #expect(
            texts(try plan(r, v1)) == [
                "net_cls/net_cls.classid=1048577", "net_prio/net_prio.ifpriomap=eth0 5",
                "net_prio/net_prio.ifpriomap=lo 2",
            ])
        let p2 = try plan(r, .v2)
        #expect(p2.writes.isEmpty && p2.warnings.count == 1)
        r.network = Spec.Network(classID: nil, priorities: [Spec.InterfacePriority(name: "a b", priority: 1)])
        #expect(
            invalidField { _ = try CgroupPlan(r, version: .v1(hugetlbOnUnified: false)) }
                == "linux.resources.network.priorities[0].name")
    }

    @Test func deviceRulesBecomeV1FilesOrAV2Program() throws {
        var r = Spec.Resources()
        r.devices = [
            Spec.DeviceRule(allow: false, access: "rwm"),
            Spec.DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rw"),
            Spec.DeviceRule(allow: true, type: "b", major: 8, minor: nil, access: "m"),
        ]
        #expect(
            texts(try plan(r, v1)) == [
                "devices/devices.deny=a *:* rwm", "devices/devices.allow=c 1:3 rw", "devices/devices.allow=b 8:* m",
            ])
        let p2 = try plan(r, .v2)
        #expect(p2.writes.isEmpty && p2.deviceProgram == r.devices)
        r.devices = [Spec.DeviceRule(allow: true, type: "x")]
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.devices[0].type")
        r.devices = [Spec.DeviceRule(allow: true, type: "c", access: "rx")]
        #expect(
            invalidField { _ = try CgroupPlan(r, version: .v1(hugetlbOnUnified: false)) }
                == "linux.resources.devices[0].access")
    }

    @Test func defaultDeviceRulesFollowTheConfigAndCoverLinuxDevices() {
        let rules = Cgroups.deviceRules(
            [Spec.DeviceRule(allow: false, access: "rwm")],
            devices: [Spec.Device(type: "c", path: "/dev/fuse", major: 10, minor: 229)])
        #expect(rules.first == Spec.DeviceRule(allow: false, access: "rwm"))
        #expect(rules.contains(Spec.DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rwm")))
        #expect(rules.last == Spec.DeviceRule(allow: true, type: "c", major: 10, minor: 229, access: "rwm"))
    }

    @Test func rdmaLimitsOnBothVersions() throws {
        var r = Spec.Resources()
        r.rdma = [
            "mlx5_1": Spec.RdmaLimit(hcaHandles: 3, hcaObjects: nil),
            "mlx4_0": Spec.RdmaLimit(hcaHandles: 2, hcaObjects: 1000),
        ]
        #expect(
            texts(try plan(r, v1)) == [
                "rdma/rdma.max=mlx4_0 hca_handle=2 hca_object=1000", "rdma/rdma.max=mlx5_1 hca_handle=3",
            ])
        #expect(
            texts(try plan(r, .v2)) == ["rdma.max=mlx4_0 hca_handle=2 hca_object=1000", "rdma.max=mlx5_1 hca_handle=3"])
    }

    @Test func unifiedKeysAreValidatedAndV1RejectsThem() throws {
        var r = Spec.Resources()
        r.unified = ["memory.high": "1000000", "pids.max": "10"]
        #expect(texts(try plan(r, .v2)) == ["memory.high=1000000", "pids.max=10"])
        #expect(
            invalidField { _ = try CgroupPlan(r, version: .v1(hugetlbOnUnified: false)) } == "linux.resources.unified")
        r.unified = ["../memory.max": "1"]
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.unified.../memory.max")
        r.unified = ["cgroup.procs": "1"]
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.unified.cgroup.procs")
        r.unified = ["memory.high": "1\n2"]
        #expect(invalidField { _ = try CgroupPlan(r, version: .v2) } == "linux.resources.unified.memory.high")
    }
}

import BerthCRIProtocol
import BerthKube

/// Cgroup resources as the kubelet computes them (kuberuntime_container_linux.go, kuberuntime_sandbox_linux.go,
/// cm/helpers_linux.go, qos/policy.go), with its defaults: CFS quota enforced, a 100 ms period, no
/// pod-level resources, cgroup v1 semantics (no `memory.oom.group`, no MemoryQoS, no swap).
extension PodConfigs {
    /// The kernel's bounds on cpu.shares and the CFS period the kubelet uses (cm/helpers_linux.go).
    static let minShares: Int64 = 2
    static let maxShares: Int64 = 262_144
    static let quotaPeriod: Int64 = 100_000
    static let minQuotaPeriod: Int64 = 1000

    /// OOM score adjustments (qos/policy.go).
    static let guaranteedOOMScoreAdj: Int64 = -997
    static let bestEffortOOMScoreAdj: Int64 = 1000

    /// generateLinuxContainerResources: shares from the CPU request (the limit when there is no
    /// request, 2 when neither), the CFS quota from the CPU limit (none without one) over a 100 ms
    /// period, the memory limit, the OOM score adjustment by QoS class, and hugepage limits.
    ///
    /// `machineMemory` is the node's memory capacity in bytes (cadvisor's MemoryCapacity).
    /// `hugePageSizes` are the host's page sizes (`["2MB", "1GB"]`, from /sys/kernel/mm/hugepages): the
    /// kubelet sends a limit for each, 0 unless the container asks for that size. Nil (unknown) sends only
    /// the sizes the container limits.
    static func linuxResources(
        _ container: CoreV1.Container, pod: CoreV1.Pod, machineMemory: Int64, hugePageSizes: [String]? = nil
    ) -> Runtime_V1_LinuxContainerResources {
        let requests = container.resources.requests
        let limits = container.resources.limits
        var resources = calculateLinuxResources(
            cpuRequest: requests["cpu"].map { milli($0) }, cpuLimit: milli(limits["cpu"]),
            memoryLimit: units(limits["memory"]))
        resources.oomScoreAdj = oomScoreAdjust(container, pod: pod, machineMemory: machineMemory)
        resources.hugepageLimits = hugepageLimits(limits, hostSizes: hugePageSizes)
        return resources
    }

    /// calculateLinuxResources. A missing CPU request takes the shares of the limit; the period is sent
    /// whether or not there is a quota (0, no limit), as the kubelet with cpuCFSQuota (its default) does.
    static func calculateLinuxResources(
        cpuRequest: Int64?, cpuLimit: Int64, memoryLimit: Int64
    ) -> Runtime_V1_LinuxContainerResources {
        var resources = Runtime_V1_LinuxContainerResources()
        resources.cpuShares = milliCPUToShares(cpuRequest ?? cpuLimit)
        if memoryLimit != 0 { resources.memoryLimitInBytes = memoryLimit }
        resources.cpuQuota = milliCPUToQuota(cpuLimit, period: quotaPeriod)
        resources.cpuPeriod = quotaPeriod
        return resources
    }

    /// cm.MilliCPUToShares: 1024 shares a CPU, at least 2 (also for 0), at most 262144.
    static func milliCPUToShares(_ milliCPU: Int64) -> Int64 {
        if milliCPU == 0 { return minShares }
        let (product, overflow) = milliCPU.multipliedReportingOverflow(by: 1024)
        let shares = overflow ? maxShares : product / 1000
        return min(max(shares, minShares), maxShares)
    }

    /// cm.MilliCPUToQuota: microseconds a period; 0 (no quota) for 0, at least 1 ms otherwise.
    static func milliCPUToQuota(_ milliCPU: Int64, period: Int64) -> Int64 {
        if milliCPU == 0 { return 0 }
        let (product, overflow) = milliCPU.multipliedReportingOverflow(by: period)
        let quota = overflow ? Int64.max : product / 1000
        return max(quota, minQuotaPeriod)
    }

    /// qos.GetContainerOOMScoreAdjust: -997 for Guaranteed and node-critical pods, 1000 for BestEffort;
    /// Burstable `1000 - 1000 × memory request / machine memory` (a sidecar no higher than its pod's
    /// smallest regular container), kept within 3…999.
    static func oomScoreAdjust(_ container: CoreV1.Container, pod: CoreV1.Pod, machineMemory: Int64) -> Int64 {
        if isNodeCriticalPod(pod) { return guaranteedOOMScoreAdj }
        switch PodQOS.of(pod) {
        case .guaranteed: return guaranteedOOMScoreAdj
        case .bestEffort: return bestEffortOOMScoreAdj
        default: break
        }
        func adjust(_ request: Int64) -> Int64 {
            guard machineMemory > 0 else { return 1000 }
            let (product, overflow) = request.multipliedReportingOverflow(by: 1000)
            if overflow { return 1000 - Int64(Double(request) * 1000 / Double(machineMemory)) }
            return 1000 - product / machineMemory
        }
        var score = adjust(units(container.resources.requests["memory"]))
        let isSidecar =
            container.restartPolicy == .always && pod.spec.initContainers.contains { $0.name == container.name }
        if isSidecar, let smallest = pod.spec.containers.map({ units($0.resources.requests["memory"]) }).min() {
            score = min(score, adjust(smallest))
        }
        if score < 1000 + guaranteedOOMScoreAdj { return 1000 + guaranteedOOMScoreAdj }
        if score == bestEffortOOMScoreAdj { return score - 1 }
        return score
    }

    /// types.IsNodeCriticalPod: a critical pod (static, mirror, or of system-critical priority) of the
    /// `system-node-critical` priority class.
    static func isNodeCriticalPod(_ pod: CoreV1.Pod) -> Bool {
        pod.spec.priorityClassName == "system-node-critical" && EvictionManager.isCritical(pod)
    }

    /// GetHugepageLimitsFromResources: the `hugepages-<size>` limits by page size as the kernel names
    /// them (`2MB`, `1GB`), one for each host size when those are known.
    static func hugepageLimits(_ limits: [String: Quantity], hostSizes: [String]?) -> [Runtime_V1_HugepageLimit] {
        var required: [String: (bytes: Int64, limit: UInt64)] = [:]
        for (name, amount) in limits where name.hasPrefix("hugepages-") {
            guard let size = Quantity.units(String(name.dropFirst("hugepages-".count))), size > 0,
                let pageSize = hugePageUnitSize(size)
            else { continue }
            required[pageSize] = (size, UInt64(max(0, units(amount))))
        }
        func limit(_ pageSize: String, _ value: UInt64) -> Runtime_V1_HugepageLimit {
            var limit = Runtime_V1_HugepageLimit()
            limit.pageSize = pageSize
            limit.limit = value
            return limit
        }
        if let hostSizes { return hostSizes.map { limit($0, required[$0]?.limit ?? 0) } }
        return required.sorted { $0.value.bytes < $1.value.bytes }.map { limit($0.key, $0.value.limit) }
    }

    /// v1helper.HugePageUnitSizeFromByteSize: 2097152 is `2MB`, 1073741824 `1GB`; nil when not whole in
    /// its largest unit.
    static func hugePageUnitSize(_ bytes: Int64) -> String? {
        let unitNames = ["B", "KB", "MB", "GB", "TB", "PB"]
        var size = bytes
        var index = 0
        while size % 1024 == 0 && index < unitNames.count - 1 {
            size /= 1024
            index += 1
        }
        if size > 1024 && index < unitNames.count - 1 { return nil }
        return "\(size)\(unitNames[index])"
    }

    /// calculateSandboxResources: the pod's requests and limits (without overhead) as the sandbox's
    /// resources, CPU request present only when some container has one.
    static func sandboxResources(_ pod: CoreV1.Pod) -> Runtime_V1_LinuxContainerResources {
        let requests = aggregate(pod, \.requests)
        let limits = aggregate(pod, \.limits)
        return calculateLinuxResources(
            cpuRequest: requests["cpu"], cpuLimit: limits["cpu"] ?? 0, memoryLimit: limits["memory"] ?? 0)
    }

    /// convertOverheadToLinuxResources: the RuntimeClass overhead as requests equal to limits; empty
    /// without overhead.
    static func overheadResources(_ pod: CoreV1.Pod) -> Runtime_V1_LinuxContainerResources {
        let overhead = pod.spec.overhead
        guard !overhead.isEmpty else { return Runtime_V1_LinuxContainerResources() }
        let cpu = milli(overhead["cpu"])
        return calculateLinuxResources(cpuRequest: cpu, cpuLimit: cpu, memoryLimit: units(overhead["memory"]))
    }

    /// resourcehelper.PodRequests / PodLimits for CPU (millicores) and memory (bytes): the regular and
    /// restartable init (sidecar) containers summed, at least what any init container needs while it
    /// runs beside the sidecars started before it.
    static func aggregate(
        _ pod: CoreV1.Pod, _ list: KeyPath<CoreV1.ResourceRequirements, [String: Quantity]>
    ) -> [String: Int64] {
        func amounts(_ container: CoreV1.Container) -> [String: Int64] {
            var result: [String: Int64] = [:]
            let resources = container.resources[keyPath: list]
            if let cpu = resources["cpu"] { result["cpu"] = milli(cpu) }
            if let memory = resources["memory"] { result["memory"] = units(memory) }
            return result
        }
        func add(_ into: inout [String: Int64], _ other: [String: Int64]) {
            for (name, value) in other { into[name] = sum(into[name] ?? 0, value) }
        }
        func maximum(_ into: inout [String: Int64], _ other: [String: Int64]) {
            for (name, value) in other { into[name] = max(into[name] ?? value, value) }
        }
        var total: [String: Int64] = [:]
        for container in pod.spec.containers { add(&total, amounts(container)) }
        var sidecars: [String: Int64] = [:]
        var initPeak: [String: Int64] = [:]
        for container in pod.spec.initContainers {
            var running = amounts(container)
            if container.restartPolicy == .always {
                add(&total, running)
                add(&sidecars, running)
                running = sidecars
            } else {
                add(&running, sidecars)
            }
            maximum(&initPeak, running)
        }
        maximum(&total, initPeak)
        return total
    }
}

import BerthCRIProtocol
import BerthEngine
import GRPCCore
import Synchronization

/// ContainerStats, ListContainerStats, PodSandboxStats and ListPodSandboxStats: each container's cgroup
/// (CPU, memory as the kubelet counts it), each pod's parent cgroup and network namespace. CPU rates
/// (`usage_nano_cores`) come from the difference with the previous reading of the same cgroup, as
/// containerd computes them; the first reading has none.
extension CRIRuntime {
    /// The CPU counter a cgroup had at a time, by cgroup path.
    public final class CPUReadings: Sendable {
        private let last = Mutex<[String: (time: Int64, usage: UInt64)]>([:])

        /// Nanocores between the previous reading of `key` and this one (nil for the first).
        func rate(_ key: String, time: Int64, usage: UInt64) -> UInt64? {
            last.withLock { map in
                defer { map[key] = (time, usage) }
                guard let previous = map[key], time > previous.time, usage >= previous.usage else { return nil }
                return Self.nanoCores(used: usage - previous.usage, over: UInt64(time - previous.time))
            }
        }

        func forget(_ key: String) { last.withLock { _ = $0.removeValue(forKey: key) } }

        /// CPU nanoseconds used over a wall-clock interval as nanocores, without overflowing: the product
        /// with 10⁹ is taken in 128 bits (18 CPU-seconds in one interval already exceed 64).
        public static func nanoCores(used: UInt64, over interval: UInt64) -> UInt64 {
            guard interval > 0 else { return 0 }
            let product = used.multipliedFullWidth(by: 1_000_000_000)
            guard product.high < interval else { return UInt64.max }
            return interval.dividingFullWidth(product).quotient
        }
    }

    func cpu(_ sample: StatsSample, key: String, time: Int64) -> Runtime_V1_CpuUsage {
        var cpu = Runtime_V1_CpuUsage()
        cpu.timestamp = time
        cpu.usageCoreNanoSeconds.value = sample.cpuUsage
        if let rate = cpuReadings.rate(key, time: time, usage: sample.cpuUsage) { cpu.usageNanoCores.value = rate }
        return cpu
    }

    func memory(_ sample: StatsSample, time: Int64) -> Runtime_V1_MemoryUsage {
        var memory = Runtime_V1_MemoryUsage()
        memory.timestamp = time
        memory.workingSetBytes.value = sample.memoryWorkingSet
        memory.usageBytes.value = sample.memoryRaw
        memory.rssBytes.value = sample.memoryRSS
        memory.pageFaults.value = sample.pageFaults
        memory.majorPageFaults.value = sample.majorPageFaults
        if sample.memoryLimit > sample.memoryWorkingSet {
            memory.availableBytes.value = sample.memoryLimit - sample.memoryWorkingSet
        }
        return memory
    }

    func containerStats(_ id: String, _ entry: CRIContainerStore.Entry) -> Runtime_V1_ContainerStats? {
        guard let record = try? engine.lookup(id) else { return nil }
        var stats = Runtime_V1_ContainerStats()
        stats.attributes.id = id
        stats.attributes.metadata = entry.config.metadata
        stats.attributes.labels = entry.config.labels
        stats.attributes.annotations = entry.config.annotations
        let time = Nanoseconds.now()
        // An exited container has no cgroup left: its attributes only, as containerd answers.
        guard record.state.running else { return stats }
        let sample = StatsSample.cgroup(record.cgroupPath)
        stats.cpu = cpu(sample, key: record.cgroupPath, time: time)
        stats.memory = memory(sample, time: time)
        stats.writableLayer.timestamp = time
        stats.writableLayer.fsID.mountpoint = engine.layout.root
        return stats
    }

    func containerStats(_ reference: String) throws(RPCError) -> Runtime_V1_ContainerStats {
        let (id, entry) = try criContainer(reference)
        guard let stats = containerStats(id, entry) else {
            throw CRIError.notFound("an error occurred when try to find container \"\(reference)\": not found")
        }
        return stats
    }

    func listContainerStats(_ filter: Runtime_V1_ContainerStatsFilter) -> [Runtime_V1_ContainerStats] {
        containers.all.compactMap { id, entry in
            if !filter.id.isEmpty && !id.hasPrefix(filter.id) { return nil }
            if !filter.podSandboxID.isEmpty && !entry.sandboxID.hasPrefix(filter.podSandboxID) { return nil }
            if !filter.labelSelector.allSatisfy({ entry.config.labels[$0.key] == $0.value }) { return nil }
            return containerStats(id, entry)
        }.sorted { $0.attributes.id < $1.attributes.id }
    }

    func podSandboxStats(_ sandbox: PodSandboxStore.Entry) -> Runtime_V1_PodSandboxStats {
        var stats = Runtime_V1_PodSandboxStats()
        let record = sandbox.record
        stats.attributes.id = record.id
        stats.attributes.metadata = sandbox.config.metadata
        stats.attributes.labels = sandbox.config.labels
        stats.attributes.annotations = sandbox.config.annotations
        let members = containers.all.filter { $0.value.sandboxID == record.id }
        stats.linux.containers = members.compactMap { containerStats($0.key, $0.value) }
        guard record.state == .ready else { return stats }
        let time = Nanoseconds.now()
        // The pod's parent cgroup holds every container (and the pod's init, when it shares PIDs).
        if !record.cgroupParent.isEmpty {
            let sample = StatsSample.cgroup(record.cgroupParent)
            stats.linux.cpu = cpu(sample, key: record.cgroupParent, time: time)
            stats.linux.memory = memory(sample, time: time)
            stats.linux.process.timestamp = time
            stats.linux.process.processCount.value = sample.pids
        }
        // The pod's network, read through a process inside it.
        if let pid = members.lazy.compactMap({ try? self.engine.lookup($0.key) }).first(where: { $0.state.running })?
            .state.pid
        {
            var sample = StatsSample()
            sample.readNetwork(of: pid)
            stats.linux.network.timestamp = time
            for counters in sample.networkInterfaces {
                var interface = Runtime_V1_NetworkInterfaceUsage()
                interface.name = counters.name
                interface.rxBytes.value = counters.receivedBytes
                interface.rxErrors.value = counters.receiveErrors
                interface.txBytes.value = counters.sentBytes
                interface.txErrors.value = counters.sendErrors
                if counters.name == "eth0" { stats.linux.network.defaultInterface = interface }
                stats.linux.network.interfaces.append(interface)
            }
        }
        return stats
    }

    func podSandboxStats(_ reference: String) throws(RPCError) -> Runtime_V1_PodSandboxStats {
        guard let sandbox = sandboxes.find(reference) else {
            throw CRIError.notFound("failed to find sandbox \(reference): not found")
        }
        return podSandboxStats(sandbox)
    }

    func listPodSandboxStats(_ filter: Runtime_V1_PodSandboxStatsFilter) -> [Runtime_V1_PodSandboxStats] {
        sandboxes.all.filter { entry in
            (filter.id.isEmpty || entry.record.id.hasPrefix(filter.id))
                && filter.labelSelector.allSatisfy { entry.config.labels[$0.key] == $0.value }
        }.map { podSandboxStats($0) }.sorted { $0.attributes.id < $1.attributes.id }
    }
}

import BerthCRI
import BerthCRIProtocol
import BerthEngine
import BerthJSON
import BerthKube
import BerthOS
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The kubelet's stats: the Summary API (`/stats/summary`, what the API server turns into
/// metrics.k8s.io for `kubectl top`) and `/metrics/resource` (what metrics-server scrapes). Pods and
/// containers come from the runtime's ListPodSandboxStats (its pod and container cgroups, through the
/// CRI only); the node from the machine's root cgroup and /proc/meminfo. Sampled every
/// `statsInterval` (cAdvisor's housekeeping), so CPU rates cover one interval, as metrics-server's do.
final class NodeStats: Sendable {
    let nodeName: String
    private let latest = Mutex<Snapshot?>(nil)
    private let previousNodeCPU = Mutex<(time: Int64, usage: UInt64)?>(nil)
    let bootTime: MetaV1.Time

    /// One sampling of the node and its pods.
    struct Snapshot: Sendable {
        var time: Int64
        var node: StatsSample
        var nodeNanoCores: UInt64?
        var pods: [Runtime_V1_PodSandboxStats]
    }

    init(nodeName: String) {
        self.nodeName = nodeName
        let uptime = (try? FileSystem.readString("/proc/uptime")).flatMap {
            Double($0.split(separator: " ").first ?? "")
        }
        let now = Self.now() / 1_000_000_000
        bootTime = MetaV1.Time(secondsSince1970: now - Int64(uptime ?? 0))
    }

    /// Reads the node and asks the runtime for its pods' stats; keeps the result for the endpoints.
    func sample(_ cri: CRIClient) async {
        let time = Self.now()
        let node = StatsSample.cgroup("/")
        let rate = previousNodeCPU.withLock { previous -> UInt64? in
            defer { previous = (time, node.cpuUsage) }
            guard let last = previous, time > last.time, node.cpuUsage >= last.usage else { return nil }
            return CRIRuntime.CPUReadings.nanoCores(used: node.cpuUsage - last.usage, over: UInt64(time - last.time))
        }
        let pods = (try? await cri.runtime.listPodSandboxStats(Runtime_V1_ListPodSandboxStatsRequest()).stats) ?? []
        latest.withLock { $0 = Snapshot(time: time, node: node, nodeNanoCores: rate, pods: pods) }
    }

    var snapshot: Snapshot? { latest.withLock { $0 } }

    /// Nanoseconds since the epoch (the CRI's timestamps are the same).
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    // MARK: The Summary API

    static func time(_ nanoseconds: Int64) -> JSON {
        .string(MetaV1.Time(secondsSince1970: nanoseconds / 1_000_000_000).rfc3339)
    }

    static func cpu(_ usage: Runtime_V1_CpuUsage) -> JSON {
        var cpu: JSON = [
            "time": time(usage.timestamp), "usageCoreNanoSeconds": .number(String(usage.usageCoreNanoSeconds.value)),
        ]
        if usage.hasUsageNanoCores { cpu["usageNanoCores"] = .number(String(usage.usageNanoCores.value)) }
        return cpu
    }

    static func memory(_ usage: Runtime_V1_MemoryUsage) -> JSON {
        var memory: JSON = [
            "time": time(usage.timestamp), "usageBytes": .number(String(usage.usageBytes.value)),
            "workingSetBytes": .number(String(usage.workingSetBytes.value)),
            "rssBytes": .number(String(usage.rssBytes.value)), "pageFaults": .number(String(usage.pageFaults.value)),
            "majorPageFaults": .number(String(usage.majorPageFaults.value)),
        ]
        if usage.hasAvailableBytes { memory["availableBytes"] = .number(String(usage.availableBytes.value)) }
        return memory
    }

    /// `/stats/summary` as the kubelet answers it (stats/v1alpha1 Summary).
    func summary(pods: [CoreV1.Pod]) -> JSON {
        guard let snapshot else { return ["node": ["nodeName": .string(nodeName)], "pods": []] }
        let memoryTotal = UInt64(max(0, NodeFacts.memoryTotal()))
        var nodeCPU: JSON = [
            "time": Self.time(snapshot.time), "usageCoreNanoSeconds": .number(String(snapshot.node.cpuUsage)),
        ]
        if let rate = snapshot.nodeNanoCores { nodeCPU["usageNanoCores"] = .number(String(rate)) }
        let workingSet = snapshot.node.memoryWorkingSet
        let node: JSON = [
            "nodeName": .string(nodeName), "startTime": .string(bootTime.rfc3339), "cpu": nodeCPU,
            "memory": [
                "time": Self.time(snapshot.time),
                "availableBytes": .number(String(memoryTotal > workingSet ? memoryTotal - workingSet : 0)),
                "usageBytes": .number(String(snapshot.node.memoryRaw)), "workingSetBytes": .number(String(workingSet)),
                "rssBytes": .number(String(snapshot.node.memoryRSS)),
                "pageFaults": .number(String(snapshot.node.pageFaults)),
                "majorPageFaults": .number(String(snapshot.node.majorPageFaults)),
            ],
        ]
        let byUID = Dictionary(pods.map { ($0.metadata.uid ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        var items: [JSON] = []
        for stats in snapshot.pods {
            let labels = stats.attributes.labels
            guard let uid = labels[PodLabels.uid], let pod = byUID[uid] else { continue }
            let started = pod.status.startTime?.rfc3339 ?? bootTime.rfc3339
            var containers: [JSON] = []
            for container in stats.linux.containers where container.hasCpu {
                let name = container.attributes.metadata.name
                let status = pod.status.containerStatuses.first { $0.name == name }
                containers.append([
                    "name": .string(name),
                    "startTime": .string(status?.state.running?.startedAt?.rfc3339 ?? started),
                    "cpu": Self.cpu(container.cpu), "memory": Self.memory(container.memory),
                ])
            }
            var item: JSON = [
                "podRef": [
                    "name": .string(pod.metadata.name ?? ""), "namespace": .string(pod.metadata.namespace ?? ""),
                    "uid": .string(uid),
                ],
                "startTime": .string(started), "containers": .array(containers),
            ]
            if stats.linux.hasCpu { item["cpu"] = Self.cpu(stats.linux.cpu) }
            if stats.linux.hasMemory { item["memory"] = Self.memory(stats.linux.memory) }
            if stats.linux.hasProcess {
                item["process_stats"] = ["process_count": .number(String(stats.linux.process.processCount.value))]
            }
            if stats.linux.hasNetwork {
                let interfaces: [JSON] = stats.linux.network.interfaces.map {
                    [
                        "name": .string($0.name), "rxBytes": .number(String($0.rxBytes.value)),
                        "rxErrors": .number(String($0.rxErrors.value)), "txBytes": .number(String($0.txBytes.value)),
                        "txErrors": .number(String($0.txErrors.value)),
                    ]
                }
                var network: JSON = [
                    "time": Self.time(stats.linux.network.timestamp), "interfaces": .array(interfaces),
                ]
                let eth0 = stats.linux.network.defaultInterface
                network["name"] = .string(eth0.name)
                network["rxBytes"] = .number(String(eth0.rxBytes.value))
                network["txBytes"] = .number(String(eth0.txBytes.value))
                item["network"] = network
            }
            items.append(item)
        }
        return ["node": node, "pods": .array(items)]
    }

    // MARK: /metrics/resource

    /// The kubelet's resource metrics in Prometheus' text format (metrics-server's input).
    func resourceMetrics(pods: [CoreV1.Pod]) -> String {
        guard let snapshot else { return "" }
        let byUID = Dictionary(pods.map { ($0.metadata.uid ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        let millis = snapshot.time / 1_000_000
        func seconds(_ nanoseconds: UInt64) -> String { String(Double(nanoseconds) / 1e9) }
        var containerCPU: [String] = []
        var containerMemory: [String] = []
        var podCPU: [String] = []
        var podMemory: [String] = []
        for stats in snapshot.pods {
            guard let uid = stats.attributes.labels[PodLabels.uid], let pod = byUID[uid] else { continue }
            let podLabels = "namespace=\"\(pod.metadata.namespace ?? "")\",pod=\"\(pod.metadata.name ?? "")\""
            for container in stats.linux.containers where container.hasCpu {
                let labels = "container=\"\(container.attributes.metadata.name)\",\(podLabels)"
                containerCPU.append(
                    "container_cpu_usage_seconds_total{\(labels)} \(seconds(container.cpu.usageCoreNanoSeconds.value)) \(millis)"
                )
                containerMemory.append(
                    "container_memory_working_set_bytes{\(labels)} \(container.memory.workingSetBytes.value) \(millis)")
            }
            if stats.linux.hasCpu {
                podCPU.append(
                    "pod_cpu_usage_seconds_total{\(podLabels)} \(seconds(stats.linux.cpu.usageCoreNanoSeconds.value)) \(millis)"
                )
                podMemory.append(
                    "pod_memory_working_set_bytes{\(podLabels)} \(stats.linux.memory.workingSetBytes.value) \(millis)")
            }
        }
        var text = ""
        func family(_ name: String, _ help: String, _ type: String, _ lines: [String]) {
            text += "# HELP \(name) [STABLE] \(help)\n# TYPE \(name) \(type)\n"
            for line in lines { text += line + "\n" }
        }
        family(
            "container_cpu_usage_seconds_total", "Cumulative cpu time consumed by the container in core-seconds",
            "counter", containerCPU)
        family(
            "container_memory_working_set_bytes", "Current working set of the container in bytes", "gauge",
            containerMemory)
        family(
            "node_cpu_usage_seconds_total", "Cumulative cpu time consumed by the node in core-seconds", "counter",
            ["node_cpu_usage_seconds_total \(seconds(snapshot.node.cpuUsage)) \(millis)"])
        family(
            "node_memory_working_set_bytes", "Current working set of the node in bytes", "gauge",
            ["node_memory_working_set_bytes \(snapshot.node.memoryWorkingSet) \(millis)"])
        family(
            "pod_cpu_usage_seconds_total", "Cumulative cpu time consumed by the pod in core-seconds", "counter", podCPU)
        family("pod_memory_working_set_bytes", "Current working set of the pod in bytes", "gauge", podMemory)
        family(
            "resource_scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", "gauge",
            ["resource_scrape_error 0"])
        return text
    }
}

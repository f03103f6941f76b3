#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthEngine
import BerthKube
import BerthOS
import Foundation
import Synchronization

/// The kubelet's eviction manager: every monitoring interval (10 s) it observes the node's signals —
/// memory.available (capacity less the root cgroup's working set), nodefs and imagefs space and inodes
/// (statvfs), pid.available — against the hard thresholds. A met threshold sets its node condition
/// (MemoryPressure, DiskPressure, PIDPressure), kept for the pressure transition period after it
/// clears; under memory pressure one pod per interval is evicted, ranked as the kubelet ranks them
/// (pods using more memory than they request first, then lower priority, then the most above their
/// request). Critical pods (static, mirror, system-critical priority) are never evicted. While a
/// condition holds, new pods are refused as the kubelet's admission refuses them. Disk pressure is
/// reported but reclaimed by image garbage collection only: no pod is evicted for it.
final class EvictionManager: Sendable {
    let thresholds: [EvictionThreshold]
    let transitionPeriod: Duration
    private let lastMet = Mutex<[CoreV1.NodeConditionType: ContinuousClock.Instant]>([:])

    init(thresholds: [EvictionThreshold], transitionPeriod: Duration) {
        self.thresholds = thresholds
        self.transitionPeriod = transitionPeriod
    }

    /// How much of a signal's resource is available, out of what capacity.
    struct Observation: Sendable {
        var available: Int64
        var capacity: Int64
    }

    /// The conditions under pressure: a threshold met now or within the transition period.
    var pressures: Set<CoreV1.NodeConditionType> {
        let now = ContinuousClock.now
        return lastMet.withLock { Set($0.filter { now - $0.value < transitionPeriod }.keys) }
    }

    func recordMet(_ conditions: Set<CoreV1.NodeConditionType>) {
        let now = ContinuousClock.now
        lastMet.withLock { for condition in conditions { $0[condition] = now } }
    }

    // MARK: Observing the node

    static func observe(
        _ signal: EvictionThreshold.Signal, memoryCapacity: Int64, rootDirectory: String, imageFilesystem: String?
    ) -> Observation? {
        switch signal {
        case .memoryAvailable:
            return Observation(available: memoryCapacity - rootWorkingSet(), capacity: memoryCapacity)
        case .nodefsAvailable: return space(of: rootDirectory, inodes: false)
        case .nodefsInodesFree: return space(of: rootDirectory, inodes: true)
        case .imagefsAvailable: return imageFilesystem.flatMap { space(of: $0, inodes: false) }
        case .imagefsInodesFree: return imageFilesystem.flatMap { space(of: $0, inodes: true) }
        case .pidAvailable:
            let maximum = (try? FileSystem.readString("/proc/sys/kernel/pid_max")).flatMap {
                Int64($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            // /proc/loadavg's fourth field is running/total tasks: the count sysinfo's procs gives.
            let tasks = (try? FileSystem.readString("/proc/loadavg"))?.split(separator: " ").dropFirst(3).first?
                .split(separator: "/").last.flatMap { Int64($0) }
            guard let maximum, let tasks else { return nil }
            return Observation(available: maximum - tasks, capacity: maximum)
        }
    }

    /// The machine's memory working set as cAdvisor counts it for the root cgroup (usage less inactive
    /// file pages); where the root cgroup keeps no memory counters (cgroup v2), /proc/meminfo's.
    static func rootWorkingSet() -> Int64 {
        let sample = StatsSample.cgroup("/")
        if sample.memoryWorkingSet > 0 { return Int64(clamping: sample.memoryWorkingSet) }
        return NodeFacts.meminfo("MemTotal") - NodeFacts.memoryAvailable()
    }

    static func space(of path: String, inodes: Bool) -> Observation? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        if inodes { return Observation(available: Int64(stats.f_favail), capacity: Int64(stats.f_files)) }
        let block = Int64(stats.f_frsize)
        return Observation(available: Int64(stats.f_bavail) * block, capacity: Int64(stats.f_blocks) * block)
    }

    // MARK: Choosing a pod

    /// A pod that may be evicted, with its memory use.
    struct Candidate {
        var pod: CoreV1.Pod
        var usage: Int64
        var containerUsage: [String: Int64]
        var request: Int64 { EvictionManager.memoryRequest(pod) }
    }

    /// The kubelet's rankMemoryPressure: exceeding requests first, then lower priority, then the larger
    /// use above the request.
    static func rankedForMemory(_ candidates: [Candidate]) -> [Candidate] {
        candidates.sorted { a, b in
            let aExceeds = a.usage > a.request, bExceeds = b.usage > b.request
            if aExceeds != bExceeds { return aExceeds }
            let aPriority = a.pod.spec.priority ?? 0, bPriority = b.pod.spec.priority ?? 0
            if aPriority != bPriority { return aPriority < bPriority }
            return a.usage - a.request > b.usage - b.request
        }
    }

    /// The pod's memory request: its containers' summed, or its largest init container's if larger.
    static func memoryRequest(_ pod: CoreV1.Pod) -> Int64 {
        func request(_ container: CoreV1.Container) -> Int64 {
            container.resources.requests["memory"]?.value ?? 0
        }
        let containers = pod.spec.containers.reduce(0) { $0 + request($1) }
        return max(containers, pod.spec.initContainers.map(request).max() ?? 0)
    }

    /// The kubelet's IsCriticalPod, the pods it never evicts: static and mirror pods, and system-critical
    /// priorities.
    static func isCritical(_ pod: CoreV1.Pod) -> Bool {
        NodeAgent.isStaticOrMirror(pod) || (pod.spec.priority ?? 0) >= 2_000_000_000
    }

    /// The kubelet's eviction message: the resource, the threshold and what was left, then each
    /// container using more than it requests.
    static func message(threshold: EvictionThreshold, observed: Observation, candidate: Candidate) -> String {
        var text =
            "The node was low on resource: memory. Threshold quantity: \(quantity(threshold)), available: \(binarySI(observed.available)). "
        for container in candidate.pod.spec.containers {
            let usage = candidate.containerUsage[container.name] ?? 0
            let request = container.resources.requests["memory"]
            if usage > request?.value ?? 0 {
                text +=
                    "Container \(container.name) was using \(binarySI(usage)), request is \(request?.string ?? "0"), has larger consumption of memory. "
            }
        }
        return text
    }

    static func quantity(_ threshold: EvictionThreshold) -> String {
        switch threshold.amount {
        case .quantity(let bytes): return binarySI(bytes)
        case .fraction(let fraction): return "\(Int((fraction * 100).rounded()))%"
        }
    }

    /// A byte count as Go's BinarySI quantity writes it (`1536Mi`, `2Gi`, `1000`).
    static func binarySI(_ bytes: Int64) -> String {
        guard bytes >= 1024 else { return String(bytes) }
        var value = bytes
        var index = 0
        let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
        while value % 1024 == 0 && index < suffixes.count - 1 {
            value /= 1024
            index += 1
        }
        return "\(value)\(suffixes[index])"
    }

    /// The kubelet's eviction admission: with no pressure every pod; under memory pressure alone every
    /// pod but BestEffort ones (unless they tolerate the memory-pressure taint); otherwise only critical
    /// pods. Nil admits; else the refusal's message.
    func refusal(_ pod: CoreV1.Pod) -> String? {
        let conditions = pressures
        guard !conditions.isEmpty, !Self.isCritical(pod) else { return nil }
        if conditions == [.memoryPressure] {
            let tolerations: [CoreV1.Toleration] = pod.spec.tolerations
            let tolerates = tolerations.contains { (toleration: CoreV1.Toleration) -> Bool in
                let key = toleration.key ?? ""
                let anyKey = key.isEmpty && toleration.operator == CoreV1.TolerationOperator.opExists
                let effect = toleration.effect
                return (key == "node.kubernetes.io/memory-pressure" || anyKey)
                    && (effect == nil || effect == CoreV1.TaintEffect.noSchedule)
            }
            if PodQOS.of(pod) != .bestEffort || tolerates { return nil }
        }
        let names = conditions.map(\.rawValue).sorted().joined(separator: " ")
        return "The node had condition: [\(names)]. "
    }
}

// MARK: The agent's side

extension NodeAgent {
    /// The eviction loop: one check every monitoring interval until cancelled.
    func manageEvictions() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.evictionMonitoringInterval)
            if let evicted = await checkEvictions() { await awaitCleanup(ofEvicted: evicted) }
        }
    }

    /// The kubelet's waitForPodsCleanup: after an eviction the next pass waits until the evicted pod's
    /// containers have stopped (polled every second, at most 30 s), so that the memory they free is seen
    /// before another pod is chosen — else a second pod goes for the first one's use.
    func awaitCleanup(ofEvicted uid: String) async {
        var request = Runtime_V1_ListContainersRequest()
        request.filter.labelSelector = [PodConfigs.podUIDLabel: uid]
        request.filter.state.state = .containerRunning
        let deadline = ContinuousClock.now + .seconds(30)
        while !Task.isCancelled, ContinuousClock.now < deadline {
            if let running = try? await cri.runtime.listContainers(request).containers, running.isEmpty { return }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// One pass: signals observed, conditions updated (the Node's status posted when they change), and
    /// under memory pressure one pod evicted (its UID returned).
    @discardableResult
    func checkEvictions() async -> String? {
        let before = eviction.pressures
        var imageFilesystem: String?
        if eviction.thresholds.contains(where: { $0.signal == .imagefsAvailable || $0.signal == .imagefsInodesFree }) {
            imageFilesystem = try? await cri.images.imageFsInfo(Runtime_V1_ImageFsInfoRequest())
                .imageFilesystems.first?.fsID.mountpoint
        }
        var memory: (EvictionThreshold, EvictionManager.Observation)?
        var met: Set<CoreV1.NodeConditionType> = []
        for threshold in eviction.thresholds {
            guard
                let observed = EvictionManager.observe(
                    threshold.signal, memoryCapacity: facts.memoryBytes, rootDirectory: configuration.rootDirectory,
                    imageFilesystem: imageFilesystem),
                observed.available < threshold.minimum(capacity: observed.capacity)
            else { continue }
            met.insert(threshold.signal.condition)
            if threshold.signal == .memoryAvailable { memory = (threshold, observed) }
        }
        eviction.recordMet(met)
        let after = eviction.pressures
        if after != before {
            logger.warning(
                "node pressure changed", metadata: ["conditions": "\(after.map(\.rawValue).sorted())"])
            await postStatus()
        }
        guard let (threshold, observed) = memory else { return nil }
        return await evictForMemory(threshold: threshold, observed: observed)
    }

    /// Evicts the first-ranked pod that may be evicted, if any, and returns its UID.
    func evictForMemory(threshold: EvictionThreshold, observed: EvictionManager.Observation) async -> String? {
        guard let stats = try? await cri.runtime.listPodSandboxStats(Runtime_V1_ListPodSandboxStatsRequest()).stats
        else { return nil }
        var byUID: [String: Runtime_V1_PodSandboxStats] = [:]
        for stat in stats { byUID[stat.attributes.metadata.uid] = stat }
        var candidates: [EvictionManager.Candidate] = []
        for pod in runningPods {
            guard let uid = pod.metadata.uid, let stat = byUID[uid], !EvictionManager.isCritical(pod),
                pod.status.phase != .succeeded, pod.status.phase != .failed, pod.metadata.deletionTimestamp == nil,
                await state.evictionMessage(podUID: uid) == nil
            else { continue }
            var containerUsage: [String: Int64] = [:]
            for container in stat.linux.containers {
                containerUsage[container.attributes.metadata.name] = Int64(
                    clamping: container.memory.workingSetBytes.value)
            }
            let podUsage =
                stat.linux.hasMemory
                ? Int64(clamping: stat.linux.memory.workingSetBytes.value) : containerUsage.values.reduce(0, +)
            candidates.append(.init(pod: pod, usage: podUsage, containerUsage: containerUsage))
        }
        guard let victim = EvictionManager.rankedForMemory(candidates).first else { return nil }
        let message = EvictionManager.message(threshold: threshold, observed: observed, candidate: victim)
        logger.warning(
            "evicting a pod for memory", metadata: ["pod": "\(victim.pod.cacheKey)", "message": "\(message)"])
        recorder.record(victim.pod, type: "Warning", reason: "Evicted", message: message)
        await state.markEvicted(podUID: victim.pod.metadata.uid ?? "", message: message)
        await queue.add(victim.pod.cacheKey)
        return victim.pod.metadata.uid
    }
}

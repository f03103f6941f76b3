import BerthAPI
import BerthKube
import Foundation
import Logging

/// Watches node heartbeats (the node's Lease in kube-node-lease, and its Ready condition) and acts when
/// they stop: after `nodeMonitorGracePeriod` the node's conditions go Unknown ("Kubelet stopped posting
/// node status."), its pods are marked not ready, and it gets the unreachable (or not-ready) taints,
/// NoSchedule and NoExecute. Pods that do not tolerate a NoExecute taint are evicted — at once, or
/// after their toleration's tolerationSeconds (new pods get 5 s by default, see defaultTolerationSeconds)
/// — so their controllers replace them elsewhere. Heartbeat ages are measured on this server's clock
/// from when a change was observed, so clock skew between nodes and server does not matter.
struct NodeLifecycleController: ControlLoop {
    let name = "node-lifecycle-controller"
    static let unreachable = "node.kubernetes.io/unreachable"
    static let notReady = "node.kubernetes.io/not-ready"
    static let unschedulable = "node.kubernetes.io/unschedulable"
    /// Pods by the node they are bound to.
    static let nodeIndex = "node"
    let client: any KubeClient
    let nodes: Informer<CoreV1.Node>
    let leases: Informer<CoordinationV1.Lease>
    let pods: Informer<CoreV1.Pod>
    let events: ComponentRecorder
    let logger: Logger
    let grace: Duration
    let period: Duration
    let seen = Observations()

    final class Observations: @unchecked Sendable {
        let lock = NSLock()
        /// node → (last heartbeat text seen, when it changed on our clock)
        var heartbeats: [String: (String, ContinuousClock.Instant)] = [:]
        var evicted: Set<String> = []
    }

    init(_ ctx: ControllerContext) {
        client = ctx.client("node-controller")
        nodes = ctx.informers.informer(CoreV1.Node.self)
        leases = ctx.informers.informer(CoordinationV1.Lease.self)
        pods = ctx.informers.informer(CoreV1.Pod.self)
        events = ctx.events.component("node-controller")
        logger = ctx.logger
        grace = ctx.config.nodeMonitorGracePeriod
        period = ctx.config.nodeMonitorPeriod
        pods.addIndex(Self.nodeIndex) { [$0.spec.nodeName ?? ""] }
    }

    func run() async {
        while !Task.isCancelled {
            let started = ContinuousClock.now
            await monitorAll()
            let spent = ContinuousClock.now - started
            if spent < period { try? await Task.sleep(for: period - spent) }
        }
    }

    /// One pass over every node (what `run` does each period).
    func monitorAll() async {
        for node in nodes.list() {
            do { try await monitor(node) } catch {
                logger.debug(
                    "node monitor failed", metadata: ["node": "\(node.metadata.name ?? "")", "error": "\(error)"])
            }
        }
        forgetGoneEvictions()
    }

    /// Evictions are remembered (key|uid) so a pod is evicted once; once the pod is gone — or replaced
    /// under the same name — the entry goes too, so the set stays as small as the evictions in flight.
    func forgetGoneEvictions() {
        let pods = self.pods
        seen.lock.withLock {
            seen.evicted = seen.evicted.filter { entry in
                guard let bar = entry.lastIndex(of: "|"), let pod = pods.get(String(entry[..<bar])) else {
                    return false
                }
                return pod.metadata.uid == String(entry[entry.index(after: bar)...])
            }
        }
    }

    static func condition(_ node: CoreV1.Node, _ type: CoreV1.NodeConditionType) -> CoreV1.NodeCondition? {
        node.status.conditions.first { $0.type == type }
    }

    /// The age of the node's last heartbeat on our clock.
    func heartbeatAge(_ node: CoreV1.Node, name: String) -> Duration {
        let lease = leases.get(namespace: "kube-node-lease", name: name)
        let beat =
            (lease?.spec.renewTime?.rfc3339 ?? "") + "|"
            + (Self.condition(node, .ready)?.lastHeartbeatTime?.rfc3339 ?? "")
        let now = ContinuousClock.now
        return seen.lock.withLock {
            if let (last, at) = seen.heartbeats[name], last == beat { return now - at }
            seen.heartbeats[name] = (beat, now)
            return .zero
        }
    }

    func monitor(_ node: CoreV1.Node) async throws {
        let name = node.metadata.name ?? ""
        var current = node
        let age = heartbeatAge(node, name: name)
        let ready = Self.condition(node, .ready)?.status
        let stale = age > grace && ready != .unknown && ready != nil
        if stale {
            // The node stopped posting: every condition becomes Unknown.
            let now = Self.time(Date())
            for i in current.status.conditions.indices {
                current.status.conditions[i].status = .unknown
                current.status.conditions[i].reason = "NodeStatusUnknown"
                current.status.conditions[i].message = "Kubelet stopped posting node status."
                current.status.conditions[i].lastTransitionTime = now
            }
            current = try await client.updateStatus(current)
            events.record(node, reason: "NodeNotReady", message: "Node \(name) status is now: NodeNotReady")
            logger.info("node not ready", metadata: ["node": "\(name)", "heartbeat-age": "\(age)"])
            await markPodsNotReady(on: name)
        }
        // Most nodes, most of the time: Ready, schedulable and untainted — no taint to add or remove and
        // nothing to evict (at 10,000 nodes the full pass below was a tenth of a core).
        if !stale && ready == .true && node.spec.taints.isEmpty && node.spec.unschedulable != true {
            return
        }
        try await reconcileTaints(&current, name: name)
        await evict(current, name: name)
    }

    /// Desired condition taints: unreachable (Unknown) or not-ready (False), both effects; unschedulable.
    func reconcileTaints(_ node: inout CoreV1.Node, name: String) async throws {
        let ready = Self.condition(node, .ready)?.status
        var want: [(key: String, effect: CoreV1.TaintEffect)] = []
        if ready == .unknown {
            want = [(Self.unreachable, .noSchedule), (Self.unreachable, .noExecute)]
        } else if ready == .false {
            want = [(Self.notReady, .noSchedule), (Self.notReady, .noExecute)]
        }
        if node.spec.unschedulable == true { want.append((Self.unschedulable, .noSchedule)) }
        let managed: Set<String> = [Self.unreachable, Self.notReady, Self.unschedulable]
        let taints = node.spec.taints
        var kept = taints.filter { taint in
            !managed.contains(taint.key) || want.contains { $0.key == taint.key && $0.effect == taint.effect }
        }
        for (key, effect) in want where !kept.contains(where: { $0.key == key && $0.effect == effect }) {
            var taint = CoreV1.Taint(key: key, effect: effect)
            if effect == .noExecute { taint.timeAdded = Self.time(Date()) }
            kept.append(taint)
        }
        if kept == taints { return }
        node.spec.taints = kept
        node = try await client.update(node)
    }

    func markPodsNotReady(on node: String) async {
        for pod in pods.byIndex(Self.nodeIndex, node) where pod.isActive && pod.isReady {
            var notReady = pod
            for i in notReady.status.conditions.indices where notReady.status.conditions[i].type == .ready {
                notReady.status.conditions[i].status = .false
                notReady.status.conditions[i].lastTransitionTime = Self.time(Date())
            }
            _ = try? await client.updateStatus(notReady)
        }
    }

    /// The NoExecute taint manager: evicts the pods that do not tolerate the node's NoExecute taints, or
    /// whose toleration has run out.
    func evict(_ node: CoreV1.Node, name: String) async {
        let noExecute = node.spec.taints.filter { $0.effect == .noExecute }
        if noExecute.isEmpty { return }
        let now = Date()
        for pod in pods.byIndex(Self.nodeIndex, name) where pod.isActive {
            var evictAt: Date? = now
            var tolerated = true
            var deadline: Date?
            for taint in noExecute {
                let matching = pod.spec.tolerations.filter { TolerationMatch.tolerates($0, taint) }
                if matching.isEmpty {
                    tolerated = false
                    break
                }
                // The shortest tolerationSeconds among those that match; none set means forever.
                let secs = matching.compactMap(\.tolerationSeconds)
                if secs.count == matching.count, let s = secs.min() {
                    let added = taint.timeAdded.map { Date(timeIntervalSince1970: TimeInterval($0.secondsSince1970)) }
                    let d = (added ?? now).addingTimeInterval(Double(max(s, 0)))
                    deadline = deadline.map { min($0, d) } ?? d
                }
            }
            if tolerated { evictAt = deadline }
            guard let at = evictAt, at <= now else { continue }
            let key = pod.cacheKey
            let entry = key + "|" + (pod.metadata.uid ?? "")
            let first = seen.lock.withLock { seen.evicted.insert(entry).inserted }
            guard first else { continue }
            events.record(pod, reason: "TaintManagerEviction", message: "Marking for deletion Pod \(key)")
            do {
                try await client.delete(
                    CoreV1.Pod.self, namespace: pod.metadata.namespace, name: pod.metadata.name ?? "",
                    uid: pod.metadata.uid)
            } catch {
                _ = seen.lock.withLock { seen.evicted.remove(entry) }
            }
        }
    }

    /// A timestamp as the API writes it (whole seconds).
    static func time(_ date: Date) -> MetaV1.Time {
        MetaV1.Time(secondsSince1970: Int64(date.timeIntervalSince1970.rounded(.down)))
    }
}

extension NodeLifecycleController {
    /// A condition of a node held as a JSON tree (what tests reading nodes through the JSON client have),
    /// decoded through the typed model so both read a condition the same way.
    static func condition(_ node: JSON, _ type: String) -> JSON? {
        guard let typed = try? CoreV1.Node(kubeJSON: node) else { return nil }
        return condition(typed, CoreV1.NodeConditionType(rawValue: type))?.kubeJSON()
    }
}

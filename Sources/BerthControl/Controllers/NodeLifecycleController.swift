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
    let client: LocalClient
    let nodes: UntypedInformer
    let leases: UntypedInformer
    let pods: UntypedInformer
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
        client = ctx.localClient("node-controller")
        nodes = ctx.informers.informer(Registry.nodes)
        leases = ctx.informers.informer(Registry.leases)
        pods = ctx.informers.informer(Registry.pods)
        events = ctx.events.component("node-controller")
        logger = ctx.logger
        grace = ctx.config.nodeMonitorGracePeriod
        period = ctx.config.nodeMonitorPeriod
        pods.addIndex("node") { [$0["spec"]["nodeName"].string ?? ""] }
    }

    func run() async {
        while !Task.isCancelled {
            let started = ContinuousClock.now
            for node in nodes.list() {
                do { try await monitor(node) } catch {
                    logger.debug(
                        "node monitor failed",
                        metadata: ["node": "\(node["metadata"]["name"].string ?? "")", "error": "\(error)"])
                }
            }
            forgetGoneEvictions()
            let spent = ContinuousClock.now - started
            if spent < period { try? await Task.sleep(for: period - spent) }
        }
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
                return pod["metadata"]["uid"].string == String(entry[entry.index(after: bar)...])
            }
        }
    }

    static func condition(_ node: JSON, _ type: String) -> JSON? {
        (node["status"]["conditions"].array ?? []).first { $0["type"].string == type }
    }

    /// The age of the node's last heartbeat on our clock.
    func heartbeatAge(_ node: JSON, name: String) -> Duration {
        let lease = leases.get(namespace: "kube-node-lease", name: name)
        let beat =
            (lease?["spec"]["renewTime"].string ?? "") + "|"
            + (Self.condition(node, "Ready")?["lastHeartbeatTime"].string ?? "")
        let now = ContinuousClock.now
        return seen.lock.withLock {
            if let (last, at) = seen.heartbeats[name], last == beat { return now - at }
            seen.heartbeats[name] = (beat, now)
            return .zero
        }
    }

    func monitor(_ node: JSON) async throws {
        let name = node["metadata"]["name"].string ?? ""
        var current = node
        let age = heartbeatAge(node, name: name)
        let ready = Self.condition(node, "Ready")?["status"].string
        let stale = age > grace && ready != "Unknown" && ready != nil
        if stale {
            // The node stopped posting: every condition becomes Unknown.
            var conds = node["status"]["conditions"].array ?? []
            let now = JSON.string(APITime.string())
            for i in conds.indices {
                conds[i]["status"] = "Unknown"
                conds[i]["reason"] = "NodeStatusUnknown"
                conds[i]["message"] = "Kubelet stopped posting node status."
                conds[i]["lastTransitionTime"] = now
            }
            current["status"]["conditions"] = .array(conds)
            current = try await client.updateStatus(Registry.nodes, current)
            events.record(node, reason: "NodeNotReady", message: "Node \(name) status is now: NodeNotReady")
            logger.info("node not ready", metadata: ["node": "\(name)", "heartbeat-age": "\(age)"])
            await markPodsNotReady(on: name)
        }
        // Most nodes, most of the time: Ready, schedulable and untainted — no taint to add or remove and
        // nothing to evict (at 10,000 nodes the full pass below was a tenth of a core).
        if !stale && ready == "True" && (node["spec"]["taints"].array ?? []).isEmpty
            && node["spec"]["unschedulable"].bool != true
        {
            return
        }
        try await reconcileTaints(&current, name: name)
        await evict(current, name: name)
    }

    /// Desired condition taints: unreachable (Unknown) or not-ready (False), both effects; unschedulable.
    func reconcileTaints(_ node: inout JSON, name: String) async throws {
        let ready = Self.condition(node, "Ready")?["status"].string
        var want: [(String, String)] = []
        if ready == "Unknown" {
            want = [(Self.unreachable, "NoSchedule"), (Self.unreachable, "NoExecute")]
        } else if ready == "False" {
            want = [(Self.notReady, "NoSchedule"), (Self.notReady, "NoExecute")]
        }
        if node["spec"]["unschedulable"].bool == true { want.append((Self.unschedulable, "NoSchedule")) }
        let managed: Set<String> = [Self.unreachable, Self.notReady, Self.unschedulable]
        let taints = node["spec"]["taints"].array ?? []
        var kept = taints.filter { t in
            let k = t["key"].string ?? ""
            return !managed.contains(k) || want.contains { $0.0 == k && $0.1 == t["effect"].string }
        }
        for (k, effect) in want where !kept.contains(where: { $0["key"].string == k && $0["effect"].string == effect })
        {
            var t: JSON = ["key": .string(k), "effect": .string(effect)]
            if effect == "NoExecute" { t["timeAdded"] = .string(APITime.string()) }
            kept.append(t)
        }
        if kept == taints { return }
        node["spec"]["taints"] = kept.isEmpty ? .null : .array(kept)
        node = try await client.update(Registry.nodes, node)
    }

    func markPodsNotReady(on node: String) async {
        for pod in pods.byIndex("node", node) where Objects.isActive(pod) && Objects.isReady(pod) {
            var p = pod
            let conds = (p["status"]["conditions"].array ?? []).map { c -> JSON in
                guard c["type"].string == "Ready" else { return c }
                var c = c
                c["status"] = "False"; c["lastTransitionTime"] = .string(APITime.string())
                return c
            }
            p["status"]["conditions"] = .array(conds)
            _ = try? await client.updateStatus(Registry.pods, p)
        }
    }

    /// The NoExecute taint manager: evicts the pods that do not tolerate the node's NoExecute taints, or
    /// whose toleration has run out.
    func evict(_ node: JSON, name: String) async {
        let noExecute = (node["spec"]["taints"].array ?? []).filter { $0["effect"].string == "NoExecute" }
        if noExecute.isEmpty { return }
        let now = Date()
        for pod in pods.byIndex("node", name) where Objects.isActive(pod) {
            // Through the typed model until this controller reads typed pods.
            let tolerations = (pod["spec"]["tolerations"].array ?? []).map {
                Toleration((try? CoreV1.Toleration(kubeJSON: $0)) ?? CoreV1.Toleration())
            }
            var evictAt: Date? = now
            var tolerated = true
            var deadline: Date?
            for t in noExecute {
                let taint = Taint((try? CoreV1.Taint(kubeJSON: t)) ?? CoreV1.Taint())
                let matching = (pod["spec"]["tolerations"].array ?? []).enumerated().filter {
                    tolerations[$0.offset].tolerates(taint)
                }.map(\.element)
                if matching.isEmpty { tolerated = false; break }
                // The shortest tolerationSeconds among those that match; none set means forever.
                let secs = matching.compactMap { $0["tolerationSeconds"].int }
                if secs.count == matching.count, let s = secs.min() {
                    let added = APITime.parse(t["timeAdded"].string) ?? now
                    let d = added.addingTimeInterval(Double(max(s, 0)))
                    deadline = deadline.map { min($0, d) } ?? d
                }
            }
            if tolerated { evictAt = deadline }
            guard let at = evictAt, at <= now else { continue }
            let key = UntypedInformer.key(pod)
            let first = seen.lock.withLock {
                seen.evicted.insert(key + "|" + (pod["metadata"]["uid"].string ?? "")).inserted
            }
            guard first else { continue }
            events.record(pod, reason: "TaintManagerEviction", message: "Marking for deletion Pod \(key)")
            do {
                try await client.delete(
                    Registry.pods, namespace: pod["metadata"]["namespace"].string,
                    name: pod["metadata"]["name"].string ?? "",
                    uid: pod["metadata"]["uid"].string)
            } catch {
                _ = seen.lock.withLock { seen.evicted.remove(key + "|" + (pod["metadata"]["uid"].string ?? "")) }
            }
        }
    }
}

import BerthAPI
import Foundation

extension Scheduler {
    enum Decision { case none, bound(PodInfo, String), unschedulable(PodInfo, String) }

    /// Nodes, the pods placed on them, and the scheduling queues — one lock around all of it. Informer
    /// handlers update it; the scheduling loop reads it and assumes its decisions into it.
    final class Cache: @unchecked Sendable {
        let schedulerName: String
        let percentage: Int
        let lock = NSLock()
        var nodes: [String: NodeInfo] = [:]
        /// Nodes that exist, in a stable order (the search start rotates over it).
        var nodeList: [NodeInfo] = []
        var nodeListDirty = false
        var nextStart = 0
        /// Placed pods with required anti-affinity (checked against every incoming pod).
        var antiAffinityPods: [String: (node: String, pod: PlacedPod)] = [:]
        /// Where each placed pod is.
        var placed: [String: String] = [:]

        /// Latest version of every pod waiting for a node.
        var pending: [String: PodInfo] = [:]
        var active = PodHeap()
        var queued: Set<String> = []
        struct Attempt { var count: Int; var last: ContinuousClock.Instant }
        var unschedulable: [String: Attempt] = [:]
        var backoff: [(key: String, until: ContinuousClock.Instant)] = []
        var inFlight: Set<String> = []
        var lastFlush = ContinuousClock.now
        var waiter: CheckedContinuation<Void, Never>?
        var seq: Int64 = 0

        init(schedulerName: String, percentage: Int) { self.schedulerName = schedulerName; self.percentage = percentage }

        // MARK: informer side

        func nodeChanged(_ e: InformerEvent) {
            let w = lock.withLock { () -> CheckedContinuation<Void, Never>? in
                let obj = e.object
                let name = obj["metadata"]["name"].string ?? ""
                if case .deleted = e {
                    nodes[name]?.exists = false
                    nodeListDirty = true
                    return nil
                }
                let info = nodes[name] ?? NodeInfo(name: name)
                let before = (info.exists, info.labels, info.allocatable, info.taints, info.unschedulable, info.ready)
                info.update(from: obj)
                if nodes[name] == nil { nodes[name] = info }
                let changed = before.0 != info.exists || before.1 != info.labels || before.2 != info.allocatable
                    || before.3 != info.taints || before.4 != info.unschedulable || before.5 != info.ready
                if before.0 != info.exists { nodeListDirty = true }
                return changed ? moveAllUnschedulable(onlyAffinity: false) : nil
            }
            w?.resume()
        }

        func podChanged(_ e: InformerEvent) {
            let w = lock.withLock { () -> CheckedContinuation<Void, Never>? in
                let info = PodInfo(e.object)
                let key = info.key
                if case .deleted = e {
                    forgetPending(key)
                    unplace(key)
                    return moveAllUnschedulable(onlyAffinity: false)
                }
                if info.nodeName.isEmpty {
                    if info.terminating || info.finished || info.schedulerName != schedulerName {
                        forgetPending(key)
                        return nil
                    }
                    pending[key] = info
                    // A pod waiting as unschedulable whose spec or labels changed (tolerations added, a
                    // selector relaxed) is worth another try at once.
                    if case .updated(let old, let new) = e, unschedulable[key] != nil,
                       old["spec"] != new["spec"] || old["metadata"]["labels"] != new["metadata"]["labels"] {
                        unschedulable[key] = nil
                    }
                    if inFlight.contains(key) || queued.contains(key) || unschedulable[key] != nil
                        || backoff.contains(where: { $0.key == key }) { return nil }
                    return enqueue(info)
                }
                // Bound: it occupies its node (until it finishes).
                forgetPending(key)
                if info.finished { unplace(key); return moveAllUnschedulable(onlyAffinity: false) }
                let isNew = placed[key] == nil
                place(key, info, on: info.nodeName)
                return isNew ? moveAllUnschedulable(onlyAffinity: true) : nil
            }
            w?.resume()
        }

        private func forgetPending(_ key: String) {
            pending[key] = nil
            unschedulable[key] = nil
            queued.remove(key)
        }

        func place(_ key: String, _ info: PodInfo, on node: String) {
            if let old = placed[key], old != node { nodes[old]?.remove(key) }
            let n = nodes[node] ?? { let n = NodeInfo(name: node); nodes[node] = n; return n }()
            let p = PlacedPod(namespace: info.namespace, labels: info.labels, requests: info.requests, hostPorts: info.hostPorts,
                              antiAffinity: info.antiAffinity)
            n.add(key, p)
            placed[key] = node
            if !info.antiAffinity.isEmpty { antiAffinityPods[key] = (node, p) } else { antiAffinityPods[key] = nil }
        }
        func unplace(_ key: String) {
            if let node = placed.removeValue(forKey: key) { nodes[node]?.remove(key) }
            antiAffinityPods[key] = nil
        }

        /// Called with the lock held; returns the loop's continuation to resume (outside the lock).
        private func enqueue(_ info: PodInfo) -> CheckedContinuation<Void, Never>? {
            seq += 1
            active.push(.init(key: info.key, priority: info.priority, seq: seq))
            queued.insert(info.key)
            defer { waiter = nil }
            return waiter
        }

        /// A change that may let unschedulable pods fit: they go back to the queue (after their back-off).
        private func moveAllUnschedulable(onlyAffinity: Bool) -> CheckedContinuation<Void, Never>? {
            if unschedulable.isEmpty { return nil }
            let now = ContinuousClock.now
            var moved = false
            for (key, attempt) in unschedulable {
                guard let info = pending[key] else { unschedulable[key] = nil; continue }
                if onlyAffinity && !info.hasPodAffinity { continue }
                unschedulable[key] = nil
                let until = attempt.last + backoffDuration(attempt.count)
                if until > now { backoff.append((key, until)) } else {
                    seq += 1; active.push(.init(key: key, priority: info.priority, seq: seq)); queued.insert(key); moved = true
                }
            }
            guard moved else { return nil }
            defer { waiter = nil }
            return waiter
        }

        func backoffDuration(_ attempts: Int) -> Duration { .milliseconds(min(1000 << min(max(attempts - 1, 0), 4), 10_000)) }

        // MARK: loop side

        func waitForWork(timeout: Duration) async {
            let timer = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                let w = self?.lock.withLock { () -> CheckedContinuation<Void, Never>? in defer { self?.waiter = nil }; return self?.waiter }
                w?.resume()
            }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = lock.withLock { () -> Bool in
                    if !active.isEmpty || waiter != nil { return true }
                    waiter = c
                    return false
                }
                if ready { c.resume() }
            }
            timer.cancel()
        }

        /// Up to `n` keys to schedule, highest priority first; expired back-offs rejoin first.
        func popBatch(_ n: Int) -> [String] {
            lock.withLock {
                let now = ContinuousClock.now
                if !backoff.isEmpty {
                    var rest: [(key: String, until: ContinuousClock.Instant)] = []
                    for b in backoff {
                        if b.until <= now, let info = pending[b.key] {
                            seq += 1; active.push(.init(key: b.key, priority: info.priority, seq: seq)); queued.insert(b.key)
                        } else if b.until > now { rest.append(b) }
                    }
                    backoff = rest
                }
                // Unschedulable pods are retried at least every 30 s even without a cluster event.
                if now - lastFlush > .seconds(30) {
                    lastFlush = now
                    for (key, a) in unschedulable where now - a.last > .seconds(30) {
                        unschedulable[key] = nil
                        if let info = pending[key] { seq += 1; active.push(.init(key: key, priority: info.priority, seq: seq)); queued.insert(key) }
                    }
                }
                var out: [String] = []
                while out.count < n, let item = active.pop() {
                    guard queued.remove(item.key) != nil else { continue }
                    out.append(item.key)
                }
                return out
            }
        }

        /// kube-scheduler's numFeasibleNodesToFind: all nodes below 100, else an adaptive share
        /// (50% minus 1% per 125 nodes, at least 5%), never fewer than 100.
        func feasibleToFind(_ total: Int) -> Int {
            if total < 100 { return total }
            var pct = percentage
            if pct <= 0 { pct = max(5, 50 - total / 125) }
            if pct >= 100 { return total }
            return max(100, total * pct / 100)
        }

        func scheduleOne(_ key: String) -> Decision {
            lock.withLock {
                guard let pod = pending[key], !inFlight.contains(key) else { return .none }
                if nodeListDirty {
                    nodeList = nodes.values.filter(\.exists).sorted { $0.name < $1.name }
                    nodes = nodes.filter { $0.value.exists || !$0.value.pods.isEmpty }
                    nodeListDirty = false
                    nextStart = 0
                }
                let total = nodeList.count
                if total == 0 { return fail(pod, "0/0 nodes are available: no nodes available to schedule pods.") }
                let state = prepare(pod)
                let want = feasibleToFind(total)
                var feasible: [NodeInfo] = []
                feasible.reserveCapacity(min(want, 256))
                var reasons: [String: Int] = [:]
                var i = 0
                let start = nextStart % total
                while i < total && feasible.count < want {
                    let node = nodeList[(start + i) % total]
                    i += 1
                    if let why = filter(pod, node, state) {
                        for r in why { reasons[r, default: 0] += 1 }
                    } else {
                        feasible.append(node)
                    }
                }
                nextStart = (start + i) % total
                guard !feasible.isEmpty else {
                    let parts = reasons.map { "\($0.value) \($0.key)" }.sorted()
                    return fail(pod, "0/\(total) nodes are available: \(parts.joined(separator: ", ")).")
                }
                let best = feasible[pickBest(pod, feasible, state)]
                // Assume: the next pod sees this one on its node at once.
                place(key, pod, on: best.name)
                inFlight.insert(key)
                unschedulable[key] = nil
                return .bound(pod, best.name)
            }
        }

        private func fail(_ pod: PodInfo, _ message: String) -> Decision {
            let prev = unschedulable[pod.key]?.count ?? 0
            unschedulable[pod.key] = Attempt(count: prev + 1, last: .now)
            return .unschedulable(pod, message)
        }

        func bound(_ key: String) {
            lock.withLock {
                inFlight.remove(key)
                pending[key] = nil
            }
        }

        func bindFailed(_ key: String, node: String, retry: Bool) {
            let w = lock.withLock { () -> CheckedContinuation<Void, Never>? in
                inFlight.remove(key)
                // Undo the assumption unless the informer has meanwhile seen the pod bound there.
                if let info = pending[key], info.nodeName.isEmpty, placed[key] == node { unplace(key) }
                guard retry, let info = pending[key] else { return nil }
                backoff.append((key, .now + .milliseconds(100)))
                _ = info
                return nil
            }
            w?.resume()
        }

        /// For tests and the benchmark: how many pods wait.
        var pendingCount: Int { lock.withLock { pending.count } }
    }
}

/// Priority queue of pod keys: higher priority first, then first come first served.
struct PodHeap {
    struct Item { var key: String; var priority: Int64; var seq: Int64 }
    private var items: [Item] = []
    var isEmpty: Bool { items.isEmpty }
    private func before(_ a: Item, _ b: Item) -> Bool { a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq }
    mutating func push(_ x: Item) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if before(items[i], items[p]) { items.swapAt(i, p); i = p } else { break }
        }
    }
    mutating func pop() -> Item? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && before(items[l], items[m]) { m = l }
            if r < items.count && before(items[r], items[m]) { m = r }
            if m == i { break }
            items.swapAt(i, m); i = m
        }
        return top
    }
}

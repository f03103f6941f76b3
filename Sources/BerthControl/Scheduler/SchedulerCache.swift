import BerthAPI
import BerthKube
import Foundation

extension Scheduler {
    enum Decision {
        case none, bound(PodInfo, String), unschedulable(PodInfo, String)
        /// It fits nowhere, but will on `preemption.node` once the victims are gone: it waits, nominated there.
        case preempting(PodInfo, String, Preemption)
    }

    /// Nodes, the pods placed on them, and the scheduling queues — one lock around all of it, held by
    /// the scheduling loop while it decides. Informer handlers and binders do not take that lock: they
    /// drop their changes in an inbox (pods already turned into `PodInfo`, on the informer's thread),
    /// which the loop applies before each batch. Before the inbox, every informer event waited for the
    /// decision in progress, and the two cores took turns instead of working side by side.
    final class Cache: @unchecked Sendable {
        enum Change {
            case node(InformerEvent<CoreV1.Node>)
            case pod(InformerEvent<CoreV1.Pod>, PodInfo)
            case bound(String)
            case bindFailed(String, node: String, retry: Bool)
            /// A claim, volume or class changed: pods waiting for their volumes may fit now.
            case volumes
        }
        private let inboxLock = NSLock()
        private var inbox: [Change] = []

        let schedulerName: String
        let percentage: Int
        let lock = NSLock()
        var nodes: [String: NodeInfo] = [:]
        /// Nodes that exist, in a stable order (the search start rotates over it).
        var table = NodeTable()
        var nodeListDirty = false
        var symbols = LabelSymbols()
        var nextStart = 0
        /// Placed pods with required anti-affinity (checked against every incoming pod).
        var antiAffinityPods: [String: (node: String, pod: PlacedPod)] = [:]
        /// Where each placed pod is.
        var placed: [String: String] = [:]
        /// Placed pods per owner UID per node: the system-default spreading's counts, kept as pods come
        /// and go so a decision reads them instead of matching every placed pod's labels.
        var ownerNodeCounts: [String: [String: Int32]] = [:]
        /// The same pods per owner UID per zone (`topology.kubernetes.io/zone`, "" for nodes without
        /// one), counting only nodes that exist: the system-default zone term reads one count per zone
        /// instead of walking every node that holds the owner's pods (10,000 of them for one large
        /// Deployment on 10,000 nodes, for each decision).
        var ownerZoneCounts: [String: [String: Int32]] = [:]
        /// Looks up what the default spreading selector is made of (ReplicaSets, Services); set by the
        /// scheduler from its informers.
        var spreadSources: DefaultSpreadSources = .none
        /// Looks up the pods' claims and volumes (set by the scheduler from its informers; nil: pods
        /// with claims are placed as if they had none).
        var volumeBinding: VolumeBinding?
        /// The PodDisruptionBudgets preemption tries not to break (set by the scheduler from its informer).
        var disruptionBudgets: @Sendable () -> [DisruptionBudgetView] = { [] }
        /// Pods waiting for the room they preempted: their node by pod key, and pod keys by node
        /// (kube-scheduler's nominator). Pods of lower priority are kept off that room meanwhile.
        var nominations: [String: String] = [:]
        var nominatedOnNode: [String: Set<String>] = [:]
        /// Placed pods per priority: a pod with none below it has no one to preempt, and most clusters
        /// run everything at one priority, so their unschedulable pods skip the search for victims.
        var placedPriorities: [Int64: Int] = [:]
        /// Draws among equally scored nodes (used with `lock` held).
        var rng = SplitMix64()

        /// Latest version of every pod waiting for a node.
        var pending: [String: PodInfo] = [:]
        var active = PodHeap()
        var queued: Set<String> = []
        struct Attempt { var count: Int; var last: ContinuousClock.Instant }
        var unschedulable: [String: Attempt] = [:]
        var backoff: [(key: String, until: ContinuousClock.Instant)] = []
        var inFlight: Set<String> = []
        var lastFlush = ContinuousClock.now
        /// The loop waiting for work (guarded by `inboxLock`).
        private var waiter: CheckedContinuation<Void, Never>?
        var seq: Int64 = 0

        init(schedulerName: String, percentage: Int) {
            self.schedulerName = schedulerName; self.percentage = percentage
        }

        // MARK: informer and binder side (inbox)

        func nodeChanged(_ e: InformerEvent<CoreV1.Node>) { post(.node(e)) }
        func podChanged(_ e: InformerEvent<CoreV1.Pod>) { post(.pod(e, PodInfo(e.object))) }
        func bound(_ key: String) { post(.bound(key)) }
        func bindFailed(_ key: String, node: String, retry: Bool) { post(.bindFailed(key, node: node, retry: retry)) }
        func volumesChanged() { post(.volumes) }

        private func post(_ c: Change) {
            let w = inboxLock.withLock { () -> CheckedContinuation<Void, Never>? in
                inbox.append(c)
                defer { waiter = nil }
                return waiter
            }
            w?.resume()
        }

        /// Applies what the inbox holds; called with `lock` held.
        private func applyInbox() {
            let changes = inboxLock.withLock { () -> [Change] in
                defer { inbox = [] }
                return inbox
            }
            for c in changes {
                switch c {
                case .node(let e): applyNode(e)
                case .pod(let e, let info): applyPod(e, info)
                case .bound(let key):
                    inFlight.remove(key)
                    pending[key] = nil
                case .bindFailed(let key, let node, let retry):
                    inFlight.remove(key)
                    // Undo the assumption unless the informer has meanwhile seen the pod bound there.
                    if let info = pending[key], info.nodeName.isEmpty, placed[key] == node { unplace(key) }
                    if retry, pending[key] != nil { backoff.append((key, .now + .milliseconds(100))) }
                case .volumes:
                    moveAllUnschedulable(onlyAffinity: false)
                }
            }
        }

        private func applyNode(_ e: InformerEvent<CoreV1.Node>) {
            let obj = e.object
            let name = obj.metadata.name ?? ""
            if case .deleted = e {
                nodes[name]?.exists = false
                if let gone = nodes[name] { recountZone(gone) }
                nodeListDirty = true
                return
            }
            let info = nodes[name] ?? NodeInfo(name: name)
            let before = (info.exists, info.labels, info.allocatable, info.taints, info.unschedulable, info.ready)
            info.update(from: obj, symbols: &symbols)
            if nodes[name] == nil { nodes[name] = info }
            recountZone(info)
            let changed =
                before.0 != info.exists || before.1 != info.labels || before.2 != info.allocatable
                || before.3 != info.taints || before.4 != info.unschedulable || before.5 != info.ready
            if before.0 != info.exists { nodeListDirty = true }
            if !nodeListDirty && !table.refresh(info) { nodeListDirty = true }
            if changed { moveAllUnschedulable(onlyAffinity: false) }
        }

        private func applyPod(_ e: InformerEvent<CoreV1.Pod>, _ info: PodInfo) {
            let key = info.key
            if case .deleted = e {
                forgetPending(key)
                unplace(key)
                moveAllUnschedulable(onlyAffinity: false)
                return
            }
            if info.nodeName.isEmpty {
                if info.terminating || info.finished || info.schedulerName != schedulerName {
                    forgetPending(key)
                    return
                }
                pending[key] = info
                if !info.nominatedNode.isEmpty {
                    nominate(key, on: info.nominatedNode)
                } else if case .updated(let old, _) = e, !(old.status.nominatedNodeName ?? "").isEmpty {
                    // Withdrawn (by a higher-priority preemptor). An update that never carried one
                    // keeps a nomination made here and not yet written, as upstream's nominator does.
                    clearNomination(key)
                }
                // A pod waiting as unschedulable whose spec or labels changed (tolerations added, a
                // selector relaxed) is worth another try at once.
                if case .updated(let old, let new) = e, unschedulable[key] != nil,
                    old.spec != new.spec || old.metadata.labels != new.metadata.labels
                {
                    unschedulable[key] = nil
                }
                if inFlight.contains(key) || queued.contains(key) || unschedulable[key] != nil
                    || backoff.contains(where: { $0.key == key })
                {
                    return
                }
                enqueue(info)
                return
            }
            // Bound: it occupies its node (until it finishes).
            forgetPending(key)
            if info.finished { unplace(key); moveAllUnschedulable(onlyAffinity: false); return }
            let isNew = placed[key] == nil
            place(key, info, on: info.nodeName)
            if isNew { moveAllUnschedulable(onlyAffinity: true) }
        }

        private func forgetPending(_ key: String) {
            clearNomination(key)
            pending[key] = nil
            unschedulable[key] = nil
            queued.remove(key)
            // A dictionary keeps the capacity it grew to, and a PodInfo is a few hundred bytes: after a
            // burst of pending pods (a Deployment scaled up) the empty buckets stayed for the life of the
            // process. Give them back once mostly empty.
            if pending.capacity > 1024 && pending.count * 8 < pending.capacity {
                pending = Dictionary(uniqueKeysWithValues: pending.map { ($0.key, $0.value) })
            }
            if queued.capacity > 1024 && queued.count * 8 < queued.capacity {
                var compact = Set<String>(minimumCapacity: queued.count)
                for key in queued { compact.insert(key) }
                queued = compact
            }
        }

        func place(_ key: String, _ info: PodInfo, on node: String) {
            if let old = placed[key], let o = nodes[old], let was = o.pods[key] {
                countOwner(was.ownerUID, on: old, -1)
                countPriority(was.priority, -1)
            }
            if let old = placed[key], old != node, let o = nodes[old] { o.remove(key); table.refreshRequested(o) }
            let n =
                nodes[node]
                ?? {
                    let n = NodeInfo(name: node); nodes[node] = n; return n
                }()
            let p = PlacedPod(
                namespace: info.namespace, labels: info.labels, requests: info.requests, nonZero: info.nonZero,
                ownerUID: info.ownerUID, hostPorts: info.hostPorts, antiAffinity: info.antiAffinity, uid: info.uid,
                priority: info.priority, startTime: info.startTime, terminating: info.terminating, claims: info.claims)
            if let was = nodes[placed[key] ?? ""]?.pods[key] { useClaims(was, key, -1) }
            useClaims(p, key, +1)
            n.add(key, p)
            countOwner(p.ownerUID, on: node, +1)
            countPriority(p.priority, +1)
            table.refreshRequested(n)
            placed[key] = node
            if !info.antiAffinity.isEmpty { antiAffinityPods[key] = (node, p) } else { antiAffinityPods[key] = nil }
        }
        func unplace(_ key: String) {
            if let node = placed.removeValue(forKey: key), let n = nodes[node] {
                if let was = n.pods[key] {
                    countOwner(was.ownerUID, on: node, -1)
                    countPriority(was.priority, -1)
                    useClaims(was, key, -1)
                }
                n.remove(key)
                table.refreshRequested(n)
            }
            antiAffinityPods[key] = nil
        }

        private func countPriority(_ priority: Int64, _ delta: Int) {
            let n = (placedPriorities[priority] ?? 0) + delta
            placedPriorities[priority] = n > 0 ? n : nil
        }

        private func countOwner(_ uid: String, on node: String, _ delta: Int32) {
            guard !uid.isEmpty else { return }
            Self.add(delta, &ownerNodeCounts, uid, node)
            if let zone = nodes[node]?.countedZone { Self.add(delta, &ownerZoneCounts, uid, zone) }
        }

        private static func add(_ delta: Int32, _ table: inout [String: [String: Int32]], _ uid: String, _ key: String)
        {
            let n = (table[uid]?[key] ?? 0) + delta
            if n > 0 {
                table[uid, default: [:]][key] = n
            } else {
                table[uid]?[key] = nil
                if table[uid]?.isEmpty == true { table[uid] = nil }
            }
        }

        /// Moves a node's pods in `ownerZoneCounts` when it appears, goes, or changes zone.
        private func recountZone(_ node: NodeInfo) {
            let zone = node.exists ? node.labels[SoftSpread.zoneKey] ?? "" : nil
            guard zone != node.countedZone else { return }
            for pod in node.pods.values where !pod.ownerUID.isEmpty {
                if let old = node.countedZone { Self.add(-1, &ownerZoneCounts, pod.ownerUID, old) }
                if let zone { Self.add(1, &ownerZoneCounts, pod.ownerUID, zone) }
            }
            node.countedZone = zone
        }

        /// Called with the lock held.
        private func enqueue(_ info: PodInfo) {
            seq += 1
            active.push(.init(key: info.key, priority: info.priority, seq: seq))
            queued.insert(info.key)
        }

        /// A change that may let unschedulable pods fit: they go back to the queue (after their back-off).
        private func moveAllUnschedulable(onlyAffinity: Bool) {
            if unschedulable.isEmpty { return }
            let now = ContinuousClock.now
            for (key, attempt) in unschedulable {
                guard let info = pending[key] else { unschedulable[key] = nil; continue }
                if onlyAffinity && !info.hasPodAffinity { continue }
                unschedulable[key] = nil
                let until = attempt.last + backoffDuration(attempt.count)
                if until > now {
                    backoff.append((key, until))
                } else {
                    seq += 1; active.push(.init(key: key, priority: info.priority, seq: seq)); queued.insert(key)
                }
            }
        }

        func backoffDuration(_ attempts: Int) -> Duration {
            .milliseconds(min(1000 << min(max(attempts - 1, 0), 4), 10_000))
        }

        // MARK: loop side

        func waitForWork(timeout: Duration) async {
            let timer = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                let w = self?.inboxLock.withLock { () -> CheckedContinuation<Void, Never>? in
                    defer { self?.waiter = nil }; return self?.waiter
                }
                w?.resume()
            }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = inboxLock.withLock { () -> Bool in
                    if !inbox.isEmpty || waiter != nil { return true }
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
                applyInbox()
                let now = ContinuousClock.now
                if !backoff.isEmpty {
                    var rest: [(key: String, until: ContinuousClock.Instant)] = []
                    for b in backoff {
                        if b.until <= now, let info = pending[b.key] {
                            seq += 1; active.push(.init(key: b.key, priority: info.priority, seq: seq));
                            queued.insert(b.key)
                        } else if b.until > now {
                            rest.append(b)
                        }
                    }
                    backoff = rest
                }
                // Unschedulable pods are retried at least every 30 s even without a cluster event.
                if now - lastFlush > .seconds(30) {
                    lastFlush = now
                    for (key, a) in unschedulable where now - a.last > .seconds(30) {
                        unschedulable[key] = nil
                        if let info = pending[key] {
                            seq += 1; active.push(.init(key: key, priority: info.priority, seq: seq));
                            queued.insert(key)
                        }
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

        /// Pods on nodes by the claims they use ("namespace/claim"), for VolumeRestrictions' ReadWriteOncePod check.
        var claimUsers: [String: Set<String>] = [:]

        func useClaims(_ p: PlacedPod, _ key: String, _ delta: Int) {
            for claim in p.claims {
                let id = p.namespace + "/" + claim
                if delta > 0 {
                    claimUsers[id, default: []].insert(key)
                } else {
                    claimUsers[id]?.remove(key)
                    if claimUsers[id]?.isEmpty == true { claimUsers[id] = nil }
                }
            }
        }

        /// kube-scheduler's VolumeRestrictions PreFilter: the pods (other than this one) using a
        /// ReadWriteOncePod claim of the pod's, with the nodes they are on; and the nodes pods of at least
        /// its priority that use one are nominated to.
        func readWriteOncePodConflicts(
            _ pod: PodInfo, _ key: String, _ binding: VolumeBinding, into state: inout CycleState
        ) {
            let exclusive = Set(
                pod.claims.filter {
                    binding.claims(pod.namespace, $0)?.spec.accessModes.contains(.readWriteOncePod) == true
                })
            guard !exclusive.isEmpty else { return }
            for name in exclusive {
                for user in claimUsers[pod.namespace + "/" + name] ?? [] where user != key {
                    state.readWriteOncePodHolders[user] = placed[user] ?? ""
                }
            }
            for (other, node) in nominations where other != key {
                guard let nominee = pending[other], nominee.priority >= pod.priority,
                    nominee.namespace == pod.namespace, nominee.claims.contains(where: exclusive.contains)
                else { continue }
                state.readWriteOncePodNominated.insert(node)
            }
        }

        func scheduleOne(_ key: String) -> Decision {
            lock.withLock {
                applyInbox()
                guard let pod = pending[key], !inFlight.contains(key) else { return .none }
                if nodeListDirty {
                    table.rebuild(
                        nodes.values.filter(\.exists).sorted { $0.name < $1.name }, keyCount: symbols.keyCount)
                    nodes = nodes.filter { $0.value.exists || !$0.value.pods.isEmpty }
                    nodeListDirty = false
                    nextStart = 0
                }
                let total = table.count
                if total == 0 { return fail(pod, "0/0 nodes are available: no nodes available to schedule pods.") }
                var state = prepare(pod)
                if !pod.claims.isEmpty, let binding = volumeBinding {
                    switch binding.prefilter(namespace: pod.namespace, claimNames: pod.claims) {
                    case .unresolvable(let why): return fail(pod, "0/\(total) nodes are available: \(why).")
                    case .fits(let needs):
                        state.volumes = needs
                        if !needs.staticClaims.isEmpty { state.freeVolumes = binding.volumes() }
                    }
                    readWriteOncePodConflicts(pod, key, binding, into: &state)
                }
                state.nominated = nominatedRequests(for: pod)
                state.nominatedSlots = Set(state.nominated.keys.compactMap { nodes[$0]?.slot }.filter { $0 >= 0 })
                // The node it preempted pods on comes first (kube-scheduler's evaluateNominatedNode).
                if let nominated = nominations[key].flatMap({ nodes[$0] }), nominated.exists, nominated.slot >= 0,
                    filter(pod, nominated, state) == nil
                {
                    return assume(pod, on: nominated.name)
                }
                let (feasible, scanned, reasons) = findFeasible(pod, state, want: feasibleToFind(total))
                nextStart = (nextStart % total + scanned) % total
                guard !feasible.isEmpty else {
                    let parts = reasons.map { "\($0.value) \($0.key)" }.sorted()
                    let message = "0/\(total) nodes are available: \(parts.joined(separator: ", "))."
                    switch preempt(pod, state) {
                    case .notPossible(let why): return fail(pod, message + " preemption: " + why)
                    case .chosen(let preemption):
                        nominate(key, on: preemption.node)
                        for other in preemption.displaced { clearNomination(other.key) }
                        _ = fail(pod, message)
                        return .preempting(pod, message, preemption)
                    }
                }
                return assume(pod, on: table.nodes[feasible[pickBest(pod, feasible, state)]].name)
            }
        }

        /// Places the pod on `node` at once (so the next pod sees it there) and hands it to the binders.
        private func assume(_ pod: PodInfo, on node: String) -> Decision {
            let key = pod.key
            place(key, pod, on: node)
            inFlight.insert(key)
            unschedulable[key] = nil
            clearNomination(key)
            return .bound(pod, node)
        }

        /// Walks the nodes from where the last search stopped until `want` fit: the table indexes of
        /// those that fit, how many nodes were looked at, and why the others did not (reason → nodes).
        /// A pod with only a nodeSelector and requests (most pods) is checked on plain nodes against the
        /// table's flat arrays; anything else goes through the full `filter`.
        private func findFeasible(_ pod: PodInfo, _ state: CycleState, want wanted: Int) -> ([Int], Int, [String: Int])
        {
            let total = table.count
            let start = nextStart % total
            let simple =
                pod.hostPorts.isEmpty && pod.requiredTerms == nil && state.spreadCounts.isEmpty
                && state.forbidden.isEmpty
                && pod.affinity.isEmpty && pod.antiAffinity.isEmpty && state.volumes == nil
                && state.readWriteOncePodHolders.isEmpty && state.readWriteOncePodNominated.isEmpty
            let selectorImpossible = !pod.nodeSelector.isEmpty && state.selector == nil
            let pairs = state.selector?.pairs ?? []
            let stride = table.stride
            // Pairs on keys the table has no column for cannot match (no node in it has them).
            let pairsFit = pairs.allSatisfy { Int($0.key) < stride }
            let want = pod.requests
            var feasible: [Int] = []
            feasible.reserveCapacity(min(wanted, 512))
            var reasons: [String: Int] = [:]
            // Fast-path failures are counted here and named at the end.
            var affinity = 0, tooMany = 0, cpu = 0, memory = 0, storage = 0
            var i = 0
            table.facts.withUnsafeBufferPointer { facts in
                table.labels.withUnsafeBufferPointer { labels in
                    while i < total && feasible.count < wanted {
                        let idx = (start + i) % total
                        i += 1
                        let f = facts[idx]
                        guard simple && f.plain && (state.nominatedSlots.isEmpty || !state.nominatedSlots.contains(idx))
                        else {
                            if let why = filter(pod, table.nodes[idx], state) {
                                for r in why { reasons[r, default: 0] += 1 }
                            } else {
                                feasible.append(idx)
                            }
                            continue
                        }
                        if selectorImpossible || !pairsFit { affinity += 1; continue }
                        var matches = true
                        let row = idx * stride
                        for p in pairs where labels[row + Int(p.key)] != p.value { matches = false; break }
                        if !matches { affinity += 1; continue }
                        let short = Shortfall(want: want, allocatable: f.allocatable, requested: f.requested)
                        if short.none { feasible.append(idx); continue }
                        if short.pods { tooMany += 1 }
                        if short.cpu { cpu += 1 }
                        if short.memory { memory += 1 }
                        if short.storage { storage += 1 }
                    }
                }
            }
            for (r, n) in [
                (Reasons.affinity, affinity), (Reasons.tooManyPods, tooMany), (Reasons.cpu, cpu),
                (Reasons.memory, memory), (Reasons.storage, storage),
            ] where n > 0 {
                reasons[r, default: 0] += n
            }
            return (feasible, i, reasons)
        }

        private func fail(_ pod: PodInfo, _ message: String) -> Decision {
            let prev = unschedulable[pod.key]?.count ?? 0
            unschedulable[pod.key] = Attempt(count: prev + 1, last: .now)
            return .unschedulable(pod, message)
        }

        /// For tests and the benchmark: how many pods wait.
        var pendingCount: Int {
            lock.withLock {
                applyInbox(); return pending.count
            }
        }
    }
}

/// Priority queue of pod keys: higher priority first, then first come first served.
struct PodHeap {
    struct Item { var key: String; var priority: Int64; var seq: Int64 }
    private var items: [Item] = []
    var isEmpty: Bool { items.isEmpty }
    private func before(_ a: Item, _ b: Item) -> Bool {
        a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq
    }
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

import BerthAPI
import BerthKube
import BerthStore
import Foundation
import Logging

/// The scheduler: places every pending pod that names it on a node, through the pods/binding path
/// (a compare-and-swap on the pod, so a pod is never bound twice).
///
/// Like kube-scheduler it keeps an in-memory cache of nodes and the pods on them (fed by the shared
/// informers), assumes a decision at once so the next pod sees it, and binds asynchronously; many
/// bindings in flight let the store commit them in batches. Pods that fit nowhere stay Pending with a
/// PodScheduled=False condition and a FailedScheduling event that counts the reasons per kind of node,
/// and are tried again when the cluster changes (a node added or changed, a pod deleted) after a
/// back-off of 1 s doubling to 10 s, and at the latest every 30 s.
struct Scheduler: ControlLoop {
    let name = "scheduler"
    let cache: Cache
    let client: any KubeClient
    let events: ComponentRecorder
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("default-scheduler")
        events = ctx.events.component("default-scheduler")
        logger = ctx.logger
        cache = Cache(schedulerName: ctx.config.schedulerName, percentage: ctx.config.percentageOfNodesToScore)
        let cache = self.cache
        ctx.informers.informer(CoreV1.Node.self).onChange { cache.nodeChanged($0) }
        ctx.informers.informer(CoreV1.Pod.self).onChange { cache.podChanged($0) }
        let claims = ctx.informers.informer(CoreV1.PersistentVolumeClaim.self)
        let volumes = ctx.informers.informer(CoreV1.PersistentVolume.self)
        let classes = ctx.informers.informer(StorageV1.StorageClass.self)
        cache.volumeBinding = VolumeBinding(
            claims: { claims.get(namespace: $0, name: $1) }, volume: { volumes.get(namespace: nil, name: $0) },
            volumes: { volumes.list() }, storageClass: { classes.get(namespace: nil, name: $0) })
        let budgets = ctx.informers.informer(PolicyV1.PodDisruptionBudget.self)
        cache.disruptionBudgets = { budgets.list().map(DisruptionBudgetView.init) }
        claims.onChange { _ in cache.volumesChanged() }
        volumes.onChange { _ in cache.volumesChanged() }
        classes.onChange { _ in cache.volumesChanged() }
        // What the system-default topology spreading selects by (kube-scheduler's DefaultSelector).
        let replicaSets = ctx.informers.informer(AppsV1.ReplicaSet.self)
        let services = ctx.informers.informer(CoreV1.Service.self)
        services.addIndex("scheduler.namespace") { [$0.metadata.namespace ?? ""] }
        cache.spreadSources = DefaultSpreadSources(
            controllerSelector: { namespace, kind, group, name in
                guard kind == "ReplicaSet", group == "apps", let rs = replicaSets.get(namespace: namespace, name: name),
                    let selector = rs.spec.selector
                else { return nil }
                return BerthAPI.LabelSelector(object: selector.kubeJSON())
            },
            serviceSelectors: { namespace in
                // A Service without a selector selects nothing; an empty one would merge nothing into
                // the default selector, so both are left out.
                services.byIndex("scheduler.namespace", namespace).compactMap { service in
                    service.spec.selector.isEmpty ? nil : service.spec.selector
                }
            })
    }

    struct Binding: Sendable { var pod: PodInfo; var node: String }
    struct Unschedulable: Sendable {
        var pod: PodInfo
        var message: String
        /// The node it preempted pods on (status.nominatedNodeName); nil leaves the field as it is.
        var nominatedNode: String? = nil
    }

    /// Binder tasks, each handing the store every decision waiting at that moment (up to
    /// `bindBatch`): while one batch commits, the next gathers, so the store commits large batches.
    static let binders = 16
    static let bindBatch = 1024

    /// Tasks writing PodScheduled=False: a few, so thousands of pods that fit nowhere queue up instead of
    /// each starting its own round of API calls.
    static let reporters = 4

    func run() async {
        let sink = Channel<Binding>()
        let reports = Channel<Unschedulable>()
        await withTaskGroup(of: Void.self) { g in
            for _ in 0..<Self.binders {
                g.addTask {
                    while let batch = await sink.popMany(Self.bindBatch) { await bind(batch) }
                }
            }
            for _ in 0..<Self.reporters {
                g.addTask {
                    while let r = await reports.pop() {
                        await markUnschedulable(r.pod, r.message, nominatedNode: r.nominatedNode)
                    }
                }
            }
            g.addTask {
                await withTaskCancellationHandler {
                    await loop(sink, reports)
                } onCancel: {
                    sink.finish(); reports.finish()
                }
                sink.finish()
                reports.finish()
            }
            await g.waitForAll()
        }
    }

    func loop(_ sink: Channel<Binding>, _ reports: Channel<Unschedulable>) async {
        while !Task.isCancelled {
            let batch = cache.popBatch(256)
            if batch.isEmpty {
                await cache.waitForWork(timeout: .milliseconds(200))
                continue
            }
            for key in batch {
                switch cache.scheduleOne(key) {
                case .none: continue
                case .bound(let pod, let node):
                    if !pod.claims.isEmpty, let binding = cache.volumeBinding,
                        case .fits(let needs) = binding.prefilter(namespace: pod.namespace, claimNames: pod.claims),
                        !needs.delayed.isEmpty
                    {
                        Task { await bindAfterVolumes(pod, node: node, claims: needs.delayed, binding, sink) }
                    } else {
                        sink.push(Binding(pod: pod, node: node))
                    }
                case .unschedulable(let pod, let message):
                    events.record(pod.object, type: "Warning", reason: "FailedScheduling", message: message)
                    reports.push(Unschedulable(pod: pod, message: message))
                case .preempting(let pod, let message, let preemption):
                    events.record(pod.object, type: "Warning", reason: "FailedScheduling", message: message)
                    reports.push(Unschedulable(pod: pod, message: message, nominatedNode: preemption.node))
                    Task { await evictVictims(preemption) }
                }
            }
        }
    }

    func bind(_ batch: [Binding]) async {
        let results = await client.bind(batch.map { PodNodeBinding(pod: $0.pod.object, node: $0.node) })
        for (b, r) in zip(batch, results) {
            switch r {
            case .success:
                cache.bound(b.pod.key)
                events.record(
                    b.pod.object, reason: "Scheduled", message: "Successfully assigned \(b.pod.key) to \(b.node)")
            case .failure(let e) where e.code == 404:
                cache.bindFailed(b.pod.key, node: b.node, retry: false)
            case .failure(let e) where e.code == 409:
                // Someone else bound it (or it changed and was bound by a retry): the informer tells the truth.
                cache.bindFailed(b.pod.key, node: b.node, retry: !e.message.contains("already assigned"))
            case .failure(let e):
                logger.warning(
                    "binding failed", metadata: ["pod": "\(b.pod.key)", "node": "\(b.node)", "error": "\(e)"])
                cache.bindFailed(b.pod.key, node: b.node, retry: true)
            }
        }
    }

    /// How long PreBind waits for the binder to bind a pod's claims (upstream's bind timeout is 600 s;
    /// the local-path provisioner answers within a second).
    static let volumeBindTimeout: Duration = .seconds(120)

    /// VolumeBinding's PreBind: the pod's unbound WaitForFirstConsumer claims get the chosen node in
    /// `volume.kubernetes.io/selected-node`, and the pod is bound once the binder (and the provisioner)
    /// bound them all — so its node's agent never sees an unbound claim.
    func bindAfterVolumes(
        _ pod: PodInfo, node: String, claims names: [String], _ binding: VolumeBinding, _ sink: Channel<Binding>
    ) async {
        let selected = VolumeMatching.Keys.selectedNode
        do {
            for name in names {
                guard let claim = binding.claims(pod.namespace, name) else {
                    throw VolumeBindingError("persistentvolumeclaim \"\(name)\" not found")
                }
                if claim.metadata.annotations[selected] == node || !(claim.spec.volumeName ?? "").isEmpty { continue }
                try await client.mergePatch(
                    Registry.persistentVolumeClaims, namespace: pod.namespace, name: name,
                    ["metadata": ["annotations": [selected: .string(node)]]], subresource: nil)
            }
            // The binder writes the claim; its informer here is what tells (polled: a few claims per pod).
            let deadline = ContinuousClock.now + Self.volumeBindTimeout
            // The binders stop with the scheduler (leadership lost, shutting down): so does the wait.
            while ContinuousClock.now < deadline && !sink.isFinished {
                if names.allSatisfy({ !(binding.claims(pod.namespace, $0)?.spec.volumeName ?? "").isEmpty }) {
                    sink.push(Binding(pod: pod, node: node))
                    return
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            if sink.isFinished { return }
            throw VolumeBindingError("binding volumes: timed out waiting for the condition")
        } catch is CancellationError {
            cache.bindFailed(pod.key, node: node, retry: false)
        } catch {
            events.record(
                pod.object, type: "Warning", reason: "FailedScheduling",
                message: "running PreBind plugin \"VolumeBinding\": \(error)")
            cache.bindFailed(pod.key, node: node, retry: true)
        }
    }

    /// The PodScheduled=False condition (what `kubectl get pods` and `describe` show beside the
    /// FailedScheduling event); skipped when the pod was bound meanwhile or already says the same.
    func markUnschedulable(_ pod: PodInfo, _ message: String, nominatedNode: String? = nil) async {
        for _ in 0..<3 {
            guard var current = try? await client.get(CoreV1.Pod.self, namespace: pod.namespace, name: pod.name),
                (current.spec.nodeName ?? "").isEmpty
            else { return }
            let old = current.status.conditions.first { $0.type == .scheduled }
            let nominationSame = nominatedNode == nil || current.status.nominatedNodeName == nominatedNode
            if old?.status == .false && old?.message == message && nominationSame { return }
            if let nominatedNode { current.status.nominatedNodeName = nominatedNode }
            var condition = CoreV1.PodCondition()
            condition.type = .scheduled
            condition.status = .false
            condition.reason = "Unschedulable"
            condition.message = message
            condition.lastTransitionTime = .now()
            current.status.conditions.removeAll { $0.type == .scheduled }
            current.status.conditions.append(condition)
            do {
                _ = try await client.updateStatus(current)
                return
            } catch { continue }
        }
    }
}

/// A queue many tasks can take from (the binders), filled without waiting.
final class Channel<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Element] = []
    private var head = 0
    private var waiters: [CheckedContinuation<Element?, Never>] = []
    private var finished = false

    func push(_ e: Element) {
        let w = lock.withLock { () -> CheckedContinuation<Element?, Never>? in
            if finished { return nil }
            if !waiters.isEmpty { return waiters.removeFirst() }
            items.append(e)
            return nil
        }
        w?.resume(returning: e)
    }
    func pop() async -> Element? {
        await withCheckedContinuation { (c: CheckedContinuation<Element?, Never>) in
            let now = lock.withLock { () -> (Bool, Element?) in
                if head < items.count {
                    let e = items[head]; head += 1
                    if head > 1024 && head * 2 > items.count { items.removeFirst(head); head = 0 }
                    return (true, e)
                }
                if finished { return (true, nil) }
                waiters.append(c)
                return (false, nil)
            }
            if now.0 { c.resume(returning: now.1) }
        }
    }
    /// Everything queued, up to `max` (waiting for at least one); nil once finished and drained.
    func popMany(_ max: Int) async -> [Element]? {
        guard let first = await pop() else { return nil }
        return lock.withLock {
            var out = [first]
            let n = min(max - 1, items.count - head)
            if n > 0 {
                out.append(contentsOf: items[head..<head + n])
                head += n
                if head > 1024 && head * 2 > items.count { items.removeFirst(head); head = 0 }
            }
            return out
        }
    }
    /// Whether ``finish()`` was called (nothing pushed now is taken).
    var isFinished: Bool { lock.withLock { finished } }

    func finish() {
        let ws = lock.withLock { () -> [CheckedContinuation<Element?, Never>] in
            finished = true
            defer { waiters = [] }
            return waiters
        }
        for w in ws { w.resume(returning: nil) }
    }
}

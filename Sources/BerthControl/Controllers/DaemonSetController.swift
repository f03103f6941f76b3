import BerthAPI
import BerthKube
import Foundation
import Logging

/// The DaemonSet controller: one pod of each apps/v1 DaemonSet on every node it may run on, as
/// kube-controller-manager's daemonset controller does.
///
/// A node is eligible when it matches the template's nodeSelector and required node affinity and the
/// pod tolerates the node's NoSchedule/NoExecute taints; daemon pods get upstream's automatic
/// tolerations (not-ready and unreachable without a time limit, the pressure and unschedulable taints),
/// so they stay on sick nodes and land on cordoned ones. Pods are not bound here: like upstream each gets
/// a required node affinity on `metadata.name` and the scheduler binds it, so node resources are still
/// accounted in one place. Pods on nodes no longer eligible, failed pods and duplicates are deleted.
/// RollingUpdate replaces pods whose `controller-revision-hash` label differs from the template's hash,
/// keeping at most maxUnavailable daemon pods unavailable — or, with maxSurge, starting the new pod beside
/// the old one on up to maxSurge nodes and removing the old one once the new one is available; OnDelete
/// leaves old pods alone. Each template is kept as a ControllerRevision (DaemonSetHistory.swift), so
/// `kubectl rollout history` and `rollout undo` work.
///
/// The informer cache lags behind the controller's own writes, so after creating or deleting pods a
/// DaemonSet waits until the cache shows those changes before deciding again (upstream's
/// "expectations"); otherwise a quick second sync would create a second pod on the same node.
struct DaemonSetController: ControlLoop {
    typealias Pod = CoreV1.Pod
    typealias DaemonSet = AppsV1.DaemonSet

    let name = "daemonset-controller"
    let queue = WorkQueue(name: "daemonsets")
    let client: any KubeClient
    let daemonSets: Informer<DaemonSet>
    let pods: Informer<Pod>
    let nodes: Informer<CoreV1.Node>
    let revisions: Informer<AppsV1.ControllerRevision>
    let events: ComponentRecorder
    let logger: Logger
    let workers: Int
    let memory = DaemonSetMemory()

    /// Pods by the UID of the DaemonSet that controls them.
    static let ownerIndex = "controller"
    static let hashLabel = "controller-revision-hash"
    /// Cap on pod creations in flight for one DaemonSet.
    static let createBurst = 64

    init(_ ctx: ControllerContext) {
        client = ctx.client("daemon-set-controller")
        // The component the untyped recorder defaulted to: Events keep their source.
        events = ctx.events.component("berth-controller-manager")
        logger = ctx.logger
        workers = ctx.config.workers
        daemonSets = ctx.informers.informer(DaemonSet.self)
        pods = ctx.informers.informer(Pod.self)
        nodes = ctx.informers.informer(CoreV1.Node.self)
        revisions = ctx.informers.informer(AppsV1.ControllerRevision.self)
        revisions.addIndex(Self.revisionOwnerIndex) { $0.controllerUIDs }
        // The index the ReplicaSet and Deployment controllers keep too (UIDs are unique, so a DaemonSet's
        // UID finds exactly its pods): one index maintained on every pod event, not two.
        pods.addIndex(Self.ownerIndex) { $0.controllerUIDs }
        let (queue, daemonSets) = (self.queue, self.daemonSets)
        // Handlers must not wait: each key is added by a task of its own.
        daemonSets.onChange { event in
            let key = event.object.cacheKey
            Task { await queue.add(key) }
        }
        pods.onChange { event in
            var keys: Set<String> = []
            switch event {
            case .added(let pod), .deleted(let pod): if let k = Self.ownerKey(pod) { keys.insert(k) }
            case .updated(let old, let new):
                if let k = Self.ownerKey(old) { keys.insert(k) }
                if let k = Self.ownerKey(new) { keys.insert(k) }
            }
            for k in keys { Task { await queue.add(k) } }
        }
        // A revision adopted, released or renumbered syncs its DaemonSet again.
        revisions.onChange { event in
            if let key = ControllerHistory.ownerKey(event.object, kind: "DaemonSet") {
                Task { await queue.add(key) }
            } else if event.object.controllerRef == nil, let ns = event.object.metadata.namespace {
                for ds in daemonSets.list(namespace: ns) {
                    let key = ds.cacheKey
                    Task { await queue.add(key) }
                }
            }
        }
        // Heartbeats are most node updates: only what decides placement is worth a resync of every DaemonSet.
        nodes.onChange { event in
            if case .updated(let old, let new) = event, DaemonPlacementFields(old) == DaemonPlacementFields(new) {
                return
            }
            for ds in daemonSets.list() {
                let key = ds.cacheKey
                Task { await queue.add(key) }
            }
        }
    }

    func run() async {
        let logger = self.logger
        await runWorkers(
            queue, count: workers, sync: { try await sync($0) },
            onError: { key, error in
                if Task.isCancelled { return }  // stopping (no longer leader, or shutting down)
                if let e = error as? APIError, [404, 409].contains(e.code) {
                    logger.debug("daemonset sync retried", metadata: ["key": "\(key)", "error": "\(e)"])
                } else {
                    logger.warning("daemonset sync failed", metadata: ["key": "\(key)", "error": "\(error)"])
                }
            })
    }

    // MARK: sync

    func sync(_ key: String) async throws {
        guard let ds = daemonSets.get(key) else {
            // Deleted: the API's garbage collector removes its pods (they have it as owner).
            memory.forget(key)
            return
        }
        let hash = Self.templateHash(ds)
        let template = Self.podTemplate(ds, hash: hash)
        // The API's own selector matching (the JSON form of the typed selector is what it reads).
        let selector = LabelSelector(object: ds.spec.selector?.kubeJSON() ?? .null)
        // Expectations first, the cache after, as upstream: a pod the informer shows between reading the
        // pods and asking would meet the expectations while `byNode` still lacks it — and a second new pod
        // would start on that node.
        let expectationsMet = memory.satisfied(key, pods: pods)
        let nodeList = nodes.list().sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
        // Node name → this DaemonSet's pods meant for it (bound, or still carrying the node affinity).
        var byNode: [String: [Pod]] = [:]
        for pod in pods.byIndex(Self.ownerIndex, ds.metadata.uid ?? "") where selector.matches(pod.metadata.labels) {
            if let node = Self.targetNode(pod) { byNode[node, default: []].append(pod) }
        }
        for n in byNode.keys { byNode[n]!.sort(by: Self.olderFirst) }
        let now = Date()
        var recheck: TimeInterval?

        // Normally the pod events that meet the expectations requeue the DaemonSet; this is a safety net.
        if !expectationsMet { recheck = 1 }
        if !ds.isTerminating && expectationsMet {
            if try await ControllerHistory.claim(ds, selector: selector, revisions: revisions, client: client) {
                return  // the adopted revisions' events sync it again
            }
            try await constructHistory(ds, hash: hash)
            var creates: [String] = []
            var deletes: [Pod] = []
            let surges = Self.maxSurge(ds, desired: nodeList.count) > 0
            let minReady = Int64(ds.spec.minReadySeconds ?? 0)
            for node in nodeList {
                let nodeName = node.metadata.name ?? ""
                let (shouldRun, shouldContinue) = DaemonPlacement.evaluate(template.spec, on: node)
                let daemonPods = byNode[nodeName] ?? []
                if shouldRun && daemonPods.isEmpty {
                    creates.append(nodeName)
                } else if shouldContinue {
                    var running: [Pod] = []
                    for pod in daemonPods where !pod.isTerminating {
                        guard pod.isFinished else {
                            running.append(pod)
                            continue
                        }
                        // A pod the node rejected again and again would be replaced in a hot loop: back off.
                        if pod.status.phase == .failed,
                            let wait = memory.failureBackoff(key, node: nodeName, now: now)
                        {
                            recheck = min(recheck ?? wait, wait)
                            continue
                        }
                        deletes.append(pod)
                    }
                    deletes += Self.extraPods(running, hash: hash, surge: surges, minReady: minReady, now: now)
                } else {
                    deletes += daemonPods.filter { !$0.isTerminating }
                }
            }
            // Unbound pods aimed at a node that no longer exists would stay Pending for ever.
            let names = Set(nodeList.compactMap(\.metadata.name))
            for (node, daemonPods) in byNode where !names.contains(node) {
                deletes += daemonPods.filter { ($0.spec.nodeName ?? "").isEmpty && !$0.isTerminating }
            }
            // Replacing old pods waits until the set of pods is right (the next sync, once expectations are met).
            if creates.isEmpty && deletes.isEmpty && Self.isRollingUpdate(ds) {
                let desired = nodeList.filter { DaemonPlacement.evaluate(template.spec, on: $0).shouldRun }.count
                let surge = Self.maxSurge(ds, desired: desired)
                if surge > 0 {
                    (creates, deletes) = rollingUpdateWithSurge(
                        ds, byNode: byNode, hash: hash, maxSurge: surge, now: now)
                } else {
                    deletes = rollingUpdateDeletions(ds, byNode: byNode, hash: hash, desired: desired, now: now)
                }
            }
            try await apply(ds, key: key, template: template, creates: creates, deletes: deletes)
            try await cleanupHistory(ds, hash: hash, pods: byNode.values.flatMap { $0 })
        }
        recheck = [
            recheck,
            try await updateStatus(ds, nodes: nodeList, byNode: byNode, hash: hash, template: template, now: now),
        ]
        .compactMap { $0 }.min()
        if let recheck { queue.add(key, after: .milliseconds(Int64(recheck * 1000) + 10)) }
    }

    /// The update strategy is RollingUpdate (the default) rather than OnDelete.
    static func isRollingUpdate(_ ds: DaemonSet) -> Bool {
        (ds.spec.updateStrategy.type ?? .rollingUpdateDaemonSetStrategyType) == .rollingUpdateDaemonSetStrategyType
    }

    /// `pods` split into those of the template's revision (`hash`) and the older ones, order kept.
    static func byRevision(_ pods: [Pod], hash: String) -> (new: [Pod], old: [Pod]) {
        var new: [Pod] = []
        var old: [Pod] = []
        for pod in pods {
            if pod.metadata.labels[hashLabel] == hash { new.append(pod) } else { old.append(pod) }
        }
        return (new, old)
    }

    /// `rollingUpdate.maxSurge` as a number of nodes (percentages round up, as upstream's).
    static func maxSurge(_ ds: DaemonSet, desired: Int) -> Int {
        guard isRollingUpdate(ds), let surge = ds.spec.updateStrategy.rollingUpdate?.maxSurge else { return 0 }
        return max(0, Int(surge.scaled(total: Int64(desired), roundUp: true)))
    }

    /// Of the running pods on one node, those to delete. Without surge all but the oldest. With surge, as
    /// upstream: an old pod stays beside a new one only while the new one is not yet available and the old
    /// one is; otherwise the oldest new pod (or, with none, the oldest old one) alone stays.
    static func extraPods(_ running: [Pod], hash: String, surge: Bool, minReady: Int64, now: Date) -> [Pod] {
        guard running.count > 1 else { return [] }
        guard surge else { return Array(running.dropFirst()) }
        let (new, old) = byRevision(running, hash: hash)
        var keep: [Pod] = []
        if let newest = new.first {
            keep.append(newest)
            if let previous = old.first, !newest.isAvailable(minReadySeconds: minReady, now: now),
                previous.isAvailable(minReadySeconds: minReady, now: now)
            {
                keep.append(previous)
            }
        } else if let previous = old.first {
            keep.append(previous)
        }
        let kept = Set(keep.compactMap(\.metadata.uid))
        return running.filter { !kept.contains($0.metadata.uid ?? "") }
    }

    /// Upstream's rolling update with surge: a new pod starts beside the old one on up to maxSurge nodes at
    /// a time (at once where the old one is unavailable anyway); the old pod goes when the new one is
    /// available, so with maxUnavailable 0 no node is ever without an available daemon pod.
    func rollingUpdateWithSurge(
        _ ds: DaemonSet, byNode: [String: [Pod]], hash: String, maxSurge: Int, now: Date
    ) -> (creates: [String], deletes: [Pod]) {
        let minReady = Int64(ds.spec.minReadySeconds ?? 0)
        var surging = 0
        var creates: [String] = []
        var deletes: [Pod] = []
        var waiting: [String] = []
        for node in byNode.keys.sorted() {
            let (new, old) = Self.byRevision(byNode[node]!.filter { !$0.isTerminating }, hash: hash)
            guard let previous = old.first else { continue }
            if let newest = new.first {
                if newest.isAvailable(minReadySeconds: minReady, now: now) {
                    deletes += old
                } else {
                    surging += 1
                }
            } else if !previous.isAvailable(minReadySeconds: minReady, now: now) {
                creates.append(node)
            } else {
                waiting.append(node)
            }
        }
        creates += waiting.prefix(max(0, maxSurge - surging))
        return (creates, deletes)
    }

    /// Upstream's rolling update without surge: old pods that are unavailable anyway go at once; available
    /// ones only while fewer than maxUnavailable daemon pods are unavailable.
    func rollingUpdateDeletions(
        _ ds: DaemonSet, byNode: [String: [Pod]], hash: String, desired: Int, now: Date
    ) -> [Pod] {
        // Percentages round up, as upstream's; zero (invalid without surge) falls back to upstream's default of 1.
        var maxUnavailable =
            ds.spec.updateStrategy.rollingUpdate?.maxUnavailable.map {
                Int($0.scaled(total: Int64(desired), roundUp: true))
            } ?? 1
        if desired > 0 && maxUnavailable <= 0 { maxUnavailable = 1 }
        let minReady = Int64(ds.spec.minReadySeconds ?? 0)
        var unavailable = 0
        var replaceNow: [Pod] = []
        var candidates: [Pod] = []
        for node in byNode.keys.sorted() {
            let (new, old) = Self.byRevision(byNode[node]!.filter { !$0.isTerminating }, hash: hash)
            if new.count > 1 || old.count > 1 || new.count == old.count {
                unavailable += 1  // duplicates, nothing yet, or a replacement under way: the manage pass handles it
            } else if let pod = new.first {
                if !pod.isAvailable(minReadySeconds: minReady, now: now) { unavailable += 1 }
            } else if let pod = old.first {
                if !pod.isAvailable(minReadySeconds: minReady, now: now) {
                    replaceNow.append(pod)
                } else if unavailable < maxUnavailable {
                    candidates.append(pod)
                }
            }
        }
        let room = max(0, min(maxUnavailable - unavailable, candidates.count))
        return replaceNow + candidates.prefix(room)
    }

    /// Creates pods for `creates` (node names) and deletes `deletes`, then records what the cache must show.
    private func apply(
        _ ds: DaemonSet, key: String, template: CoreV1.PodTemplateSpec, creates: [String], deletes: [Pod]
    ) async throws {
        if creates.isEmpty && deletes.isEmpty { return }
        let (client, events) = (self.client, self.events)
        var firstError: (any Error)?
        var createdRevision: Int64 = 0
        var deleted: [(key: String, uid: String)] = []
        await withTaskGroup(of: Result<Int64, any Error>.self) { g in
            var inFlight = 0
            func collect(_ r: Result<Int64, any Error>) {
                switch r {
                case .success(let rev): createdRevision = max(createdRevision, rev)
                case .failure(let e): if firstError == nil { firstError = e }
                }
            }
            for node in creates {
                if inFlight >= Self.createBurst, let r = await g.next() {
                    collect(r)
                    inFlight -= 1
                }
                if firstError != nil { break }
                let pod = Self.newPod(ds, template: template, node: node)
                g.addTask {
                    do {
                        let created = try await client.create(pod)
                        events.record(
                            ds, reason: "SuccessfulCreate", message: "Created pod: \(created.metadata.name ?? "")")
                        return .success(Int64(created.metadata.resourceVersion ?? "") ?? 0)
                    } catch {
                        events.record(ds, type: "Warning", reason: "FailedCreate", message: "Error creating: \(error)")
                        return .failure(error)
                    }
                }
                inFlight += 1
            }
            for await r in g { collect(r) }
        }
        for pod in deletes {
            let name = pod.metadata.name ?? ""
            let uid = pod.metadata.uid ?? ""
            do {
                try await client.delete(Pod.self, namespace: pod.metadata.namespace, name: name, uid: uid)
                deleted.append((pod.cacheKey, uid))
                events.record(ds, reason: "SuccessfulDelete", message: "Deleted pod: \(name)")
                if pod.status.phase == .failed, let node = Self.targetNode(pod) {
                    memory.failed(key, node: node, now: Date())
                }
            } catch let e as APIError
                where e.code == 404 || (e.code == 409 && e.message.hasPrefix("Precondition failed"))
            {
                // Already gone (or replaced by a namesake): nothing to wait for.
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        memory.expect(key, createdRevision: createdRevision, deleted: deleted, now: Date())
        if let firstError { throw firstError }
    }

    /// Writes the status counts (as `kubectl rollout status ds/x` reads them) when they changed. Returns
    /// when to look again because a ready pod becomes available (minReadySeconds).
    private func updateStatus(
        _ ds: DaemonSet, nodes nodeList: [CoreV1.Node], byNode: [String: [Pod]], hash: String,
        template: CoreV1.PodTemplateSpec, now: Date
    ) async throws -> TimeInterval? {
        let minReady = Int64(ds.spec.minReadySeconds ?? 0)
        var desired: Int32 = 0
        var current: Int32 = 0
        var misscheduled: Int32 = 0
        var ready: Int32 = 0
        var available: Int32 = 0
        var updated: Int32 = 0
        var recheck: TimeInterval?
        for node in nodeList {
            let daemonPods = byNode[node.metadata.name ?? ""] ?? []
            guard DaemonPlacement.evaluate(template.spec, on: node).shouldRun else {
                if !daemonPods.isEmpty { misscheduled += 1 }
                continue
            }
            desired += 1
            guard let pod = daemonPods.first else { continue }
            current += 1
            if pod.isReady {
                ready += 1
                if pod.isAvailable(minReadySeconds: minReady, now: now) {
                    available += 1
                } else if let since = Self.readySince(pod) {
                    let wait = since.addingTimeInterval(TimeInterval(minReady)).timeIntervalSince(now)
                    recheck = min(recheck ?? wait, max(wait, 0))
                }
            }
            if pod.metadata.labels[Self.hashLabel] == hash { updated += 1 }
        }
        var status = ds.status
        // Upstream's omitempty: the first four are always written, the others only when non-zero.
        status.desiredNumberScheduled = desired
        status.currentNumberScheduled = current
        status.numberMisscheduled = misscheduled
        status.numberReady = ready
        status.updatedNumberScheduled = updated != 0 ? updated : nil
        status.numberAvailable = available != 0 ? available : nil
        status.numberUnavailable = desired - available != 0 ? desired - available : nil
        let generation = ds.metadata.generation ?? 0
        status.observedGeneration = generation != 0 ? generation : nil
        if status == ds.status { return recheck }
        var written = ds
        written.status = status
        _ = try await client.updateStatus(written)
        return recheck
    }

    // MARK: pods

    /// The automatic tolerations of daemon pods (upstream's AddOrUpdateDaemonPodTolerations).
    static let automaticTolerations: [(key: String, effect: CoreV1.TaintEffect)] = [
        ("node.kubernetes.io/not-ready", .noExecute), ("node.kubernetes.io/unreachable", .noExecute),
        ("node.kubernetes.io/disk-pressure", .noSchedule), ("node.kubernetes.io/memory-pressure", .noSchedule),
        ("node.kubernetes.io/pid-pressure", .noSchedule), ("node.kubernetes.io/unschedulable", .noSchedule),
    ]

    /// The template every daemon pod is made from: the DaemonSet's, plus the automatic tolerations and
    /// the hash label.
    static func podTemplate(_ ds: DaemonSet, hash: String) -> CoreV1.PodTemplateSpec {
        var template = ds.spec.template
        template.metadata.labels[hashLabel] = hash
        var automatic = automaticTolerations
        if template.spec.hostNetwork == true {
            automatic.append(("node.kubernetes.io/network-unavailable", .noSchedule))
        }
        for (key, effect) in automatic {
            let toleration = CoreV1.Toleration(key: key, operator: "Exists", effect: effect)
            // Upstream's AddOrUpdateToleration: one equal in key, operator, value and effect is replaced.
            let same: (CoreV1.Toleration) -> Bool = {
                $0.key == key && ($0.operator ?? "Equal") == "Exists" && ($0.value ?? "").isEmpty
                    && $0.effect == effect
            }
            if let i = template.spec.tolerations.firstIndex(where: same) {
                template.spec.tolerations[i] = toleration
            } else {
                template.spec.tolerations.append(toleration)
            }
        }
        return template
    }

    /// A pod for `node`: named after the DaemonSet, controlled by it, and pinned to the node by affinity.
    static func newPod(_ ds: DaemonSet, template: CoreV1.PodTemplateSpec, node: String) -> Pod {
        var pod = Pod.from(template, controlledBy: ds)
        // Upstream's ReplaceDaemonSetPodNodeNameNodeAffinity: the required terms become this one node.
        let term = CoreV1.NodeSelectorTerm(
            matchFields: [CoreV1.NodeSelectorRequirement(key: "metadata.name", operator: .opIn, values: [node])])
        var affinity = pod.spec.affinity ?? CoreV1.Affinity()
        var nodeAffinity = affinity.nodeAffinity ?? CoreV1.NodeAffinity()
        var required = nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution ?? CoreV1.NodeSelector()
        required.nodeSelectorTerms = [term]
        nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = required
        affinity.nodeAffinity = nodeAffinity
        pod.spec.affinity = affinity
        return pod
    }

    /// The node a daemon pod is for: where it is bound, else the node its affinity names (upstream's
    /// GetTargetNodeName).
    static func targetNode(_ pod: Pod) -> String? {
        if let n = pod.spec.nodeName, !n.isEmpty { return n }
        let terms = pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms
        for term in terms ?? [] {
            for field in term.matchFields where field.key == "metadata.name" && field.operator == .opIn {
                return field.values.count == 1 ? field.values[0] : nil
            }
        }
        return nil
    }

    static func controllerRef(_ pod: Pod) -> (name: String, uid: String)? {
        guard let ref = pod.controllerRef, ref.kind == "DaemonSet", ref.apiVersion.hasPrefix("apps/") else {
            return nil
        }
        return (ref.name, ref.uid)
    }

    static func ownerKey(_ pod: Pod) -> String? {
        controllerRef(pod).map { (pod.metadata.namespace ?? "") + "/" + $0.name }
    }

    /// Upstream's podByCreationTimestampAndPhase: bound pods first, then the oldest, then by name.
    static func olderFirst(_ a: Pod, _ b: Pod) -> Bool {
        let (ab, bb) = (!(a.spec.nodeName ?? "").isEmpty, !(b.spec.nodeName ?? "").isEmpty)
        if ab != bb { return ab }
        // No timestamp sorts first, as the empty string did before every RFC 3339 text.
        let (at, bt) = (a.metadata.creationTimestamp, b.metadata.creationTimestamp)
        if at != bt { return at.map { t in bt.map { t < $0 } ?? false } ?? true }
        return (a.metadata.name ?? "") < (b.metadata.name ?? "")
    }

    static func readySince(_ pod: Pod) -> Date? {
        guard let condition = pod.readyCondition, condition.status == .true,
            let since = condition.lastTransitionTime
        else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(since.secondsSince1970))
    }

    /// The revision hash of the template: FNV-1a (32-bit) of its JSON as the API server stores it,
    /// spelled like upstream's ControllerRevision hashes (rand.SafeEncodeString of the decimal number).
    /// Equal templates always give equal hashes, in every process — and the same as before the
    /// controller read typed objects, so an upgrade does not roll every daemon pod.
    static func templateHash(_ ds: DaemonSet) -> String {
        var bytes = storedForm(ds.spec.template).serialized()
        if let c = ds.status.collisionCount { bytes += Array(String(c).utf8) }
        let alphabet = Objects.safeAlphabet
        return String(String(Objects.fnv32(bytes)).utf8.map { alphabet[Int($0) % alphabet.count] })
    }

    /// A template's JSON as the API server stores it. The typed encoding writes an unset
    /// `metadata.creationTimestamp` as Go does, `null`; the server's workload defaulting removes that
    /// member from a template, so it is removed here too (setting a member to null removes it).
    static func storedForm(_ template: CoreV1.PodTemplateSpec) -> JSON {
        var json = template.kubeJSON()
        if template.metadata.creationTimestamp == nil { json["metadata"]["creationTimestamp"] = .null }
        return json
    }
}

/// What of a node decides where daemon pods go.
struct DaemonPlacementFields: Equatable {
    var labels: [String: String]
    var taints: [CoreV1.Taint]

    init(_ node: CoreV1.Node) {
        labels = node.metadata.labels
        taints = node.spec.taints
    }
}

/// Where a daemon pod may run: upstream's NodeShouldRunDaemonPod over the pod template.
enum DaemonPlacement {
    /// shouldRun: a pod belongs on the node; shouldContinueRunning: an existing one may stay (only
    /// untolerated NoExecute taints evict).
    static func evaluate(_ podSpec: CoreV1.PodSpec, on node: CoreV1.Node) -> (
        shouldRun: Bool, shouldContinueRunning: Bool
    ) {
        guard fits(podSpec, node) else { return (false, false) }
        var noSchedule = false
        var noExecute = false
        for taint in node.spec.taints
        where !podSpec.tolerations.contains(where: { TolerationMatch.tolerates($0, taint) }) {
            switch taint.effect {
            case .noSchedule: noSchedule = true
            case .noExecute: noExecute = true
            default: break
            }
        }
        return (!noSchedule && !noExecute, !noExecute)
    }

    /// spec.nodeName, nodeSelector and required node affinity.
    static func fits(_ podSpec: CoreV1.PodSpec, _ node: CoreV1.Node) -> Bool {
        let name = node.metadata.name ?? ""
        if let n = podSpec.nodeName, !n.isEmpty, n != name { return false }
        let labels = node.metadata.labels
        for (k, v) in podSpec.nodeSelector where labels[k] != v { return false }
        guard let required = podSpec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution else {
            return true
        }
        // Terms are ORed; within a term everything must hold; an empty term matches nothing.
        return required.nodeSelectorTerms.contains { term in
            if term.matchExpressions.isEmpty && term.matchFields.isEmpty { return false }
            return term.matchExpressions.allSatisfy { matches($0, labels[$0.key]) }
                && term.matchFields.allSatisfy { matches($0, $0.key == "metadata.name" ? name : nil) }
        }
    }

    /// A NodeSelectorRequirement against a label (or field) value.
    static func matches(_ requirement: CoreV1.NodeSelectorRequirement, _ value: String?) -> Bool {
        let values = requirement.values
        switch requirement.operator {
        case .opIn: return value.map(values.contains) ?? false
        case .opNotIn: return value.map { !values.contains($0) } ?? true
        case .opExists: return value != nil
        case .opDoesNotExist: return value == nil
        case .opGt, .opLt:
            guard let v = value.flatMap({ Int64($0) }), values.count == 1, let bound = Int64(values[0]) else {
                return false
            }
            return requirement.operator == .opGt ? v > bound : v < bound
        default: return false
        }
    }
}

/// What the DaemonSet controller remembers between syncs: writes the cache has not shown yet
/// (expectations) and the back-off for nodes whose daemon pods keep failing.
final class DaemonSetMemory: @unchecked Sendable {
    struct Pending {
        /// The revision of the last pod created: the pod informer must have reached it.
        var createdRevision: Int64
        /// Pods deleted that the cache still shows live.
        var deleted: [(key: String, uid: String)]
        /// Expectations are given up after this (a lost event must not wedge a DaemonSet).
        var deadline: Date
    }
    private let lock = NSLock()
    private var pending: [String: Pending] = [:]
    private var failures: [String: (count: Int, next: Date)] = [:]

    func expect(_ key: String, createdRevision: Int64, deleted: [(key: String, uid: String)], now: Date) {
        lock.withLock {
            if createdRevision == 0 && deleted.isEmpty { return }
            var p = pending[key] ?? Pending(createdRevision: 0, deleted: [], deadline: now)
            p.createdRevision = max(p.createdRevision, createdRevision)
            p.deleted += deleted
            p.deadline = now.addingTimeInterval(30)
            pending[key] = p
        }
    }

    /// True when the cache shows every create and delete of the last syncs (or they timed out).
    func satisfied(_ key: String, pods: Informer<CoreV1.Pod>) -> Bool {
        lock.withLock {
            guard var p = pending[key] else { return true }
            p.deleted.removeAll { d in
                guard let pod = pods.get(d.key), pod.metadata.uid == d.uid else { return true }
                return pod.isTerminating
            }
            if (pods.revision >= p.createdRevision && p.deleted.isEmpty) || p.deadline < Date() {
                pending[key] = nil
                return true
            }
            pending[key] = p
            return false
        }
    }

    /// How long to wait before replacing a failed pod on `node` again (nil: now). Upstream starts at 1 s
    /// and doubles up to 15 min; here the cap is 5 min.
    func failureBackoff(_ key: String, node: String, now: Date) -> TimeInterval? {
        lock.withLock {
            guard let f = failures[key + "|" + node], f.next > now else { return nil }
            return f.next.timeIntervalSince(now)
        }
    }
    func failed(_ key: String, node: String, now: Date) {
        lock.withLock {
            let n = (failures[key + "|" + node]?.count ?? 0) + 1
            failures[key + "|" + node] = (n, now.addingTimeInterval(min(pow(2, Double(n - 1)), 300)))
        }
    }

    func forget(_ key: String) {
        lock.withLock {
            pending[key] = nil
            failures = failures.filter { !$0.key.hasPrefix(key + "|") }
        }
    }
}

import BerthAPI
import BerthKube
import Foundation
import Logging

/// The StatefulSet controller (upstream pkg/controller/statefulset): pods with a stable identity,
/// `<set>-<ordinal>`, each with its hostname and the set's service as subdomain, created, replaced and
/// removed in the order StatefulSetPlan decides; every template kept as a ControllerRevision, whose name
/// pods carry in `controller-revision-hash` and status reports as currentRevision/updateRevision (what
/// `kubectl rollout status/history/undo sts/x` read).
///
/// Pods it does not control but whose name and labels make them its own are adopted, and pods whose
/// labels no longer match its selector are released, as upstream's ControllerRefManager does. The
/// informer cache lags behind the controller's own writes; the plan depends only on what the cache
/// shows, so a sync that runs early repeats a write (a create answered AlreadyExists, a delete of a pod
/// already terminating) rather than doing a second one.
struct StatefulSetController: ControlLoop {
    typealias Pod = CoreV1.Pod
    typealias StatefulSet = AppsV1.StatefulSet
    typealias Revision = AppsV1.ControllerRevision

    let name = "statefulset-controller"
    let queue = WorkQueue(name: "statefulsets")
    let client: any KubeClient
    let sets: Informer<StatefulSet>
    let pods: Informer<Pod>
    let revisions: Informer<Revision>
    let claims: Informer<CoreV1.PersistentVolumeClaim>
    let events: ComponentRecorder
    let logger: Logger
    let workers: Int

    /// Pods and revisions by the UID of their controller (the index the other workload controllers keep).
    static let ownerIndex = "controller"
    static let podNameLabel = "statefulset.kubernetes.io/pod-name"
    static let podIndexLabel = "apps.kubernetes.io/pod-index"

    init(_ ctx: ControllerContext) {
        client = ctx.client("statefulset-controller")
        events = ctx.events.component("statefulset-controller")
        logger = ctx.logger
        workers = ctx.config.workers
        sets = ctx.informers.informer(StatefulSet.self)
        pods = ctx.informers.informer(Pod.self)
        revisions = ctx.informers.informer(Revision.self)
        claims = ctx.informers.informer(CoreV1.PersistentVolumeClaim.self)
        pods.addIndex(Self.ownerIndex) { $0.controllerUIDs }
        revisions.addIndex(Self.ownerIndex) { $0.controllerUIDs }
        let (queue, sets) = (self.queue, self.sets)
        sets.onChange { event in
            let key = event.object.cacheKey
            Task { await queue.add(key) }
        }
        // A revision adopted, released or renumbered syncs its set again (an orphan: the sets of its namespace).
        revisions.onChange { event in
            var keys: Set<String> = []
            if let key = ControllerHistory.ownerKey(event.object, kind: "StatefulSet") {
                keys.insert(key)
            } else if event.object.controllerRef == nil, let ns = event.object.metadata.namespace {
                keys.formUnion(sets.list(namespace: ns).map(\.cacheKey))
            }
            for k in keys { Task { await queue.add(k) } }
        }
        // A deleted claim syncs the sets that make claims in its namespace: a pending pod needs it back.
        claims.onChange { event in
            guard case .deleted(let claim) = event, let ns = claim.metadata.namespace else { return }
            for set in sets.list(namespace: ns) where !set.spec.volumeClaimTemplates.isEmpty {
                let key = set.cacheKey
                Task { await queue.add(key) }
            }
        }
        pods.onChange { event in
            var keys: Set<String> = []
            var changed = [event.object]
            if case .updated(let old, _) = event { changed.append(old) }
            for pod in changed {
                guard let ns = pod.metadata.namespace else { continue }
                if let ref = pod.controllerRef {
                    if ref.kind == "StatefulSet" { keys.insert(Objects.key(namespace: ns, name: ref.name)) }
                } else {
                    // An orphan: the set whose member its name makes it may adopt it.
                    for set in sets.list(namespace: ns)
                    where StatefulSetPlan.ordinal(podName: pod.metadata.name ?? "", setName: set.metadata.name ?? "")
                        != nil
                    {
                        keys.insert(set.cacheKey)
                    }
                }
            }
            for k in keys { Task { await queue.add(k) } }
        }
    }

    func run() async {
        let logger = self.logger
        await runWorkers(
            queue, count: workers, sync: { try await sync($0) },
            onError: { key, error in
                if Task.isCancelled { return }
                if let e = error as? APIError, [404, 409].contains(e.code) {
                    logger.debug("statefulset sync retried", metadata: ["key": "\(key)", "error": "\(e)"])
                } else {
                    logger.warning("statefulset sync failed", metadata: ["key": "\(key)", "error": "\(error)"])
                }
            })
    }

    // MARK: sync

    func sync(_ key: String) async throws {
        // Deleted or being deleted: the garbage collector removes its pods and revisions (it owns them).
        guard let set = sets.get(key), !set.isTerminating else { return }
        let selector = LabelSelector(set.spec.selector)
        if selector.isEmpty { return }
        if try await claimPods(set, selector: selector) { return }  // the informer brings them back as ours
        if try await ControllerHistory.claim(set, selector: selector, revisions: revisions, client: client) { return }
        let setName = set.metadata.name ?? ""
        let owned = pods.byIndex(Self.ownerIndex, set.metadata.uid ?? "").filter {
            selector.matches($0.metadata.labels)
                && StatefulSetPlan.ordinal(podName: $0.metadata.name ?? "", setName: setName) != nil
        }
        // identityMatches: a pod whose identity labels someone removed gets them back before anything else.
        if try await repairIdentity(owned, setName: setName) { return }
        let (current, update) = try await revisions(of: set)
        let now = Date()
        let minReady = Int64(set.spec.minReadySeconds ?? 0)
        let members = owned.map { Self.member($0, setName: setName, minReady: minReady, now: now) }
        let input = Self.planInput(set, current: current.metadata.name ?? "", update: update.metadata.name ?? "")
        let actions = StatefulSetPlan.plan(input, members: members)
        try await reconcileClaimOwners(set, pods: owned)
        // A pending pod whose claim was deleted would wait for it for ever: it is made again.
        for pod in owned
        where pod.status.phase == .pending && !pod.isTerminating && !set.spec.volumeClaimTemplates.isEmpty {
            guard let name = pod.metadata.name, let ordinal = StatefulSetPlan.ordinal(podName: name, setName: setName)
            else { continue }
            try await createClaims(set, ordinal: ordinal, podName: name)
        }
        var firstError: (any Error)?
        for action in actions {
            do {
                try await perform(action, set: set, owned: owned, current: current, update: update)
            } catch {
                if firstError == nil { firstError = error }
                if !input.parallel { break }
            }
        }
        try await updateStatus(set, pods: owned, current: current, update: update, now: now)
        try await cleanupHistory(set, pods: owned, keep: [current, update])
        if let firstError { throw firstError }
        // A ready pod becomes available after minReadySeconds; no event says so.
        if minReady > 0, let wait = owned.compactMap({ Self.untilAvailable($0, minReady: minReady, now: now) }).min() {
            queue.add(key, after: .milliseconds(Int64(wait * 1000) + 10))
        }
    }

    static func planInput(_ set: StatefulSet, current: String, update: String) -> StatefulSetPlan.Input {
        let strategy = set.spec.updateStrategy
        let onDelete = strategy.type == .onDeleteStatefulSetStrategyType
        return StatefulSetPlan.Input(
            replicas: Int(set.spec.replicas ?? 1), start: Int(set.spec.ordinals?.start ?? 0),
            parallel: set.spec.podManagementPolicy == .parallelPodManagement, onDelete: onDelete,
            partition: onDelete ? nil : strategy.rollingUpdate.map { Int($0.partition ?? 0) },
            currentRevision: current, updateRevision: update,
            currentReplicas: Int(set.status.currentReplicas ?? 0))
    }

    static func member(_ pod: Pod, setName: String, minReady: Int64, now: Date) -> StatefulSetPlan.Member {
        let ready = pod.status.phase == .running && pod.isReady
        return StatefulSetPlan.Member(
            ordinal: StatefulSetPlan.ordinal(podName: pod.metadata.name ?? "", setName: setName) ?? -1,
            revision: pod.metadata.labels[ControllerHistory.hashLabel] ?? "", terminating: pod.isTerminating,
            finished: pod.isFinished, runningAndReady: ready,
            available: ready && pod.isAvailable(minReadySeconds: minReady, now: now))
    }

    static func untilAvailable(_ pod: Pod, minReady: Int64, now: Date) -> TimeInterval? {
        guard pod.status.phase == .running, !pod.isAvailable(minReadySeconds: minReady, now: now),
            let since = DaemonSetController.readySince(pod)
        else { return nil }
        return max(0, since.addingTimeInterval(TimeInterval(minReady)).timeIntervalSince(now))
    }

    private func perform(
        _ action: StatefulSetPlan.Action, set: StatefulSet, owned: [Pod], current: Revision, update: Revision
    ) async throws {
        let setName = set.metadata.name ?? ""
        switch action {
        case .create(let ordinal, let revisionName):
            let revision = revisionName == update.metadata.name ? update : current
            let template =
                revision.metadata.name == update.metadata.name
                ? set.spec.template : (ControllerHistory.template(of: revision) ?? set.spec.template)
            let pod = Self.newPod(set, template: template, revision: revisionName, ordinal: ordinal)
            try await createClaims(set, ordinal: ordinal, podName: pod.metadata.name ?? "")
            do {
                _ = try await client.create(pod)
                events.record(
                    set, reason: "SuccessfulCreate",
                    message: "create Pod \(pod.metadata.name ?? "") in StatefulSet \(setName) successful")
            } catch let e as APIError where e.reason == "AlreadyExists" {
                // Created by a sync the cache has not shown yet (or a namesake it will adopt or report).
            } catch {
                events.record(
                    set, type: "Warning", reason: "FailedCreate",
                    message: "create Pod \(pod.metadata.name ?? "") in StatefulSet \(setName) failed error: \(error)")
                throw error
            }
        case .delete(let ordinal):
            guard
                let pod = owned.first(where: {
                    StatefulSetPlan.ordinal(podName: $0.metadata.name ?? "", setName: setName) == ordinal
                })
            else { return }
            let name = pod.metadata.name ?? ""
            do {
                try await client.delete(Pod.self, namespace: pod.metadata.namespace, name: name, uid: pod.metadata.uid)
                events.record(
                    set, reason: "SuccessfulDelete", message: "delete Pod \(name) in StatefulSet \(setName) successful")
            } catch let e as APIError
                where e.code == 404 || (e.code == 409 && e.message.hasPrefix("Precondition failed"))
            {}
        }
    }

    // MARK: pods

    /// A pod of the set (newStatefulSetPod): named by its ordinal, with its identity (hostname,
    /// subdomain, the pod-name and pod-index labels), its revision's label and its claims as volumes.
    static func newPod(_ set: StatefulSet, template: CoreV1.PodTemplateSpec, revision: String, ordinal: Int) -> Pod {
        let setName = set.metadata.name ?? ""
        var pod = Pod.from(template, controlledBy: set)
        let name = "\(setName)-\(ordinal)"
        pod.metadata.generateName = nil
        pod.metadata.name = name
        pod.metadata.labels[podNameLabel] = name
        pod.metadata.labels[podIndexLabel] = String(ordinal)
        pod.metadata.labels[ControllerHistory.hashLabel] = revision
        pod.spec.hostname = name
        pod.spec.subdomain = set.spec.serviceName.isEmpty ? nil : set.spec.serviceName
        for claim in set.spec.volumeClaimTemplates {
            let volumeName = claim.metadata.name ?? ""
            var volume = CoreV1.Volume()
            volume.name = volumeName
            volume.persistentVolumeClaim = CoreV1.PersistentVolumeClaimVolumeSource(
                claimName: claimName(set, template: volumeName, ordinal: ordinal))
            if let i = pod.spec.volumes.firstIndex(where: { $0.name == volumeName }) {
                pod.spec.volumes[i] = volume
            } else {
                pod.spec.volumes.append(volume)
            }
        }
        return pod
    }

    /// Puts back the pod-name and pod-index labels of pods that lost them (upstream's updateIdentity:
    /// Services and tools select a single member by them). Returns whether a pod was written.
    func repairIdentity(_ owned: [Pod], setName: String) async throws -> Bool {
        var wrote = false
        for pod in owned where !pod.isTerminating {
            guard let name = pod.metadata.name, let ordinal = StatefulSetPlan.ordinal(podName: name, setName: setName)
            else { continue }
            if pod.metadata.labels[Self.podNameLabel] == name
                && pod.metadata.labels[Self.podIndexLabel] == String(ordinal)
            {
                continue
            }
            var repaired = pod
            repaired.metadata.labels[Self.podNameLabel] = name
            repaired.metadata.labels[Self.podIndexLabel] = String(ordinal)
            do {
                _ = try await client.update(repaired)
                wrote = true
            } catch let e as APIError where e.code == 409 || e.code == 404 {}
        }
        return wrote
    }

    /// getPersistentVolumeClaimName: `<template>-<set>-<ordinal>`.
    static func claimName(_ set: StatefulSet, template: String, ordinal: Int) -> String {
        "\(template)-\(set.metadata.name ?? "")-\(ordinal)"
    }

    /// ClaimPods: adopts orphans that are members by name and match the selector; releases pods it
    /// controls whose labels no longer match. Returns whether anything changed.
    func claimPods(_ set: StatefulSet, selector: BerthAPI.LabelSelector) async throws -> Bool {
        guard let ns = set.metadata.namespace else { return false }
        let setName = set.metadata.name ?? ""
        // Only pods whose names make them members are adopted.
        return try await ControllerRefManager.claim(
            pods.list(namespace: ns), for: set, selector: selector, client: client
        ) {
            StatefulSetPlan.ordinal(podName: $0.metadata.name ?? "", setName: setName) != nil
        }
    }

    // MARK: revisions

    /// getStatefulSetRevisions: the update revision is the one holding the current template (created,
    /// or an older one renumbered as the newest after a rollback); the current revision is the one status
    /// names, or the update revision for a new set.
    func revisions(of set: StatefulSet) async throws -> (current: Revision, update: Revision) {
        let owned = revisions.byIndex(Self.ownerIndex, set.metadata.uid ?? "").sorted(by: ControllerHistory.byRevision)
        let data = ControllerHistory.patch(set.spec.template)
        let next = ControllerHistory.nextRevision(owned)
        var update: Revision
        if let equal = ControllerHistory.equal(owned, data: data).last {
            if equal.revision == owned.last?.revision {
                update = equal
            } else {
                var renumbered = equal
                renumbered.revision = next
                update = try await client.update(renumbered)
            }
        } else {
            let hash = ControllerHistory.hash(data, collisionCount: set.status.collisionCount)
            let cr = ControllerHistory.make(
                owner: set, templateLabels: set.spec.template.metadata.labels, data: data, hash: hash, revision: next)
            do {
                update = try await client.create(cr)
            } catch let e as APIError where e.code == 409 {
                let existing = try await client.get(
                    Revision.self, namespace: set.metadata.namespace, name: cr.metadata.name ?? "")
                if let existing, existing.controllerRef?.uid == set.metadata.uid,
                    !ControllerHistory.equal([existing], data: data).isEmpty
                {
                    update = existing  // ours, not yet in the cache
                } else {
                    // A namesake with other data: the next hash is salted with a higher collision count.
                    var bumped = set
                    bumped.status.collisionCount = (set.status.collisionCount ?? 0) + 1
                    _ = try await client.updateStatus(bumped)
                    throw e
                }
            }
        }
        let current = owned.first { $0.metadata.name == set.status.currentRevision } ?? update
        return (current, update)
    }

    /// Deletes the oldest revisions no pod carries beyond revisionHistoryLimit.
    func cleanupHistory(_ set: StatefulSet, pods owned: [Pod], keep: [Revision]) async throws {
        let history = revisions.byIndex(Self.ownerIndex, set.metadata.uid ?? "")
        let limit = Int(set.spec.revisionHistoryLimit ?? 10)
        let live = Set(owned.compactMap { $0.metadata.labels[ControllerHistory.hashLabel] })
        let kept = Set(keep.compactMap(\.metadata.name))
        for cr in ControllerHistory.surplus(history, live: live, keep: kept, limit: limit) {
            do {
                try await client.delete(
                    Revision.self, namespace: cr.metadata.namespace, name: cr.metadata.name ?? "", uid: cr.metadata.uid)
            } catch let e as APIError where e.code == 404 {}
        }
    }

    // MARK: status

    private func updateStatus(_ set: StatefulSet, pods owned: [Pod], current: Revision, update: Revision, now: Date)
        async throws
    {
        let status = Self.status(set, pods: owned, current: current, update: update, now: now)
        if status == set.status { return }
        var written = set
        written.status = status
        do {
            _ = try await client.updateStatus(written)
        } catch let e as APIError where e.code == 409 || e.code == 404 {
            // A newer version is on its way through the informer; it is synced again.
        }
    }

    /// The status as upstream counts it (omitempty counts left out when zero), with completeRollingUpdate:
    /// once every replica is updated and ready, the update revision becomes the current one.
    static func status(_ set: StatefulSet, pods owned: [Pod], current: Revision, update: Revision, now: Date)
        -> AppsV1.StatefulSetStatus
    {
        let minReady = Int64(set.spec.minReadySeconds ?? 0)
        var (replicas, ready, available, currentCount, updated): (Int32, Int32, Int32, Int32, Int32) = (0, 0, 0, 0, 0)
        for pod in owned {
            replicas += 1
            if pod.status.phase == .running && pod.isReady {
                ready += 1
                if pod.isAvailable(minReadySeconds: minReady, now: now) { available += 1 }
            }
            if !pod.isTerminating {
                let revision = pod.metadata.labels[ControllerHistory.hashLabel]
                if revision == current.metadata.name { currentCount += 1 }
                if revision == update.metadata.name { updated += 1 }
            }
        }
        var status = set.status
        status.observedGeneration = set.metadata.generation
        status.replicas = replicas
        status.readyReplicas = ready != 0 ? ready : nil
        status.availableReplicas = available
        status.currentReplicas = currentCount != 0 ? currentCount : nil
        status.updatedReplicas = updated != 0 ? updated : nil
        status.currentRevision = current.metadata.name
        status.updateRevision = update.metadata.name
        status.collisionCount = set.status.collisionCount ?? 0
        let want = set.spec.replicas ?? 1
        if set.spec.updateStrategy.type != .onDeleteStatefulSetStrategyType, updated == want, ready == want,
            replicas == want
        {
            status.currentReplicas = status.updatedReplicas
            status.currentRevision = status.updateRevision
        }
        return status
    }
}

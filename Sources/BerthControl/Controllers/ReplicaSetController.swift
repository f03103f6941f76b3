import BerthAPI
import BerthKube
import Foundation
import Logging

/// The ReplicaSet controller, and the ReplicationController manager: upstream runs the same code for
/// both (converting ReplicationControllers to ReplicaSets), here one generic loop.
typealias ReplicaSetController = ReplicaManager<AppsV1.ReplicaSet>
typealias ReplicationManager = ReplicaManager<CoreV1.ReplicationController>

/// What the replica manager needs of a ReplicaSet or a ReplicationController.
protocol ReplicatedPodSet: KubeObject & HasObjectMeta {
    static var controllerKind: String { get }
    static var controllerName: String { get }
    var desiredReplicas: Int { get }
    var minReady: Int64 { get }
    var podTemplate: CoreV1.PodTemplateSpec { get }
    /// The set with its status from `counts` (ReplicaFailure when `failure`), nil when that changes nothing.
    func withStatus(_ counts: OwnedPodSummaries.Counts, failure: (any Error)?) -> Self?
}

/// The counts both kinds' statuses keep, and their ReplicaFailure condition.
protocol ReplicaCountingStatus: Equatable {
    var replicas: Int32 { get set }
    var fullyLabeledReplicas: Int32? { get set }
    var readyReplicas: Int32? { get set }
    var availableReplicas: Int32? { get set }
    var observedGeneration: Int64? { get set }
    /// Drops the ReplicaFailure condition, and sets it again (FailedCreate) when `message` is given.
    mutating func setReplicaFailure(_ message: String?)
}

extension ReplicaCountingStatus {
    /// The status with `counts` of the set at `generation`, nil when that changes nothing.
    func counting(_ counts: OwnedPodSummaries.Counts, generation: Int64?, failure: (any Error)?) -> Self? {
        var status = self
        status.replicas = Int32(clamping: counts.active)
        status.fullyLabeledReplicas = Int32(clamping: counts.labeled)
        status.readyReplicas = Int32(clamping: counts.ready)
        status.availableReplicas = Int32(clamping: counts.available)
        status.observedGeneration = generation
        status.setReplicaFailure(failure.map { "\($0)" })
        return status == self ? nil : status
    }
}

extension AppsV1.ReplicaSetStatus: ReplicaCountingStatus {
    mutating func setReplicaFailure(_ message: String?) {
        conditions.removeAll { $0.type == .replicaFailure }
        guard let message else { return }
        conditions.append(
            AppsV1.ReplicaSetCondition(
                type: .replicaFailure, status: .true, lastTransitionTime: .now(), reason: "FailedCreate",
                message: message))
    }
}

extension CoreV1.ReplicationControllerStatus: ReplicaCountingStatus {
    mutating func setReplicaFailure(_ message: String?) {
        conditions.removeAll { $0.type == .replicaFailure }
        guard let message else { return }
        conditions.append(
            CoreV1.ReplicationControllerCondition(
                type: .replicaFailure, status: .true, lastTransitionTime: .now(), reason: "FailedCreate",
                message: message))
    }
}

extension AppsV1.ReplicaSet: ReplicatedPodSet {
    static var controllerKind: String { "ReplicaSet" }
    static var controllerName: String { "replicaset-controller" }
    // Stored sets always have replicas (the API defaults it); 1 is that default.
    var desiredReplicas: Int { Int(spec.replicas ?? 1) }
    var minReady: Int64 { Int64(spec.minReadySeconds ?? 0) }
    var podTemplate: CoreV1.PodTemplateSpec { spec.template }
    func withStatus(_ counts: OwnedPodSummaries.Counts, failure: (any Error)?) -> Self? {
        guard let status = status.counting(counts, generation: metadata.generation, failure: failure) else {
            return nil
        }
        var updated = self
        updated.status = status
        return updated
    }
}

extension CoreV1.ReplicationController: ReplicatedPodSet {
    static var controllerKind: String { "ReplicationController" }
    static var controllerName: String { "replicationcontroller-controller" }
    var desiredReplicas: Int { Int(spec.replicas ?? 1) }
    var minReady: Int64 { Int64(spec.minReadySeconds ?? 0) }
    var podTemplate: CoreV1.PodTemplateSpec { spec.template ?? .init() }
    func withStatus(_ counts: OwnedPodSummaries.Counts, failure: (any Error)?) -> Self? {
        guard let status = status.counting(counts, generation: metadata.generation, failure: failure) else {
            return nil
        }
        var updated = self
        updated.status = status
        return updated
    }
}

/// Keeps `spec.replicas` pods running for every ReplicaSet (or ReplicationController): creates missing
/// pods from the template, deletes surplus ones (the least useful first), and reports
/// replicas/ready/available in status.
struct ReplicaManager<ReplicaSet: ReplicatedPodSet>: ControlLoop {
    typealias Pod = CoreV1.Pod

    let name = ReplicaSet.controllerName
    let client: any KubeClient
    let sets: Informer<ReplicaSet>
    let pods: Informer<Pod>
    let queue = WorkQueue(name: "replicaset")
    let expectations = Expectations()
    let summaries = OwnedPodSummaries()
    let events: ComponentRecorder
    let logger: Logger
    let workers: Int
    let burst: Int

    /// Pods by the UID of their controller (the DaemonSet and Deployment controllers keep it too).
    static var ownerIndex: String { "controller" }

    init(_ ctx: ControllerContext) {
        client = ctx.client(ReplicaSet.controllerName)
        sets = ctx.informers.informer(ReplicaSet.self)
        pods = ctx.informers.informer(Pod.self)
        events = ctx.events.component(ReplicaSet.controllerName)
        logger = ctx.logger
        workers = ctx.config.workers
        burst = ctx.config.burst
        pods.addIndex(Self.ownerIndex) { $0.controllerUIDs }
        let queue = self.queue, expectations = self.expectations
        sets.onChange { e in
            let key = e.object.cacheKey
            if case .deleted = e { expectations.forget(key) }
            Task { await queue.add(key) }
        }
        let pods = self.pods, summaries = self.summaries
        pods.onChange { e in
            summaries.apply(e)
            guard let ref = e.object.controllerRef(kind: ReplicaSet.controllerKind),
                let ns = e.object.metadata.namespace
            else {
                return
            }
            let key = Objects.key(namespace: ns, name: ref.name)
            let podKey = e.object.cacheKey
            var changesCount = true
            switch e {
            case .added: expectations.creationObserved(key)
            case .deleted: expectations.deletionObserved(key, pod: podKey)
            case .updated(let old, let new):
                if !old.isTerminating && new.isTerminating {
                    expectations.deletionObserved(key, pod: podKey)
                } else {
                    changesCount = false
                }
            }
            // A sync walks every pod of the set. For a large set, events that cannot change what the
            // sync does next — a pod's status changed, or a create while more are still awaited — are
            // gathered into one sync a moment later (status counts lag by that moment); the event that
            // completes a burst, a deletion or a pod going away syncs at once.
            if pods.countIndex(Self.ownerIndex, ref.uid) > Self.largeSet
                && (!changesCount || !expectations.satisfied(key))
            {
                Task { await queue.addSoon(key, after: Self.largeSetDelay) }
            } else {
                Task { await queue.add(key) }
            }
        }
    }

    static var largeSet: Int { 2000 }
    static var largeSetDelay: Duration { .milliseconds(250) }

    func run() async {
        await runWorkers(
            queue, count: workers, sync: sync,
            onError: { key, error in
                logger.debug("replicaset sync failed", metadata: ["replicaset": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ key: String) async throws {
        guard let rs = sets.get(key) else {
            expectations.forget(key)
            return
        }
        if rs.isTerminating { return }
        let uid = rs.metadata.uid ?? ""
        let minReady = rs.minReady
        // Expectations first, the counts after, as upstream: a create the informer shows between counting
        // and asking would meet the expectations while the counts still lack it (and one pod too many follows).
        let expectationsMet = expectations.satisfied(key)
        let counts = summaries.counts(
            owner: uid, templateLabels: rs.podTemplate.metadata.labels, minReadySeconds: minReady, now: Date())
        let want = rs.desiredReplicas
        var manageError: (any Error)?
        if expectationsMet {
            let diff = Int(counts.active) - want
            do {
                if diff < 0 {
                    try await create(min(-diff, burst), for: rs, key: key)
                } else if diff > 0 {
                    let active = pods.byIndex(Self.ownerIndex, uid).filter(\.isActive)
                    try await delete(Self.rank(active).prefix(min(diff, burst)), for: rs, key: key)
                }
            } catch { manageError = error }
        }
        try await updateStatus(rs, counts: counts, failure: manageError)
        if let manageError { throw manageError }
        if minReady > 0, counts.readyNotAvailable > 0 {
            queue.add(key, after: .seconds(Int(minReady)))
        }
    }

    /// A pod from the ReplicaSet's template, owned by it (the name is generated from the set's).
    static func pod(from rs: ReplicaSet) -> Pod { Pod.from(rs.podTemplate, controlledBy: rs) }

    func create(_ n: Int, for rs: ReplicaSet, key: String) async throws {
        expectations.expectCreations(key, n)
        let template = Self.pod(from: rs)
        let client = self.client, expectations = self.expectations
        let failures = Failures()
        await forEachConcurrently(0..<n, width: 256) { _ in
            for attempt in 0..<5 {
                do {
                    _ = try await client.create(template)
                    return
                } catch let e as APIError where e.reason == "AlreadyExists" && attempt < 4 {
                    continue  // a generated name collided: draw another
                } catch {
                    expectations.creationObserved(key)
                    failures.add(error)
                    return
                }
            }
        }
        if let first = failures.first {
            events.record(rs, type: "Warning", reason: "FailedCreate", message: "Error creating: \(first)")
            throw first
        }
        events.record(rs, reason: "SuccessfulCreate", message: n == 1 ? "Created pod" : "Created \(n) pods")
    }

    func delete(_ victims: ArraySlice<Pod>, for rs: ReplicaSet, key: String) async throws {
        expectations.expectDeletions(key, victims.map(\.cacheKey))
        let client = self.client, expectations = self.expectations
        let failures = Failures()
        await forEachConcurrently(Array(victims), width: 64) { pod in
            do {
                try await client.delete(
                    Pod.self, namespace: pod.metadata.namespace, name: pod.metadata.name ?? "", uid: pod.metadata.uid)
            } catch let e as APIError where e.code == 404 {
                expectations.deletionObserved(key, pod: pod.cacheKey)
            } catch {
                expectations.deletionObserved(key, pod: pod.cacheKey)
                failures.add(error)
            }
        }
        if let first = failures.first {
            events.record(rs, type: "Warning", reason: "FailedDelete", message: "Error deleting: \(first)")
            throw first
        }
        let names = victims.compactMap(\.metadata.name)
        events.record(
            rs, reason: "SuccessfulDelete",
            message:
                "Deleted pod: \(names.prefix(5).joined(separator: ", "))\(names.count > 5 ? " and \(names.count - 5) more" : "")"
        )
    }

    /// Upstream's deletion order (controller.ActivePods): unscheduled, then pending before unknown before
    /// running, not ready, ready for less time, more restarts, newer — the pods that cost least to lose
    /// come first. A missing time sorts as the earliest.
    static func rank(_ pods: [Pod]) -> [Pod] {
        func phaseRank(_ p: Pod) -> Int {
            [.pending: 0, .unknown: 1, .running: 2][p.status.phase ?? .pending] ?? 0
        }
        func restarts(_ p: Pod) -> Int64 {
            p.status.containerStatuses.reduce(0) { $0 + Int64($1.restartCount) }
        }
        func seconds(_ t: MetaV1.Time?) -> Int64 { t?.secondsSince1970 ?? .min }
        return pods.sorted { a, b in
            let aBound = !(a.spec.nodeName ?? "").isEmpty, bBound = !(b.spec.nodeName ?? "").isEmpty
            if aBound != bBound { return !aBound }
            if phaseRank(a) != phaseRank(b) { return phaseRank(a) < phaseRank(b) }
            if a.isReady != b.isReady { return !a.isReady }
            let ra = seconds(a.readyCondition?.lastTransitionTime), rb = seconds(b.readyCondition?.lastTransitionTime)
            if a.isReady && ra != rb { return ra > rb }
            if restarts(a) != restarts(b) { return restarts(a) > restarts(b) }
            return seconds(a.metadata.creationTimestamp) > seconds(b.metadata.creationTimestamp)
        }
    }

    func updateStatus(_ rs: ReplicaSet, counts: OwnedPodSummaries.Counts, failure: (any Error)?) async throws {
        guard let updated = rs.withStatus(counts, failure: failure) else { return }
        do {
            _ = try await client.updateStatus(updated)
        } catch let e as APIError where e.code == 409 || e.code == 404 {
            // A newer version is on its way through the informer; it will be synced again.
        }
    }
}

/// Errors collected from concurrent work.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [any Error] = []
    func add(_ e: any Error) { lock.withLock { errors.append(e) } }
    var first: (any Error)? { lock.withLock { errors.first } }
}

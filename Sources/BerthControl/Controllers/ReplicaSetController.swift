import BerthAPI
import Foundation
import Logging

/// Keeps `spec.replicas` pods running for every ReplicaSet: creates missing pods from the template,
/// deletes surplus ones (the least useful first), and reports replicas/ready/available in status.
struct ReplicaSetController: ControlLoop {
    let name = "replicaset-controller"
    let client: LocalClient
    let sets: UntypedInformer
    let pods: UntypedInformer
    let queue = WorkQueue(name: "replicaset")
    let expectations = Expectations()
    let summaries = OwnedPodSummaries()
    let events: ComponentRecorder
    let logger: Logger
    let workers: Int
    let burst: Int

    init(_ ctx: ControllerContext) {
        client = ctx.localClient("replicaset-controller")
        sets = ctx.informers.informer(Registry.replicaSets)
        pods = ctx.informers.informer(Registry.pods)
        events = ctx.events.component("replicaset-controller")
        logger = ctx.logger
        workers = ctx.config.workers
        burst = ctx.config.burst
        pods.addIndex("controller", Objects.controllerUID)
        let queue = self.queue, expectations = self.expectations
        sets.onChange { e in
            let key = UntypedInformer.key(e.object)
            if case .deleted = e { expectations.forget(key) }
            Task { await queue.add(key) }
        }
        let pods = self.pods, summaries = self.summaries
        pods.onChange { e in
            summaries.apply(e)
            guard let ref = Objects.controllerRef(e.object), ref["kind"].string == "ReplicaSet",
                let owner = ref["name"].string, let ns = e.object["metadata"]["namespace"].string
            else { return }
            let key = Objects.key(namespace: ns, name: owner)
            let podKey = UntypedInformer.key(e.object)
            var changesCount = true
            switch e {
            case .added: expectations.creationObserved(key)
            case .deleted: expectations.deletionObserved(key, pod: podKey)
            case .updated(let old, let new):
                if !Objects.isTerminating(old) && Objects.isTerminating(new) {
                    expectations.deletionObserved(key, pod: podKey)
                } else {
                    changesCount = false
                }
            }
            // A sync walks every pod of the set. For a large set, events that cannot change what the
            // sync does next — a pod's status changed, or a create while more are still awaited — are
            // gathered into one sync a moment later (status counts lag by that moment); the event that
            // completes a burst, a deletion or a pod going away syncs at once.
            if pods.countIndex("controller", ref["uid"].string ?? "") > Self.largeSet
                && (!changesCount || !expectations.satisfied(key))
            {
                Task { await queue.addSoon(key, after: Self.largeSetDelay) }
            } else {
                Task { await queue.add(key) }
            }
        }
    }

    static let largeSet = 2000
    static let largeSetDelay = Duration.milliseconds(250)

    func run() async {
        await runWorkers(
            queue, count: workers, sync: sync,
            onError: { key, error in
                logger.debug("replicaset sync failed", metadata: ["replicaset": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ key: String) async throws {
        guard let rs = sets.get(key) else { expectations.forget(key); return }
        if Objects.isTerminating(rs) { return }
        let uid = rs["metadata"]["uid"].string ?? ""
        let minReady = rs["spec"]["minReadySeconds"].int ?? 0
        let counts = summaries.counts(
            owner: uid, templateLabels: rs["spec"]["template"]["metadata"]["labels"].object ?? [:],
            minReadySeconds: minReady, now: Date())
        let want = Int(rs["spec"]["replicas"].int ?? 1)
        var manageError: (any Error)?
        if expectations.satisfied(key) {
            let diff = Int(counts.active) - want
            do {
                if diff < 0 {
                    try await create(min(-diff, burst), for: rs, key: key)
                } else if diff > 0 {
                    let active = pods.byIndex("controller", uid).filter(Objects.isActive)
                    try await delete(rank(active).prefix(min(diff, burst)), for: rs, key: key)
                }
            } catch { manageError = error }
        }
        try await updateStatus(rs, key: key, counts: counts, failure: manageError)
        if let manageError { throw manageError }
        if minReady > 0, counts.readyNotAvailable > 0 {
            queue.add(key, after: .seconds(Int(minReady)))
        }
    }

    /// A pod object from the ReplicaSet's template.
    static func pod(from rs: JSON) -> JSON {
        let t = rs["spec"]["template"]
        var meta: JSON = [
            "generateName": .string((rs["metadata"]["name"].string ?? "") + "-"),
            "namespace": rs["metadata"]["namespace"],
            "ownerReferences": [Objects.ownerReference(to: rs, kind: "ReplicaSet", apiVersion: "apps/v1")],
        ]
        if !t["metadata"]["labels"].isNull { meta["labels"] = t["metadata"]["labels"] }
        if !t["metadata"]["annotations"].isNull { meta["annotations"] = t["metadata"]["annotations"] }
        if !t["metadata"]["finalizers"].isNull { meta["finalizers"] = t["metadata"]["finalizers"] }
        return ["apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": t["spec"]]
    }

    func create(_ n: Int, for rs: JSON, key: String) async throws {
        expectations.expectCreations(key, n)
        let template = Self.pod(from: rs)
        let client = self.client, expectations = self.expectations
        let failures = Failures()
        await forEachConcurrently(0..<n, width: 256) { _ in
            for attempt in 0..<5 {
                do {
                    try await client.create(Registry.pods, template)
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

    func delete(_ victims: ArraySlice<JSON>, for rs: JSON, key: String) async throws {
        expectations.expectDeletions(key, victims.map(UntypedInformer.key))
        let client = self.client, expectations = self.expectations
        let failures = Failures()
        await forEachConcurrently(Array(victims), width: 64) { pod in
            do {
                try await client.delete(
                    Registry.pods, namespace: pod["metadata"]["namespace"].string,
                    name: pod["metadata"]["name"].string ?? "",
                    uid: pod["metadata"]["uid"].string)
            } catch let e as APIError where e.code == 404 {
                expectations.deletionObserved(key, pod: UntypedInformer.key(pod))
            } catch {
                expectations.deletionObserved(key, pod: UntypedInformer.key(pod))
                failures.add(error)
            }
        }
        if let first = failures.first {
            events.record(rs, type: "Warning", reason: "FailedDelete", message: "Error deleting: \(first)")
            throw first
        }
        let names = victims.compactMap { $0["metadata"]["name"].string }
        events.record(
            rs, reason: "SuccessfulDelete",
            message:
                "Deleted pod: \(names.prefix(5).joined(separator: ", "))\(names.count > 5 ? " and \(names.count - 5) more" : "")"
        )
    }

    /// Upstream's deletion order: unscheduled, then pending, not ready, ready for less time, more
    /// restarts, newer — the pods that cost least to lose come first.
    func rank(_ pods: [JSON]) -> [JSON] {
        func phaseRank(_ p: JSON) -> Int {
            ["Pending": 0, "Unknown": 1, "Running": 2][p["status"]["phase"].string ?? "Pending"] ?? 0
        }
        func restarts(_ p: JSON) -> Int64 {
            (p["status"]["containerStatuses"].array ?? []).reduce(0) { $0 + ($1["restartCount"].int ?? 0) }
        }
        return pods.sorted { a, b in
            let aBound = !(a["spec"]["nodeName"].string ?? "").isEmpty,
                bBound = !(b["spec"]["nodeName"].string ?? "").isEmpty
            if aBound != bBound { return !aBound }
            if phaseRank(a) != phaseRank(b) { return phaseRank(a) < phaseRank(b) }
            if Objects.isReady(a) != Objects.isReady(b) { return !Objects.isReady(a) }
            let ra = Objects.readyCondition(a)?["lastTransitionTime"].string ?? "",
                rb = Objects.readyCondition(b)?["lastTransitionTime"].string ?? ""
            if Objects.isReady(a) && ra != rb { return ra > rb }
            if restarts(a) != restarts(b) { return restarts(a) > restarts(b) }
            return (a["metadata"]["creationTimestamp"].string ?? "") > (b["metadata"]["creationTimestamp"].string ?? "")
        }
    }

    func updateStatus(_ rs: JSON, key: String, counts: OwnedPodSummaries.Counts, failure: (any Error)?) async throws {
        let active = counts.active, labeled = counts.labeled, ready = counts.ready, available = counts.available
        var status = rs["status"]
        status["replicas"] = .int(active)
        status["fullyLabeledReplicas"] = .int(labeled)
        status["readyReplicas"] = .int(ready)
        status["availableReplicas"] = .int(available)
        status["observedGeneration"] = rs["metadata"]["generation"]
        var conds = (status["conditions"].array ?? []).filter { $0["type"].string != "ReplicaFailure" }
        if let failure {
            conds.append([
                "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": .string("\(failure)"),
                "lastTransitionTime": .string(APITime.string()),
            ])
        }
        status["conditions"] = conds.isEmpty ? .null : .array(conds)
        if status == rs["status"] { return }
        var updated = rs
        updated["status"] = status
        do {
            try await client.updateStatus(Registry.replicaSets, updated)
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

import BerthAPI
import BerthKube
import Foundation
import Logging

/// Runs every Job's pods to completion, as kube-controller-manager's job controller: up to
/// `parallelism` pods at a time until `completions` succeed (each index once, for an Indexed Job), a
/// failed pod replaced after a back-off (10 s doubling to 6 min) until `backoffLimit` is passed or
/// `activeDeadlineSeconds` is; a pod failure policy may fail the Job at once or ignore a failure;
/// `suspend` stops and resumes. Pods carry the batch.kubernetes.io/job-tracking finalizer until their
/// end is counted in the Job's status (first listed in uncountedTerminatedPods, then the finalizer goes,
/// then the counts change), so a pod deleted early is never lost to the counts.
///
/// Indexed Jobs may give each index its own back-off limit (backoffLimitPerIndex: an index that fails
/// more often is failed, listed in failedIndexes, and the Job fails past maxFailedIndexes or once every
/// index is done) and may succeed early by a success policy (SuccessCriteriaMet, then Complete).
///
/// Not yet: managedBy, adopting orphaned pods that match a manual selector, the FailureTarget interim
/// condition.
struct JobController: ControlLoop {
    typealias Pod = CoreV1.Pod
    typealias Job = BatchV1.Job

    static let trackingFinalizer = "batch.kubernetes.io/job-tracking"
    static let indexAnnotation = "batch.kubernetes.io/job-completion-index"
    static let orphanPrefix = "orphan:"

    let name = "job-controller"
    let client: any KubeClient
    let jobs: Informer<Job>
    let pods: Informer<Pod>
    let queue = WorkQueue(name: "job")
    let expectations = Expectations()
    /// Pods whose tracking finalizer this controller has removed but whose update the informer has not
    /// shown yet: not counted again meanwhile (upstream's finalizer expectations).
    let released = Names()
    let events: ComponentRecorder
    let logger: Logger
    let workers: Int

    init(_ ctx: ControllerContext) {
        client = ctx.client("job-controller")
        jobs = ctx.informers.informer(Job.self)
        pods = ctx.informers.informer(Pod.self)
        events = ctx.events.component("job-controller")
        logger = ctx.logger
        workers = ctx.config.workers
        pods.addIndex(ReplicaSetController.ownerIndex) { $0.controllerUIDs }
        let queue = self.queue, expectations = self.expectations, jobs = self.jobs, released = self.released
        jobs.onChange { e in
            let key = e.object.cacheKey
            if case .deleted = e { expectations.forget(key) }
            Task { await queue.add(key) }
        }
        pods.onChange { e in
            if case .deleted = e {
                released.remove(e.object.metadata.uid ?? "")
            } else if !e.object.metadata.finalizers.contains(Self.trackingFinalizer) {
                released.remove(e.object.metadata.uid ?? "")
            }
            guard let ref = e.object.controllerRef(kind: "Job"), let ns = e.object.metadata.namespace else { return }
            let key = Objects.key(namespace: ns, name: ref.name)
            switch e {
            case .added: expectations.creationObserved(key)
            case .deleted: expectations.deletionObserved(key, pod: e.object.cacheKey)
            case .updated(let old, let new):
                if !old.isTerminating && new.isTerminating { expectations.deletionObserved(key, pod: new.cacheKey) }
            }
            // A pod whose Job is gone keeps its finalizer until someone takes it off: this controller.
            if case .deleted = e { return }
            if e.object.metadata.finalizers.contains(Self.trackingFinalizer), jobs.get(key)?.metadata.uid != ref.uid {
                Task { await queue.add(Self.orphanPrefix + e.object.cacheKey) }
                return
            }
            Task { await queue.add(key) }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: workers, sync: sync,
            onError: { key, error in
                logger.debug("job sync failed", metadata: ["job": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ key: String) async throws {
        if key.hasPrefix(Self.orphanPrefix) {
            guard let pod = pods.get(String(key.dropFirst(Self.orphanPrefix.count))) else { return }
            if let ref = pod.controllerRef(kind: "Job"),
                jobs.get(Objects.key(namespace: pod.metadata.namespace ?? "", name: ref.name))?.metadata.uid == ref.uid
            {
                return
            }
            try await removeTrackingFinalizer(pod)
            return
        }
        guard let job = jobs.get(key) else {
            expectations.forget(key)
            return
        }
        // Expectations first, the cache after, as upstream: a create the informer shows between reading
        // the pods and asking would meet the expectations while the pods read still lack it.
        let expectationsMet = expectations.satisfied(key)
        let owned = pods.byIndex(ReplicaSetController.ownerIndex, job.metadata.uid ?? "")
        if job.isTerminating || job.isFinished {
            // Nothing more to count: the pods may go.
            for pod in owned where pod.metadata.finalizers.contains(Self.trackingFinalizer) {
                try await removeTrackingFinalizer(pod)
            }
            if job.isFinished { try await deleteActive(owned.filter(\.isActive), of: job, key: key) }
            return
        }
        var state = JobState(job: job, pods: owned, now: Date())
        state.expectationsMet = expectationsMet
        try await count(&state, key: key)
        try await decide(&state, key: key)
        state.omitZeroCounts()
        if state.status != state.job.status {
            var updated = state.job
            updated.status = state.status
            _ = try await client.updateStatus(updated)
        }
        if let requeue = state.requeueAfter { queue.add(key, after: requeue) }
    }

    // MARK: Counting finished pods

    /// Moves finished pods into the counts through uncountedTerminatedPods, as upstream does: recorded
    /// there first, then their finalizers removed, then counted — a crash between the steps neither
    /// loses a pod nor counts it twice.
    func count(_ state: inout JobState, key: String) async throws {
        var uncounted = state.status.uncountedTerminatedPods ?? .init()
        let listed = Set(uncounted.succeeded + uncounted.failed)
        var fresh: [(pod: Pod, succeeded: Bool)] = []
        for pod in state.pods where pod.metadata.finalizers.contains(Self.trackingFinalizer) {
            guard let uid = pod.metadata.uid, !listed.contains(uid), !released.contains(uid) else { continue }
            if pod.status.phase == .succeeded {
                fresh.append((pod, true))
            } else if pod.status.phase == .failed || pod.isTerminating {
                fresh.append((pod, false))
            }
        }
        for (pod, succeeded) in fresh {
            if succeeded {
                uncounted.succeeded.append(pod.metadata.uid ?? "")
            } else {
                uncounted.failed.append(pod.metadata.uid ?? "")
                state.newFailure = true
            }
        }
        if !fresh.isEmpty {
            var recorded = state.job
            recorded.status.uncountedTerminatedPods = uncounted
            let stored = try await client.updateStatus(recorded)
            state.job = stored
            state.status = stored.status
        }
        // Finalizers off, then the counts: pods no longer here were already released.
        let byUID = Dictionary(
            state.pods.compactMap { p in p.metadata.uid.map { ($0, p) } }, uniquingKeysWith: { a, _ in a })
        var succeeded = Int32(state.status.succeeded ?? 0), failed = Int32(state.status.failed ?? 0)
        var indexes = state.completedIndexes
        var failedIndexes = state.failedIndexes
        let perIndexLimit = state.job.spec.backoffLimitPerIndex.map(Int.init)
        for uid in uncounted.succeeded + uncounted.failed {
            if let pod = byUID[uid], pod.metadata.finalizers.contains(Self.trackingFinalizer),
                !released.contains(uid)
            {
                // Marked first: the informer may show the pod's update before the patch returns.
                released.add(uid)
                do { try await removeTrackingFinalizer(pod) } catch {
                    released.remove(uid)
                    throw error
                }
            }
        }
        for uid in uncounted.succeeded {
            succeeded += 1
            if let index = byUID[uid].flatMap(Self.completionIndex) { indexes.insert(index) }
        }
        // The pod failure policy is read as the failures are counted (again after a crash between the
        // steps: the pods stay until their finalizers are off).
        for uid in uncounted.failed {
            switch byUID[uid].flatMap(state.failurePolicyAction) {
            case .ignore(let message)?:
                logger.debug("pod failure ignored by policy", metadata: ["pod": "\(uid)", "rule": "\(message)"])
                state.ignoredFailures.insert(uid)
            case .failJob(let message)?:
                state.failJob = ("PodFailurePolicy", message)
                failed += 1
            case .failIndex?:
                failed += 1
                if let index = byUID[uid].flatMap(Self.completionIndex) { failedIndexes.insert(index) }
            case nil:
                failed += 1
                // Past its own limit, an index fails (its failures: those before this pod, and this one).
                if let perIndexLimit, let pod = byUID[uid], let index = Self.completionIndex(pod) {
                    let before =
                        pod.metadata.annotations[JobState.indexFailureCountAnnotation].flatMap { Int($0) } ?? 0
                    if before + 1 > perIndexLimit { failedIndexes.insert(index) }
                }
            }
        }
        if perIndexLimit != nil {
            failedIndexes.formUnion(state.indexesFailedByPods)
            state.status.failedIndexes = IndexRanges.format(failedIndexes) ?? ""
        }
        state.status.uncountedTerminatedPods = .init()
        state.status.succeeded = succeeded
        state.status.failed = failed
        if state.job.spec.completionMode?.rawValue == "Indexed" {
            state.status.completedIndexes = IndexRanges.format(indexes)
        }
    }

    // MARK: Deciding

    func decide(_ state: inout JobState, key: String) async throws {
        let job = state.job
        let active = state.pods.filter { $0.isActive && !state.ignoredFailures.contains($0.metadata.uid ?? "") }
        state.status.active = Int32(active.count)
        state.status.ready = Int32(active.filter(\.isReady).count)
        state.status.terminating = Int32(state.pods.filter { $0.isTerminating && !$0.isFinished }.count)

        // Suspended: no pods; resumed: the clock starts again.
        if job.spec.suspend == true {
            try await deleteActive(active, of: job, key: key)
            state.status.active = 0
            if state.setCondition("Suspended", true, reason: "JobSuspended", message: "Job suspended") {
                events.record(job, reason: "Suspended", message: "Job suspended")
            }
            return
        }
        if state.setCondition("Suspended", false, reason: "JobResumed", message: "Job resumed") {
            events.record(job, reason: "Resumed", message: "Job resumed")
            state.status.startTime = MetaV1.Time(secondsSince1970: Int64(state.now.timeIntervalSince1970))
        }
        if state.status.startTime == nil {
            state.status.startTime = MetaV1.Time(secondsSince1970: Int64(state.now.timeIntervalSince1970))
        }

        if let (reason, message) = state.failure(active: active) {
            try await deleteActive(active, of: job, key: key)
            state.status.active = 0
            state.status.ready = 0
            _ = state.setCondition("Failed", true, reason: reason, message: message)
            events.record(job, type: "Warning", reason: reason, message: message)
            return
        }
        if let rule = state.matchedSuccessRule() {
            // A success policy met: the rest of the pods are not needed.
            try await deleteActive(active, of: job, key: key)
            state.status.active = 0
            state.status.ready = 0
            _ = state.setCondition(
                "SuccessCriteriaMet", true, reason: "SuccessPolicy", message: "Matched rules at index \(rule)")
            _ = state.setCondition(
                "Complete", true, reason: "SuccessPolicy", message: "Reached expected number of succeeded pods")
            state.status.completionTime = MetaV1.Time(secondsSince1970: Int64(state.now.timeIntervalSince1970))
            events.record(job, reason: "Completed", message: "Job completed")
            return
        }
        if state.isComplete(active: active.count) {
            try await deleteActive(active, of: job, key: key)
            state.status.active = 0
            state.status.ready = 0
            _ = state.setCondition(
                "Complete", true, reason: "CompletionsReached", message: "Reached expected number of succeeded pods")
            state.status.completionTime = MetaV1.Time(secondsSince1970: Int64(state.now.timeIntervalSince1970))
            events.record(job, reason: "Completed", message: "Job completed")
            return
        }
        if let deadline = job.spec.activeDeadlineSeconds, let start = state.status.startTime {
            let left = Double(deadline) - state.now.timeIntervalSince1970 + Double(start.secondsSince1970)
            state.requeueAfter = .milliseconds(Int64(max(0, left) * 1000) + 10)
        }
        guard state.expectationsMet else { return }

        // A failed pod is replaced after the back-off its failure count earns (per index, with
        // backoffLimitPerIndex: createIndexed waits for each index on its own).
        let failures = Int(state.status.failed ?? 0)
        if job.spec.backoffLimitPerIndex == nil, failures > 0, state.newFailure || state.lastFailure != nil {
            let delay = JobState.backoff(failures: failures)
            let since = state.lastFailure ?? state.now
            let left = delay - state.now.timeIntervalSince(since)
            if left > 0 {
                state.requeueAfter = .milliseconds(Int64(left * 1000) + 10)
                return
            }
        }
        if job.spec.completionMode?.rawValue == "Indexed" {
            try await createIndexed(state: state, active: active, key: key)
        } else {
            let want = state.wantedActive(active: active.count)
            if want > active.count {
                try await create(
                    Array(repeating: Self.pod(for: job, index: nil), count: want - active.count), for: job, key: key)
            } else if want < active.count {
                try await deleteActive(
                    Array(ReplicaSetController.rank(active).prefix(active.count - want)), of: job, key: key)
            }
        }
    }

    func createIndexed(state: JobState, active: [Pod], key: String) async throws {
        let job = state.job
        let completions = Int(job.spec.completions ?? 0)
        let running = Set(active.compactMap(Self.completionIndex))
        let done = state.completedIndexesAfterCounting.union(state.failedIndexesAfterCounting)
        var missing = (0..<completions).filter { !running.contains($0) && !done.contains($0) }
        let failures = job.spec.backoffLimitPerIndex != nil ? state.indexFailures : [:]
        if !failures.isEmpty {
            // Each failed index waits out the back-off of its own failure count.
            var soonest: TimeInterval?
            missing = missing.filter { index in
                guard let count = failures[index], let since = state.lastFailure(ofIndex: index) else { return true }
                let left = JobState.backoff(failures: count) - state.now.timeIntervalSince(since)
                if left > 0 { soonest = min(soonest ?? left, left) }
                return left <= 0
            }
            if let soonest { queue.add(key, after: .milliseconds(Int64(soonest * 1000) + 10)) }
        }
        let room = max(0, Int(job.spec.parallelism ?? 1) - active.count)
        try await create(
            missing.prefix(room).map { index in
                var pod = Self.pod(for: job, index: index)
                if let count = failures[index] {
                    pod.metadata.annotations[JobState.indexFailureCountAnnotation] = String(count)
                }
                return pod
            }, for: job, key: key)
    }

    // MARK: Pods

    /// A pod of the Job: its template, the tracking finalizer, and for an Indexed Job its index (an
    /// annotation, a label, JOB_COMPLETION_INDEX in every container and the hostname `<job>-<index>`).
    static func pod(for job: Job, index: Int?) -> Pod {
        var pod = Pod.from(job.spec.template, controlledBy: job)
        pod.metadata.finalizers.append(trackingFinalizer)
        guard let index else { return pod }
        pod.metadata.generateName = "\(job.metadata.name ?? "")-\(index)-"
        pod.metadata.annotations[indexAnnotation] = String(index)
        pod.metadata.labels[indexAnnotation] = String(index)
        if (pod.spec.hostname ?? "").isEmpty { pod.spec.hostname = "\(job.metadata.name ?? "")-\(index)" }
        var variable = CoreV1.EnvVar()
        variable.name = "JOB_COMPLETION_INDEX"
        var source = CoreV1.EnvVarSource()
        var field = CoreV1.ObjectFieldSelector()
        field.fieldPath = "metadata.annotations['\(indexAnnotation)']"
        source.fieldRef = field
        variable.valueFrom = source
        for i in pod.spec.containers.indices { pod.spec.containers[i].env.append(variable) }
        for i in pod.spec.initContainers.indices { pod.spec.initContainers[i].env.append(variable) }
        return pod
    }

    static func completionIndex(_ pod: Pod) -> Int? {
        pod.metadata.annotations[indexAnnotation].flatMap { Int($0) }
    }

    /// Creates the pods, expecting them all at once (a sync while some are still unseen must not make
    /// them again), with an event naming each, as upstream's.
    func create(_ pods: [Pod], for job: Job, key: String) async throws {
        guard !pods.isEmpty else { return }
        expectations.expectCreations(key, pods.count)
        let failures = Failures()
        let made = Names()
        await forEachConcurrently(pods, width: 64) { pod in
            do {
                made.add(try await client.create(pod).metadata.name ?? "")
            } catch {
                expectations.creationObserved(key)
                failures.add(error)
            }
        }
        for name in made.all.sorted() {
            events.record(job, reason: "SuccessfulCreate", message: "Created pod: \(name)")
        }
        if let first = failures.first {
            events.record(job, type: "Warning", reason: "FailedCreate", message: "Error creating: \(first)")
            throw first
        }
    }

    func deleteActive(_ victims: [Pod], of job: Job, key: String) async throws {
        guard !victims.isEmpty else { return }
        expectations.expectDeletions(key, victims.map(\.cacheKey))
        for pod in victims {
            do {
                try await client.delete(
                    Pod.self, namespace: pod.metadata.namespace, name: pod.metadata.name ?? "", uid: pod.metadata.uid)
                events.record(job, reason: "SuccessfulDelete", message: "Deleted pod: \(pod.metadata.name ?? "")")
            } catch let error as APIError where error.code == 404 {
                expectations.deletionObserved(key, pod: pod.cacheKey)
            }
        }
    }

    func removeTrackingFinalizer(_ pod: Pod) async throws {
        let remaining = pod.metadata.finalizers.filter { $0 != Self.trackingFinalizer }
        // None left: the field goes (null in a merge patch), as upstream's pods read then.
        let finalizers: JSON = remaining.isEmpty ? .null : .array(remaining.map { .string($0) })
        do {
            try await client.mergePatch(
                Registry.pods, namespace: pod.metadata.namespace, name: pod.metadata.name ?? "",
                ["metadata": ["finalizers": finalizers]], subresource: nil)
        } catch let error as APIError where error.code == 404 {}
    }
}

extension BatchV1.Job {
    /// Complete or Failed: the job controller is done with it.
    var isFinished: Bool {
        status.conditions.contains { ($0.type == .complete || $0.type == .failed) && $0.status == .true }
    }

    /// When it finished (its Complete or Failed condition's transition), for ttlSecondsAfterFinished.
    var finishedAt: Date? {
        status.conditions.first { ($0.type == .complete || $0.type == .failed) && $0.status == .true }?
            .lastTransitionTime.map { Date(timeIntervalSince1970: TimeInterval($0.secondsSince1970)) }
    }
}

/// A set of names shared by concurrent work (created pods' names, released pods' UIDs).
final class Names: @unchecked Sendable {
    private let lock = NSLock()
    private var names: Set<String> = []
    func add(_ name: String) { lock.withLock { _ = names.insert(name) } }
    func remove(_ name: String) { lock.withLock { _ = names.remove(name) } }
    func contains(_ name: String) -> Bool { lock.withLock { names.contains(name) } }
    var all: Set<String> { lock.withLock { names } }
}

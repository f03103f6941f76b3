import BerthKube
import Foundation

/// One sync's view of a Job: its pods, the status being built, and the job controller's rules on them
/// (upstream pkg/controller/job): when it has failed, when it is complete, how many pods it wants, what
/// its pod failure policy says about a failed pod, and the back-off before a failed pod is replaced.
struct JobState {
    typealias Pod = CoreV1.Pod

    var job: BatchV1.Job
    let pods: [Pod]
    let now: Date
    var status: BatchV1.JobStatus
    /// Failed pods a policy rule said to ignore (not counted, not active).
    var ignoredFailures: Set<String> = []
    /// A pod failed in this sync.
    var newFailure = false
    /// A pod failure policy rule with action FailJob matched: the Job fails with this reason and message.
    var failJob: (reason: String, message: String)?
    var requeueAfter: Duration?
    /// The informer had shown this Job's last creates and deletes when the sync read its pods.
    var expectationsMet = true

    init(job: BatchV1.Job, pods: [Pod], now: Date) {
        self.job = job
        self.pods = pods
        self.now = now
        status = job.status
    }

    var completedIndexes: Set<Int> { IndexRanges.parse(job.status.completedIndexes ?? "") }
    var failedIndexes: Set<Int> { IndexRanges.parse(job.status.failedIndexes ?? "") }
    var failedIndexesAfterCounting: Set<Int> { IndexRanges.parse(status.failedIndexes ?? "") }

    // MARK: Per-index back-off (backoffLimitPerIndex)

    static let indexFailureCountAnnotation = "batch.kubernetes.io/job-index-failure-count"

    /// Failures so far of each index: the latest failed pod of the index counts its own failure on top
    /// of those its annotation carries (upstream's getIndexFailureCount + 1).
    var indexFailures: [Int: Int] {
        var out: [Int: Int] = [:]
        for pod in pods where pod.status.phase == .failed && !ignoredFailures.contains(pod.metadata.uid ?? "") {
            guard let index = JobController.completionIndex(pod) else { continue }
            if case .ignore? = failurePolicyAction(for: pod) { continue }
            let before = pod.metadata.annotations[Self.indexFailureCountAnnotation].flatMap { Int($0) } ?? 0
            out[index] = max(out[index] ?? 0, before + 1)
        }
        return out
    }

    /// The indexes the pods show failed for good: past the per-index limit, or by a FailIndex rule. Read
    /// from the pods as well as the status, so a sync that sees the Job's status before its own last
    /// write never starts an index again.
    var indexesFailedByPods: Set<Int> {
        guard let limit = job.spec.backoffLimitPerIndex else { return [] }
        var out = Set(indexFailures.filter { $0.value > Int(limit) }.keys)
        for pod in pods where pod.status.phase == .failed {
            if case .failIndex? = failurePolicyAction(for: pod), let index = JobController.completionIndex(pod) {
                out.insert(index)
            }
        }
        return out
    }

    /// When the latest failed pod of `index` ended, the start of that index's back-off.
    func lastFailure(ofIndex index: Int) -> Date? {
        pods.filter { $0.status.phase == .failed && JobController.completionIndex($0) == index }.compactMap { pod in
            pod.status.containerStatuses.compactMap { $0.state.terminated?.finishedAt?.secondsSince1970 }.max()
        }.max().map { Date(timeIntervalSince1970: TimeInterval($0)) }
    }

    // MARK: Success policy

    /// The index of the first success policy rule the completed indexes satisfy (upstream's
    /// matchSuccessPolicy): all of its listed indexes, or at least succeededCount of them (of all
    /// indexes when none are listed).
    func matchedSuccessRule() -> Int? {
        guard let rules = job.spec.successPolicy?.rules else { return nil }
        let done = completedIndexesAfterCounting
        for (i, rule) in rules.enumerated() {
            let listed = rule.succeededIndexes.map(IndexRanges.parse)
            let succeeded = listed.map { $0.intersection(done) } ?? done
            if let count = rule.succeededCount {
                if succeeded.count >= Int(count) { return i }
            } else if let listed, listed.isSubset(of: done) {
                return i
            }
        }
        return nil
    }
    var completedIndexesAfterCounting: Set<Int> { IndexRanges.parse(status.completedIndexes ?? "") }

    /// When the latest failed pod ended (its containers' last finish), the start of its back-off.
    var lastFailure: Date? {
        pods.filter { $0.status.phase == .failed }.compactMap { pod in
            pod.status.containerStatuses.compactMap { $0.state.terminated?.finishedAt?.secondsSince1970 }.max()
        }.max().map { Date(timeIntervalSince1970: TimeInterval($0)) }
    }

    /// The kubelet-independent back-off of upstream's job controller: 10 s, doubling, at most 6 min.
    static func backoff(failures: Int) -> TimeInterval {
        guard failures > 0 else { return 0 }
        return min(360, 10 * pow(2, Double(min(failures - 1, 10))))
    }

    // MARK: Pod failure policy

    enum PolicyOutcome {
        case ignore(String)
        case failJob(String)
        /// FailIndex: the pod's index fails at once (backoffLimitPerIndex Jobs).
        case failIndex(String)
    }

    /// The first rule of the pod failure policy that matches a failed pod (nil: Count, or no rule).
    func failurePolicyAction(for pod: Pod) -> PolicyOutcome? {
        guard let policy = job.spec.podFailurePolicy else { return nil }
        let podName = "\(pod.metadata.namespace ?? "")/\(pod.metadata.name ?? "")"
        for (index, rule) in policy.rules.enumerated() {
            var matched: String?
            if let codes = rule.onExitCodes {
                for container in pod.status.containerStatuses {
                    if let name = codes.containerName, name != container.name { continue }
                    guard let code = container.state.terminated?.exitCode, code != 0 else { continue }
                    let listed = codes.values.contains(code)
                    if listed == (codes.operator.rawValue == "In") {
                        matched = "Container \(container.name) for pod \(podName) failed with exit code \(code)"
                        break
                    }
                }
            } else {
                for pattern in rule.onPodConditions
                where pod.status.conditions.contains(where: { $0.type == pattern.type && $0.status == pattern.status })
                {
                    matched = "Pod \(podName) has condition \(pattern.type.rawValue) matching"
                    break
                }
            }
            guard let matched else { continue }
            switch rule.action.rawValue {
            case "Ignore": return .ignore("\(matched) matching Ignore rule at index \(index)")
            case "FailJob": return .failJob("\(matched) matching FailJob rule at index \(index)")
            case "FailIndex": return .failIndex("\(matched) matching FailIndex rule at index \(index)")
            default: return nil
            }
        }
        return nil
    }

    // MARK: Outcomes

    /// Why the Job has failed, if it has: a FailJob rule, too many failed indexes (or every index done
    /// with some failed), too many failures, or its deadline passed.
    func failure(active: [Pod]) -> (reason: String, message: String)? {
        if let failJob { return failJob }
        if job.spec.backoffLimitPerIndex != nil {
            let failed = failedIndexesAfterCounting
            if let max = job.spec.maxFailedIndexes, failed.count > Int(max) {
                return ("MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes")
            }
            let completions = Int(job.spec.completions ?? 0)
            if !failed.isEmpty, failed.count + completedIndexesAfterCounting.count >= completions,
                active.isEmpty
            {
                return ("FailedIndexes", "Job has failed indexes")
            }
        }
        let limit = Int64(job.spec.backoffLimit ?? 6)
        if job.spec.template.spec.restartPolicy == .onFailure {
            // Restarts in place count as failures (upstream's pastBackoffLimitOnFailure).
            let restarts = active.reduce(Int64(0)) { sum, pod in
                sum
                    + (pod.status.containerStatuses + pod.status.initContainerStatuses).reduce(0) {
                        $0 + Int64($1.restartCount)
                    }
            }
            if limit == 0 ? restarts > 0 : restarts >= limit {
                return ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            }
        }
        if Int64(status.failed ?? 0) > limit {
            return ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        }
        if let deadline = job.spec.activeDeadlineSeconds, let start = status.startTime,
            Int64(now.timeIntervalSince1970) - start.secondsSince1970 >= deadline
        {
            return ("DeadlineExceeded", "Job was active longer than specified deadline")
        }
        return nil
    }

    func isComplete(active: Int) -> Bool {
        let succeeded = Int(status.succeeded ?? 0)
        if job.spec.completionMode?.rawValue == "Indexed" {
            return completedIndexesAfterCounting.count >= Int(job.spec.completions ?? 0)
        }
        if let completions = job.spec.completions { return succeeded >= Int(completions) }
        // A work queue (no completions): done once one pod succeeded and none runs any more.
        return succeeded > 0 && active == 0
    }

    /// How many pods should run: parallelism, no more than the completions still missing; a work queue
    /// starts no new pods once one has succeeded.
    func wantedActive(active: Int) -> Int {
        let parallelism = Int(job.spec.parallelism ?? 1)
        let succeeded = Int(status.succeeded ?? 0)
        if let completions = job.spec.completions { return max(0, min(parallelism, Int(completions) - succeeded)) }
        return succeeded > 0 ? min(active, parallelism) : parallelism
    }

    /// active, succeeded and failed are `omitempty` counts upstream (ready and terminating are pointers,
    /// kept at zero): a zero one is left out, as kube-controller-manager's status reads.
    mutating func omitZeroCounts() {
        if status.active == 0 { status.active = nil }
        if status.succeeded == 0 { status.succeeded = nil }
        if status.failed == 0 { status.failed = nil }
    }

    /// Sets a condition to True, or an existing True one to False; returns whether anything changed.
    mutating func setCondition(_ type: String, _ value: Bool, reason: String, message: String) -> Bool {
        let wanted: CoreV1.ConditionStatus = value ? .true : .false
        let at = MetaV1.Time(secondsSince1970: Int64(now.timeIntervalSince1970))
        if let index = status.conditions.firstIndex(where: { $0.type.rawValue == type }) {
            guard status.conditions[index].status != wanted else { return false }
            status.conditions[index].status = wanted
            status.conditions[index].reason = reason
            status.conditions[index].message = message
            status.conditions[index].lastProbeTime = at
            status.conditions[index].lastTransitionTime = at
            return true
        }
        guard value else { return false }
        var condition = BatchV1.JobCondition()
        condition.type = .init(rawValue: type)
        condition.status = wanted
        condition.reason = reason
        condition.message = message
        condition.lastProbeTime = at
        condition.lastTransitionTime = at
        status.conditions.append(condition)
        return true
    }
}

/// The `1,3-5` form of a set of completion indexes (status.completedIndexes).
enum IndexRanges {
    static func format(_ indexes: Set<Int>) -> String? {
        guard !indexes.isEmpty else { return nil }
        var parts: [String] = []
        var sorted = indexes.sorted()[...]
        while let first = sorted.popFirst() {
            var last = first
            while sorted.first == last + 1 { last = sorted.removeFirst() }
            parts.append(first == last ? "\(first)" : "\(first)-\(last)")
        }
        return parts.joined(separator: ",")
    }

    static func parse(_ text: String) -> Set<Int> {
        var indexes: Set<Int> = []
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 1 { indexes.insert(bounds[0]) }
            if bounds.count == 2, bounds[0] <= bounds[1] { indexes.formUnion(bounds[0]...bounds[1]) }
        }
        return indexes
    }
}

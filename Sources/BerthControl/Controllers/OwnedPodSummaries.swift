import BerthAPI
import BerthKube
import Foundation

/// What a ReplicaSet's status counts, per owned pod, kept current from pod events: a sync of a set
/// with hundreds of thousands of pods adds up small structs instead of reading every pod (that walk
/// was a quarter of a server's CPU while a 300,000-pod Deployment rolled out).
final class OwnedPodSummaries: @unchecked Sendable {
    struct Summary {
        var active: Bool
        var ready: Bool
        /// When the Ready condition last turned True (nil if unknown).
        var readySince: Date?
        var labels: [String: String]
        /// Whether `labels` include the owner's template labels, as of `labeledAt` (a template version).
        var labeled = false
        var labeledAt = -1
    }
    struct Counts: Equatable {
        var active: Int64 = 0, labeled: Int64 = 0, ready: Int64 = 0, available: Int64 = 0, readyNotAvailable: Int64 = 0
    }

    private let lock = NSLock()
    private var byOwner: [String: [String: Summary]] = [:]
    private var ownerOf: [String: String] = [:]
    /// Per owner: the template labels last counted against, and a version bumped when they change.
    private var templates: [String: (labels: [String: String], version: Int)] = [:]

    /// Applies one pod event (pods without a controller are not tracked).
    func apply(_ e: InformerEvent<CoreV1.Pod>) {
        let pod = e.object
        let owner: String? = {
            if case .deleted = e { return nil }
            return pod.controllerRef?.uid
        }()
        record(key: pod.cacheKey, owner: owner, summary: owner.map { _ in Self.summary(pod) })
    }

    /// Files `summary` under `owner` for the pod at `key`, or forgets the pod when `owner` is nil.
    private func record(key: String, owner: String?, summary: Summary?) {
        lock.withLock {
            if let old = ownerOf[key], old != owner {
                byOwner[old]?[key] = nil
                if byOwner[old]?.isEmpty == true {
                    byOwner[old] = nil
                    templates[old] = nil
                }
                ownerOf[key] = nil
            }
            if let owner, var summary {
                if let t = templates[owner] {
                    summary.labeled = Self.includes(summary.labels, t.labels)
                    summary.labeledAt = t.version
                }
                byOwner[owner, default: [:]][key] = summary
                ownerOf[key] = owner
            }
        }
    }

    static func summary(_ pod: CoreV1.Pod) -> Summary {
        let ready = pod.readyCondition
        let isReady = ready?.status == .true
        return Summary(
            active: pod.isActive, ready: isReady, readySince: isReady ? ready?.lastTransitionTime?.date : nil,
            labels: pod.metadata.labels)
    }

    static func includes(_ labels: [String: String], _ template: [String: String]) -> Bool {
        template.allSatisfy { labels[$0.key] == $0.value }
    }

    /// Status counts for the pods `owner` controls, as ReplicaSet status defines them. Label matches
    /// are worked out when a pod changes, and again for all only when the template's labels change.
    func counts(owner: String, templateLabels: [String: String], minReadySeconds: Int64, now: Date) -> Counts {
        lock.withLock {
            var version = templates[owner]?.version ?? 0
            if templates[owner]?.labels != templateLabels {
                version += 1
                templates[owner] = (templateLabels, version)
            }
            var pods = byOwner.removeValue(forKey: owner) ?? [:]
            defer { if !pods.isEmpty { byOwner[owner] = pods } }
            var c = Counts()
            for i in pods.indices {
                if pods.values[i].labeledAt != version {
                    pods.values[i].labeled = Self.includes(pods.values[i].labels, templateLabels)
                    pods.values[i].labeledAt = version
                }
                let s = pods.values[i]
                guard s.active else { continue }
                c.active += 1
                if s.labeled { c.labeled += 1 }
                guard s.ready else { continue }
                c.ready += 1
                if minReadySeconds <= 0
                    || s.readySince.map({ now.timeIntervalSince($0) >= Double(minReadySeconds) }) ?? true
                {
                    c.available += 1
                } else {
                    c.readyNotAvailable += 1
                }
            }
            return c
        }
    }
}

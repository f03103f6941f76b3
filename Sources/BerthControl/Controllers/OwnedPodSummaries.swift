import BerthAPI
import Foundation

/// What a ReplicaSet's status counts, per owned pod, kept current from pod events: a sync of a set
/// with hundreds of thousands of pods adds up small structs instead of reading every pod's JSON tree
/// (that walk was a quarter of a server's CPU while a 300,000-pod Deployment rolled out).
final class OwnedPodSummaries: @unchecked Sendable {
    struct Summary {
        var active: Bool
        var ready: Bool
        /// When the Ready condition last turned True (nil if unknown).
        var readySince: Date?
        var labels: JSON
    }
    struct Counts: Equatable { var active: Int64 = 0, labeled: Int64 = 0, ready: Int64 = 0, available: Int64 = 0, readyNotAvailable: Int64 = 0 }

    private let lock = NSLock()
    private var byOwner: [String: [String: Summary]] = [:]
    private var ownerOf: [String: String] = [:]

    /// Applies one pod event (pods without a controller are not tracked).
    func apply(_ e: InformerEvent) {
        let pod = e.object
        let key = Informer.key(pod)
        let owner: String? = {
            if case .deleted = e { return nil }
            return Objects.controllerRef(pod)?["uid"].string
        }()
        let summary = owner.map { _ in Self.summary(pod) }
        lock.withLock {
            if let old = ownerOf[key], old != owner {
                byOwner[old]?[key] = nil
                if byOwner[old]?.isEmpty == true { byOwner[old] = nil }
                ownerOf[key] = nil
            }
            if let owner, let summary {
                byOwner[owner, default: [:]][key] = summary
                ownerOf[key] = owner
            }
        }
    }

    static func summary(_ pod: JSON) -> Summary {
        let ready = Objects.readyCondition(pod)
        let isReady = ready?["status"].string == "True"
        return Summary(active: Objects.isActive(pod), ready: isReady,
                       readySince: isReady ? APITime.parse(ready?["lastTransitionTime"].string) : nil,
                       labels: pod["metadata"]["labels"])
    }

    /// Status counts for the pods `owner` controls, as ReplicaSet status defines them.
    func counts(owner: String, templateLabels: [String: JSON], minReadySeconds: Int64, now: Date) -> Counts {
        lock.withLock {
            var c = Counts()
            for s in (byOwner[owner] ?? [:]).values where s.active {
                c.active += 1
                if templateLabels.allSatisfy({ s.labels[$0.key] == $0.value }) { c.labeled += 1 }
                guard s.ready else { continue }
                c.ready += 1
                if minReadySeconds <= 0 || s.readySince.map({ now.timeIntervalSince($0) >= Double(minReadySeconds) }) ?? true {
                    c.available += 1
                } else {
                    c.readyNotAvailable += 1
                }
            }
            return c
        }
    }
}

import Synchronization

/// Upstream's watch tracker (k8s.io/apiserver flowcontrol/request): the watches open per resource — over
/// all namespaces, in one namespace, or on one named object — so a write's work estimate can count the
/// watchers its event will reach.
final class WatchCounts: Sendable {
    struct Index: Hashable, Sendable {
        var group: String
        var resource: String
        var namespace = ""
        var name = ""
    }
    private let counts = Mutex<[Index: Int]>([:])

    func started(_ index: Index) { counts.withLock { $0[index, default: 0] += 1 } }
    func ended(_ index: Index) {
        counts.withLock { counts in
            let left = (counts[index] ?? 0) - 1
            counts[index] = left > 0 ? left : nil
        }
    }

    /// GetInterestedWatchCount: the resource's watches over all namespaces, those of the write's
    /// namespace and those of its object.
    func interested(group: String, resource: String, namespace: String, name: String) -> Int {
        counts.withLock { counts in
            var index = Index(group: group, resource: resource)
            var total = counts[index] ?? 0
            if !namespace.isEmpty {
                index.namespace = namespace
                total += counts[index] ?? 0
            }
            if !name.isEmpty {
                index.name = name
                total += counts[index] ?? 0
            }
            return total
        }
    }
}

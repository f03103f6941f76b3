import Synchronization

/// Where the Summary of a node whose agent runs in this process without a kubelet port (a hollow node)
/// comes from: metrics.k8s.io asks it directly instead of over HTTPS.
public protocol NodeSummarySource: Sendable {
    /// The kubelet Summary API's answer (`/stats/summary`) for `node`, or nil when this source does not run
    /// that node or it is down.
    func summary(node: String) -> JSON?
}

/// The in-process summary sources the API server knows.
final class NodeSummarySources: Sendable {
    private let sources = Mutex<[any NodeSummarySource]>([])

    func add(_ source: any NodeSummarySource) { sources.withLock { $0.append(source) } }

    /// The first source's answer for `node`; nil when none runs it.
    func summary(node: String) -> JSON? {
        for source in sources.withLock({ $0 }) {
            if let summary = source.summary(node: node) { return summary }
        }
        return nil
    }
}

extension APIServer {
    /// Serves `source`'s nodes' Summaries to metrics.k8s.io for as long as this server lives.
    public func addNodeSummarySource(_ source: any NodeSummarySource) { nodeSummaries.add(source) }
}

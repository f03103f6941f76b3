import BerthAPI
import BerthKube

@testable import BerthControl

/// The scheduler and controllers read typed objects; the older tests write their fixtures as JSON, which
/// these decode as the informers would (a fixture that does not decode fails the test at once).
extension JSON {
    var typedPod: CoreV1.Pod {
        do { return try CoreV1.Pod(kubeJSON: self) } catch { fatalError("pod fixture: \(error)") }
    }
    var typedNode: CoreV1.Node {
        do { return try CoreV1.Node(kubeJSON: self) } catch { fatalError("node fixture: \(error)") }
    }
}

extension PodInfo {
    init(_ pod: JSON) { self.init(pod.typedPod) }
}

import BerthAPI
import BerthKube

/// What a hollow node keeps of each pod bound to it: enough to report it running and to finish its
/// deletion, decoded straight from the stored JSON and nothing more. Hollow nodes simulate thousands of
/// kubelets in the server's own process, so their cache holds every bound pod beside the controllers'
/// typed cache; a whole `CoreV1.Pod` there cost ~6 KB a pod, this view about a fifth of that. (A real
/// node agent caches only its own node's pods, whole.)
struct HollowPod: HasObjectMeta {
    /// name, namespace, uid, resourceVersion and deletionTimestamp only.
    var metadata = MetaV1.ObjectMeta()
    var nodeName: String?
    /// The containers' names and images (the statuses a kubelet reports name them).
    var containers: [Container] = []
    var phase: CoreV1.PodPhase?
    /// Whether the pod's Ready condition is True.
    var isReady = false
    /// The conditions a hollow node does not report itself (PodScheduled, readiness gates), which its
    /// status patch carries over; the four it reports are rewritten whole, so they are not kept (five
    /// conditions were a third of this view).
    var otherConditions: [CoreV1.PodCondition] = []
    var startTime: MetaV1.Time?

    /// The conditions a hollow node reports (as the kubelet's status manager does).
    static let reportedConditions: [CoreV1.PodConditionType] = [
        .readyToStartContainers, .initialized, .containersReady, .ready,
    ]

    struct Container: Hashable, Sendable {
        var name: String
        var image: String
    }

    init() {}

    init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        let meta = value["metadata"]
        // Strings through the decoder's pool: the controllers' pod cache holds the same name and UID.
        func string(_ v: JSON) -> String? { v.string.map(decoder.intern) }
        var m = MetaV1.ObjectMeta()
        m.name = string(meta["name"])
        m.namespace = string(meta["namespace"])
        m.uid = string(meta["uid"])
        m.resourceVersion = meta["resourceVersion"].string
        // `read` into an optional: null and absent are nil (decoding a Time from null gives Go's zero time).
        try decoder.read(meta["deletionTimestamp"], "deletionTimestamp", into: &m.deletionTimestamp)
        metadata = m
        nodeName = string(value["spec"]["nodeName"])
        containers = (value["spec"]["containers"].array ?? []).map {
            Container(name: string($0["name"]) ?? "", image: string($0["image"]) ?? "")
        }
        let status = value["status"]
        phase = status["phase"].string.map(CoreV1.PodPhase.init(rawValue:))
        let conditions: [CoreV1.PodCondition] = try decoder.decode(status["conditions"], "conditions")
        isReady = conditions.contains { $0.type == .ready && $0.status == .true }
        otherConditions = conditions.filter { !Self.reportedConditions.contains($0.type) }
        try decoder.read(status["startTime"], "startTime", into: &startTime)
    }

    func kubeJSON() -> JSON {
        var pod = CoreV1.Pod()
        pod.metadata = metadata
        pod.spec.nodeName = nodeName
        pod.spec.containers = containers.map { CoreV1.Container(name: $0.name, image: $0.image) }
        pod.status.phase = phase
        pod.status.conditions = otherConditions
        if isReady { pod.status.conditions.append(CoreV1.PodCondition(type: .ready, status: .true)) }
        pod.status.startTime = startTime
        return pod.kubeJSON()
    }

    init(from decoder: any Decoder) throws { self = try Self.decode(from: decoder) }
    func encode(to encoder: any Encoder) throws { try encode(into: encoder) }

}

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
    var conditions: [CoreV1.PodCondition] = []
    var startTime: MetaV1.Time?

    struct Container: Hashable, Sendable {
        var name: String
        var image: String
    }

    init() {}

    init(kubeJSON value: JSON, _ decoder: inout KubeJSONDecoder) throws(KubeJSONError) {
        let meta = value["metadata"]
        metadata.name = meta["name"].string
        metadata.namespace = meta["namespace"].string
        metadata.uid = meta["uid"].string
        metadata.resourceVersion = meta["resourceVersion"].string
        // `read` into an optional: null and absent are nil (decoding a Time from null gives Go's zero time).
        try decoder.read(meta["deletionTimestamp"], "deletionTimestamp", into: &metadata.deletionTimestamp)
        nodeName = value["spec"]["nodeName"].string
        containers = (value["spec"]["containers"].array ?? []).map {
            Container(name: $0["name"].string ?? "", image: $0["image"].string ?? "")
        }
        let status = value["status"]
        phase = status["phase"].string.map(CoreV1.PodPhase.init(rawValue:))
        conditions = try decoder.decode(status["conditions"], "conditions")
        try decoder.read(status["startTime"], "startTime", into: &startTime)
    }

    func kubeJSON() -> JSON {
        var pod = CoreV1.Pod()
        pod.metadata = metadata
        pod.spec.nodeName = nodeName
        pod.spec.containers = containers.map { CoreV1.Container(name: $0.name, image: $0.image) }
        pod.status.phase = phase
        pod.status.conditions = conditions
        pod.status.startTime = startTime
        return pod.kubeJSON()
    }

    init(from decoder: any Decoder) throws { self = try Self.decode(from: decoder) }
    func encode(to encoder: any Encoder) throws { try encode(into: encoder) }

    var isReady: Bool { conditions.contains { $0.type == .ready && $0.status == .true } }
}

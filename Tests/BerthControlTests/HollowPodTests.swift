import BerthAPI
import BerthKube
import Testing

@testable import BerthControl

/// The hollow nodes' lean view of a pod keeps what they act on, and nothing reads as terminating that
/// is not (a null deletionTimestamp once decoded as Go's zero time, and hollow nodes deleted every pod).
@Suite("hollow pod view")
struct HollowPodTests {
    @Test func theViewKeepsWhatAHollowNodeActsOnAndANullTimeIsNoTime() throws {
        let json: JSON = [
            "metadata": [
                "name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "7", "deletionTimestamp": .null,
                "labels": ["app": "web"],
            ],
            "spec": [
                "nodeName": "hollow-00001",
                "containers": [["name": "c", "image": "registry.local/pause:1", "args": ["x"]]],
            ],
            "status": [
                "phase": "Pending", "startTime": .null,
                "conditions": [
                    ["type": "PodScheduled", "status": "True"], ["type": "Initialized", "status": "True"],
                    ["type": "Ready", "status": "False"],
                ],
            ],
        ]
        let pod = try HollowPod(kubeJSON: json)
        #expect(!pod.isTerminating && pod.startTime == nil)
        #expect(pod.cacheKey == "ns/p" && pod.metadata.uid == "u1" && pod.metadata.resourceVersion == "7")
        #expect(pod.nodeName == "hollow-00001" && pod.containers == [.init(name: "c", image: "registry.local/pause:1")])
        #expect(pod.phase == .pending && !pod.isReady && pod.otherConditions.map(\.type) == [.scheduled])
        #expect(pod.metadata.labels.isEmpty, "labels are not kept")

        var deleting = json
        deleting["metadata"]["deletionTimestamp"] = "2026-12-04T05:00:00Z"
        #expect(try HollowPod(kubeJSON: deleting).isTerminating)

        var ready = json
        ready["status"]["conditions"] = [["type": "Ready", "status": "True"]]
        let readyPod = try HollowPod(kubeJSON: ready)
        #expect(readyPod.isReady && readyPod.otherConditions.isEmpty)
    }
}

import BerthKube
import Foundation
import Logging
import Testing

@testable import BerthAPI
@testable import BerthControl

/// The ephemeral-volume controller on a ``FakeCluster`` (issue 16): a pod's generic ephemeral volume gets
/// its claim, owned by the pod; a stranger's claim of that name is left alone and reported.
@Suite("ephemeral volumes on a fake cluster")
struct EphemeralVolumeControllerFakeTests {
    let plane = FakeControlPlane(label: "ephemeral-fake-test")
    var cluster: FakeCluster { plane.cluster }

    func pod(_ name: String, uid: String) throws -> CoreV1.Pod {
        try CoreV1.Pod(
            kubeJSON: [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": .string(name), "namespace": "default", "uid": .string(uid)],
                "spec": [
                    "containers": [["name": "main", "image": "x"]],
                    "volumes": [
                        [
                            "name": "work",
                            "ephemeral": [
                                "volumeClaimTemplate": [
                                    "metadata": ["labels": ["purpose": "scratch"], "annotations": ["note": "n"]],
                                    "spec": [
                                        "accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                                        "resources": ["requests": ["storage": "1Gi"]],
                                    ],
                                ]
                            ],
                        ],
                        ["name": "plain", "emptyDir": [:]],
                    ],
                ],
            ])
    }

    @Test(.timeLimit(.minutes(1)))
    func eachEphemeralVolumeGetsAClaimItsPodOwns() async throws {
        // A claim someone else made under the second pod's claim name.
        cluster.seed(
            try CoreV1.PersistentVolumeClaim(
                kubeJSON: [
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": ["name": "other-work", "namespace": "default", "uid": "c-0"],
                    "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "1Gi"]]],
                ]))
        cluster.seed(try pod("web", uid: "p-1"), try pod("other", uid: "p-2"))
        let run = await plane.start(EphemeralVolumeController.init)
        defer { run.cancel() }
        let deadline = ContinuousClock.now + .seconds(20)
        func claim() -> CoreV1.PersistentVolumeClaim? {
            cluster.object(CoreV1.PersistentVolumeClaim.self, namespace: "default", name: "web-work")
        }
        while claim() == nil || !cluster.events.contains(where: { $0["reason"].string == "FailedBinding" }) {
            try #require(ContinuousClock.now < deadline, "no claim or no event: \(cluster.actions.suffix(5))")
            try await Task.sleep(for: .milliseconds(10))
        }
        let made = try #require(claim())
        #expect(made.controllerRef?.uid == "p-1" && made.controllerRef?.kind == "Pod")
        #expect(made.controllerRef?.blockOwnerDeletion == true)
        #expect(made.metadata.labels["purpose"] == "scratch" && made.metadata.annotations["note"] == "n")
        #expect(made.spec.storageClassName == "fast" && made.spec.resources.requests["storage"]?.description == "1Gi")
        // Only the ephemeral volume has a claim; the stranger's claim stays as it was.
        #expect(cluster.objects(CoreV1.PersistentVolumeClaim.self).count == 2)
        let stranger = try #require(
            cluster.object(CoreV1.PersistentVolumeClaim.self, namespace: "default", name: "other-work"))
        #expect(stranger.metadata.ownerReferences.isEmpty)
        #expect(
            cluster.events.contains {
                $0["message"].string == "ephemeral volume work: PVC default/other-work was not created for the pod"
            })
    }
}

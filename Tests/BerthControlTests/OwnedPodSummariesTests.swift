import BerthAPI
import BerthKube
@testable import BerthControl
import Foundation
import Testing

/// The per-pod summaries a ReplicaSet's status is counted from.
@Suite("owned pod summaries")
struct OwnedPodSummariesTests {
    static func pod(
        _ name: String, owner: String?, labels: [String: String] = ["app": "web"], ready: Bool = false,
        readySince: String = "2020-01-01T00:00:00Z", phase: String = "Running", deleting: Bool = false
    ) -> CoreV1.Pod {
        var meta: JSON = ["name": .string(name), "namespace": "default", "labels": JSON.strings(labels)]
        if let owner {
            meta["ownerReferences"] = [["kind": "ReplicaSet", "name": "rs", "uid": .string(owner), "controller": true]]
        }
        if deleting { meta["deletionTimestamp"] = "2020-01-01T00:00:00Z" }
        let json: JSON = [
            "metadata": meta,
            "status": [
                "phase": .string(phase),
                "conditions": [
                    ["type": "Ready", "status": ready ? "True" : "False", "lastTransitionTime": .string(readySince)]
                ],
            ],
        ]
        return try! CoreV1.Pod(kubeJSON: json)
    }

    @Test func countsFollowPodEvents() {
        let s = OwnedPodSummaries()
        let template = ["app": "web"]
        s.apply(.added(Self.pod("a", owner: "u1", ready: true)))
        s.apply(.added(Self.pod("b", owner: "u1")))
        s.apply(.added(Self.pod("c", owner: "u1", labels: ["app": "other"], ready: true)))
        s.apply(.added(Self.pod("d", owner: "u1", phase: "Succeeded")))
        s.apply(.added(Self.pod("e", owner: "u1", deleting: true)))
        s.apply(.added(Self.pod("f", owner: "u2", ready: true)))
        s.apply(.added(Self.pod("g", owner: nil, ready: true)))
        let now = Date()
        #expect(
            s.counts(owner: "u1", templateLabels: template, minReadySeconds: 0, now: now)
                == .init(active: 3, labeled: 2, ready: 2, available: 2, readyNotAvailable: 0))
        // b becomes ready just now: ready, not yet available with minReadySeconds.
        s.apply(
            .updated(
                old: Self.pod("b", owner: "u1"),
                new: Self.pod("b", owner: "u1", ready: true, readySince: APITime.string(now))))
        #expect(
            s.counts(owner: "u1", templateLabels: template, minReadySeconds: 60, now: now)
                == .init(active: 3, labeled: 2, ready: 3, available: 2, readyNotAvailable: 1))
        // The template's labels change: every pod is matched again.
        #expect(s.counts(owner: "u1", templateLabels: ["app": "other"], minReadySeconds: 0, now: now).labeled == 1)
        // Deleted, and released to another owner.
        s.apply(.deleted(Self.pod("a", owner: "u1", ready: true)))
        s.apply(
            .updated(
                old: Self.pod("c", owner: "u1"), new: Self.pod("c", owner: "u2", labels: ["app": "other"], ready: true))
        )
        #expect(s.counts(owner: "u1", templateLabels: template, minReadySeconds: 0, now: now).active == 1)
        #expect(
            s.counts(owner: "u2", templateLabels: template, minReadySeconds: 0, now: now)
                == .init(active: 2, labeled: 1, ready: 2, available: 2, readyNotAvailable: 0))
    }
}

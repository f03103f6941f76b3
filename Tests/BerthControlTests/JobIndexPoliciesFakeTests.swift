import BerthKube
import Foundation
import Logging
import Testing

@testable import BerthAPI
@testable import BerthControl

/// The job controller's per-index back-off limit and success policy (issue 16) on a ``FakeCluster``
/// whose pods this test ends itself: no server, no node, no root.
@Suite("Job index policies on a fake cluster")
struct JobIndexPoliciesFakeTests {
    let plane = FakeControlPlane(label: "job-fake-test")
    var cluster: FakeCluster { plane.cluster }

    func start() async -> Task<Void, Never> { await plane.start(JobController.init) }

    func eventually(_ what: String, _ condition: () -> Bool) async throws {
        try await plane.eventually(
            what,
            detail: {
                "\(job?.kubeJSON()["status"].text ?? "") pods: \(pods.map { "\($0.metadata.name ?? "") \($0.status.phase?.rawValue ?? "-")" })"
            }, condition)
    }

    func seed(completions: Int, extra: JSON) throws {
        var spec: JSON = [
            "completions": .int(Int64(completions)), "parallelism": .int(Int64(completions)),
            "completionMode": "Indexed", "backoffLimit": 2_147_483_647,
            "selector": ["matchLabels": ["batch.kubernetes.io/controller-uid": "j-1"]],
            "template": [
                "metadata": ["labels": ["batch.kubernetes.io/controller-uid": "j-1"]],
                "spec": ["restartPolicy": "Never", "containers": [["name": "work", "image": "work:1"]]],
            ],
        ]
        for (k, v) in extra.object ?? [:] { spec[k] = v }
        cluster.seed(
            try BatchV1.Job(
                kubeJSON: [
                    "apiVersion": "batch/v1", "kind": "Job",
                    "metadata": ["name": "work", "namespace": "default", "uid": "j-1"], "spec": spec,
                ]))
    }

    var job: BatchV1.Job? { cluster.object(BatchV1.Job.self, namespace: "default", name: "work") }
    var pods: [CoreV1.Pod] { cluster.objects(CoreV1.Pod.self) }
    func pods(ofIndex index: Int) -> [CoreV1.Pod] { pods.filter { JobController.completionIndex($0) == index } }
    func running(_ index: Int) -> CoreV1.Pod? {
        pods(ofIndex: index).first { $0.status.phase != .failed && $0.status.phase != .succeeded }
    }
    func condition(_ type: String) -> BatchV1.JobCondition? {
        job?.status.conditions.first { $0.type.rawValue == type && $0.status == .true }
    }

    /// Ends a pod as its node would: the phase, and a container that finished a minute ago (so the
    /// back-off before its replacement has already passed).
    func end(_ pod: CoreV1.Pod, succeeded: Bool) async throws {
        var ended = pod
        ended.status = try CoreV1.PodStatus(
            kubeJSON: [
                "phase": .string(succeeded ? "Succeeded" : "Failed"),
                "containerStatuses": [
                    [
                        "name": "work", "image": "work:1", "imageID": "", "ready": false, "restartCount": 0,
                        "state": [
                            "terminated": [
                                "exitCode": .int(succeeded ? 0 : 1),
                                "finishedAt": .string(APITime.string(Date().addingTimeInterval(-60))),
                            ]
                        ],
                    ]
                ],
            ])
        _ = try await cluster.updateStatus(ended)
    }

    @Test(.timeLimit(.minutes(1)))
    func anIndexPastItsOwnLimitFailsAndTheJobWithIt() async throws {
        try seed(completions: 3, extra: ["backoffLimitPerIndex": 1])
        let run = await start()
        defer { run.cancel() }
        try await eventually("three pods") { (0..<3).allSatisfy { running($0) != nil } }
        try await end(try #require(running(0)), succeeded: true)
        try await end(try #require(running(1)), succeeded: false)
        // Index 1 gets one more try, its pod told how often the index failed before.
        try await eventually("a second pod for index 1") { pods(ofIndex: 1).count == 2 && running(1) != nil }
        #expect(running(1)?.metadata.annotations[JobState.indexFailureCountAnnotation] == "1")
        try await end(try #require(running(1)), succeeded: false)
        try await eventually("index 1 failed") { job?.status.failedIndexes == "1" }
        // No third pod for it; the Job fails once the last index is done.
        #expect(running(1) == nil)
        try await end(try #require(running(2)), succeeded: true)
        try await eventually("the Job failed") { condition("Failed") != nil }
        #expect(condition("Failed")?.reason == "FailedIndexes")
        #expect(job?.status.completedIndexes == "0,2" && job?.status.failed == 2)
        #expect(pods(ofIndex: 1).count == 2)
    }

    @Test(.timeLimit(.minutes(1)))
    func moreFailedIndexesThanAllowedFailTheJobAtOnce() async throws {
        try seed(completions: 4, extra: ["backoffLimitPerIndex": 0, "maxFailedIndexes": 1])
        let run = await start()
        defer { run.cancel() }
        try await eventually("four pods") { (0..<4).allSatisfy { running($0) != nil } }
        try await end(try #require(running(0)), succeeded: false)
        try await end(try #require(running(1)), succeeded: false)
        try await eventually("the Job failed") { condition("Failed") != nil }
        #expect(condition("Failed")?.reason == "MaxFailedIndexesExceeded")
        // The pods still running are stopped.
        try await eventually("the rest deleted") { running(2) == nil && running(3) == nil }
    }

    @Test(.timeLimit(.minutes(1)))
    func aSuccessPolicyEndsTheJobEarly() async throws {
        try seed(completions: 5, extra: ["successPolicy": ["rules": [["succeededIndexes": "0-1"]]]])
        let run = await start()
        defer { run.cancel() }
        try await eventually("five pods") { (0..<5).allSatisfy { running($0) != nil } }
        try await end(try #require(running(0)), succeeded: true)
        try await Task.sleep(for: .milliseconds(200))
        #expect(condition("Complete") == nil)
        try await end(try #require(running(1)), succeeded: true)
        try await eventually("the Job complete") { condition("Complete") != nil }
        #expect(condition("SuccessCriteriaMet")?.message == "Matched rules at index 0")
        #expect(condition("Complete")?.reason == "SuccessPolicy")
        try await eventually("the rest deleted") { (2..<5).allSatisfy { running($0) == nil } }
    }
}

import BerthKube
import Foundation
import Testing

@testable import BerthAPI
@testable import BerthControl

/// The StatefulSet controller's decisions (StatefulSetPlan) and the revision arithmetic the DaemonSet
/// and StatefulSet controllers share (ControllerHistory), without a cluster.
@Suite("StatefulSet plan and controller history")
struct StatefulSetPlanTests {
    typealias Member = StatefulSetPlan.Member

    static func ready(_ ordinal: Int, _ revision: String = "r1") -> Member {
        Member(ordinal: ordinal, revision: revision, runningAndReady: true, available: true)
    }
    static func pending(_ ordinal: Int, _ revision: String = "r1") -> Member {
        Member(ordinal: ordinal, revision: revision)
    }
    static func input(
        replicas: Int, parallel: Bool = false, onDelete: Bool = false, partition: Int? = 0, start: Int = 0,
        update: String = "r1"
    ) -> StatefulSetPlan.Input {
        .init(
            replicas: replicas, start: start, parallel: parallel, onDelete: onDelete, partition: partition,
            currentRevision: "r1", updateRevision: update)
    }

    @Test func orderedReadyCreatesOnlyTheLowestMissingPod() {
        #expect(StatefulSetPlan.plan(Self.input(replicas: 3), members: []) == [.create(ordinal: 0, revision: "r1")])
    }

    @Test func orderedReadyWaitsForThePodBeforeToBeRunningAndReady() {
        #expect(StatefulSetPlan.plan(Self.input(replicas: 3), members: [Self.pending(0)]).isEmpty)
        #expect(
            StatefulSetPlan.plan(Self.input(replicas: 3), members: [Self.ready(0)])
                == [.create(ordinal: 1, revision: "r1")])
        // Ready but not yet available (minReadySeconds): still waiting.
        var notAvailable = Self.ready(0)
        notAvailable.available = false
        #expect(StatefulSetPlan.plan(Self.input(replicas: 3), members: [notAvailable]).isEmpty)
    }

    @Test func parallelCreatesEveryMissingPodAtOnce() {
        #expect(
            StatefulSetPlan.plan(Self.input(replicas: 3, parallel: true), members: [Self.pending(1)])
                == [.create(ordinal: 0, revision: "r1"), .create(ordinal: 2, revision: "r1")])
    }

    @Test func ordinalsStartWhereSpecOrdinalsStartSays() {
        #expect(
            StatefulSetPlan.plan(Self.input(replicas: 2, start: 5), members: [Self.ready(5)])
                == [.create(ordinal: 6, revision: "r1")])
        // A pod below the start is outside the set's range: condemned.
        #expect(
            StatefulSetPlan.plan(Self.input(replicas: 1, start: 5), members: [Self.ready(0), Self.ready(5)])
                == [.delete(ordinal: 0)])
    }

    @Test func orderedReadyScalesDownFromTheHighestOrdinalOneAtATime() {
        let members = (0..<4).map { Self.ready($0) }
        #expect(StatefulSetPlan.plan(Self.input(replicas: 1), members: members) == [.delete(ordinal: 3)])
        var terminating = Self.ready(3)
        terminating.terminating = true
        #expect(
            StatefulSetPlan.plan(Self.input(replicas: 1), members: Array(members.prefix(3)) + [terminating]).isEmpty)
    }

    @Test func orderedReadyDoesNotScaleDownWhileAReplicaIsUnhealthy() {
        #expect(
            StatefulSetPlan.plan(Self.input(replicas: 1), members: [Self.pending(0), Self.ready(1)]).isEmpty)
    }

    @Test func parallelScalesDownEveryCondemnedPodAtOnce() {
        let members = (0..<4).map { Self.ready($0) }
        #expect(
            StatefulSetPlan.plan(Self.input(replicas: 1, parallel: true), members: members)
                == [.delete(ordinal: 3), .delete(ordinal: 2), .delete(ordinal: 1)])
    }

    @Test func aFinishedPodIsDeletedToBeCreatedAgain() {
        var failed = Self.ready(0)
        failed.finished = true
        failed.runningAndReady = false
        #expect(StatefulSetPlan.plan(Self.input(replicas: 2), members: [failed]) == [.delete(ordinal: 0)])
    }

    @Test func rollingUpdateReplacesTheHighestOrdinalFirstDownToThePartition() {
        let members = (0..<4).map { Self.ready($0, "r1") }
        let update = Self.input(replicas: 4, partition: 2, update: "r2")
        #expect(StatefulSetPlan.plan(update, members: members) == [.delete(ordinal: 3)])
        // 3 gone: recreated at the update revision.
        #expect(
            StatefulSetPlan.plan(update, members: Array(members.prefix(3)))
                == [.create(ordinal: 3, revision: "r2")])
        // 3 updated but not ready yet: wait.
        #expect(StatefulSetPlan.plan(update, members: Array(members.prefix(3)) + [Self.pending(3, "r2")]).isEmpty)
        // 3 updated and ready: 2 is next.
        #expect(
            StatefulSetPlan.plan(update, members: Array(members.prefix(3)) + [Self.ready(3, "r2")])
                == [.delete(ordinal: 2)])
        // 3 and 2 updated: below the partition nothing is touched.
        #expect(
            StatefulSetPlan.plan(
                update, members: Array(members.prefix(2)) + [Self.ready(2, "r2"), Self.ready(3, "r2")]
            )
            .isEmpty)
    }

    @Test func podsBelowThePartitionAreRecreatedAtTheCurrentRevision() {
        let update = Self.input(replicas: 4, partition: 2, update: "r2")
        #expect(
            StatefulSetPlan.plan(update, members: [Self.ready(0)] + (2..<4).map { Self.ready($0, "r2") })
                == [.create(ordinal: 1, revision: "r1")])
    }

    @Test func onDeleteLeavesOldPodsButCreatesMissingOnesAtTheUpdateRevision() {
        let members = (0..<2).map { Self.ready($0, "r1") }
        let onDelete = Self.input(replicas: 3, onDelete: true, partition: nil, update: "r2")
        #expect(StatefulSetPlan.plan(onDelete, members: members) == [.create(ordinal: 2, revision: "r2")])
        #expect(StatefulSetPlan.plan(onDelete, members: members + [Self.ready(2, "r2")]).isEmpty)
    }

    @Test func ordinalsAreReadOnlyFromTheSetsOwnPodNames() {
        #expect(StatefulSetPlan.ordinal(podName: "web-12", setName: "web") == 12)
        #expect(StatefulSetPlan.ordinal(podName: "web-x-1", setName: "web") == nil)
        #expect(StatefulSetPlan.ordinal(podName: "web-", setName: "web") == nil)
        #expect(StatefulSetPlan.ordinal(podName: "webby-1", setName: "web") == nil)
        #expect(StatefulSetPlan.ordinal(podName: "web-1-2", setName: "web-1") == 2)
    }

    // MARK: history

    @Test func aRevisionHashIsUpstreamsFNV1OverTheDataSpelledInTheSafeAlphabet() {
        let data: JSON = ["spec": ["template": ["$patch": "replace"]]]
        let hash = ControllerHistory.hash(data, collisionCount: nil)
        #expect(hash.allSatisfy { "bcdfghjklmnpqrstvwxz2456789".contains($0) })
        // Same data, same hash; a collision count salts it.
        #expect(ControllerHistory.hash(data, collisionCount: nil) == hash)
        #expect(ControllerHistory.hash(data, collisionCount: 1) != hash)
        // FNV-1 (not FNV-1a) of "{}" is 1450640401; each decimal digit picks a letter. Pinned, so revision
        // names stay the same across versions.
        #expect(ControllerHistory.hash([:], collisionCount: nil) == "5894b84845")
        #expect(ControllerHistory.hash([:], collisionCount: 1) == "cccc864bb")
        #expect(ControllerHistory.name(owner: "web", hash: hash) == "web-" + hash)
    }

    @Test func theDataIsThePatchKubectlAppliesAndGivesTheTemplateBack() throws {
        var template = CoreV1.PodTemplateSpec()
        template.metadata.labels = ["app": "web"]
        template.spec.containers = [CoreV1.Container(name: "web", image: "web:2")]
        let data = ControllerHistory.patch(template)
        #expect(data["spec"]["template"]["$patch"].string == "replace")
        #expect(data["spec"]["template"]["spec"]["containers"][0]["image"].string == "web:2")
        #expect(data.object?.keys.sorted() == ["spec"])
        // As Go writes an unset creationTimestamp: kubectl compares these bytes with its own.
        #expect(data["spec"]["template"]["metadata"].object?["creationTimestamp"] == .some(.null))
        var cr = AppsV1.ControllerRevision()
        cr.data = RawExtension(data)
        #expect(ControllerHistory.template(of: cr) == template)
    }

    @Test func revisionNumbersFollowTheHighestAndTruncationSparesLiveAndCurrentRevisions() {
        func revision(_ name: String, _ n: Int64) -> AppsV1.ControllerRevision {
            var cr = AppsV1.ControllerRevision()
            cr.metadata.name = name
            cr.metadata.labels = [ControllerHistory.hashLabel: name]
            cr.revision = n
            return cr
        }
        let history = [revision("a", 1), revision("b", 4), revision("c", 2), revision("d", 3)]
        #expect(ControllerHistory.nextRevision([]) == 1)
        #expect(ControllerHistory.nextRevision(history) == 5)
        // Limit 1: of a, c, d (b is current), c is live, so only the oldest of the rest beyond one goes.
        let surplus = ControllerHistory.surplus(history, live: ["c"], keep: ["b"], limit: 1)
        #expect(surplus.map(\.metadata.name) == ["a"])
        #expect(
            ControllerHistory.surplus(history, live: [], keep: ["b"], limit: 0).map(\.metadata.name) == ["a", "c", "d"])
    }
}

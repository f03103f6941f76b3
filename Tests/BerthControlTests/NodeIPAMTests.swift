import BerthKube
import Foundation
import Logging
import Testing

@testable import BerthAPI
@testable import BerthControl

/// Node IPAM: each Node a block of the cluster CIDR, never two nodes the same one, a deleted Node's
/// block free again, blocks nodes brought themselves respected.
@Suite struct NodeIPAMTests {
    @Test func blocksAreCutFromTheClusterCIDRRoundRobinAndReleased() throws {
        let blocks = try #require(PodCIDRBlocks(clusterCIDR: "10.42.0.0/22", maskSize: 24))
        #expect(blocks.count == 4)
        blocks.markTaken(["10.42.1.0/24", "192.168.0.0/24", "10.42.2.0/25"])  // outside, or not a block: ignored
        #expect(blocks.allocate() == "10.42.0.0/24")
        #expect(blocks.allocate() == "10.42.2.0/24")
        #expect(blocks.allocate() == "10.42.3.0/24")
        #expect(blocks.allocate() == nil)
        blocks.release(["10.42.1.0/24"])
        #expect(blocks.allocate() == "10.42.1.0/24")
        // A CIDR with host bits set is its network; a mask that does not fit is refused.
        #expect(PodCIDRBlocks(clusterCIDR: "10.42.7.9/16", maskSize: 24)?.block(1) == "10.42.1.0/24")
        #expect(PodCIDRBlocks(clusterCIDR: "10.42.0.0/16", maskSize: 8) == nil)
        #expect(PodCIDRBlocks(clusterCIDR: "10.42.0.0/16", maskSize: 31) == nil)
        #expect(PodCIDRBlocks(clusterCIDR: "bogus", maskSize: 24) == nil)
    }

    @Test(.timeLimit(.minutes(1)))
    func everyNodeGetsABlockOfItsOwnAndADeletedNodesBlockIsGivenAgain() async throws {
        let cluster = FakeCluster()
        let logger = Logger(label: "ipam-test")
        var config = ControlPlaneConfig()
        config.clusterCIDR = "10.42.0.0/23"
        let context = ControllerContext(
            client: { _ in cluster }, informers: InformerFactory(provider: cluster, logger: logger),
            events: EventRecorder(), logger: logger, config: config)
        func node(_ name: String, podCIDR: String? = nil) -> CoreV1.Node {
            var node = CoreV1.Node()
            node.metadata.name = name
            node.spec.podCIDR = podCIDR
            if let podCIDR { node.spec.podCIDRs = [podCIDR] }
            return node
        }
        // One node registered with a block of its own (a kubelet's --pod-cidr): nobody else gets it.
        cluster.seed(node("own", podCIDR: "10.42.0.0/24"), node("first"))
        let controller = try #require(NodeIPAMController(context))
        let informers = context.informers
        let run = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await informers.run() }
                await informers.waitForSync()
                group.addTask { await controller.run() }
            }
        }
        defer { run.cancel() }
        func podCIDR(_ name: String) -> String? { cluster.object(CoreV1.Node.self, name: name)?.spec.podCIDR }
        try await until { podCIDR("first") != nil }
        #expect(podCIDR("first") == "10.42.1.0/24")
        #expect(cluster.object(CoreV1.Node.self, name: "first")?.spec.podCIDRs == ["10.42.1.0/24"])
        #expect(podCIDR("own") == "10.42.0.0/24")

        // The range is full: a third node waits (an event says why) until a block is free.
        _ = try await cluster.create(node("third"))
        try await Task.sleep(for: .milliseconds(200))
        #expect(podCIDR("third") == nil)
        try await cluster.delete(CoreV1.Node.self, namespace: nil, name: "first")
        _ = try await cluster.create(node("fourth"))
        try await until { podCIDR("fourth") != nil || podCIDR("third") != nil }
        #expect([podCIDR("fourth"), podCIDR("third")].compactMap { $0 } == ["10.42.1.0/24"])
        // Without a cluster CIDR there is no node IPAM (berth server --cluster-cidr "").
        let none = ControllerContext(
            client: { _ in cluster }, informers: InformerFactory(provider: cluster, logger: logger),
            events: EventRecorder(), logger: logger, config: ControlPlaneConfig())
        #expect(NodeIPAMController(none) == nil)
    }

    private func until(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            if ContinuousClock.now > deadline { Issue.record("timed out"); return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

import BerthCRI
import BerthCRIProtocol
import BerthOS
import GRPCCore
import Synchronization
import Testing

/// The stats RPCs the kubelet's CRI stats provider calls: a busy container's CPU rate, memory as the
/// kubelet counts it, and its pod's cgroup and network.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .criEngine("stats"))
struct StatsTests {
    var box: CRIBox { get throws { try #require(CRIBox.current) } }

    @Test func aBusyContainerAndItsPodReportTheirUse() async throws {
        let box = try self.box
        let config = box.sandboxConfig("stats")
        let sandbox = try await box.runSandbox(config)
        let busy = try await box.start(
            sandbox, config, box.containerConfig("busy", ["sh", "-c", "while :; do :; done"]))
        _ = try await box.waitFor(busy, .containerRunning)

        var request = Runtime_V1_ContainerStatsRequest()
        request.containerID = busy
        let first = try await box.client.runtime.containerStats(request).stats
        #expect(first.attributes.metadata.name == "busy")
        #expect(first.cpu.usageCoreNanoSeconds.value > 0)
        #expect(first.memory.workingSetBytes.value > 0)
        // A rate from two readings: a spinning shell uses most of a core.
        var list = Runtime_V1_ListContainerStatsRequest()
        list.filter.podSandboxID = sandbox
        var rate: UInt64 = 0
        for _ in 0..<50 where rate == 0 {
            try await Task.sleep(for: .milliseconds(100))
            rate = try await box.client.runtime.listContainerStats(list).stats.first?.cpu.usageNanoCores.value ?? 0
        }
        #expect(rate > 300_000_000, "\(rate) nanocores")

        var podRequest = Runtime_V1_PodSandboxStatsRequest()
        podRequest.podSandboxID = sandbox
        let pod = try await box.client.runtime.podSandboxStats(podRequest).stats
        #expect(pod.attributes.metadata.name == "stats")
        #expect(pod.linux.containers.map(\.attributes.id) == [busy])
        #expect(pod.linux.cpu.usageCoreNanoSeconds.value >= first.cpu.usageCoreNanoSeconds.value)
        #expect(pod.linux.process.processCount.value >= 1)
        #expect(pod.linux.network.interfaces.contains { $0.name == "eth0" })

        var unknown = Runtime_V1_ContainerStatsRequest()
        unknown.containerID = "no-such-container"
        await #expect { _ = try await box.client.runtime.containerStats(unknown) } throws: {
            ($0 as? RPCError)?.code == .notFound
        }
        var remove = Runtime_V1_RemovePodSandboxRequest()
        remove.podSandboxID = sandbox
        _ = try await box.client.runtime.removePodSandbox(remove)
    }

    @Test func containerEventsFollowAContainersLife() async throws {
        let box = try self.box
        let config = box.sandboxConfig("events")
        let sandbox = try await box.runSandbox(config)
        let received = Received()
        let client = try #require(box.client)
        let reader = Task {
            try await client.runtime.getContainerEvents(Runtime_V1_GetEventsRequest()) { response in
                for try await event in response.messages { received.events.withLock { $0.append(event) } }
            }
        }
        defer { reader.cancel() }
        func events(of id: String) -> [Runtime_V1_ContainerEventResponse] {
            received.events.withLock { $0.filter { $0.containerID == id } }
        }
        /// Polls for what the stream has delivered (a stream has no event for "subscribed").
        func within(_ seconds: Double, _ condition: () -> Bool) async throws -> Bool {
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            while ContinuousClock.now < deadline {
                if condition() { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return condition()
        }
        // The stream starts with the call: short-lived containers until one is seen tell that it is live.
        var live = false
        for attempt in 1...20 where !live {
            let probe = try await box.start(sandbox, config, box.containerConfig("probe\(attempt)", ["true"]))
            live = try await within(2) { !events(of: probe).isEmpty }
        }
        try #require(live, "no container event arrived")
        let container = try await box.start(sandbox, config, box.containerConfig("brief", ["true"]))
        #expect(
            try await within(20) { events(of: container).contains { $0.containerEventType == .containerStoppedEvent } })
        let seen = events(of: container)
        #expect(
            seen.map(\.containerEventType) == [.containerCreatedEvent, .containerStartedEvent, .containerStoppedEvent])
        #expect(seen.allSatisfy { $0.podSandboxStatus.id == sandbox })
        #expect(seen.last?.containersStatuses.contains { $0.id == container } == true)
        var remove = Runtime_V1_RemovePodSandboxRequest()
        remove.podSandboxID = sandbox
        _ = try await box.client.runtime.removePodSandbox(remove)
    }
}

/// What a stream delivered, shared with the task reading it.
final class Received: Sendable {
    let events = Mutex<[Runtime_V1_ContainerEventResponse]>([])
}

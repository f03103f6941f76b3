import BerthKube
import BerthOS
import Foundation
import Testing

@testable import BerthAgent

/// The eviction manager's logic without a node: thresholds as --eviction-hard spells them, the
/// kubelet's ranking under memory pressure, its messages, and its admission under pressure.
struct EvictionLogicTests {
    @Test func thresholdsParseAsTheKubeletsFlag() throws {
        let parsed = try EvictionThreshold.parse("memory.available<100Mi, nodefs.available<10%,pid.available<1k")
        #expect(
            parsed == [
                .init(signal: .memoryAvailable, amount: .quantity(100 << 20)),
                .init(signal: .nodefsAvailable, amount: .fraction(0.10)),
                .init(signal: .pidAvailable, amount: .quantity(1000)),
            ])
        #expect(parsed[1].minimum(capacity: 1000) == 100)
        for bad in ["memory.available>1Gi", "memory.free<1Gi", "memory.available<lots", "nodefs.available<120%"] {
            #expect(throws: EvictionThreshold.ParseError.self, "\(bad)") { try EvictionThreshold.parse(bad) }
        }
        let error = #expect(throws: EvictionThreshold.ParseError.self) {
            try EvictionThreshold.parse("memory.free<1Gi")
        }
        #expect(error?.description.contains("unknown signal \"memory.free\"") == true)
    }

    func pod(_ name: String, request: String?, priority: Int32? = nil, bestEffort: Bool = false) -> CoreV1.Pod {
        var pod = CoreV1.Pod()
        pod.metadata.name = name
        pod.metadata.uid = name
        var container = CoreV1.Container()
        container.name = name
        if let request { container.resources.requests = ["memory": Quantity(request)] }
        pod.spec.containers = [container]
        pod.spec.priority = priority
        pod.status.qosClass = bestEffort ? .bestEffort : .burstable
        return pod
    }

    @Test func memoryPressureRanksAsTheKubeletDoes() {
        let over = EvictionManager.Candidate(pod: pod("over", request: "10Mi"), usage: 50 << 20, containerUsage: [:])
        let bigOver = EvictionManager.Candidate(
            pod: pod("big-over", request: "10Mi"), usage: 500 << 20, containerUsage: [:])
        let under = EvictionManager.Candidate(
            pod: pod("under", request: "1Gi"), usage: 900 << 20, containerUsage: [:])
        let important = EvictionManager.Candidate(
            pod: pod("important", request: "10Mi", priority: 1000), usage: 900 << 20, containerUsage: [:])
        let ranked = EvictionManager.rankedForMemory([under, important, over, bigOver]).map { $0.pod.metadata.name! }
        // Over their requests first, lower priority before higher, then the most above the request.
        #expect(ranked == ["big-over", "over", "important", "under"])
    }

    @Test func theEvictionMessageIsTheKubelets() {
        let candidate = EvictionManager.Candidate(
            pod: pod("hog", request: "8Mi"), usage: 2 << 30, containerUsage: ["hog": 2 << 30])
        let message = EvictionManager.message(
            threshold: .init(signal: .memoryAvailable, amount: .quantity(100 << 20)),
            observed: .init(available: 51200 << 10, capacity: 24 << 30), candidate: candidate)
        #expect(
            message
                == "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container hog was using 2Gi, request is 8Mi, has larger consumption of memory. "
        )
    }

    @Test func underPressureOnlyWhatTheKubeletAdmitsIsAdmitted() {
        let manager = EvictionManager(thresholds: EvictionThreshold.defaults, transitionPeriod: .seconds(60))
        let bestEffort = pod("be", request: nil, bestEffort: true)
        let burstable = pod("bu", request: "1Mi")
        #expect(manager.refusal(bestEffort) == nil)
        manager.recordMet([.memoryPressure])
        #expect(manager.refusal(bestEffort) == "The node had condition: [MemoryPressure]. ")
        #expect(manager.refusal(burstable) == nil)
        var tolerant = bestEffort
        tolerant.spec.tolerations = [
            CoreV1.Toleration(key: "node.kubernetes.io/memory-pressure", operator: .opExists, effect: .noSchedule)
        ]
        #expect(manager.refusal(tolerant) == nil)
        manager.recordMet([.diskPressure])
        #expect(manager.refusal(burstable) == "The node had condition: [DiskPressure MemoryPressure]. ")
        var critical = burstable
        critical.spec.priority = 2_000_001_000
        #expect(manager.refusal(critical) == nil)
    }
}

/// Eviction on a real node: a pod that takes 4.5 GiB drives memory.available below a threshold set
/// 3 GiB under what the machine has (a margin other processes' comings and goings stay within), and is
/// evicted — failed, with the kubelet's reason, message and DisruptionTarget condition — while a pod
/// within its request keeps running; the node reports MemoryPressure, and while it does a BestEffort
/// pod is refused.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"))
struct EvictionTests {
    @Test func aPodUsingMoreThanItRequestsIsEvictedUnderMemoryPressure() throws {
        let capacity = NodeFacts.meminfo("MemTotal")
        let available = capacity - EvictionManager.rootWorkingSet()
        let threshold = (available - (3 << 30)) >> 20
        try #require(threshold > 512, "the machine has too little memory for this test")
        let box = try ServerBox(extraArguments: [
            "--eviction-hard", "memory.available<\(threshold)Mi", "--eviction-monitoring-interval", "1s",
            "--eviction-pressure-transition-period", "60s",
        ])
        defer { box.tearDown() }
        let manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: steady}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: steady
                image: \(box.image)
                command: ["sleep", "1000"]
                resources: {requests: {memory: 64Mi}, limits: {memory: 64Mi}}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: hog}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: hog
                image: \(box.image)
                # Waits for the test's word, then holds 4.5 GiB: three tails keeping the endless line each
                # reads (busybox's tail gives up near 2 GiB).
                command: ["sh", "-c", "until [ -f /tmp/go ]; do sleep 0.2; done; for i in 1 2 3; do (head -c 1536m /dev/zero; sleep 1000) | tail & done; wait"]
                resources: {requests: {memory: 8Mi}, limits: {memory: 8Gi}}
            """
        let applied = try box.kubectl(["apply", "-f", "-"], input: manifest)
        try #require(applied.status.succeeded, "\(applied.stderrText)")
        for name in ["steady", "hog"] {
            try #require(
                try box.eventually { try box.get("pod/\(name)", "{.status.phase}") == "Running" },
                "\(name) did not run: \(box.diagnostics())")
        }
        let pressure = "{.status.conditions[?(@.type==\"MemoryPressure\")].status}"
        #expect(try box.get("node/\(box.nodeName)", pressure) == "False")

        _ = try box.kubectl(["exec", "hog", "--", "touch", "/tmp/go"])
        #expect(
            try box.eventually(60) { try box.get("pod/hog", "{.status.phase}") == "Failed" }, "\(box.diagnostics())")
        #expect(try box.get("pod/hog", "{.status.reason}") == "Evicted")
        let message = try box.get("pod/hog", "{.status.message}")
        #expect(message.hasPrefix("The node was low on resource: memory. Threshold quantity: \(threshold)Mi"))
        #expect(message.contains("Container hog was using"))
        #expect(message.hasSuffix("request is 8Mi, has larger consumption of memory. "))
        #expect(
            try box.get("pod/hog", "{.status.conditions[?(@.type==\"DisruptionTarget\")].reason}")
                == "TerminationByKubelet")
        #expect(try box.get("pod/hog", "{.status.containerStatuses[0].state.terminated.exitCode}") == "137")
        #expect(try box.get("pod/steady", "{.status.phase}") == "Running", "\(box.diagnostics())")
        #expect(try box.eventually(10) { try box.get("node/\(box.nodeName)", pressure) == "True" })

        // Within the transition period the node still reports pressure, and a BestEffort pod is refused.
        _ = try box.kubectl(["run", "besteffort", "--image=\(box.image)", "--", "sleep", "1000"])
        #expect(try box.eventually(30) { try box.get("pod/besteffort", "{.status.phase}") == "Failed" })
        #expect(
            try box.get("pod/besteffort", "{.status.message}")
                == "Pod was rejected: The node had condition: [MemoryPressure]. ")
        #expect(try box.get("pod/steady", "{.status.phase}") == "Running", "\(box.diagnostics())")
    }
}

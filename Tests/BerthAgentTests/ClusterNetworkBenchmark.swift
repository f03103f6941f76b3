#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Foundation
import Testing

/// Issue 13's throughput benchmark on ``ClusterTopology`` (run by `scripts/bench-cluster.sh`, in
/// `make bench`; skipped unless BERTH_BENCH_CLUSTER is set): iperf3 from Debian, 5 s per figure,
/// between the nodes' namespaces themselves and between pods on them — over the shared LAN (host-gw)
/// and through the router (VXLAN) — and to a pod through its Service's ClusterIP. It prints figures,
/// never fails on them: timings are not pass/fail.
@Suite(
    .serialized,
    .enabled(if: isRealRoot && ProcessInfo.processInfo.environment["BERTH_BENCH_CLUSTER"] != nil, "a benchmark"))
struct ClusterNetworkBenchmark {
    @Test func crossNodeAndClusterIPThroughput() throws {
        let cluster = try ClusterTopology(lanOfNode: [0, 0, 1])
        defer { cluster.tearDown() }
        #expect(try cluster.nodesReady(), "\(cluster.diagnostics())")
        // One pod on each node (its network namespace is where iperf3 runs), a Service for node 1's.
        var manifest = ""
        for node in cluster.nodes {
            manifest += """
                apiVersion: v1
                kind: Pod
                metadata: {name: perf-\(node.name), labels: {perf: \(node.name)}}
                spec:
                  nodeName: \(node.name)
                  terminationGracePeriodSeconds: 1
                  containers: [{name: idle, image: \(cluster.image), command: ["sleep", "3600"]}]
                ---

                """
        }
        manifest += """
            apiVersion: v1
            kind: Service
            metadata: {name: perf}
            spec:
              selector: {perf: tnode-1}
              ports: [{port: 5201, targetPort: 5201}]
            """
        let applied = try cluster.kubectl(["apply", "-f", "-"], input: manifest)
        try #require(applied.status.succeeded, "\(applied.stderrText)")
        #expect(
            try cluster.eventually(60) {
                try cluster.get("pods", "{.items[*].status.phase}") == "Running Running Running"
            }, "\(cluster.diagnostics())")
        #expect(
            try cluster.eventually(30) {
                !(try cluster.get("endpoints/perf", "{.subsets[*].addresses[*].ip}")).isEmpty
            },
            "\(cluster.diagnostics())")
        let podIP = { (node: String) in try cluster.get("pod/perf-\(node)", "{.status.podIP}") }
        let clusterIP = try cluster.get("service/perf", "{.spec.clusterIP}")

        /// A command in node `index`'s namespace, or in its pod's (the CRI's pinned namespace, a bind
        /// mount in the agent's own mount namespace).
        func command(_ index: Int, inPod: Bool, _ arguments: [String]) -> [String] {
            let node = cluster.nodes[index]
            guard inPod else { return ["ip", "netns", "exec", node.namespace] + arguments }
            let pins = "\(node.directory)/run/cri/netns"
            let script = "exec nsenter --net=\"$(ls -d \(pins)/* | head -1)\" " + arguments.joined(separator: " ")
            return ["nsenter", "-t", String(node.agent), "-m", "sh", "-c", script]
        }
        /// Gbit/s from node `from` to `address` (a server on node `to`), iperf3 for 5 s.
        func throughput(from: Int, to: Int, address: String, pods: Bool) throws -> Double {
            // Its standard descriptors on /dev/null: closed ones would be the first its sockets get.
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            defer { close(null) }
            let server = try ChildProcess.spawn(
                "/usr/bin/env", arguments: ["env"] + command(to, inPod: pods, ["iperf3", "-s", "-1", "-p", "5201"]),
                environment: cluster.environment, fileDescriptors: [0: null, 1: null, 2: null])
            defer {
                kill(server, SIGTERM)
                _ = try? ChildProcess.wait(server)
            }
            var output = ""
            for _ in 0..<50 {
                let run = try ChildProcess.run(
                    "/usr/bin/env",
                    arguments: ["env"]
                        + command(
                            from, inPod: pods, ["iperf3", "-c", address, "-p", "5201", "-t", "5", "-J"]),
                    environment: cluster.environment)
                output = run.stdoutText
                // iperf3 -J may exit 0 with {"error": …}: only an answer without one is a result.
                if run.status.succeeded && !output.contains("\"error\"") { break }
                usleep(100_000)  // the server's socket is not listening yet
            }
            let json = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
            let end = json?["end"] as? [String: Any]
            let received = end?["sum_received"] as? [String: Any]
            let bits = try #require(
                received?["bits_per_second"] as? Double,
                "node \(from) → \(address) on node \(to): \(json?["error"] ?? output.prefix(500))")
            return bits / 1e9
        }
        /// The median of five runs, the paths taking turns (a slow second on this shared machine
        /// lands on one run of each, not on one path).
        var samples: [String: [Double]] = [:]
        let paths: [(String, Int, String, Bool)] = [
            ("nodeLAN", 1, cluster.nodes[1].address, false), ("podLAN", 1, try podIP("tnode-1"), true),
            ("service", 1, clusterIP, true), ("nodeRouted", 2, cluster.nodes[2].address, false),
            ("podVXLAN", 2, try podIP("tnode-2"), true),
        ]
        for _ in 0..<5 {
            for (name, to, address, pods) in paths {
                samples[name, default: []].append(try throughput(from: 0, to: to, address: address, pods: pods))
            }
        }
        func median(_ name: String) -> Double { (samples[name] ?? [0]).sorted()[(samples[name]?.count ?? 1) / 2] }
        let (nodeLAN, podLAN, service) = (median("nodeLAN"), median("podLAN"), median("service"))
        let (nodeRouted, podVXLAN) = (median("nodeRouted"), median("podVXLAN"))
        func row(_ what: String, _ value: Double, _ base: Double, _ baseName: String) -> String {
            "| \(what) | \(String(format: "%.2f", value)) Gbit/s | \(String(format: "%.0f", value / base * 100)) % of \(baseName) |"
        }
        print(
            """
            | path (iperf3, one TCP stream, median of five 5 s runs) | throughput | ratio |
            |---|---|---|
            | node → node, shared LAN | \(String(format: "%.2f", nodeLAN)) Gbit/s | |
            \(row("pod → pod on another node, host-gw", podLAN, nodeLAN, "node → node"))
            \(row("pod → ClusterIP → pod on another node", service, podLAN, "pod IP"))
            | node → node, through the router | \(String(format: "%.2f", nodeRouted)) Gbit/s | |
            \(row("pod → pod on another node, VXLAN", podVXLAN, nodeRouted, "node → node"))
            """)
    }
}

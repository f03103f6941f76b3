import BerthAPI
@testable import BerthControl
import BerthStore
import Foundation
import Testing

extension ControlTests {
    /// The control plane's run-once loops under failure: the leader killed mid-rollout on a shared etcd,
    /// and a single server killed and restarted on its SQLite file.
    @Suite(
        "control plane failover",
        .enabled(if: berthBinary() != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    struct FailoverTests {
        static let big = webYAML.replacingOccurrences(of: "  replicas: 6\n", with: "  replicas: 40\n")
        /// `big`, schedulable only on nodes labelled open=yes.
        static let gated = big.replacingOccurrences(
            of: "    spec:\n      containers:",
            with: "    spec:\n      nodeSelector: {open: \"yes\"}\n      containers:")

        /// Pods of `app` and how many Scheduled events each got (a pod bound twice would have two).
        func audit(_ kubectl: ([String]) throws -> Output) throws -> (pods: [JSON], scheduledTwice: [String]) {
            let pods = (try JSON.parse(try kubectl(["get", "pods", "-o", "json"]).stdout)["items"].array ?? [])
                .filter {
                    $0["metadata"]["labels"]["app"].string == "web" && $0["metadata"]["deletionTimestamp"].isNull
                }
            let events = try JSON.parse(try kubectl(["get", "events", "-o", "json"]).stdout)["items"].array ?? []
            var count: [String: Int64] = [:]
            for e in events where e["reason"].string == "Scheduled" {
                count[e["involvedObject"]["uid"].string ?? "", default: 0] += e["count"].int ?? 1
            }
            return (pods, count.filter { $0.value > 1 }.map(\.key))
        }

        @Test func leaderKilledMidRolloutAnotherFinishesIt() async throws {
            let binary = try #require(berthBinary())
            try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd"))
            let etcd = try LocalEtcd(members: 1)
            try await etcd.start(timeout: .seconds(30))
            defer { etcd.stop() }
            let dir = NSTemporaryDirectory() + "berth-failover-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let common = [
                "--datastore", "etcd", "--etcd-endpoints", etcd.endpoints.joined(separator: ","), "--lease-seconds",
                "2",
            ]
            // The first server leads (it starts alone); the second carries the hollow nodes, so they outlive the leader.
            let leader = try ServerChild(
                binary: binary, dir: dir, port: try freePort(), extra: common + ["--identity", "a"])
            #expect(leader.waitReady())
            var led = false
            for _ in 0..<50 where !led {
                led =
                    (try? leader.kubectl(
                        "get", "lease", "-n", "kube-system", "berth-controller-manager", "-o",
                        "jsonpath={.spec.holderIdentity}"
                    ).stdout) == "a"
                if !led { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(led)
            // Hollow nodes hold 10 pods each and only nodes labelled open=yes are eligible, so the rollout stops at a
            // known point (20 of 40 bound) however fast this machine is; the leader dies there.
            let follower = try ServerChild(
                binary: binary, dir: dir, port: try freePort(),
                extra: common + ["--identity", "b", "--hollow-nodes", "4", "--hollow-node-pods", "10"])
            #expect(follower.waitReady())
            defer { follower.kill9() }
            for i in 0..<4 {
                #expect(try follower.kubectl("wait", "--for=create", "node/hollow-0000\(i)", "--timeout=30s").ok)
            }
            for i in 0..<2 { #expect(try follower.kubectl("label", "node", "hollow-0000\(i)", "open=yes").ok) }
            let apply = try run(
                "/usr/bin/kubectl",
                [
                    "--kubeconfig", follower.kubeconfig, "--server", "https://127.0.0.1:\(follower.port)", "apply",
                    "-f", "-",
                ],
                stdin: Self.gated)
            #expect(apply.ok, "\(apply.stderr)")
            var bound = 0
            for _ in 0..<500 where bound < 20 {
                let items =
                    try JSON.parse(try follower.kubectl("get", "pods", "-o", "json").stdout)["items"].array ?? []
                bound = items.filter { !($0["spec"]["nodeName"].string ?? "").isEmpty }.count
                if bound < 20 { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(bound == 20, "half the rollout fits before the leader dies")
            leader.kill9()
            for i in 2..<4 { #expect(try follower.kubectl("label", "node", "hollow-0000\(i)", "open=yes").ok) }
            let out = try follower.kubectl("rollout", "status", "deploy/web", "--timeout=90s", timeout: 100)
            #expect(out.ok, "the new leader finished the rollout: \(out.stdout) \(out.stderr)")
            let holder = try follower.kubectl(
                "get", "lease", "-n", "kube-system", "berth-controller-manager", "-o", "jsonpath={.spec.holderIdentity}"
            ).stdout
            #expect(holder == "b")
            let (pods, twice) = try audit { try follower.kubectlArgs($0) }
            #expect(pods.count == 40, "exactly the desired pods exist")
            #expect(pods.allSatisfy { !($0["spec"]["nodeName"].string ?? "").isEmpty })
            #expect(twice.isEmpty, "pods scheduled twice: \(twice)")
        }

        @Test func restartedServerConverges() async throws {
            let binary = try #require(berthBinary())
            let dir = NSTemporaryDirectory() + "berth-restart-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let port = try freePort()
            let first = try ServerChild(binary: binary, dir: dir, port: port, extra: ["--hollow-nodes", "4"])
            #expect(first.waitReady())
            let apply = try run(
                "/usr/bin/kubectl", ["--kubeconfig", first.kubeconfig, "apply", "-f", "-"], stdin: Self.big)
            #expect(apply.ok, "\(apply.stderr)")
            for _ in 0..<200 {
                let n = try JSON.parse(try first.kubectl("get", "pods", "-o", "json").stdout)["items"].array?.count ?? 0
                if n > 0 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            first.kill9()
            let second = try ServerChild(binary: binary, dir: dir, port: port, extra: ["--hollow-nodes", "4"])
            #expect(second.waitReady())
            defer { second.kill9() }
            let out = try second.kubectl("rollout", "status", "deploy/web", "--timeout=90s", timeout: 100)
            #expect(out.ok, "\(out.stdout) \(out.stderr)")
            let (pods, twice) = try audit { try second.kubectlArgs($0) }
            #expect(pods.count == 40)
            #expect(twice.isEmpty, "pods scheduled twice: \(twice)")
        }
    }
}

import BerthAPI
import BerthStore
import Foundation
import Testing

extension APITests {
    /// Three `berth server` processes on a three-member etcd cluster (all on loopback): kill the leader,
    /// another server leads within 5 s, and no write acknowledged by any server is lost.
    @Suite(
        "high availability",
        .enabled(if: berthBinary() != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd")))
    struct HATests {
        typealias ServerProcess = CrashRecoveryTests.ServerProcess

        func holder(_ store: EtcdStore) async -> String? {
            let key = "/registry/coordination.k8s.io/leases/kube-system/berth-controller-manager"
            guard let kv = try? await store.get(key), let lease = try? JSON.parse(kv.value) else { return nil }
            let h = lease["spec"]["holderIdentity"].string ?? ""
            return h.isEmpty ? nil : h
        }

        @Test func killTheLeaderAnotherLeadsAndNoAcknowledgedWriteIsLost() async throws {
            let binary = try #require(berthBinary())
            let etcd = try LocalEtcd(members: 3)
            try await etcd.start(timeout: .seconds(30))
            defer { etcd.stop() }
            let dir = NSTemporaryDirectory() + "berth-ha-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let ports = try (0..<3).map { _ in try freePort() }
            var servers: [ServerProcess] = []
            for (i, port) in ports.enumerated() {
                // One data dir: the servers share the CA, serving cert and tokens; the state is in etcd.
                let s = try ServerProcess(
                    binary: binary, dir: dir, port: port,
                    extra: [
                        "--datastore", "etcd", "--etcd-endpoints", etcd.endpoints.joined(separator: ","), "--identity",
                        "s\(i)", "--lease-seconds", "2",
                    ])
                #expect(s.waitReady())
                servers.append(s)
            }
            let observer = EtcdStore(endpoints: etcd.endpoints)
            defer { Task { await observer.close() } }
            var leader: String?
            let electionDeadline = Date().addingTimeInterval(10)
            while leader == nil && Date() < electionDeadline {
                leader = await holder(observer)
                if leader == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let first = try #require(leader)
            let leaderIndex = try #require(Int(first.dropFirst()))

            let token = String(
                try String(contentsOfFile: dir + "/tokens.csv", encoding: .utf8).split(separator: ",")[0])
            var storms: [(Process, LineReader)] = []
            for port in ports {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                p.arguments = [
                    "python3", scriptsDir + "/write_storm.py", "https://127.0.0.1:\(port)", token, dir + "/pki/ca.crt",
                    "storm\(port)",
                ]
                let out = Pipe()
                p.standardOutput = out
                p.standardError = FileHandle.nullDevice
                try p.run()
                storms.append((p, LineReader(out.fileHandleForReading)))
            }
            var acked: [String] = []
            for (_, lines) in storms { for _ in 0..<30 { if let l = lines.next(timeout: 20) { acked.append(l) } } }

            servers[leaderIndex].kill9()
            let killedAt = Date()
            var newLeader: String?
            while Date().timeIntervalSince(killedAt) < 8 {
                if let h = await holder(observer), h != first { newLeader = h; break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let failover = Date().timeIntervalSince(killedAt)
            #expect(newLeader != nil, "no new leader")
            #expect(failover < 5, "failover took \(failover) s")
            // Survivors keep acknowledging writes.
            for (i, (_, lines)) in storms.enumerated() where i != leaderIndex {
                for _ in 0..<30 { if let l = lines.next(timeout: 20) { acked.append(l) } }
            }
            for (p, _) in storms { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            for (_, lines) in storms { while let l = lines.next(timeout: 2) { acked.append(l) } }

            let survivor = ports[(leaderIndex + 1) % 3]
            let list = try run(
                "/usr/bin/curl",
                [
                    "-s", "--cacert", dir + "/pki/ca.crt", "-H", "Authorization: Bearer \(token)",
                    "https://127.0.0.1:\(survivor)/api/v1/namespaces/default/configmaps",
                ])
            let names = Set(
                (try JSON.parse(list.stdout)["items"].array ?? []).compactMap { $0["metadata"]["name"].string })
            let lost = acked.filter { !names.contains($0) }
            #expect(acked.count >= 150)
            #expect(lost.isEmpty, "lost \(lost.count) acknowledged writes")
            for (i, s) in servers.enumerated() where i != leaderIndex { s.kill9() }
        }
    }
}

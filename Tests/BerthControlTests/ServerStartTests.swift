import BerthAPI
import Foundation
import Testing

extension ControlTests {
    /// `berth server` as a process: a taken port is an error that names the address, found before the
    /// server touches the store's Lease or starts a loop; SIGTERM ends it within its grace period.
    @Suite(
        "server start and stop",
        .enabled(if: berthBinary() != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    struct ServerStartTests {
        /// Sends `signal` and waits for the exit; nil when the process is still running after `seconds`.
        static func signal(_ child: ServerChild, _ signal: Int32, exitWithin seconds: TimeInterval) -> Int32? {
            let exited = DispatchSemaphore(value: 0)
            child.process.terminationHandler = { _ in exited.signal() }
            if !child.process.isRunning { return child.process.terminationStatus }
            kill(child.process.processIdentifier, signal)
            guard exited.wait(timeout: .now() + seconds) == .success else { return nil }
            return child.process.terminationStatus
        }

        @Test func aSecondServerOnATakenPortExitsNamingTheAddressAndLeavesTheLeaseAlone() async throws {
            let binary = try #require(berthBinary())
            let dir = NSTemporaryDirectory() + "berth-taken-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let port = try freePort()
            let first = try ServerChild(
                binary: binary, dir: dir, port: port, extra: ["--identity", "first", "--lease-seconds", "2"])
            defer { first.kill9() }
            #expect(first.waitReady())
            func holder() throws -> String {
                try first.kubectl(
                    "get", "lease", "-n", "kube-system", "berth-controller-manager", "-o",
                    "jsonpath={.spec.holderIdentity}"
                ).stdout
            }
            var led = false
            for _ in 0..<100 where !led {
                led = (try? holder()) == "first"
                if !led { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(led, "the first server leads")
            // The same command again (same data dir, same address, the default identity): several times,
            // because the hang this guards against was a race.
            for attempt in 0..<3 {
                let started = ContinuousClock.now
                let second = try run(
                    binary,
                    [
                        "server", "--data-dir", dir, "--listen", "127.0.0.1:\(port)", "--lease-seconds", "2",
                        "--disable-agent",
                    ],
                    timeout: 60)
                let took = ContinuousClock.now - started
                #expect(second.status != 0, "attempt \(attempt): the second server must fail")
                #expect(
                    second.stderr.contains("127.0.0.1:\(port)"),
                    "attempt \(attempt): the error names the address: \(second.stderr)")
                #expect(second.stderr.contains("address already in use"), "\(second.stderr)")
                #expect(
                    !second.stderr.contains("became leader") && !second.stdout.contains("ready"),
                    "it never led nor served")
                #expect(took < .seconds(30), "attempt \(attempt): it exits by itself (took \(took))")
                #expect(try holder() == "first", "the Lease still names the first server")
            }
            #expect(try first.kubectl("get", "ns", "default").ok, "the first server still serves")
        }

        @Test func sigtermEndsARunningServerWithinItsGracePeriod() async throws {
            let binary = try #require(berthBinary())
            let dir = NSTemporaryDirectory() + "berth-term-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let server = try ServerChild(
                binary: binary, dir: dir, port: try freePort(), extra: ["--hollow-nodes", "3"])
            #expect(server.waitReady())
            #expect(try server.kubectl("wait", "--for=create", "node/hollow-00002", "--timeout=30s").ok)
            let status = Self.signal(server, SIGTERM, exitWithin: 15)
            if status == nil { server.kill9() }
            #expect(
                status == 0,
                "SIGTERM ends the server cleanly within the grace period (status \(String(describing: status)))")
        }

        @Test func sigtermEndsAServerThatIsStillStarting() async throws {
            let binary = try #require(berthBinary())
            let dir = NSTemporaryDirectory() + "berth-term-early-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // Signalled as soon as it runs: wherever start-up is (bind, bootstrap, election, first list), it ends.
            let server = try ServerChild(
                binary: binary, dir: dir, port: try freePort(), extra: ["--hollow-nodes", "3"])
            let status = Self.signal(server, SIGTERM, exitWithin: 15)
            if status == nil { server.kill9() }
            #expect(status != nil, "SIGTERM during start-up ends the server within the grace period")
        }
    }
}

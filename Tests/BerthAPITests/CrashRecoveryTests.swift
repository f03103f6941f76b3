import BerthAPI
import BerthStore
import Foundation
import Testing

extension APITests {
    /// `berth server` killed with SIGKILL in the middle of a write storm, then restarted on the same data
    /// dir: every write it acknowledged is there.
    @Suite("crash recovery", .enabled(if: berthBinary() != nil))
    struct CrashRecoveryTests {
        final class ServerProcess: @unchecked Sendable {
            let process = Process()
            let lines: LineReader
            init(binary: String, dir: String, port: Int, extra: [String] = []) throws {
                process.executableURL = URL(fileURLWithPath: binary)
                process.arguments =
                    [
                        "server", "--data-dir", dir, "--listen", "127.0.0.1:\(port)", "--log-level", "error",
                        "--disable-agent",
                    ] + extra
                let out = Pipe()
                process.standardOutput = out
                process.standardError = FileHandle.nullDevice
                try process.run()
                lines = LineReader(out.fileHandleForReading)
            }
            func waitReady() -> Bool {
                while let l = lines.next(timeout: 30) { if l.hasPrefix("ready") { return true } }
                return false
            }
            func kill9() { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }

        @Test func sigtermWithOpenWatchesShutsDownPromptly() async throws {
            let binary = try #require(berthBinary())
            let dir = NSTemporaryDirectory() + "berth-term-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let port = try freePort()
            let server = try ServerProcess(binary: binary, dir: dir, port: port)
            #expect(server.waitReady())
            let token = String(
                try String(contentsOfFile: dir + "/tokens.csv", encoding: .utf8).split(separator: ",")[0])
            let watch = Process()
            watch.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            watch.arguments = [
                "-s", "-N", "--cacert", dir + "/pki/ca.crt", "-H", "Authorization: Bearer \(token)",
                "https://127.0.0.1:\(port)/api/v1/namespaces/default/services?watch=1",
            ]
            let out = Pipe()
            watch.standardOutput = out
            try watch.run()
            let lines = LineReader(out.fileHandleForReading)
            #expect(lines.next(timeout: 10) != nil, "watch delivered its first event")
            kill(server.process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while server.process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
            let stopped = !server.process.isRunning
            #expect(stopped, "server still running 10 s after SIGTERM with an open watch")
            if !stopped { server.kill9() }
            kill(watch.processIdentifier, SIGKILL)
            watch.waitUntilExit()
        }

        @Test func sigkillDuringWriteStormLosesNoAcknowledgedWrite() async throws {
            let binary = try #require(berthBinary())
            let dir = NSTemporaryDirectory() + "berth-crash-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let port = try freePort()
            let first = try ServerProcess(binary: binary, dir: dir, port: port)
            #expect(first.waitReady())
            let token = String(
                try String(contentsOfFile: dir + "/tokens.csv", encoding: .utf8).split(separator: ",")[0])
            let url = "https://127.0.0.1:\(port)"
            let storm = Process()
            storm.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            storm.arguments = ["python3", scriptsDir + "/write_storm.py", url, token, dir + "/pki/ca.crt"]
            let out = Pipe()
            storm.standardOutput = out
            storm.standardError = FileHandle.nullDevice
            try storm.run()
            let acks = LineReader(out.fileHandleForReading)
            var acked: [String] = []
            while acked.count < 300, let l = acks.next(timeout: 30) { acked.append(l) }
            first.kill9()
            // Whatever the storm printed before it noticed the server was gone was acknowledged too.
            while let l = acks.next(timeout: 10) { acked.append(l) }
            storm.waitUntilExit()
            #expect(acked.count >= 300)

            let second = try ServerProcess(binary: binary, dir: dir, port: port)
            #expect(second.waitReady())
            let list = try run(
                "/usr/bin/curl",
                [
                    "-s", "--cacert", dir + "/pki/ca.crt", "-H", "Authorization: Bearer \(token)",
                    url + "/api/v1/namespaces/default/configmaps",
                ])
            let names = Set(
                (try JSON.parse(list.stdout)["items"].array ?? []).compactMap { $0["metadata"]["name"].string })
            let lost = acked.filter { !names.contains($0) }
            #expect(lost.isEmpty, "lost \(lost.count) acknowledged writes: \(lost.prefix(5))")
            second.kill9()
        }
    }
}

import BerthAPI
import Foundation
import Testing

extension APITests {
    /// The official kubernetes Python client (PyPI `kubernetes`): list/watch resourceVersion semantics,
    /// bookmarks, pagination, 409 and 410.
    @Suite("python client", .enabled(if: pythonHasKubernetes()))
    struct PythonClientTests {
        @Test func listWatchBookmarksAndGone() async throws {
            let s = try await TestServer()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", scriptsDir + "/watch_semantics.py", s.kubeconfig]
            let out = Pipe(), inp = Pipe(), err = Pipe()
            p.standardOutput = out; p.standardInput = inp; p.standardError = err
            try p.run()
            let lines = LineReader(out.fileHandleForReading)
            let old = lines.next(timeout: 60)
            #expect(old?.hasPrefix("OLD ") == true)
            if old?.hasPrefix("OLD ") == true {
                // Compact everything up to now: the old version and continue token become too old.
                let rev = try await s.server.store.currentRevision()
                try await s.server.store.compact(revision: rev)
                inp.fileHandleForWriting.write(Data("go\n".utf8))
                #expect(lines.next(timeout: 60) == "OK")
            }
            try? inp.fileHandleForWriting.close()
            p.waitUntilExit()
            let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(p.terminationStatus == 0, "\(errText)")
            await s.stop()
        }

        @Test func fieldSelectorsStatusWritesImmutableDataAndTableAcceptBehaveAsUpstream() async throws {
            let s = try await TestServer()
            let out = try run("python3", [scriptsDir + "/upstream_habits.py", s.kubeconfig], timeout: 120)
            #expect(out.ok && out.stdout.contains("OK"), "\(out.stdout) \(out.stderr)")
            await s.stop()
        }

        /// An operator's flow: a CustomResourceDefinition, a watching controller of the script's own
        /// writing status, the scale subresource, the delete seen by the watch.
        @Test func anOperatorWatchesItsCustomResourcesAndWritesTheirStatus() async throws {
            let s = try await TestServer()
            let out = try run("python3", [scriptsDir + "/crd_operator.py", s.kubeconfig], timeout: 120)
            #expect(out.ok && out.stdout.contains("ok"), "\(out.stdout) \(out.stderr)")
            await s.stop()
        }
    }
}

import BerthAPI
import BerthStore
import Foundation
import Testing

extension APITests {
    /// Leader election on the embedded store, and watch semantics with selectors.
    @Suite("election and watch")
    struct ElectionAndWatchTests {
        @Test func onlyOneLeaderAndTakeoverAfterRelease() async throws {
            let dir = NSTemporaryDirectory() + "berth-le-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let store = try SQLiteStore(path: dir + "/db")
            let a = LeaderElector(store: store, identity: "a", leaseDuration: .seconds(2))
            let b = LeaderElector(store: store, identity: "b", leaseDuration: .seconds(2))
            #expect(await a.tryAcquireOrRenew())
            #expect(await b.tryAcquireOrRenew() == false, "lease held and fresh")
            #expect(await a.tryAcquireOrRenew(), "holder renews")
            // Concurrent candidates on a free lease: exactly one wins the compare-and-swap.
            await a.release()
            async let x = a.tryAcquireOrRenew()
            async let y = b.tryAcquireOrRenew()
            let (wa, wb) = await (x, y)
            #expect(wa != wb)
            await store.close()
        }

        @Test func watchWithLabelSelectorSeesObjectsEnterAndLeave() async throws {
            let s = try await TestServer()
            let cms = "/api/v1/namespaces/default/configmaps"
            let (_, list) = try s.curl("GET", cms)
            let rv = list["metadata"]["resourceVersion"].string ?? "0"
            _ = try s.curl("POST", cms, body: #"{"metadata":{"name":"a","labels":{"app":"x"}}}"#)
            _ = try s.curl("POST", cms, body: #"{"metadata":{"name":"b","labels":{"app":"y"}}}"#)
            _ = try s.curl(
                "PATCH", cms + "/a", body: #"{"metadata":{"labels":{"app":"y"}}}"#,
                contentType: "application/merge-patch+json")
            _ = try s.curl(
                "PATCH", cms + "/b", body: #"{"metadata":{"labels":{"app":"x"}}}"#,
                contentType: "application/merge-patch+json")
            _ = try s.curl("DELETE", cms + "/b")
            // timeoutSeconds bounds the stream; history replays from rv.
            let w = try run(
                "/usr/bin/curl",
                [
                    "-s", "-N", "--cacert", s.dir + "/pki/ca.crt", "-H", "Authorization: Bearer \(s.token)",
                    s.url + cms + "?watch=1&labelSelector=app%3Dx&timeoutSeconds=2&resourceVersion=\(rv)",
                ])
            let events = w.stdout.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
                .map { "\($0["type"].string ?? "") \($0["object"]["metadata"]["name"].string ?? "")" }
            #expect(events == ["ADDED a", "DELETED a", "ADDED b", "DELETED b"], "\(events)")
            // A watch from a compacted revision ends with an ERROR event carrying 410 Expired.
            try await s.server.store.compact(revision: try await s.server.store.currentRevision())
            let old = try run(
                "/usr/bin/curl",
                [
                    "-s", "-N", "--cacert", s.dir + "/pki/ca.crt", "-H", "Authorization: Bearer \(s.token)",
                    s.url + cms + "?watch=1&timeoutSeconds=2&resourceVersion=\(rv)",
                ])
            let err = try JSON.parse(String(old.stdout.split(separator: "\n").first ?? ""))
            #expect(err["type"] == "ERROR" && err["object"]["code"] == 410 && err["object"]["reason"] == "Expired")
            await s.stop()
        }
    }
}

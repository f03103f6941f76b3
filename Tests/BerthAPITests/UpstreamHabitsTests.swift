import BerthAPI
import BerthStore
import Foundation
import Testing

extension APITests {
/// What client-go based tools (kubectl 1.32 here) rely on kube-apiserver doing, found when they were
/// pointed at `berth server` (issue 14, part 5).
@Suite("upstream client habits", .serialized)
struct UpstreamHabitsTests {
    func names(_ out: Output) -> [String] {
        out.stdout.split(separator: "\n").map { String($0.split(separator: "/").last ?? "") }.sorted()
    }

    @Test func setBasedLabelSelectorsArriveWithPlusForSpace() async throws {
        let s = try await TestServer()
        for (name, app) in [("one", "a"), ("two", "b"), ("three", "c")] {
            #expect(try s.kubectl("create", "configmap", name).ok)
            #expect(try s.kubectl("label", "configmap", name, "app=\(app)").ok)
        }
        // kubectl (Go's url.Values) sends labelSelector=app+in+%28a%2Cb%29.
        var r = try s.kubectl("get", "configmaps", "-l", "app in (a,b)", "-o", "name")
        #expect(r.ok && names(r) == ["one", "two"], "\(r.stdout) \(r.stderr)")
        r = try s.kubectl("get", "configmaps", "-l", "app notin (a,b),app", "-o", "name")
        #expect(r.ok && names(r) == ["three"], "\(r.stdout) \(r.stderr)")
        var (code, body) = try s.curl("GET", "/api/v1/namespaces/default/configmaps?labelSelector=app+in+(c)")
        #expect(code == 200 && body["items"].array?.map { $0["metadata"]["name"] } == ["three"], "\(body)")
        // Each parameter is decoded once: %2B is a literal plus, not a space.
        (code, body) = try s.curl("GET", "/api/v1/namespaces/default/configmaps?labelSelector=app%2Bin%2B(c)")
        #expect(code == 400, "\(body)")
        (code, body) = try s.curl("GET", "/api/v1/namespaces/default/configmaps?labelSelector=app%zz")
        #expect(code == 400 && (body["message"].string ?? "").contains("invalid URL escape \"%zz\""), "\(body)")
        await s.stop()
    }

}
}

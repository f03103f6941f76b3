import BerthAPI
import Foundation
import Testing

extension APITests {
    /// authentication.k8s.io/v1 SelfSubjectReview (`kubectl auth whoami`) and TokenReview (issue 16).
    @Suite("authentication reviews", .serialized)
    struct AuthenticationReviewTests {
        @Test func whoamiAndTokenReviewsNameTheCaller() async throws {
            let s = try await TestServer()
            // The admin's client certificate: its CN and O as the server authenticated them.
            var out = try s.kubectl("auth", "whoami", "-o", "json")
            #expect(out.ok, "\(out.stderr)")
            let admin = try JSON.parse(Array(out.stdout.utf8))
            #expect(
                admin["kind"].string == "SelfSubjectReview" && admin["apiVersion"].string == "authentication.k8s.io/v1")
            let groups = (admin["status"]["userInfo"]["groups"].array ?? []).compactMap(\.string)
            #expect(groups.contains("system:masters") && groups.contains("system:authenticated"), "\(out.stdout)")
            out = try s.kubectl("auth", "whoami")
            #expect(out.stdout.contains("ATTRIBUTE") && out.stdout.contains("system:masters"), "\(out.stdout)")

            // A service account's bound token.
            #expect(try s.kubectl("create", "serviceaccount", "robot").ok)
            out = try s.kubectl("create", "token", "robot")
            #expect(out.ok, "\(out.stderr)")
            let token = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            out = try s.kubectl("auth", "whoami", "--token", token)
            #expect(out.stdout.contains("system:serviceaccount:default:robot"), "\(out.stdout) \(out.stderr)")
            #expect(out.stdout.contains("system:serviceaccounts:default"), "\(out.stdout)")

            // TokenReview: whose the token is, for the server's audience; nobody's for a forged one.
            func review(_ token: String, audiences: [String] = [], as user: String? = nil) throws -> Output {
                let spec: JSON =
                    audiences.isEmpty
                    ? ["token": .string(token)]
                    : ["token": .string(token), "audiences": .array(audiences.map { .string($0) })]
                let body: JSON = ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec]
                let extra = user.map { ["--token", $0] } ?? []
                // Clients post reviews through their typed clients; kubectl create would first look the
                // kind up in the OpenAPI documents, which do not describe the review kinds yet.
                return try s.kubectlArgs(
                    ["create", "--validate=false", "-o", "json", "-f", "-"] + extra, stdin: body.text)
            }
            out = try review(token)
            #expect(out.ok, "\(out.stderr)")
            var status = try JSON.parse(Array(out.stdout.utf8))["status"]
            #expect(status["authenticated"].bool == true, "\(out.stdout)")
            #expect(status["user"]["username"].string == "system:serviceaccount:default:robot", "\(out.stdout)")
            out = try review(token, audiences: ["https://vault.example"])
            status = try JSON.parse(Array(out.stdout.utf8))["status"]
            #expect(
                status["authenticated"].bool != true && status["error"].string == "invalid bearer token",
                "\(out.stdout)")
            out = try review(String(token.dropLast(4)) + "AAAA")
            status = try JSON.parse(Array(out.stdout.utf8))["status"]
            #expect(status["authenticated"].bool != true, "\(out.stdout)")
            // Reviewing others' tokens is not for a service account.
            out = try review(token, as: token)
            #expect(
                out.stderr.contains(
                    #"tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:default:robot" cannot create resource "tokenreviews""#
                ), "\(out.stderr)")
            let discovery = try s.kubectl("api-resources", "--api-group=authentication.k8s.io")
            #expect(
                discovery.stdout.contains("selfsubjectreviews") && discovery.stdout.contains("tokenreviews"),
                "\(discovery.stdout)")
            // The OpenAPI documents describe the kinds served outside the stored resources too.
            for (kind, field) in [("tokenreview", "token"), ("selfsubjectaccessreview", "resourceAttributes")] {
                let explained = try s.kubectl("explain", "\(kind).spec")
                #expect(explained.stdout.contains(field), "\(kind): \(explained.stdout) \(explained.stderr)")
            }
            #expect(try s.kubectl("explain", "componentstatus").stdout.contains("KIND:       ComponentStatus"))
            await s.stop()
        }
    }
}

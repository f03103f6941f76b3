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
            // As upstream's ServiceAccountInfo: the account's UID, the token's id as credential-id, and
            // for a token bound to a pod that pod's name and UID.
            let robotUID = try s.curl("GET", "/api/v1/namespaces/default/serviceaccounts/robot").1["metadata"]["uid"]
            out = try s.kubectl("auth", "whoami", "--token", token, "-o", "json")
            var info = try JSON.parse(Array(out.stdout.utf8))["status"]["userInfo"]
            #expect(info["uid"] == robotUID && robotUID.string != nil, "\(out.stdout)")
            #expect(
                info["extra"]["authentication.kubernetes.io/credential-id"][0].string?.hasPrefix("JTI=") == true,
                "\(out.stdout)")
            #expect(
                try s.kubectl(
                    "run", "p", "--image=busybox", "--restart=Never", "--overrides",
                    #"{"spec": {"serviceAccountName": "robot"}}"#
                ).ok)
            let podUID = try s.curl("GET", "/api/v1/namespaces/default/pods/p").1["metadata"]["uid"]
            // On a node: the token names the node too (upstream's pod node info claims).
            #expect(
                try s.kubectl(
                    "apply", "-f", "-", stdin: #"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}"#
                ).ok)
            let nodeUID = try s.curl("GET", "/api/v1/nodes/n1").1["metadata"]["uid"]
            let bind = try s.curl(
                "POST", "/api/v1/namespaces/default/pods/p/binding",
                body:
                    #"{"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}}"#
            )
            #expect(bind.0 == 201, "\(bind.1)")
            out = try s.kubectl("create", "token", "robot", "--bound-object-kind=Pod", "--bound-object-name=p")
            let podToken = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            out = try s.kubectl("auth", "whoami", "--token", podToken)
            expectMentions(
                out.stdout,
                ["authentication.kubernetes.io/pod-name", "[p]", "authentication.kubernetes.io/pod-uid", "JTI="])
            out = try s.kubectl("auth", "whoami", "--token", podToken, "-o", "json")
            info = try JSON.parse(Array(out.stdout.utf8))["status"]["userInfo"]
            #expect(info["extra"]["authentication.kubernetes.io/pod-uid"] == [podUID], "\(out.stdout)")
            #expect(info["extra"]["authentication.kubernetes.io/node-name"] == ["n1"], "\(out.stdout)")
            #expect(info["extra"]["authentication.kubernetes.io/node-uid"] == [nodeUID], "\(out.stdout)")
            // Impersonation's uid and extra reach the review too.
            out = try s.kubectl("auth", "whoami", "--as=jane", "--as-uid=jane-1", "-o", "json")
            info = try JSON.parse(Array(out.stdout.utf8))["status"]["userInfo"]
            #expect(info["username"] == "jane" && info["uid"] == "jane-1", "\(out.stdout) \(out.stderr)")
            let extraWhoami = try run(
                "/usr/bin/curl",
                [
                    "-s", "--cacert", s.dir + "/pki/ca.crt", "-H", "Authorization: Bearer \(s.token)", "-H",
                    "Impersonate-User: jane", "-H", "Impersonate-Extra-Scopes: view", "-H",
                    "Impersonate-Extra-Scopes: edit",
                    "-H", "Content-Type: application/json", "-X", "POST", "--data-binary",
                    #"{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}"#,
                    s.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                ])
            #expect(
                (try? JSON.parse(extraWhoami.stdout))?["status"]["userInfo"]["extra"] == ["scopes": ["view", "edit"]],
                "\(extraWhoami.stdout)")

            // TokenReview: whose the token is, for the server's audience; nobody's for a forged one.
            func review(_ token: String, audiences: [String] = [], as user: String? = nil) throws -> Output {
                let spec: JSON =
                    audiences.isEmpty
                    ? ["token": .string(token)]
                    : ["token": .string(token), "audiences": .array(audiences.map { .string($0) })]
                let body: JSON = ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec]
                // kubectl validates the review against /openapi/v2 (v3 has no PATCH for the kind), and
                // first asks whether it is a custom kind by listing CRDs, which a service account may not
                // (as against kube-apiserver); such a caller skips client-side validation.
                let extra = user.map { ["--token", $0, "--validate=false"] } ?? []
                return try s.kubectlArgs(["create", "-o", "json", "-f", "-"] + extra, stdin: body.text)
            }
            out = try review(token)
            #expect(out.ok, "\(out.stderr)")
            var status = try JSON.parse(Array(out.stdout.utf8))["status"]
            #expect(status["authenticated"].bool == true, "\(out.stdout)")
            #expect(status["user"]["username"].string == "system:serviceaccount:default:robot", "\(out.stdout)")
            #expect(status["user"]["uid"] == robotUID, "\(out.stdout)")
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

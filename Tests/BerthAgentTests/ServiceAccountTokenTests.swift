import BerthOS
import Foundation
import Testing

@testable import BerthAgent

/// Bound service-account tokens: `kubectl create token` (TokenRequest) and the agent's projected token
/// volumes, each accepted by the API server as its ServiceAccount until what it is bound to is gone.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct ServiceAccountTokenTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    func kubectl(_ box: ServerBox, token: String, _ arguments: [String]) throws -> ChildProcess.Output {
        try box.kubectl(["--token", token] + arguments)
    }

    /// The JSON payload of a JWT.
    func payload(_ token: String) throws -> [String: Any] {
        let part = try #require(token.split(separator: ".").dropFirst().first)
        var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        let data = try #require(Data(base64Encoded: text))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func createTokenIssuesTokensTheServerAccepts() throws {
        let box = try box
        #expect(try box.eventually(30) { (try? box.get("serviceaccount/default", "{.metadata.name}")) == "default" })
        let created = try box.kubectl(["create", "token", "default"])
        try #require(created.status.succeeded, "\(created.stderrText)")
        let token = created.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        let claims = try payload(token)
        #expect(claims["sub"] as? String == "system:serviceaccount:default:default")
        #expect(claims["aud"] as? [String] == ["https://kubernetes.default.svc.cluster.local"])
        #expect((claims["exp"] as? Int ?? 0) - (claims["iat"] as? Int ?? 0) == 3600)

        // Accepted as the ServiceAccount, which may do nothing until bound (RBAC), then what its role grants.
        let unbound = try kubectl(box, token: token, ["get", "pods"])
        #expect(unbound.stderrText.contains("User \"system:serviceaccount:default:default\" cannot list"))
        let bound = try box.kubectl([
            "create", "rolebinding", "default-view", "--clusterrole=view", "--serviceaccount=default:default",
        ])
        try #require(bound.status.succeeded, "\(bound.stderrText)")
        #expect(try kubectl(box, token: token, ["get", "pods"]).status.succeeded)
        let denied = try kubectl(box, token: token, ["delete", "pod", "nothing"])
        #expect(denied.stderrText.contains("User \"system:serviceaccount:default:default\" cannot delete"))
        #expect(try kubectl(box, token: token + "x", ["get", "pods"]).stderrText.contains("Unauthorized"))
        // Meant for another audience: not for the API server.
        let vault = try box.kubectl(["create", "token", "default", "--audience", "vault"]).stdoutText
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try kubectl(box, token: vault, ["get", "pods"]).stderrText.contains("Unauthorized"))

        let short = try box.kubectl(["create", "token", "default", "--duration", "5m"])
        #expect(short.stderrText.contains("may not specify a duration less than 10 minutes"), "\(short.stderrText)")
        let missing = try box.kubectl(["create", "token", "nosuch"])
        #expect(missing.stderrText.contains("serviceaccounts \"nosuch\" not found"), "\(missing.stderrText)")

        // The issuer's discovery documents name the key the tokens are signed with.
        let configuration = try box.kubectl(["get", "--raw", "/.well-known/openid-configuration"]).stdoutText
        #expect(configuration.contains("\"issuer\":\"https://kubernetes.default.svc.cluster.local\""))
        let keys = try box.kubectl(["get", "--raw", "/openid/v1/jwks"]).stdoutText
        let header = try #require(token.split(separator: ".").first)
        var text = String(header).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        let headerData = try #require(Data(base64Encoded: text))
        let headerObject = try JSONSerialization.jsonObject(with: headerData) as? [String: Any]
        let kid = try #require(headerObject?["kid"] as? String)
        #expect(keys.contains("\"kid\":\"\(kid)\""))
    }

    @Test func aProjectedTokenIsBoundToItsPod() throws {
        let box = try box
        #expect(try box.eventually(30) { (try? box.get("serviceaccount/default", "{.metadata.name}")) == "default" })
        let manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: token-reader}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: main
                image: \(box.image)
                command: ["sleep", "1000"]
                volumeMounts: [{name: token, mountPath: /var/run/secrets/tokens}]
              volumes:
              - name: token
                projected:
                  sources:
                  - serviceAccountToken: {path: api-token, expirationSeconds: 600}
                  - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}
            """
        let applied = try box.kubectl(["apply", "-f", "-"], input: manifest)
        try #require(applied.status.succeeded, "\(applied.stderrText)")
        try #require(
            try box.eventually { try box.get("pod/token-reader", "{.status.phase}") == "Running" },
            "\(box.diagnostics())")
        let read = try box.kubectl(["exec", "token-reader", "--", "cat", "/var/run/secrets/tokens/api-token"])
        let token = read.stdoutText
        try #require(token.split(separator: ".").count == 3, "\(read.stderrText)")
        let claims = try payload(token)
        let bound = (claims["kubernetes.io"] as? [String: Any])?["pod"] as? [String: Any]
        #expect(bound?["name"] as? String == "token-reader")
        #expect(bound?["uid"] as? String == (try box.get("pod/token-reader", "{.metadata.uid}")))
        #expect((claims["exp"] as? Int ?? 0) - (claims["iat"] as? Int ?? 0) == 600)
        #expect(try kubectl(box, token: token, ["get", "pods"]).status.succeeded)
        // The pod gone, its token is worth nothing.
        _ = try box.kubectl(["delete", "pod", "token-reader", "--grace-period=1"])
        #expect(try kubectl(box, token: token, ["get", "pods"]).stderrText.contains("Unauthorized"))
    }

    /// What an in-cluster client reads: every pod gets its ServiceAccount's token, the cluster CA and
    /// its namespace at the standard path (ServiceAccount admission and the root CA publisher).
    @Test func everyPodHasItsInClusterCredentials() throws {
        let box = try box
        #expect(
            try box.eventually(30) {
                (try? box.get("configmap/kube-root-ca.crt", "{.metadata.name}")) == "kube-root-ca.crt"
            })
        let created = try box.kubectl(
            ["run", "in-cluster", "--image", box.image, "--restart=Never", "--", "sleep", "1000"])
        try #require(created.status.succeeded, "\(created.stderrText)")
        try #require(
            try box.eventually { try box.get("pod/in-cluster", "{.status.phase}") == "Running" }, "\(box.diagnostics())"
        )
        let directory = "/var/run/secrets/kubernetes.io/serviceaccount"
        func read(_ file: String) throws -> String {
            try box.kubectl(["exec", "in-cluster", "--", "cat", "\(directory)/\(file)"]).stdoutText
        }
        #expect(try read("namespace") == "default")
        #expect(try read("ca.crt") == (try box.get("configmap/kube-root-ca.crt", "{.data.ca\\.crt}")))
        let token = try read("token")
        let claims = try payload(token)
        #expect(claims["sub"] as? String == "system:serviceaccount:default:default")
        #expect((claims["exp"] as? Int ?? 0) - (claims["iat"] as? Int ?? 0) == 3607)
        #expect(try kubectl(box, token: token, ["get", "pods"]).status.succeeded)
        _ = try box.kubectl(["delete", "pod", "in-cluster", "--grace-period=1"])
    }
}

/// When the agent renews a token: the kubelet's rule, past 80 % of its lifetime or a day old.
struct TokenRenewalTests {
    @Test func tokensAreDueAtEightyPercentOrADay() {
        let start = Date(timeIntervalSince1970: 1_000_000)
        let hour = ServiceAccountTokens.Issued(
            token: "t", issuedAt: start, expiresAt: start.addingTimeInterval(3600))
        #expect(!hour.isDue(at: start.addingTimeInterval(2879)))
        #expect(hour.isDue(at: start.addingTimeInterval(2880)))
        let year = ServiceAccountTokens.Issued(
            token: "t", issuedAt: start, expiresAt: start.addingTimeInterval(365 * 86_400))
        #expect(!year.isDue(at: start.addingTimeInterval(86_399)))
        #expect(year.isDue(at: start.addingTimeInterval(86_400)))
    }
}

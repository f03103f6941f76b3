@testable import BerthAPI
import Foundation
import Testing

/// RBAC against a real server with kubectl 1.32: users from client certificates signed by the
/// cluster CA and from service-account tokens; allowed and forbidden requests, escalation refused,
/// reviews (`kubectl auth can-i`), impersonation.
extension APITests {
    @Suite("RBAC", .serialized)
    struct RBACTests {
        /// A kubeconfig for a user of a client certificate (CN `name`, O `group`) signed by the server's CA.
        static func userKubeconfig(_ s: TestServer, name: String, group: String?) throws -> String {
            let pki = s.server.pki
            let (cert, key) = try PKI.issue(
                directory: s.dir + "/pki", base: "user-\(name)", cn: name, org: group, serverNames: nil,
                caCert: try .init(pemEncoded: pki.caPEM), caKey: try .init(pemRepresentation: pki.caKeyPEM))
            func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
            var config = pki.kubeconfig(server: s.url, token: "unset", user: name)
            config = config.replacingOccurrences(
                of: "    token: unset",
                with: "    client-certificate-data: \(b64(cert))\n    client-key-data: \(b64(key))")
            let path = s.dir + "/\(name).kubeconfig"
            try config.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        static func kubectl(_ config: String, _ args: String...) throws -> Output {
            try run("/usr/bin/kubectl", ["--kubeconfig", config] + args)
        }

        @Test func aUserMayDoWhatHerBindingsGrantAndNothingElse() async throws {
            let s = try await TestServer()
            let alice = try Self.userKubeconfig(s, name: "alice", group: "dev")

            // Nothing is granted yet but discovery, the public paths and the self reviews.
            var out = try Self.kubectl(alice, "get", "pods")
            #expect(
                out.stderr.contains(
                    "Error from server (Forbidden): pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
                ),
                "\(out.stderr)")
            out = try Self.kubectl(alice, "get", "--raw", "/version")
            #expect(out.ok && out.stdout.contains("gitVersion"), "\(out.stderr)")
            out = try Self.kubectl(alice, "get", "--raw", "/metrics")
            #expect(
                out.stderr.contains("forbidden: User \\\"alice\\\" cannot get path \\\"/metrics\\\"")
                    || out.stderr.contains("cannot get path \"/metrics\""), "\(out.stderr)")
            out = try Self.kubectl(alice, "get", "clusterrolebindings")
            #expect(
                out.stderr.contains(
                    "clusterrolebindings.rbac.authorization.k8s.io is forbidden: User \"alice\" cannot list resource \"clusterrolebindings\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
                ), "\(out.stderr)")
            #expect(try Self.kubectl(alice, "auth", "can-i", "list", "pods").stdout.hasPrefix("no"))

            // kubectl create role/rolebinding (protobuf bodies), then alice reads pods in default only.
            out = try s.kubectl("create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods,pods/log")
            #expect(out.ok, "\(out.stderr)")
            out = try s.kubectl("create", "rolebinding", "alice-reads", "--role=pod-reader", "--user=alice")
            #expect(out.ok, "\(out.stderr)")
            out = try Self.kubectl(alice, "get", "pods")
            #expect(out.ok, "\(out.stderr)")
            out = try Self.kubectl(alice, "get", "pods", "-n", "kube-system")
            #expect(out.stderr.contains("in the namespace \"kube-system\""), "\(out.stderr)")
            out = try Self.kubectl(alice, "delete", "pod", "nothing")
            #expect(
                out.stderr.contains(
                    "pods \"nothing\" is forbidden: User \"alice\" cannot delete resource \"pods\" in API group \"\" in the namespace \"default\""
                ),
                "\(out.stderr)")
            #expect(try Self.kubectl(alice, "auth", "can-i", "list", "pods").stdout.hasPrefix("yes"))
            #expect(try Self.kubectl(alice, "auth", "can-i", "create", "pods").stdout.hasPrefix("no"))
            #expect(
                try Self.kubectl(alice, "auth", "can-i", "get", "pods", "--subresource=log").stdout.hasPrefix("yes"))
            out = try Self.kubectl(alice, "auth", "can-i", "--list")
            #expect(
                out.ok && out.stdout.contains("pods/log")
                    && out.stdout.contains("selfsubjectaccessreviews.authorization.k8s.io"),
                "\(out.stdout) \(out.stderr)")
            // A group binding: dev may read deployments cluster-wide through the view ClusterRole.
            out = try s.kubectl("create", "clusterrolebinding", "devs-view", "--clusterrole=view", "--group=dev")
            #expect(out.ok, "\(out.stderr)")
            #expect(try Self.kubectl(alice, "get", "deployments", "-A").ok)
            #expect(try Self.kubectl(alice, "auth", "can-i", "list", "secrets").stdout.hasPrefix("no"))

            // How kubectl prints the kinds.
            out = try s.kubectl("get", "rolebinding")
            #expect(
                out.stdout.contains("NAME") && out.stdout.contains("ROLE") && out.stdout.contains("Role/pod-reader"),
                "\(out.stdout)")
            out = try s.kubectl("get", "rolebinding", "-o", "wide")
            #expect(
                out.stdout.contains("USERS") && out.stdout.contains("SERVICEACCOUNTS") && out.stdout.contains("alice"),
                "\(out.stdout)")
            out = try s.kubectl("get", "clusterroles")
            #expect(
                out.stdout.contains("CREATED AT") && out.stdout.contains("cluster-admin")
                    && out.stdout.contains("system:discovery"), "\(out.stdout)")

            // The roleRef of a binding stays.
            out = try s.kubectl(
                "patch", "rolebinding", "alice-reads", "--type=merge", "-p",
                "{\"roleRef\":{\"kind\":\"ClusterRole\",\"name\":\"view\"}}")
            #expect(
                out.stderr.contains(
                    "The RoleBinding \"alice-reads\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"view\"}: cannot change roleRef"
                ),
                "\(out.stderr)")
            // Validation with field paths.
            out = try s.kubectl("create", "rolebinding", "bad", "--role=pod-reader")
            #expect(out.ok, "a binding with no subjects is valid: \(out.stderr)")
            let invalid = """
                {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"bad"},
                 "rules":[{"apiGroups":[""],"resources":["pods"]},{"verbs":["get"],"nonResourceURLs":["/x"]}]}
                """
            out = try s.kubectl("create", "-f", "-", stdin: invalid)
            #expect(
                out.stderr.contains("rules[0].verbs: Required value: verbs must contain at least one value"),
                "\(out.stderr)")
            #expect(
                out.stderr.contains(
                    "rules[1].nonResourceURLs: Invalid value: []string{\"/x\"}: namespaced rules cannot apply to non-resource URLs"
                ), "\(out.stderr)")
            await s.stop()
        }

        @Test func nobodyGrantsWhatTheyDoNotHold() async throws {
            let s = try await TestServer()
            let alice = try Self.userKubeconfig(s, name: "alice", group: "dev")
            // alice manages roles and bindings in default, and reads pods there.
            var out = try s.kubectl(
                "create", "role", "rbac-manager", "--verb=get,list,create,update,patch,delete",
                "--resource=roles,rolebindings")
            #expect(out.ok, "\(out.stderr)")
            out = try s.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
            #expect(out.ok, "\(out.stderr)")
            for role in ["rbac-manager", "pod-reader"] {
                #expect(try s.kubectl("create", "rolebinding", "alice-\(role)", "--role=\(role)", "--user=alice").ok)
            }
            // A role within what she holds: made. One beyond it: refused in upstream's words.
            out = try Self.kubectl(alice, "create", "role", "mine", "--verb=get", "--resource=pods")
            #expect(out.ok, "\(out.stderr)")
            out = try Self.kubectl(alice, "create", "role", "secrets", "--verb=get,list", "--resource=secrets")
            #expect(
                out.stderr.contains(
                    "roles.rbac.authorization.k8s.io \"secrets\" is forbidden: user \"alice\" (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}"
                ),
                "\(out.stderr)")
            // Binding a role she holds all of: allowed; binding admin: refused; with bind on it: allowed.
            out = try Self.kubectl(alice, "create", "rolebinding", "bob-reads", "--role=pod-reader", "--user=bob")
            #expect(out.ok, "\(out.stderr)")
            out = try Self.kubectl(alice, "create", "rolebinding", "bob-admin", "--clusterrole=admin", "--user=bob")
            #expect(
                out.stderr.contains("rolebindings.rbac.authorization.k8s.io \"bob-admin\" is forbidden: user \"alice\"")
                    && out.stderr.contains("is attempting to grant RBAC permissions not currently held"),
                "\(out.stderr)")
            out = try s.kubectl(
                "create", "role", "admin-binder", "--verb=bind", "--resource=clusterroles", "--resource-name=admin")
            #expect(out.ok, "\(out.stderr)")
            #expect(try s.kubectl("create", "rolebinding", "alice-binds", "--role=admin-binder", "--user=alice").ok)
            out = try Self.kubectl(alice, "create", "rolebinding", "bob-admin", "--clusterrole=admin", "--user=bob")
            #expect(out.ok, "\(out.stderr)")
            // Escalate lets her write a role beyond her own rules.
            #expect(try s.kubectl("create", "role", "escalator", "--verb=escalate", "--resource=roles").ok)
            #expect(try s.kubectl("create", "rolebinding", "alice-escalates", "--role=escalator", "--user=alice").ok)
            out = try Self.kubectl(alice, "create", "role", "secrets", "--verb=get,list", "--resource=secrets")
            #expect(out.ok, "\(out.stderr)")
            // Aggregation needs full authority.
            let aggregated = """
                {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"mine"},
                 "aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"x":"y"}}]}}
                """
            #expect(try s.kubectl("create", "clusterrolebinding", "alice-cr", "--clusterrole=edit", "--user=alice").ok)
            out = try s.kubectl(
                "create", "clusterrole", "cr-writer", "--verb=create",
                "--resource=clusterroles.rbac.authorization.k8s.io")
            #expect(out.ok, "\(out.stderr)")
            #expect(
                try s.kubectl("create", "clusterrolebinding", "alice-crw", "--clusterrole=cr-writer", "--user=alice").ok
            )
            out = try run("/usr/bin/kubectl", ["--kubeconfig", alice, "create", "-f", "-"], stdin: aggregated)
            #expect(
                out.stderr.contains(
                    "clusterroles.rbac.authorization.k8s.io \"mine\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
                ),
                "\(out.stderr)")
            await s.stop()
        }

        @Test func serviceAccountsHaveNoAccessUntilBound() async throws {
            let s = try await TestServer()
            #expect(try s.kubectl("create", "serviceaccount", "robot").ok)
            let token = try s.kubectl("create", "token", "robot").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            var out = try s.kubectl("get", "pods", "--token", token)
            #expect(
                out.stderr.contains(
                    "pods is forbidden: User \"system:serviceaccount:default:robot\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
                ),
                "\(out.stderr)")
            out = try s.kubectl("auth", "can-i", "list", "secrets", "--as=system:serviceaccount:default:robot")
            #expect(out.stdout.hasPrefix("no"), "\(out.stdout) \(out.stderr)")
            out = try s.kubectl(
                "create", "rolebinding", "robot-view", "--clusterrole=view", "--serviceaccount=default:robot")
            #expect(out.ok, "\(out.stderr)")
            out = try s.kubectl("get", "pods", "--token", token)
            #expect(out.ok, "\(out.stderr)")
            out = try s.kubectl("auth", "can-i", "list", "pods", "--as=system:serviceaccount:default:robot")
            #expect(out.stdout.hasPrefix("yes"), "\(out.stdout) \(out.stderr)")
            out = try s.kubectl("auth", "can-i", "list", "secrets", "--as=system:serviceaccount:default:robot")
            #expect(out.stdout.hasPrefix("no"), "view does not read secrets: \(out.stdout)")
            out = try s.kubectl("delete", "configmap", "kube-root-ca.crt", "--token", token)
            #expect(out.stderr.contains("cannot delete resource \"configmaps\""), "\(out.stderr)")
            // The issuer documents are every service account's (system:service-account-issuer-discovery).
            out = try s.kubectl("get", "--raw", "/openid/v1/jwks", "--token", token)
            #expect(out.ok, "\(out.stderr)")
            await s.stop()
        }

        @Test func reviewsAnswerForOthersAndImpersonationIsAuthorized() async throws {
            let s = try await TestServer()
            let alice = try Self.userKubeconfig(s, name: "alice", group: "dev")
            #expect(try s.kubectl("create", "clusterrolebinding", "devs-view", "--clusterrole=view", "--group=dev").ok)
            // SubjectAccessReview (admins), LocalSubjectAccessReview: whether someone else may, and why.
            let review: JSON = [
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": [
                    "user": "bob", "groups": ["dev"],
                    "resourceAttributes": ["verb": "list", "resource": "pods", "namespace": "default"],
                ],
            ]
            var (code, body) = try s.curl(
                "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body: review.text)
            #expect(code == 201 && body["status"]["allowed"].bool == true, "\(body)")
            #expect(
                body["status"]["reason"].string
                    == "RBAC: allowed by ClusterRoleBinding \"devs-view\" of ClusterRole \"view\" to Group \"dev\"",
                "\(body)")
            var local = review
            local["kind"] = "LocalSubjectAccessReview"
            local["spec"]["resourceAttributes"]["verb"] = "delete"
            (code, body) = try s.curl(
                "POST", "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews", body: local.text)
            #expect(code == 201 && body["status"]["allowed"].bool == false, "\(body)")
            (code, body) = try s.curl(
                "POST", "/apis/authorization.k8s.io/v1/namespaces/other/localsubjectaccessreviews", body: local.text)
            #expect(
                code == 400
                    && body["message"].string == "spec.resourceAttributes.namespace must match namespace: other",
                "\(body)")
            var anonymous = review
            anonymous["spec"]["user"] = .null
            anonymous["spec"]["groups"] = .null
            (code, body) = try s.curl(
                "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body: anonymous.text)
            #expect(
                code == 422
                    && (body["message"].string ?? "").contains(
                        "spec.user: Invalid value: \"\": at least one of user or group must be specified"),
                "\(body)")
            // alice may not review others.
            var out = try run(
                "/usr/bin/kubectl", ["--kubeconfig", alice, "create", "--validate=false", "-f", "-", "-o", "json"],
                stdin: review.text)
            #expect(
                out.stderr.contains(
                    "subjectaccessreviews.authorization.k8s.io is forbidden: User \"alice\" cannot create resource \"subjectaccessreviews\""
                ), "\(out.stderr)")

            // Impersonation: the admin acts as bob of dev; alice may not.
            out = try s.kubectl("--as=bob", "--as-group=dev", "get", "pods")
            #expect(out.ok, "\(out.stderr)")
            out = try s.kubectl("--as=bob", "--as-group=dev", "delete", "configmap", "kube-root-ca.crt")
            #expect(out.stderr.contains("User \"bob\" cannot delete resource \"configmaps\""), "\(out.stderr)")
            out = try s.kubectl("--as=bob", "auth", "can-i", "list", "pods")
            #expect(out.stdout.hasPrefix("no"), "bob alone is not in dev: \(out.stdout)")
            out = try Self.kubectl(alice, "--as=bob", "get", "pods")
            #expect(
                out.stderr.contains(
                    "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
                ),
                "\(out.stderr)")
            #expect(
                try s.kubectl(
                    "create", "clusterrole", "impersonator", "--verb=impersonate", "--resource=users",
                    "--resource-name=bob"
                ).ok)
            #expect(
                try s.kubectl(
                    "create", "clusterrolebinding", "alice-impersonates", "--clusterrole=impersonator", "--user=alice"
                ).ok)
            out = try Self.kubectl(alice, "--as=bob", "auth", "whoami")
            #expect(out.ok && out.stdout.contains("bob") && !out.stdout.contains("dev"), "\(out.stdout) \(out.stderr)")
            out = try Self.kubectl(alice, "--as=bob", "--as-group=dev", "get", "pods")
            #expect(
                out.stderr.contains(
                    "groups \"dev\" is forbidden: User \"alice\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
                ),
                "\(out.stderr)")
            await s.stop()
        }

        @Test func bootstrapRolesAreReconciledAndKeptIfMarkedSo() async throws {
            let s = try await TestServer()
            var out = try s.kubectl("get", "clusterrole", "system:discovery", "-o", "json")
            let discovery = try JSON.parse(Array(out.stdout.utf8))
            #expect(discovery["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults")
            #expect(discovery["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] == "true")
            out = try s.kubectl(
                "get", "clusterrolebinding", "system:public-info-viewer", "-o", "jsonpath={.subjects[*].name}")
            #expect(out.stdout == "system:authenticated system:unauthenticated", "\(out.stdout)")
            // A rule taken away comes back at the next reconcile; a role marked autoupdate=false stays.
            out = try s.kubectl(
                "patch", "clusterrole", "system:basic-user", "--type=json", "-p",
                "[{\"op\":\"remove\",\"path\":\"/rules/1\"}]")
            #expect(out.ok, "\(out.stderr)")
            out = try s.kubectl(
                "patch", "clusterrole", "system:monitoring", "--type=json", "-p",
                "[{\"op\":\"remove\",\"path\":\"/rules/0\"},{\"op\":\"replace\",\"path\":\"/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate\",\"value\":\"false\"}]"
            )
            #expect(out.ok, "\(out.stderr)")
            try await Handler(server: s.server).reconcileBootstrapPolicy()
            out = try s.kubectl("get", "clusterrole", "system:basic-user", "-o", "jsonpath={.rules[*].resources}")
            #expect(out.stdout.contains("selfsubjectreviews"), "\(out.stdout)")
            out = try s.kubectl("get", "clusterrole", "system:monitoring", "-o", "jsonpath={.rules}")
            #expect(!out.stdout.contains("/metrics"), "\(out.stdout)")
            // kube-system's and kube-public's Roles and RoleBindings: the schedulers' leader locks and the
            // authentication reader, as upstream's namespace policy makes them.
            out = try s.kubectl("get", "rolebindings", "-n", "kube-system", "-o", "name")
            expectMentions(
                out.stdout,
                [
                    "rolebinding.rbac.authorization.k8s.io/system::leader-locking-kube-scheduler",
                    "rolebinding.rbac.authorization.k8s.io/system::extension-apiserver-authentication-reader",
                ])
            out = try s.kubectl(
                "auth", "can-i", "update", "configmaps/kube-scheduler", "-n", "kube-system",
                "--as=system:kube-scheduler")
            #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "yes", "\(out.stdout) \(out.stderr)")
            out = try s.kubectl(
                "auth", "can-i", "update", "configmaps/other", "-n", "kube-system", "--as=system:kube-scheduler")
            #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "no", "\(out.stdout)")
            out = try s.kubectl("get", "role", "system:controller:bootstrap-signer", "-n", "kube-public", "-o", "name")
            #expect(out.ok, "\(out.stderr)")
            await s.stop()
        }

        @Test(.enabled(if: pythonHasKubernetes(), "needs the kubernetes Python client"))
        func thePythonClientGrantsReviewsAndIsRefused() async throws {
            let s = try await TestServer()
            let alice = try Self.userKubeconfig(s, name: "alice", group: nil)
            let out = try run("python3", [scriptsDir + "/rbac.py", s.kubeconfig, alice], timeout: 120)
            #expect(out.ok && out.stdout.contains("OK"), "\(out.stdout) \(out.stderr)")
            await s.stop()
        }

        @Test func impersonationHeadersAreReadAndAuthorizedAsUpstream() async throws {
            let s = try await TestServer()
            _ = try Self.userKubeconfig(s, name: "alice", group: nil)
            let whoami = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
            let review = #"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#
            // A group without a user is refused before anything is authorized.
            var (code, body) = try s.curl("POST", whoami, body: review, extra: ["-H", "Impersonate-Group: dev"])
            #expect(
                code == 500
                    && body["message"].string
                        == "Internal error occurred: requested [{Group  dev    }] without impersonating a user",
                "\(body)")
            // A service account impersonated without groups gets its fixed ones.
            (code, body) = try s.curl(
                "POST", whoami, body: review, extra: ["-H", "Impersonate-User: system:serviceaccount:default:robot"])
            let groups = (body["status"]["userInfo"]["groups"].array ?? []).compactMap(\.string)
            #expect(
                code == 201 && body["status"]["userInfo"]["username"] == "system:serviceaccount:default:robot"
                    && groups == ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"],
                "\(body)")
            // Each extra value is its own check, on userextras/<key>.
            let alice = [
                "--cert", s.dir + "/pki/user-alice.crt", "--key", s.dir + "/pki/user-alice.key",
            ]
            #expect(
                try s.kubectl(
                    "create", "clusterrole", "as-bob", "--verb=impersonate", "--resource=users", "--resource-name=bob"
                )
                .ok)
            #expect(
                try s.kubectl("create", "clusterrolebinding", "alice-as-bob", "--clusterrole=as-bob", "--user=alice").ok
            )
            (code, body) = try s.curl(
                "POST", whoami, body: review, token: "",
                extra: alice + ["-H", "Impersonate-User: bob", "-H", "Impersonate-Extra-Scopes: view"])
            #expect(
                code == 403
                    && body["message"].string
                        == "userextras.authentication.k8s.io \"view\" is forbidden: User \"alice\" cannot impersonate resource \"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope",
                "\(body)")
            (code, body) = try s.curl(
                "POST", whoami, body: review, token: "", extra: alice + ["-H", "Impersonate-User: bob"])
            #expect(code == 201 && body["status"]["userInfo"]["username"] == "bob", "\(body)")
            (code, body) = try s.curl(
                "POST", whoami, body: review, token: "", extra: alice + ["-H", "Impersonate-User: carol"])
            #expect(
                code == 403
                    && body["message"].string
                        == "users \"carol\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
                "\(body)")
            await s.stop()
        }
    }
}

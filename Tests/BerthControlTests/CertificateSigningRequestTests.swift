@testable import BerthAPI
@testable import BerthControl
import BerthKube
import Foundation
import Testing

/// certificates.k8s.io/v1 CertificateSigningRequests end to end (issue 16): keys and requests made by
/// `openssl req`, the API driven by kubectl 1.32, certificates issued by the csrsigning controller and
/// checked by `openssl verify`, kubelet client requests approved by csrapproving, and the certificates
/// used to log in.
extension ControlTests {
    @Suite("certificate signing requests", .serialized)
    struct CertificateSigningRequestTests {
        static let csrType = Registry.certificateSigningRequests

        /// A scratch directory with a private key and its PEM request for `subject` (`/O=x/CN=y`).
        struct KeyAndRequest {
            var key: String
            var request: String
        }

        static func makeRequest(_ dir: String, _ name: String, subject: String, ec: Bool = true) throws
            -> KeyAndRequest
        {
            let key = "\(dir)/\(name).key", csr = "\(dir)/\(name).csr"
            let algorithm =
                ec ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] : ["-newkey", "rsa:2048"]
            let made = try run(
                "/usr/bin/openssl",
                ["req", "-new"] + algorithm + ["-nodes", "-keyout", key, "-subj", subject, "-out", csr])
            #expect(made.ok, "\(made.stderr)")
            return KeyAndRequest(key: key, request: try String(contentsOfFile: csr, encoding: .utf8))
        }

        static func manifest(
            _ name: String, _ request: String, signer: String, usages: [String], expirationSeconds: Int? = nil,
            extraSpec: String = ""
        ) -> String {
            let encoded = Data(request.utf8).base64EncodedString()
            var spec =
                #""request":"\#(encoded)","signerName":"\#(signer)","usages":[\#(usages.map { "\"\($0)\"" }.joined(separator: ","))]"#
            if let expirationSeconds { spec += #","expirationSeconds":\#(expirationSeconds)"# }
            spec += extraSpec
            return
                #"{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"\#(name)"},"spec":{\#(spec)}}"#
        }

        /// A kubeconfig for a client certificate (CN `name`, O `group`) signed by the cluster CA directly.
        static func userKubeconfig(_ c: Cluster, name: String, group: String?) throws -> String {
            let pki = c.server.pki
            let (cert, key) = try PKI.issue(
                directory: c.dir + "/pki", base: "user-\(name)", cn: name, org: group, serverNames: nil,
                caCert: try .init(pemEncoded: pki.caPEM), caKey: try .init(pemRepresentation: pki.caKeyPEM))
            return try kubeconfig(c, name: name, certificate: cert, keyPEM: key)
        }

        static func kubeconfig(_ c: Cluster, name: String, certificate: String, keyPEM: String) throws -> String {
            func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
            var config = c.server.pki.kubeconfig(server: c.server.url, token: "unset", user: name)
            config = config.replacingOccurrences(
                of: "    token: unset",
                with: "    client-certificate-data: \(b64(certificate))\n    client-key-data: \(b64(keyPEM))")
            let path = c.dir + "/\(name).kubeconfig"
            try config.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        static func kubectl(_ config: String, _ args: String..., stdin: String? = nil) async throws -> Output {
            let all = ["--kubeconfig", config] + args
            return try await onThread { try run("/usr/bin/kubectl", all, stdin: stdin) }
        }

        /// Expects every phrase in `text`, each failure naming the phrase.
        static func expectMentions(
            _ text: String, _ phrases: [String], sourceLocation: SourceLocation = #_sourceLocation
        ) {
            for phrase in phrases {
                #expect(text.contains(phrase), "\(phrase) in \(text)", sourceLocation: sourceLocation)
            }
        }

        static func issued(_ items: [JSON], _ name: String) -> String? {
            guard let encoded = named(items, name)?["status"]["certificate"].string, !encoded.isEmpty,
                let data = Data(base64Encoded: encoded)
            else { return nil }
            return String(decoding: data, as: UTF8.self)
        }

        static func certificate(_ c: Cluster, _ name: String) async throws -> String {
            let csr = try #require(try await c.client.get(csrType, namespace: nil, name: name))
            return try #require(issued([csr], name))
        }

        @Test func aRequestIsApprovedIssuedVerifiedAndLogsIn() async throws {
            try await withControlCluster { c in
                let admin = c.kubeconfig
                // An RSA key (openssl's default) for a user of group dev, valid one day.
                let alice = try Self.makeRequest(c.dir, "alice", subject: "/O=dev/CN=alice", ec: false)
                // The requester comes from the request, never the body.
                let body = Self.manifest(
                    "alice", alice.request, signer: "kubernetes.io/kube-apiserver-client", usages: ["client auth"],
                    expirationSeconds: 86400, extraSpec: #","username":"mallory","groups":["system:masters"]"#)
                var out = try await Self.kubectl(admin, "create", "-f", "-", stdin: body)
                #expect(out.ok, "\(out.stderr)")
                out = try await Self.kubectl(admin, "get", "csr", "alice", "-o", "jsonpath={.spec.username}")
                #expect(out.stdout == "admin", "\(out.stdout) \(out.stderr)")

                out = try await Self.kubectl(admin, "get", "csr")
                #expect(out.ok, "\(out.stderr)")
                let header = out.stdout.split(separator: "\n").first.map(String.init) ?? ""
                #expect(
                    header.split(separator: " ", omittingEmptySubsequences: true)
                        == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"], "\(header)")
                let row = out.stdout.split(separator: "\n").first { $0.hasPrefix("alice ") }.map(String.init) ?? ""
                Self.expectMentions(row, ["kubernetes.io/kube-apiserver-client", "admin", "24h", "Pending"])

                out = try await Self.kubectl(admin, "certificate", "approve", "alice")
                #expect(out.ok, "\(out.stderr)")
                try await c.waitFor(Self.csrType, "alice's certificate") { Self.issued($0, "alice") != nil }
                out = try await Self.kubectl(admin, "get", "csr", "alice", "--no-headers")
                #expect(out.stdout.contains("Approved,Issued"), "\(out.stdout)")
                out = try await Self.kubectl(
                    admin, "get", "csr", "alice", "-o", "jsonpath={.status.conditions[0].reason}")
                #expect(out.stdout == "KubectlApprove", "\(out.stdout)")

                // openssl accepts it under the cluster CA, for alice of dev, for client auth only, a day long.
                let certificate = try await Self.certificate(c, "alice")
                let certPath = c.dir + "/alice.crt"
                try certificate.write(toFile: certPath, atomically: true, encoding: .utf8)
                out = try run("/usr/bin/openssl", ["verify", "-CAfile", c.dir + "/pki/ca.crt", certPath])
                #expect(out.stdout.contains("alice.crt: OK"), "\(out.stdout) \(out.stderr)")
                out = try run(
                    "/usr/bin/openssl",
                    [
                        "x509", "-in", certPath, "-noout", "-subject", "-ext",
                        "keyUsage,extendedKeyUsage,basicConstraints",
                    ])
                Self.expectMentions(out.stdout, ["O = dev", "CN = alice", "TLS Web Client Authentication", "CA:FALSE"])
                #expect(!out.stdout.contains("Server Authentication"), "\(out.stdout)")
                // Valid for the day asked for, less the five minutes it is backdated by.
                #expect(try run("/usr/bin/openssl", ["x509", "-in", certPath, "-noout", "-checkend", "85800"]).ok)
                #expect(!(try run("/usr/bin/openssl", ["x509", "-in", certPath, "-noout", "-checkend", "86400"]).ok))

                // The certificate logs alice in.
                let aliceConfig = try Self.kubeconfig(
                    c, name: "alice", certificate: certificate,
                    keyPEM: try String(contentsOfFile: alice.key, encoding: .utf8))
                out = try await Self.kubectl(aliceConfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo}")
                Self.expectMentions(out.stdout + out.stderr, ["\"username\":\"alice\"", "\"dev\""])

                // Another is denied: never issued, and approving it too is refused.
                let bob = try Self.makeRequest(c.dir, "bob", subject: "/CN=bob")
                #expect(
                    try await Self.kubectl(
                        admin, "create", "-f", "-",
                        stdin: Self.manifest(
                            "bob", bob.request, signer: "kubernetes.io/kube-apiserver-client",
                            usages: ["digital signature", "client auth"])
                    ).ok)
                out = try await Self.kubectl(admin, "certificate", "deny", "bob")
                #expect(out.ok, "\(out.stderr)")
                out = try await Self.kubectl(admin, "get", "csr", "bob", "--no-headers")
                #expect(out.stdout.contains("Denied") && !out.stdout.contains("Issued"), "\(out.stdout)")
                // Approving it too is refused: by kubectl, and by the server for clients that try anyway.
                out = try await Self.kubectl(admin, "certificate", "approve", "bob")
                #expect(out.stderr.contains("certificate signing request \"bob\" is already Denied"), "\(out.stderr)")
                do {
                    let denied = try #require(try await c.client.get(Self.csrType, namespace: nil, name: "bob"))
                    let approved: JSON = ["type": "Approved", "status": "True", "reason": "Mine"]
                    let conditions = (denied["status"]["conditions"].array ?? []) + [approved]
                    try await c.client.mergePatch(
                        Self.csrType, namespace: nil, name: "bob", ["status": ["conditions": .array(conditions)]],
                        subresource: "approval")
                    Issue.record("approving a denied request was accepted")
                } catch let error as APIError {
                    #expect(
                        error.message.contains(
                            "status.conditions[1].type: Invalid value: \"Approved\": Approved and Denied conditions are mutually exclusive"
                        ), "\(error.message)")
                }
                // Conditions once set stay: a deny cannot be taken back (kubectl has no verb for it).
                do {
                    try await c.client.mergePatch(
                        Self.csrType, namespace: nil, name: "bob", ["status": ["conditions": []]],
                        subresource: "approval")
                    Issue.record("removing the Denied condition was accepted")
                } catch let error as APIError {
                    #expect(
                        error.message.contains("updates may not remove a condition of type \"Denied\""),
                        "\(error.message)")
                }
            }
        }

        @Test func approvingAndSigningNeedTheSignersVerbs() async throws {
            try await withControlCluster { c in
                let admin = c.kubeconfig
                let carol = try Self.userKubeconfig(c, name: "carol", group: "reviewers")
                // carol may read requests and write their approval and status, but holds no signer verb.
                var out = try await Self.kubectl(
                    admin, "create", "clusterrole", "csr-editor", "--verb=get,list,watch,update,patch",
                    "--resource=certificatesigningrequests,certificatesigningrequests/approval,certificatesigningrequests/status"
                )
                #expect(out.ok, "\(out.stderr)")
                out = try await Self.kubectl(
                    admin, "create", "clusterrolebinding", "carol-edits", "--clusterrole=csr-editor", "--user=carol")
                #expect(out.ok, "\(out.stderr)")
                let dave = try Self.makeRequest(c.dir, "dave", subject: "/CN=dave")
                #expect(
                    try await Self.kubectl(
                        admin, "create", "-f", "-",
                        stdin: Self.manifest(
                            "dave", dave.request, signer: "kubernetes.io/kube-apiserver-client", usages: ["client auth"]
                        )
                    ).ok)

                out = try await Self.kubectl(carol, "certificate", "approve", "dave")
                #expect(
                    out.stderr.contains(
                        "certificatesigningrequests.certificates.k8s.io \"dave\" is forbidden: user not permitted to approve requests with signerName \"kubernetes.io/kube-apiserver-client\""
                    ), "\(out.stderr)")
                out = try await Self.kubectl(admin, "get", "csr", "dave", "--no-headers")
                #expect(out.stdout.contains("Pending"), "\(out.stdout)")

                // Writing a certificate needs `sign`.
                let fake = Data(try String(contentsOfFile: c.dir + "/pki/ca.crt", encoding: .utf8).utf8)
                    .base64EncodedString()
                out = try await Self.kubectl(
                    carol, "patch", "csr", "dave", "--subresource=status", "--type=merge", "-p",
                    #"{"status":{"certificate":"\#(fake)"}}"#)
                #expect(
                    out.stderr.contains(
                        "user not permitted to sign requests with signerName \"kubernetes.io/kube-apiserver-client\""),
                    "\(out.stderr)")

                // The bootstrap approver role for the signer is enough.
                out = try await Self.kubectl(
                    admin, "create", "clusterrolebinding", "carol-approves",
                    "--clusterrole=system:certificates.k8s.io:kube-apiserver-client-approver", "--user=carol")
                #expect(out.ok, "\(out.stderr)")
                out = try await Self.kubectl(carol, "certificate", "approve", "dave")
                #expect(out.ok, "\(out.stderr)")
                try await c.waitFor(Self.csrType, "dave's certificate") { Self.issued($0, "dave") != nil }

                // `approve` on `<domain>/*` covers every signer of the domain; no controller signs for it.
                // (kubectl create clusterrole knows only served resources; signers are not one.)
                out = try await Self.kubectl(
                    admin, "apply", "-f", "-",
                    stdin:
                        #"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"example-approver"},"rules":[{"apiGroups":["certificates.k8s.io"],"resources":["signers"],"verbs":["approve"],"resourceNames":["example.com/*"]}]}"#
                )
                #expect(out.ok, "\(out.stderr)")
                #expect(
                    try await Self.kubectl(
                        admin, "create", "clusterrolebinding", "carol-example", "--clusterrole=example-approver",
                        "--user=carol"
                    ).ok)
                let erin = try Self.makeRequest(c.dir, "erin", subject: "/CN=erin")
                #expect(
                    try await Self.kubectl(
                        admin, "create", "-f", "-",
                        stdin: Self.manifest(
                            "erin", erin.request, signer: "example.com/widgets", usages: ["server auth"])
                    ).ok)
                out = try await Self.kubectl(carol, "certificate", "approve", "erin")
                #expect(out.ok, "\(out.stderr)")
                out = try await Self.kubectl(admin, "get", "csr", "erin", "--no-headers")
                #expect(out.stdout.contains("example.com/widgets") && out.stdout.contains("Approved"), "\(out.stdout)")
            }
        }

        @Test func kubeletClientRequestsAreApprovedAutomatically() async throws {
            try await withControlCluster { c in
                let admin = c.kubeconfig
                // A bootstrap identity that may create requests and have node client ones approved.
                let bootstrap = try Self.userKubeconfig(c, name: "bootstrap", group: "system:bootstrappers")
                let stranger = try Self.userKubeconfig(c, name: "stranger", group: "strangers")
                for (binding, role, subject) in [
                    ("bootstrappers-create", "system:node-bootstrapper", "--group=system:bootstrappers"),
                    ("strangers-create", "system:node-bootstrapper", "--group=strangers"),
                    (
                        "bootstrappers-approved", "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                        "--group=system:bootstrappers"
                    ),
                ] {
                    let out = try await Self.kubectl(
                        admin, "create", "clusterrolebinding", binding, "--clusterrole=\(role)", subject)
                    #expect(out.ok, "\(out.stderr)")
                }
                let usages = ["digital signature", "key encipherment", "client auth"]
                let signer = "kubernetes.io/kube-apiserver-client-kubelet"
                // Made first, by someone whom no review allows: it stays pending.
                let other = try Self.makeRequest(c.dir, "node-other", subject: "/O=system:nodes/CN=system:node:other")
                var out = try await Self.kubectl(
                    stranger, "create", "-f", "-",
                    stdin: Self.manifest("node-other", other.request, signer: signer, usages: usages))
                #expect(out.ok, "\(out.stderr)")

                let worker = try Self.makeRequest(c.dir, "worker1", subject: "/O=system:nodes/CN=system:node:worker1")
                out = try await Self.kubectl(
                    bootstrap, "create", "-f", "-",
                    stdin: Self.manifest("node-worker1", worker.request, signer: signer, usages: usages))
                #expect(out.ok, "\(out.stderr)")
                try await c.waitFor(Self.csrType, "worker1 approved and issued") {
                    Self.issued($0, "node-worker1") != nil
                }
                let csr = try #require(try await c.client.get(Self.csrType, namespace: nil, name: "node-worker1"))
                let approval = csr["status"]["conditions"][0]
                #expect(approval["type"] == "Approved" && approval["reason"] == "AutoApproved", "\(approval)")
                #expect(approval["message"] == "Auto approving kubelet client certificate after SubjectAccessReview.")
                #expect(!(approval["lastUpdateTime"].string ?? "").isEmpty)

                let certPath = c.dir + "/worker1.crt"
                try await Self.certificate(c, "node-worker1").write(
                    toFile: certPath, atomically: true, encoding: .utf8)
                out = try run("/usr/bin/openssl", ["verify", "-CAfile", c.dir + "/pki/ca.crt", certPath])
                #expect(out.stdout.contains("OK"), "\(out.stdout) \(out.stderr)")
                out = try run("/usr/bin/openssl", ["x509", "-in", certPath, "-noout", "-subject", "-enddate"])
                Self.expectMentions(out.stdout, ["O = system:nodes", "CN = system:node:worker1"])
                // No expirationSeconds: the signing duration, a year.
                #expect(try run("/usr/bin/openssl", ["x509", "-in", certPath, "-noout", "-checkend", "31000000"]).ok)

                out = try await Self.kubectl(admin, "get", "csr", "node-other", "--no-headers")
                #expect(out.stdout.contains("Pending"), "\(out.stdout)")

                // A node renewing its own certificate needs only selfnodeclient (kubeadm binds it to system:nodes).
                let node = try Self.userKubeconfig(c, name: "system:node:worker2", group: "system:nodes")
                for (binding, role) in [
                    ("nodes-create", "system:node-bootstrapper"),
                    ("nodes-renew", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"),
                ] {
                    out = try await Self.kubectl(
                        admin, "create", "clusterrolebinding", binding, "--clusterrole=\(role)", "--group=system:nodes")
                    #expect(out.ok, "\(out.stderr)")
                }
                let renewal = try Self.makeRequest(c.dir, "worker2", subject: "/O=system:nodes/CN=system:node:worker2")
                out = try await Self.kubectl(
                    node, "create", "-f", "-",
                    stdin: Self.manifest("node-worker2", renewal.request, signer: signer, usages: usages))
                #expect(out.ok, "\(out.stderr)")
                try await c.waitFor(Self.csrType, "worker2 renewed") { Self.issued($0, "node-worker2") != nil }
                let renewed = try #require(try await c.client.get(Self.csrType, namespace: nil, name: "node-worker2"))
                #expect(
                    renewed["status"]["conditions"][0]["message"]
                        == "Auto approving self kubelet client certificate after SubjectAccessReview.")
            }
        }

        @Test func badRequestsGetUpstreamsErrors() async throws {
            try await withControlCluster { c in
                let admin = c.kubeconfig
                let good = try Self.makeRequest(c.dir, "good", subject: "/CN=good")
                func create(_ body: String) async throws -> Output {
                    try await Self.kubectl(admin, "create", "-f", "-", stdin: body)
                }
                var out = try await create(
                    Self.manifest(
                        "junk", "not a request", signer: "kubernetes.io/kube-apiserver-client", usages: ["client auth"])
                )
                Self.expectMentions(
                    out.stderr,
                    [
                        "The CertificateSigningRequest \"junk\" is invalid",
                        "spec.request: Invalid value: []byte{0x6e, 0x6f, 0x74,",
                        "PEM block type must be CERTIFICATE REQUEST",
                    ])
                out = try await create(
                    Self.manifest(
                        "odd", good.request, signer: "nodomain", usages: ["client auth", "client auth", "flying"],
                        expirationSeconds: 300))
                Self.expectMentions(
                    out.stderr,
                    [
                        "spec.usages[2]: Unsupported value: \"flying\": supported values: \"any\", \"cert sign\"",
                        "spec.usages[1]: Duplicate value: \"client auth\"",
                        "spec.signerName: Invalid value: \"nodomain\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
                        "spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 600 seconds (10 minutes)",
                    ])
                out = try await create(
                    Self.manifest(
                        "legacy", good.request, signer: "kubernetes.io/legacy-unknown", usages: ["client auth"]))
                #expect(
                    out.stderr.contains(
                        "spec.signerName: Invalid value: \"kubernetes.io/legacy-unknown\": the legacy signerName is not allowed via this API version"
                    ), "\(out.stderr)")
                out = try await create(Self.manifest("nousage", good.request, signer: "example.com/x", usages: []))
                #expect(out.stderr.contains("spec.usages: Required value"), "\(out.stderr)")
                out = try await create(
                    Self.manifest("badsigner", good.request, signer: "Example.com/x", usages: ["client auth"]))
                #expect(
                    out.stderr.contains(
                        "spec.signerName: Invalid value: \"Example.com\": validating label \"Example\""),
                    "\(out.stderr)")

                // Nobody asks the client signer for a system:masters certificate.
                let root = try Self.makeRequest(c.dir, "root", subject: "/O=system:masters/CN=root")
                out = try await create(
                    Self.manifest(
                        "root", root.request, signer: "kubernetes.io/kube-apiserver-client", usages: ["client auth"]))
                #expect(
                    out.stderr.contains(
                        "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"),
                    "\(out.stderr)")

                // The spec is fixed once made: an edit of it is dropped, as upstream drops it.
                #expect(
                    try await create(
                        Self.manifest("fixed", good.request, signer: "example.com/x", usages: ["client auth"])
                    ).ok)
                out = try await Self.kubectl(
                    admin, "patch", "csr", "fixed", "--type=merge", "-p",
                    #"{"metadata":{"labels":{"team":"a"}},"spec":{"signerName":"example.com/y"}}"#)
                #expect(out.ok, "\(out.stderr)")
                out = try await Self.kubectl(
                    admin, "get", "csr", "fixed", "-o", "jsonpath={.spec.signerName}/{.metadata.labels.team}")
                #expect(out.stdout == "example.com/x/a", "\(out.stdout)")
                // Approval goes only through /approval.
                out = try await Self.kubectl(
                    admin, "patch", "csr", "fixed", "--subresource=status", "--type=merge", "-p",
                    #"{"status":{"conditions":[{"type":"Approved","status":"True"}]}}"#)
                #expect(
                    out.stderr.contains(
                        "status.conditions: Forbidden: updates may not add a condition of type \"Approved\""),
                    "\(out.stderr)")

                // A request its signer's rules refuse fails once approved, and is never issued.
                #expect(
                    try await create(
                        Self.manifest(
                            "notanode", good.request, signer: "kubernetes.io/kube-apiserver-client-kubelet",
                            usages: ["digital signature", "client auth"])
                    ).ok)
                #expect(try await Self.kubectl(admin, "certificate", "approve", "notanode").ok)
                try await c.waitFor(Self.csrType, "notanode failed") { items in
                    (named(items, "notanode")?["status"]["conditions"].array ?? []).contains { $0["type"] == "Failed" }
                }
                let failed = try #require(try await c.client.get(Self.csrType, namespace: nil, name: "notanode"))
                let condition = (failed["status"]["conditions"].array ?? []).first { $0["type"] == "Failed" }
                #expect(condition?["reason"] == "SignerValidationFailure")
                #expect(condition?["message"] == "subject organization is not system:nodes")
                #expect(failed["status"]["certificate"].isNull)
                out = try await Self.kubectl(admin, "get", "csr", "notanode", "--no-headers")
                #expect(out.stdout.contains("Approved,Failed"), "\(out.stdout)")
            }
        }

        @Test func theKindIsDiscoveredExplainedAppliedSelectedAndWatched() async throws {
            try await withControlCluster { c in
                let admin = c.kubeconfig
                var out = try await Self.kubectl(admin, "api-resources", "--api-group=certificates.k8s.io")
                #expect(
                    out.stdout.contains("certificatesigningrequests") && out.stdout.contains(" csr "), "\(out.stdout)")
                out = try await Self.kubectl(admin, "get", "--raw", "/apis/certificates.k8s.io/v1")
                #expect(
                    out.stdout.contains("certificatesigningrequests/approval")
                        && out.stdout.contains("certificatesigningrequests/status"), "\(out.stdout)")
                out = try await Self.kubectl(admin, "explain", "csr.spec.expirationSeconds")
                #expect(out.ok && out.stdout.contains("expirationSeconds"), "\(out.stdout) \(out.stderr)")

                // Server-side apply (kubectl's strict field validation included), then a field selector.
                let web = try Self.makeRequest(c.dir, "web", subject: "/CN=web.example.com")
                out = try await Self.kubectl(
                    admin, "apply", "--server-side", "-f", "-",
                    stdin: Self.manifest("web", web.request, signer: "example.com/serving", usages: ["server auth"]))
                #expect(out.ok, "\(out.stderr)")
                let api = try Self.makeRequest(c.dir, "api", subject: "/CN=api")
                out = try await Self.kubectl(
                    admin, "create", "-f", "-",
                    stdin: Self.manifest("api", api.request, signer: "example.com/clients", usages: ["client auth"]))
                #expect(out.ok, "\(out.stderr)")
                out = try await Self.kubectl(
                    admin, "get", "csr", "--field-selector=spec.signerName=example.com/serving", "-o", "name")
                #expect(out.stdout == "certificatesigningrequest.certificates.k8s.io/web\n", "\(out.stdout)")

                // A watch sees both, then ends when its time is up.
                out = try await Self.kubectl(
                    admin, "get", "--raw",
                    "/apis/certificates.k8s.io/v1/certificatesigningrequests?watch=1&timeoutSeconds=1")
                #expect(
                    out.stdout.contains(#""type":"ADDED""#) && out.stdout.contains(#""name":"web""#)
                        && out.stdout.contains(#""name":"api""#), "\(out.stdout)")
            }
        }

        /// Garbage in spec.request never traps: every variant is refused with a reason.
        @Test func garbageRequestsAreRefusedNotCrashedOn() throws {
            let dir = NSTemporaryDirectory() + "berth-csr-fuzz-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let real = try Self.makeRequest(dir, "real", subject: "/O=system:nodes/CN=system:node:n1")
            let parsed = try CertificateRequest(pem: Array(real.request.utf8))
            #expect(parsed.commonName == "system:node:n1" && parsed.organizations == ["system:nodes"])
            let der = try #require(PEMBlock.first(in: Array(real.request.utf8))).der
            func pem(_ bytes: [UInt8]) -> [UInt8] {
                Array(
                    "-----BEGIN CERTIFICATE REQUEST-----\n\(Data(bytes).base64EncodedString())\n-----END CERTIFICATE REQUEST-----\n"
                        .utf8)
            }
            var generator = SystemRandomNumberGenerator()
            var refused = 0
            for round in 0..<3000 {
                var bytes = der
                switch round % 4 {
                case 0: bytes = (0..<Int.random(in: 0..<600, using: &generator)).map { _ in UInt8.random(in: 0...255) }
                case 1: bytes = Array(der.prefix(Int.random(in: 0..<der.count, using: &generator)))
                case 2:
                    for _ in 0..<Int.random(in: 1...8, using: &generator) {
                        bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= UInt8.random(in: 1...255)
                    }
                default:
                    bytes.insert(contentsOf: der.prefix(40), at: Int.random(in: 0..<bytes.count, using: &generator))
                }
                do { _ = try CertificateRequest(pem: pem(bytes)) } catch { refused += 1 }
                // The raw bytes as the whole field, too (no PEM at all).
                #expect(throws: CertificateRequestError.self) { try CertificateRequest(pem: bytes) }
            }
            #expect(refused > 2900, "\(refused) of 3000 mangled requests refused")
            // The strategy's validation of the same garbage names the field and does not trap.
            let strategy = CertificateSigningRequestStrategy()
            let object: JSON = [
                "metadata": ["name": "x"],
                "spec": [
                    "request": .string(Data((0..<200).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()),
                    "signerName": "a/b/c", "usages": [1, "client auth"],
                ],
                "status": ["conditions": [["type": "Approved", "status": "False"], ["type": "Denied"]]],
            ]
            let fields = Set(strategy.validate(object).map(\.field))
            #expect(
                fields.isSuperset(of: [
                    "spec.request", "spec.signerName", "spec.usages[0]", "status.conditions[0].status",
                    "status.conditions[1].status", "status.conditions[1].type",
                ]), "\(fields)")
        }

        /// kubelet-serving's rules, and what the CA puts in a serving certificate: the requested SANs, the
        /// usages named, a short lifetime not shortened by the backdate.
        @Test func servingCertificatesKeepTheirNamesAndShortLifetimes() throws {
            let dir = NSTemporaryDirectory() + "berth-csr-serving-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let pki = try PKI.loadOrCreate(dataDir: dir, sans: [])
            let key = "\(dir)/n1.key", csrPath = "\(dir)/n1.csr"
            let made = try run(
                "/usr/bin/openssl",
                [
                    "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    key,
                    "-subj", "/O=system:nodes/CN=system:node:n1", "-addext", "subjectAltName=DNS:n1.local,IP:10.0.0.7",
                    "-out", csrPath,
                ])
            #expect(made.ok, "\(made.stderr)")
            let request = try CertificateRequest(pem: Array(try String(contentsOfFile: csrPath, encoding: .utf8).utf8))
            #expect(request.dnsNames == ["n1.local"] && request.ipAddresses == [[10, 0, 0, 7]])
            let usages = ["digital signature", "key encipherment", "server auth"]
            #expect(KubeletCertificateProfile.servingProblem(request, usages: usages) == nil)
            #expect(
                KubeletCertificateProfile.servingProblem(request, usages: ["server auth"])
                    == "usages did not match [digital signature key encipherment server auth]")
            #expect(
                KubeletCertificateProfile.clientProblem(request, usages: ["digital signature", "client auth"])
                    == "DNS subjectAltNames are not allowed")
            #expect(
                KubeletCertificateProfile.apiServerClientProblem(usages: ["server auth"])
                    == "invalid usage for client certificate: server auth")

            let issued = try pki.certificateAuthority().issue(request, usages: usages, ttl: 3600)
            let certPath = "\(dir)/n1.crt"
            try issued.write(toFile: certPath, atomically: true, encoding: .utf8)
            var out = try run("/usr/bin/openssl", ["verify", "-CAfile", "\(dir)/pki/ca.crt", certPath])
            #expect(out.stdout.contains("OK"), "\(out.stdout) \(out.stderr)")
            out = try run("/usr/bin/openssl", ["x509", "-in", certPath, "-noout", "-text"])
            Self.expectMentions(
                out.stdout,
                [
                    "DNS:n1.local, IP Address:10.0.0.7", "TLS Web Server Authentication",
                    "Digital Signature, Key Encipherment", "CA:FALSE",
                ])
            // An hour asked, an hour given from now (short-lived: the backdate only moves notBefore).
            #expect(try run("/usr/bin/openssl", ["x509", "-in", certPath, "-noout", "-checkend", "3500"]).ok)
            #expect(!(try run("/usr/bin/openssl", ["x509", "-in", certPath, "-noout", "-checkend", "3700"]).ok))
            #expect(throws: CertificateAuthority.SigningError.unrecognizedUsages(["flying"])) {
                try pki.certificateAuthority().issue(request, usages: ["flying"], ttl: 3600)
            }
        }

        @Test func theCleanerRemovesRequestsPastTheirDeadlines() throws {
            typealias CSR = CertificatesV1.CertificateSigningRequest
            let now = Date()
            func ago(_ seconds: TimeInterval) -> MetaV1.Time {
                MetaV1.Time(secondsSince1970: Int64(now.timeIntervalSince1970 - seconds))
            }
            func request(
                created: TimeInterval, _ conditions: [(CertificatesV1.RequestConditionType, TimeInterval)], issued: Bool
            )
                -> CSR
            {
                var csr = CSR()
                csr.metadata.creationTimestamp = ago(created)
                csr.status.conditions = conditions.map { type, age in
                    var c = CSR.trueCondition(type, reason: "Test", message: "")
                    c.lastUpdateTime = ago(age)
                    return c
                }
                if issued { csr.status.certificate = Array("x".utf8) }
                return csr
            }
            let isDone = { (csr: CSR) in CertificateCleaner.isDone(csr, now: now) }
            #expect(!isDone(request(created: 23 * 3600, [], issued: false)))
            #expect(isDone(request(created: 25 * 3600, [], issued: false)))
            #expect(!isDone(request(created: 7200, [(.certificateApproved, 1800)], issued: true)))
            #expect(isDone(request(created: 7200, [(.certificateApproved, 3700)], issued: true)))
            // Approved but never issued waits for the signer (or the pending deadline's sibling rules).
            #expect(!isDone(request(created: 7200, [(.certificateApproved, 3700)], issued: false)))
            #expect(!isDone(request(created: 7200, [(.certificateDenied, 1800)], issued: false)))
            #expect(isDone(request(created: 7200, [(.certificateDenied, 3700)], issued: false)))
            #expect(
                isDone(request(created: 7200, [(.certificateApproved, 60), (.certificateFailed, 3700)], issued: false)))
        }

        @Test func theSignerHonoursRequestedLifetimesWithinItsBounds() {
            let year: TimeInterval = 365 * 24 * 3600
            #expect(CertificateSigningController.lifetime(expirationSeconds: nil, longest: year) == year)
            #expect(CertificateSigningController.lifetime(expirationSeconds: 600, longest: year) == 600)
            #expect(CertificateSigningController.lifetime(expirationSeconds: 3600, longest: year) == 3600)
            #expect(CertificateSigningController.lifetime(expirationSeconds: Int32.max, longest: year) == year)
        }
    }
}

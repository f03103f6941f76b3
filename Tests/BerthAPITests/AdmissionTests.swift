import BerthAPI
import BerthStore
import Foundation
import Testing

/// A webhook server of the test's own (Scripts/admission_webhook.py) serving HTTPS with a certificate
/// from a CA made here, as an operator's webhook would.
final class TestWebhook: @unchecked Sendable {
    let dir: String
    let port: Int
    let process = Process()
    var caBundle: String
    /// A bundle of another CA, which the webhook's certificate does not chain to.
    var strangerBundle: String
    var record: String { dir + "/reviews.jsonl" }
    var url: String { "https://127.0.0.1:\(port)" }

    init() throws {
        dir = NSTemporaryDirectory() + "berth-webhook-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        port = try freePort()
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for ca in ["ca", "stranger"] {
            let made = try run(
                "openssl",
                ["req", "-x509"] + ec + [
                    "-keyout", "\(dir)/\(ca).key", "-out", "\(dir)/\(ca).crt", "-days", "1", "-subj", "/CN=\(ca)",
                ])
            guard made.ok else { throw StillWaiting(description: "openssl: \(made.stderr)") }
        }
        _ = try run(
            "openssl",
            ["req"] + ec + ["-keyout", "\(dir)/server.key", "-out", "\(dir)/server.csr", "-subj", "/CN=webhook"])
        try "subjectAltName=IP:127.0.0.1,DNS:webhook.default.svc\n".write(
            toFile: "\(dir)/san.ext", atomically: true, encoding: .utf8)
        let signed = try run(
            "openssl",
            [
                "x509", "-req", "-in", "\(dir)/server.csr", "-CA", "\(dir)/ca.crt", "-CAkey", "\(dir)/ca.key",
                "-CAcreateserial", "-out", "\(dir)/server.crt", "-days", "1", "-extfile", "\(dir)/san.ext",
            ])
        guard signed.ok else { throw StillWaiting(description: "openssl: \(signed.stderr)") }
        caBundle = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/ca.crt")).base64EncodedString()
        strangerBundle = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/stranger.crt")).base64EncodedString()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [
            scriptsDir + "/admission_webhook.py", String(port), "\(dir)/server.crt", "\(dir)/server.key", record,
        ]
        let ready = Pipe()
        process.standardOutput = ready
        try process.run()
        // The script prints "ready" once it listens.
        let line = ready.fileHandleForReading.availableData
        guard String(decoding: line, as: UTF8.self).contains("ready") else {
            throw StillWaiting(description: "the webhook server did not start")
        }
    }

    /// The reviews received on `path`, oldest first.
    func reviews(_ path: String) -> [JSON] {
        let text = (try? String(contentsOfFile: record, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSON.parse(Array($0.utf8)) }
            .filter { $0["path"].string == path }
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

extension APITests {
    /// admissionregistration.k8s.io/v1 (issue 16): webhooks of an operator's own, called over HTTPS with
    /// its CA bundle, and ValidatingAdmissionPolicies in CEL, all through real kubectl.
    @Suite("Admission", .serialized)
    struct AdmissionTests {
        func webhookConfiguration(
            _ kind: String, name: String, path: String, hook: TestWebhook, resources: String,
            operations: String = "[CREATE, UPDATE]", extra: String = "", bundle: String? = nil
        ) -> String {
            """
            apiVersion: admissionregistration.k8s.io/v1
            kind: \(kind)
            metadata: {name: \(name)}
            webhooks:
            - name: \(name)
              clientConfig: {url: "\(hook.url)\(path)", caBundle: \(bundle ?? hook.caBundle)}
              rules: [{apiGroups: [""], apiVersions: [v1], operations: \(operations), resources: \(resources)}]
              sideEffects: None
              admissionReviewVersions: [v1]
            \(extra)
            """
        }

        @Test func webhooksMutateRefuseAndFailAsConfigured() async throws {
            let s = try await TestServer()
            let hook = try TestWebhook()
            defer { hook.stop() }

            // Mutating: every new pod gets the webhook's label, and the webhook's warning reaches kubectl.
            let mutating = try s.kubectl(
                "create", "-f", "-",
                stdin: webhookConfiguration(
                    "MutatingWebhookConfiguration", name: "mutate.berth.test", path: "/mutate", hook: hook,
                    resources: "[pods]"))
            #expect(mutating.ok, "\(mutating.stderr)")
            let defaults = try s.kubectl(
                "get", "mutatingwebhookconfiguration", "mutate.berth.test", "-o",
                "jsonpath={.webhooks[0].failurePolicy}/{.webhooks[0].timeoutSeconds}/{.webhooks[0].reinvocationPolicy}/{.webhooks[0].rules[0].scope}"
            )
            #expect(defaults.stdout == "Fail/10/Never/*", "\(defaults.stdout)")
            let pod = try s.kubectl("run", "web", "--image=example/web")
            #expect(pod.ok, "\(pod.stderr)")
            #expect(pod.stderr.contains("Warning: mutated by the test webhook"), "\(pod.stderr)")
            #expect(try s.kubectl("get", "pod", "web", "-o", "jsonpath={.metadata.labels.webhook}").stdout == "mutated")
            // The review as upstream sends it.
            let review = try #require(hook.reviews("/mutate").last)
            #expect(review["query"] == "timeout=10s")
            let request = review["review"]["request"]
            #expect(review["review"]["apiVersion"] == "admission.k8s.io/v1")
            #expect(request["operation"] == "CREATE" && request["kind"]["kind"] == "Pod")
            #expect(request["resource"]["resource"] == "pods" && request["namespace"] == "default")
            #expect(request["userInfo"]["username"] == "admin" && request["dryRun"] == false)
            #expect(request["object"]["spec"]["containers"][0]["image"] == "example/web")
            #expect(request["options"]["kind"] == "CreateOptions")

            // Validating, only in namespaces labelled for it: a refusal in the webhook's words, with its code.
            #expect(try s.kubectl("create", "namespace", "guarded").ok)
            #expect(try s.kubectl("label", "namespace", "guarded", "webhooks=on").ok)
            let validating = try s.kubectl(
                "create", "-f", "-",
                stdin: webhookConfiguration(
                    "ValidatingWebhookConfiguration", name: "validate.berth.test", path: "/validate", hook: hook,
                    resources: "[configmaps]", operations: "[CREATE, UPDATE, DELETE]",
                    extra: "  namespaceSelector: {matchLabels: {webhooks: \"on\"}}"))
            #expect(validating.ok, "\(validating.stderr)")
            let denied = try s.kubectl(
                "create", "-n", "guarded", "-f", "-", stdin: configMap("one", labels: "deny: \"yes\""))
            #expect(!denied.ok)
            expectMentions(
                denied.stderr,
                [
                    #"Error from server (Forbidden): error when creating "STDIN": admission webhook "validate.berth.test" denied the request: the label deny is set"#
                ])
            #expect(
                try s.kubectl("create", "-n", "default", "-f", "-", stdin: configMap("one", labels: "deny: \"yes\"")).ok
            )
            #expect(
                try s.kubectl(
                    "create", "-n", "guarded", "-f", "-", stdin: configMap("kept", labels: "protected: \"yes\"")
                ).ok)
            let update = try s.kubectl("label", "-n", "guarded", "configmap", "kept", "deny=now")
            expectMentions(update.stderr, [#"admission webhook "validate.berth.test" denied the request"#])
            let delete = try s.kubectl("delete", "-n", "guarded", "configmap", "kept")
            expectMentions(
                delete.stderr, [#"admission webhook "validate.berth.test" denied the request: it is protected"#])
            #expect(try s.kubectl("get", "-n", "guarded", "configmap", "kept").ok)
            let deleteReview = try #require(hook.reviews("/validate").last)["review"]["request"]
            #expect(deleteReview["operation"] == "DELETE" && deleteReview["oldObject"]["metadata"]["name"] == "kept")
            #expect(deleteReview["object"].isNull && deleteReview["options"]["kind"] == "DeleteOptions")
            // A server-side dry run calls webhooks without side effects, marked dryRun.
            let dry = try s.kubectl("create", "-n", "guarded", "--dry-run=server", "-f", "-", stdin: configMap("dry"))
            #expect(dry.ok, "\(dry.stderr)")
            #expect(try #require(hook.reviews("/validate").last)["review"]["request"]["dryRun"] == true)

            // A webhook that does not answer in time, one that answers garbage, one with the wrong CA:
            // refused under failurePolicy Fail in Go's words, let through under Ignore.
            let failing = try s.kubectl(
                "create", "-f", "-",
                stdin: webhookConfiguration(
                    "ValidatingWebhookConfiguration", name: "slow.berth.test", path: "/slow", hook: hook,
                    resources: "[secrets]", extra: "  timeoutSeconds: 1")
                    + "\n---\n"
                    + webhookConfiguration(
                        "ValidatingWebhookConfiguration", name: "garbage.berth.test", path: "/garbage", hook: hook,
                        resources: "[services]")
                    + "\n---\n"
                    + webhookConfiguration(
                        "ValidatingWebhookConfiguration", name: "stranger.berth.test", path: "/validate", hook: hook,
                        resources: "[serviceaccounts]", bundle: hook.strangerBundle))
            #expect(failing.ok, "\(failing.stderr)")
            let slow = try s.kubectl("create", "secret", "generic", "s1", "--from-literal=a=b")
            expectMentions(
                slow.stderr,
                [
                    #"Internal error occurred: failed calling webhook "slow.berth.test": failed to call webhook: Post "\#(hook.url)/slow?timeout=1s": context deadline exceeded"#
                ])
            let garbage = try s.kubectl("create", "service", "clusterip", "g1", "--tcp=80")
            expectMentions(
                garbage.stderr, [#"failed calling webhook "garbage.berth.test": received invalid webhook response"#])
            let stranger = try s.kubectl("create", "serviceaccount", "sa1")
            expectMentions(stranger.stderr, [#"failed calling webhook "stranger.berth.test""#, "x509"])
            #expect(try s.kubectl("get", "secret", "s1").ok == false)
            let ignore = try s.kubectl(
                "patch", "validatingwebhookconfiguration", "slow.berth.test", "--type=json", "-p",
                #"[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]"#)
            #expect(ignore.ok, "\(ignore.stderr)")
            let through = try s.kubectl("create", "secret", "generic", "s1", "--from-literal=a=b")
            #expect(through.ok, "\(through.stderr)")

            // Match conditions leave requests out; a removed configuration is no longer called.
            let before = hook.reviews("/validate").count
            let conditioned = try s.kubectl(
                "patch", "validatingwebhookconfiguration", "validate.berth.test", "--type=json", "-p",
                #"[{"op":"add","path":"/webhooks/0/matchConditions","value":[{"name":"not-skipped","expression":"object == null || object.metadata.name != 'skip-me'"}]}]"#
            )
            #expect(conditioned.ok, "\(conditioned.stderr)")
            #expect(
                try s.kubectl(
                    "create", "-n", "guarded", "-f", "-", stdin: configMap("skip-me", labels: "deny: \"yes\"")
                ).ok)
            #expect(hook.reviews("/validate").count == before)
            #expect(try s.kubectl("delete", "validatingwebhookconfiguration", "validate.berth.test").ok)
            #expect(
                try s.kubectl("create", "-n", "guarded", "-f", "-", stdin: configMap("two", labels: "deny: \"yes\"")).ok
            )
            #expect(hook.reviews("/validate").count == before)
            let listed = try s.kubectl("get", "validatingwebhookconfigurations")
            #expect(listed.stdout.contains("WEBHOOKS") && listed.stdout.contains("slow.berth.test"), "\(listed.stdout)")
            await s.stop()
        }

        @Test func reinvocationAndConfigurationErrors() async throws {
            let s = try await TestServer()
            let hook = try TestWebhook()
            defer { hook.stop() }
            // seen-b runs first (its configuration sorts first) and asks to be called again when a later
            // webhook changes the object: the second call sees add-b's label.
            let made = try s.kubectl(
                "create", "-f", "-",
                stdin: webhookConfiguration(
                    "MutatingWebhookConfiguration", name: "a.seen-b.berth.test", path: "/seen-b", hook: hook,
                    resources: "[configmaps]", extra: "  reinvocationPolicy: IfNeeded")
                    + "\n---\n"
                    + webhookConfiguration(
                        "MutatingWebhookConfiguration", name: "b.add-b.berth.test", path: "/add-b", hook: hook,
                        resources: "[configmaps]"))
            #expect(made.ok, "\(made.stderr)")
            #expect(try s.kubectl("create", "configmap", "c1").ok)
            let seen = try s.kubectl(
                "get", "configmap", "c1", "-o", "jsonpath={.metadata.annotations.seen-b}/{.metadata.labels.b}")
            #expect(seen.stdout == "yes/added", "\(seen.stdout)")
            #expect(hook.reviews("/seen-b").count == 2)

            // No endpoint may be a loopback address (upstream's ValidateEndpointIP), so a webhook on this
            // machine is not reachable through an EndpointSlice of its Service; an ExternalName Service
            // reaches it, resolved as kube-apiserver's default resolver does (the external name at the
            // webhook's port), its certificate still checked for the name upstream dials
            // (webhook.default.svc).
            let loopback = try s.kubectl(
                "create", "-f", "-",
                stdin: """
                    apiVersion: discovery.k8s.io/v1
                    kind: EndpointSlice
                    metadata: {name: webhook-1, labels: {kubernetes.io/service-name: webhook}}
                    addressType: IPv4
                    ports: [{name: https, port: \(hook.port)}]
                    endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
                    """)
            #expect(!loopback.ok)
            expectMentions(
                loopback.stderr,
                [
                    #"endpoints[0].addresses[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#
                ])
            let service = try s.kubectl(
                "create", "-f", "-",
                stdin: """
                    apiVersion: v1
                    kind: Service
                    metadata: {name: webhook}
                    spec: {type: ExternalName, externalName: localhost}
                    ---
                    apiVersion: admissionregistration.k8s.io/v1
                    kind: ValidatingWebhookConfiguration
                    metadata: {name: by-service.berth.test}
                    webhooks:
                    - name: by-service.berth.test
                      clientConfig:
                        service: {namespace: default, name: webhook, path: /validate, port: \(hook.port)}
                        caBundle: \(hook.caBundle)
                      rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [secrets]}]
                      sideEffects: NoneOnDryRun
                      admissionReviewVersions: [v1beta1, v1]
                    - name: defaulted-port.berth.test
                      clientConfig:
                        service: {namespace: default, name: webhook}
                        caBundle: \(hook.caBundle)
                      rules: [{apiGroups: [""], apiVersions: [v1], operations: [DELETE], resources: [podtemplates]}]
                      sideEffects: None
                      admissionReviewVersions: [v1]
                    """)
            #expect(service.ok, "\(service.stderr)")
            let viaService = try s.kubectl("create", "secret", "generic", "checked", "--from-literal=a=b")
            #expect(viaService.ok, "\(viaService.stderr)")
            let reviewed = try #require(hook.reviews("/validate").last)
            #expect(reviewed["review"]["request"]["name"] == "checked" && reviewed["query"] == "timeout=10s")
            #expect(
                try s.kubectl(
                    "get", "validatingwebhookconfiguration", "by-service.berth.test", "-o",
                    "jsonpath={.webhooks[1].clientConfig.service.port}"
                ).stdout == "443")

            // Upstream's validation of configurations.
            let bad = try s.kubectl(
                "create", "-f", "-",
                stdin: """
                    apiVersion: admissionregistration.k8s.io/v1
                    kind: ValidatingWebhookConfiguration
                    metadata: {name: bad}
                    webhooks:
                    - name: two.segments
                      clientConfig: {url: "http://127.0.0.1:1/x?y=z"}
                      rules: [{apiGroups: ["*", ""], apiVersions: [v1], operations: [CREATE, "*"], resources: [pods]}]
                      admissionReviewVersions: [v2]
                      timeoutSeconds: 31
                      failurePolicy: Sometimes
                      matchConditions: [{name: c, expression: "object.("}]
                    """)
            #expect(!bad.ok)
            expectMentions(
                bad.stderr,
                [
                    #"webhooks[0].name: Invalid value: "two.segments": should be a domain with at least three segments separated by dots"#,
                    "webhooks[0].clientConfig.url: Invalid value: \"http://127.0.0.1:1/x?y=z\": 'https' is the only allowed URL scheme",
                    "query parameters are not permitted in the URL",
                    #"webhooks[0].rules[0].operations: Invalid value: []string{"CREATE", "*"}: if '*' is present, must not specify other operations"#,
                    #"webhooks[0].rules[0].apiGroups: Invalid value: []string{"*", ""}: if '*' is present, must not specify other apiGroups"#,
                    #"webhooks[0].sideEffects: Required value: must specify one of "None", "NoneOnDryRun""#,
                    #"webhooks[0].admissionReviewVersions: Invalid value: []string{"v2"}: must include at least one of v1, v1beta1"#,
                    "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
                    #"webhooks[0].failurePolicy: Unsupported value: "Sometimes""#,
                    "webhooks[0].matchConditions[0].expression: Invalid value: \"object.(\": compilation failed",
                ])
            await s.stop()
        }

        @Test func validatingAdmissionPoliciesInCEL() async throws {
            let s = try await TestServer()
            // A policy with parameters from a ConfigMap, bound to labelled namespaces.
            #expect(try s.kubectl("create", "namespace", "limited").ok)
            #expect(try s.kubectl("label", "namespace", "limited", "environment=test").ok)
            #expect(
                try s.kubectl("create", "configmap", "-n", "limited", "replica-limit", "--from-literal=maxReplicas=5")
                    .ok)
            let policy = try s.kubectl(
                "create", "-f", "-",
                stdin: """
                    apiVersion: admissionregistration.k8s.io/v1
                    kind: ValidatingAdmissionPolicy
                    metadata: {name: replica-limit.example.com}
                    spec:
                      failurePolicy: Fail
                      paramKind: {apiVersion: v1, kind: ConfigMap}
                      matchConstraints:
                        resourceRules:
                        - apiGroups: [apps]
                          apiVersions: [v1]
                          operations: [CREATE, UPDATE]
                          resources: [deployments]
                      variables:
                      - name: limit
                        expression: int(params.data.maxReplicas)
                      validations:
                      - expression: object.spec.replicas <= variables.limit
                        messageExpression: "'replicas ' + string(object.spec.replicas) + ' is over ' + string(variables.limit)"
                        reason: Forbidden
                      - expression: "!has(object.metadata.labels) || !('forbidden' in object.metadata.labels)"
                    ---
                    apiVersion: admissionregistration.k8s.io/v1
                    kind: ValidatingAdmissionPolicyBinding
                    metadata: {name: replica-limit-binding}
                    spec:
                      policyName: replica-limit.example.com
                      validationActions: [Deny]
                      paramRef: {name: replica-limit, parameterNotFoundAction: Deny}
                      matchResources:
                        namespaceSelector: {matchLabels: {environment: test}}
                    """)
            #expect(policy.ok, "\(policy.stderr)")
            let over = try s.kubectl("create", "deployment", "-n", "limited", "web", "--image=x", "--replicas=7")
            expectMentions(
                over.stderr,
                [
                    #"deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'replica-limit.example.com' with binding 'replica-limit-binding' denied request: replicas 7 is over 5"#
                ])
            #expect(try s.kubectl("create", "deployment", "-n", "limited", "web", "--image=x", "--replicas=3").ok)
            let scaled = try s.kubectl("scale", "deployment", "-n", "limited", "web", "--replicas=9")
            expectMentions(scaled.stderr, ["replicas 9 is over 5"])
            let labelled = try s.kubectl("label", "deployment", "-n", "limited", "web", "forbidden=1")
            expectMentions(
                labelled.stderr,
                [
                    #"The deployments "web" is invalid: : ValidatingAdmissionPolicy 'replica-limit.example.com' with binding 'replica-limit-binding' denied request: failed expression: !has(object.metadata.labels) || !('forbidden' in object.metadata.labels)"#
                ])
            // Other namespaces are not bound.
            #expect(try s.kubectl("create", "deployment", "-n", "default", "web", "--image=x", "--replicas=7").ok)
            // No parameter object: Deny refuses, in upstream's words.
            #expect(try s.kubectl("delete", "configmap", "-n", "limited", "replica-limit").ok)
            let missing = try s.kubectl("create", "deployment", "-n", "limited", "api", "--image=x")
            expectMentions(missing.stderr, ["no params found for policy binding with `Deny` parameterNotFoundAction"])

            // Warn: the request goes through with a warning.
            let warn = try s.kubectl(
                "create", "-f", "-",
                stdin: """
                    apiVersion: admissionregistration.k8s.io/v1
                    kind: ValidatingAdmissionPolicy
                    metadata: {name: named.example.com}
                    spec:
                      matchConstraints:
                        resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
                      validations:
                      - expression: object.metadata.name.startsWith('cfg-')
                        message: names start with cfg-
                    ---
                    apiVersion: admissionregistration.k8s.io/v1
                    kind: ValidatingAdmissionPolicyBinding
                    metadata: {name: named-warn}
                    spec: {policyName: named.example.com, validationActions: [Warn, Audit]}
                    """)
            #expect(warn.ok, "\(warn.stderr)")
            let warned = try s.kubectl("create", "configmap", "settings")
            #expect(warned.ok, "\(warned.stderr)")
            expectMentions(
                warned.stderr,
                [
                    "Warning: Validation failed for ValidatingAdmissionPolicy 'named.example.com' with binding 'named-warn': names start with cfg-"
                ])
            let table = try s.kubectl("get", "validatingadmissionpolicies")
            expectMentions(
                table.stdout, ["VALIDATIONS", "PARAMKIND", "replica-limit.example.com", "v1/ConfigMap", "<unset>"])
            let bindings = try s.kubectl("get", "validatingadmissionpolicybindings")
            expectMentions(bindings.stdout, ["POLICYNAME", "PARAMREF", "*/replica-limit"])

            // Upstream's validation of policies and bindings.
            let bad = try s.kubectl(
                "create", "-f", "-",
                stdin: """
                    apiVersion: admissionregistration.k8s.io/v1
                    kind: ValidatingAdmissionPolicy
                    metadata: {name: bad.example.com}
                    spec:
                      validations: [{expression: "object.spec.(", reason: Odd}]
                    ---
                    apiVersion: admissionregistration.k8s.io/v1
                    kind: ValidatingAdmissionPolicyBinding
                    metadata: {name: bad-binding}
                    spec: {validationActions: [Deny, Warn], paramRef: {name: x, selector: {}}}
                    """)
            expectMentions(
                bad.stderr,
                [
                    "spec.matchConstraints: Required value",
                    #"spec.validations[0].expression: Invalid value: "object.spec.(": compilation failed"#,
                    #"spec.validations[0].reason: Unsupported value: "Odd""#,
                    "spec.policyName: Required value",
                    "must not contain both Deny and Warn",
                    "spec.paramRef: Required value: one of name or selector must be specified",
                    "spec.paramRef.parameterNotFoundAction: Required value",
                ])
            await s.stop()
        }

        @Test func policyStatusWarnsOfFieldsTheMatchedKindsDoNotHave() async throws {
            let s = try await TestServer()
            let applied = try s.kubectl(
                "apply", "-f", "-",
                stdin: """
                    apiVersion: admissionregistration.k8s.io/v1
                    kind: ValidatingAdmissionPolicy
                    metadata: {name: typo.example.com}
                    spec:
                      matchConstraints:
                        resourceRules:
                        - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
                      variables:
                      - {name: replicas, expression: object.spec.replicas}
                      validations:
                      - expression: object.spec.replicas <= 5 && object.spec.replica <= 5
                        messageExpression: "'too many: ' + string(object.spec.replicas)"
                      - expression: object.metadata.name.size() < 20 && variables.replicaz > 0
                      - expression: object.spec.template.spec.containers.all(c, c.imag != '')
                    """)
            #expect(applied.ok, "\(applied.stderr)")
            try await s.eventually("the policy's type checking") {
                try s.kubectl("get", "validatingadmissionpolicy", "typo.example.com", "-o", "yaml").stdout
                    .contains("typeChecking")
            }
            let status = try JSON.parse(
                Array(
                    try s.kubectl("get", "validatingadmissionpolicy", "typo.example.com", "-o", "json").stdout.utf8))[
                    "status"]
            #expect(status["observedGeneration"] == 1)
            let warnings = status["typeChecking"]["expressionWarnings"].array ?? []
            #expect(
                warnings.map { $0["fieldRef"].string ?? "" } == [
                    "spec.validations[0].expression", "spec.validations[1].expression",
                    "spec.validations[2].expression",
                ])
            #expect(
                warnings.first?["warning"].string
                    == "apps/v1, Kind=Deployment: ERROR: <input>:1:41: undefined field 'replica'\n"
                    + " | object.spec.replicas <= 5 && object.spec.replica <= 5\n"
                    + " | ........................................^\n")
            expectMentions(
                warnings.count > 2 ? warnings[1]["warning"].string ?? "" : "", ["undefined field 'replicaz'"])
            expectMentions(warnings.count > 2 ? warnings[2]["warning"].string ?? "" : "", ["undefined field 'imag'"])
            let yaml = try s.kubectl("get", "validatingadmissionpolicy", "typo.example.com", "-o", "yaml").stdout
            expectMentions(yaml, ["fieldRef: spec.validations[0].expression", "undefined field 'replica'"])

            // A fixed spec is a new generation, checked again: no warnings left.
            let fixed = try s.kubectl(
                "patch", "validatingadmissionpolicy", "typo.example.com", "--type=json",
                "-p",
                #"[{"op":"replace","path":"/spec/validations","value":[{"expression":"object.spec.replicas <= 5"}]}]"#)
            #expect(fixed.ok, "\(fixed.stderr)")
            try await s.eventually("the fixed policy's type checking") {
                let out = try s.kubectl("get", "validatingadmissionpolicy", "typo.example.com", "-o", "json").stdout
                let status = try JSON.parse(Array(out.utf8))["status"]
                return status["observedGeneration"] == 2 && status["typeChecking"]["expressionWarnings"].isNull
            }
            // Kinds Berth cannot resolve (a wildcard) are not checked.
            #expect(
                try s.kubectl(
                    "apply", "-f", "-",
                    stdin: """
                        apiVersion: admissionregistration.k8s.io/v1
                        kind: ValidatingAdmissionPolicy
                        metadata: {name: anything.example.com}
                        spec:
                          matchConstraints:
                            resourceRules: [{apiGroups: ["*"], apiVersions: ["*"], operations: [CREATE], resources: ["*"]}]
                          validations: [{expression: object.whatever == 1}]
                        """
                ).ok)
            try await s.eventually("the wildcard policy's status") {
                let out = try s.kubectl("get", "validatingadmissionpolicy", "anything.example.com", "-o", "json").stdout
                let status = try JSON.parse(Array(out.utf8))["status"]
                return status["observedGeneration"] == 1 && status["typeChecking"]["expressionWarnings"].isNull
            }
            await s.stop()
        }

        @Test(.enabled(if: pythonHasKubernetes(), "needs the kubernetes Python client"))
        func thePythonClientReadsTheAdmissionAndFlowControlKindsBack() async throws {
            let s = try await TestServer()
            let out = try run("python3", [scriptsDir + "/admission_and_flow_kinds.py", s.kubeconfig], timeout: 120)
            #expect(out.ok && out.stdout.contains("OK"), "\(out.stdout) \(out.stderr)")
            await s.stop()
        }

        func configMap(_ name: String, labels: String = "") -> String {
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \(name)\n  labels: {\(labels)}\ndata: {a: b}\n"
        }
    }
}

import BerthAPI
import Foundation
import Testing

extension APITests {
    /// apiextensions.k8s.io/v1 CustomResourceDefinitions and the custom resources they serve (issue 16),
    /// with kubectl 1.32 as an operator's user would drive them.
    @Suite("custom resources", .serialized)
    struct CustomResourceTests {
        static let cronTabs = """
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata: {name: crontabs.stable.example.com}
            spec:
              group: stable.example.com
              scope: Namespaced
              names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct], categories: [all]}
              versions:
              - name: v1
                served: true
                storage: true
                subresources:
                  status: {}
                  scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
                additionalPrinterColumns:
                - {name: Spec, type: string, jsonPath: .spec.cronSpec}
                - {name: Replicas, type: integer, jsonPath: .spec.replicas}
                - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
                - {name: Image, type: string, priority: 1, jsonPath: .spec.image}
                schema:
                  openAPIV3Schema:
                    type: object
                    properties:
                      spec:
                        type: object
                        required: [cronSpec]
                        x-kubernetes-validations:
                        - {rule: "!has(self.mode) || self.mode != 'Slow' || self.replicas <= 2", message: slow tabs run at most 2 replicas}
                        properties:
                          cronSpec: {type: string, pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'}
                          image:
                            type: string
                            default: busybox
                            maxLength: 20
                            x-kubernetes-validations: [{rule: self == oldSelf, message: image is immutable}]
                          replicas: {type: integer, minimum: 1, maximum: 10, default: 1}
                          mode: {type: string, enum: [Fast, Slow]}
                          ports:
                            type: array
                            x-kubernetes-list-type: set
                            items: {type: integer}
                          extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
                      status:
                        type: object
                        properties:
                          replicas: {type: integer}
                          selector: {type: string}
                          conditions:
                            type: array
                            items:
                              type: object
                              properties: {type: {type: string}, status: {type: string}}
              - name: v1beta1
                served: true
                storage: false
                schema:
                  openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
            """

        static func cronTab(_ name: String, _ spec: String) -> String {
            #"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"\#(name)"},"spec":\#(spec)}"#
        }

        func established(_ s: TestServer, _ name: String = "crontabs.stable.example.com") throws {
            let wait = try s.kubectl("wait", "--for", "condition=Established", "--timeout=20s", "crd/\(name)")
            #expect(wait.ok, "\(wait.stderr)")
        }

        @Test func anOperatorsResourcesAreServedValidatedDefaultedAndPrinted() async throws {
            let s = try await TestServer()
            let applied = try s.kubectl("apply", "-f", "-", stdin: Self.cronTabs)
            #expect(applied.ok, "\(applied.stderr)")
            try established(s)
            let conditions = try s.kubectl(
                "get", "crd", "crontabs.stable.example.com", "-o",
                #"jsonpath={.status.conditions[?(@.type=="NamesAccepted")].status}/{.status.acceptedNames.kind}/{.status.storedVersions}/{.metadata.finalizers}"#
            )
            #expect(
                conditions.stdout == #"True/CronTab/["v1"]/["customresourcecleanup.apiextensions.k8s.io"]"#,
                "\(conditions.stdout)")
            #expect(try s.kubectl("get", "crd").stdout.contains("CREATED AT"))

            // Discovery: the group with both versions (v1 preferred), the short name, the category.
            let resources = try s.kubectl("api-resources", "--api-group=stable.example.com")
            #expect(resources.stdout.contains("crontabs") && resources.stdout.contains("ct"), "\(resources.stdout)")
            let group = try s.kubectl("get", "--raw", "/apis/stable.example.com")
            #expect(
                group.stdout.contains(#""preferredVersion":{"groupVersion":"stable.example.com/v1""#), "\(group.stdout)"
            )

            let created = try s.kubectl(
                "apply", "-f", "-", stdin: Self.cronTab("nightly", #"{"cronSpec":"0 3 * * *"}"#))
            #expect(created.ok, "\(created.stderr)")
            // Defaults from the schema, printer columns, the category `all`, the wide column.
            let defaults = try s.kubectl("get", "ct", "nightly", "-o", "jsonpath={.spec.image}/{.spec.replicas}")
            #expect(defaults.stdout == "busybox/1", "\(defaults.stdout)")
            let table = try s.kubectl("get", "crontabs")
            #expect(table.stdout.contains("SPEC") && table.stdout.contains("REPLICAS"), "\(table.stdout)")
            #expect(table.stdout.contains("0 3 * * *") && !table.stdout.contains("IMAGE"), "\(table.stdout)")
            #expect(try s.kubectl("get", "ct", "-o", "wide").stdout.contains("busybox"))
            #expect(try s.kubectl("get", "all").stdout.contains("crontab.stable.example.com/nightly"))

            // Validation in upstream's words, every error at once.
            let invalid = try s.kubectl(
                "create", "-f", "-",
                stdin: Self.cronTab(
                    "bad",
                    #"{"cronSpec":"often","replicas":20,"image":"a-very-long-image-name-indeed","mode":"Warp","ports":[80,80]}"#
                ))
            #expect(!invalid.ok)
            expectMentions(
                invalid.stderr,
                [
                    #"The CronTab "bad" is invalid"#,
                    #"spec.cronSpec: Invalid value: "often": spec.cronSpec in body should match"#,
                    "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10",
                    "spec.image: Too long: may not be more than 20 bytes",
                    #"spec.mode: Unsupported value: "Warp": supported values: "Fast", "Slow""#,
                    "spec.ports[1]: Duplicate value: 80",
                ])
            let wrongType = try s.kubectl(
                "create", "-f", "-", stdin: Self.cronTab("typed", #"{"cronSpec":"* * * * *","replicas":"two"}"#))
            expectMentions(
                wrongType.stderr,
                [#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#])
            let missing = try s.kubectl("create", "-f", "-", stdin: Self.cronTab("empty", #"{"image":"x"}"#))
            expectMentions(missing.stderr, ["spec.cronSpec: Required value"])

            // CEL rules: one on the object, a transition rule (oldSelf) checked on updates only.
            let slow = try s.kubectl(
                "create", "-f", "-",
                stdin: Self.cronTab("slow", #"{"cronSpec":"* * * * *","mode":"Slow","replicas":3}"#))
            expectMentions(slow.stderr, [#"spec: Invalid value: "object": slow tabs run at most 2 replicas"#])
            let immutable = try s.kubectl(
                "patch", "ct", "nightly", "--type=merge", "-p", #"{"spec":{"image":"alpine"}}"#)
            expectMentions(immutable.stderr, [#"spec.image: Invalid value: "string": image is immutable"#])

            // Unknown fields: refused under kubectl's strict validation, pruned (and kept where the
            // schema preserves them) when validation is off.
            let unknown = try s.kubectl(
                "create", "-f", "-",
                stdin: Self.cronTab("loose", #"{"cronSpec":"* * * * *","colour":"red","extra":{"any":1}}"#))
            expectMentions(unknown.stderr, [#"strict decoding error: unknown field "spec.colour""#])
            #expect(
                try s.kubectl(
                    "create", "--validate=false", "-f", "-",
                    stdin: Self.cronTab("loose", #"{"cronSpec":"* * * * *","colour":"red","extra":{"any":1}}"#)
                ).ok)
            let pruned = try s.kubectl("get", "ct", "loose", "-o", "jsonpath={.spec}")
            #expect(
                pruned.stdout.contains(#""extra":{"any":1}"#) && !pruned.stdout.contains("colour"), "\(pruned.stdout)")
            // Strategic merge patch has no strategies to merge custom resources by.
            let strategic = try s.kubectl("patch", "ct", "loose", "--type=strategic", "-p", #"{"spec":{"replicas":2}}"#)
            #expect(
                strategic.stderr.contains("UnsupportedMediaType") || strategic.stderr.contains("unknown format"),
                "\(strategic.stderr)")

            // Status is a subresource: the main resource ignores it, /status changes nothing else, and
            // only spec changes move the generation.
            #expect(try s.kubectl("patch", "ct", "nightly", "--type=merge", "-p", #"{"status":{"replicas":9}}"#).ok)
            #expect(try s.kubectl("get", "ct", "nightly", "-o", "jsonpath={.status.replicas}").stdout.isEmpty)
            let status = try s.kubectl(
                "patch", "ct", "nightly", "--subresource=status", "--type=merge", "-p",
                #"{"spec":{"replicas":5},"status":{"replicas":1,"selector":"app=nightly","conditions":[{"type":"Ready","status":"True"}]}}"#
            )
            #expect(status.ok, "\(status.stderr)")
            let afterStatus = try s.kubectl(
                "get", "ct", "nightly", "-o", "jsonpath={.spec.replicas}/{.status.replicas}/{.metadata.generation}")
            #expect(afterStatus.stdout == "1/1/1", "\(afterStatus.stdout)")
            #expect(try s.kubectl("get", "ct", "nightly").stdout.contains("True"))

            // Scale: kubectl scale writes spec.replicas through /scale; the Scale reads status and selector.
            #expect(try s.kubectl("scale", "ct", "nightly", "--replicas=3").ok)
            let scale = try s.kubectl(
                "get", "--raw", "/apis/stable.example.com/v1/namespaces/default/crontabs/nightly/scale")
            let scaleJSON = try JSON.parse(scale.stdout)
            #expect(scaleJSON["spec"]["replicas"].int == 3 && scaleJSON["status"]["replicas"].int == 1)
            #expect(scaleJSON["status"]["selector"].string == "app=nightly", "\(scale.stdout)")
            #expect(try s.kubectl("get", "ct", "nightly", "-o", "jsonpath={.metadata.generation}").stdout == "2")

            // The other served version reads the same object (conversion None: only apiVersion differs).
            let beta = try s.kubectl(
                "get", "--raw", "/apis/stable.example.com/v1beta1/namespaces/default/crontabs/nightly")
            let betaJSON = try JSON.parse(beta.stdout)
            #expect(
                betaJSON["apiVersion"].string == "stable.example.com/v1beta1" && betaJSON["spec"]["replicas"].int == 3)

            // OpenAPI: kubectl explain reads the schema.
            let explain = try s.kubectl("explain", "crontab.spec")
            #expect(explain.stdout.contains("cronSpec") && explain.stdout.contains("-required-"), "\(explain.stdout)")
            await s.stop()
        }

        @Test func definitionsAreValidated() async throws {
            let s = try await TestServer()
            func crd(
                _ name: String, group: String, versions: String,
                names: String = #"{"plural":"widgets","kind":"Widget"}"#
            )
                -> String
            {
                #"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"\#(name)"},"spec":{"group":"\#(group)","scope":"Namespaced","names":\#(names),"versions":\#(versions)}}"#
            }
            let schema = #"{"openAPIV3Schema":{"type":"object"}}"#
            var r = try s.kubectl(
                "create", "-f", "-",
                stdin: crd(
                    "widgets.example", group: "example",
                    versions: #"[{"name":"v1","served":true,"storage":true,"schema":\#(schema)}]"#))
            expectMentions(
                r.stderr, [#"spec.group: Invalid value: "example": should be a domain with at least one dot"#])
            r = try s.kubectl(
                "create", "-f", "-",
                stdin: crd(
                    "gadgets.example.com", group: "example.com",
                    versions: #"[{"name":"v1","served":true,"storage":true,"schema":\#(schema)}]"#))
            expectMentions(
                r.stderr,
                [#"metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group"#])
            r = try s.kubectl(
                "create", "-f", "-",
                stdin: crd(
                    "widgets.example.com", group: "example.com",
                    versions:
                        #"[{"name":"v1","served":true,"storage":true,"schema":\#(schema)},{"name":"v2","served":true,"storage":true,"schema":\#(schema)}]"#
                ))
            expectMentions(r.stderr, ["must have exactly one version marked as storage version"])
            r = try s.kubectl(
                "create", "-f", "-",
                stdin: crd(
                    "widgets.example.com", group: "example.com",
                    versions: #"[{"name":"v1","served":true,"storage":true}]"#))
            expectMentions(r.stderr, ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"])
            r = try s.kubectl(
                "create", "-f", "-",
                stdin: crd(
                    "widgets.example.com", group: "example.com",
                    versions:
                        #"[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"properties":{"size":{"type":"integer"}}},"list":{"type":"array"}}}},"additionalPrinterColumns":[{"name":"Size","type":"bytes","jsonPath":".spec.size"}]}]"#
                ))
            expectMentions(
                r.stderr,
                [
                    "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
                    "spec.versions[0].schema.openAPIV3Schema.properties[list].items: Required value: must be specified",
                    #"spec.versions[0].additionalPrinterColumns[0].type: Unsupported value: "bytes""#,
                ])
            #expect(try s.kubectl("get", "crd", "-o", "name").stdout.isEmpty)
            await s.stop()
        }

        @Test func aContestedNameIsNotAcceptedAndADeletedDefinitionTakesItsResources() async throws {
            let s = try await TestServer()
            #expect(try s.kubectl("apply", "-f", "-", stdin: Self.cronTabs).ok)
            try established(s)
            // A second definition in the group wanting the kind CronTab: stored, but its names are not accepted.
            let rival =
                #"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"crontables.stable.example.com"},"spec":{"group":"stable.example.com","scope":"Namespaced","names":{"plural":"crontables","kind":"CronTab"},"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object"}}}]}}"#
            #expect(try s.kubectl("create", "-f", "-", stdin: rival).ok)
            try await s.eventually("the rival's NamesAccepted condition") {
                try s.kubectl(
                    "get", "crd", "crontables.stable.example.com", "-o",
                    #"jsonpath={.status.conditions[?(@.type=="NamesAccepted")].reason}"#
                ).stdout == "NameConflict"
            }
            #expect(!(try s.kubectl("get", "--raw", "/apis/stable.example.com/v1/crontables").ok))

            for name in ["a", "b"] {
                #expect(try s.kubectl("create", "-f", "-", stdin: Self.cronTab(name, #"{"cronSpec":"* * * * *"}"#)).ok)
            }
            // A finalizer of someone else's holds one; the definition waits for it.
            #expect(
                try s.kubectl(
                    "patch", "ct", "b", "--type=merge", "-p", #"{"metadata":{"finalizers":["example.com/hold"]}}"#
                ).ok)
            #expect(try s.kubectl("delete", "crd", "crontabs.stable.example.com", "--wait=false").ok)
            try await s.eventually("the definition to be Terminating with b marked") {
                let b = try s.kubectl("get", "ct", "b", "-o", "jsonpath={.metadata.deletionTimestamp}")
                let a = try s.kubectl("get", "ct", "a")
                return !b.stdout.isEmpty && !a.ok
            }
            #expect(try s.kubectl("get", "crd", "crontabs.stable.example.com").ok)
            #expect(try s.kubectl("patch", "ct", "b", "--type=merge", "-p", #"{"metadata":{"finalizers":null}}"#).ok)
            try await s.eventually("the definition to be gone") {
                !(try s.kubectl("get", "crd", "crontabs.stable.example.com").ok)
            }
            try await s.eventually("the resources to be unserved") {
                !(try s.kubectl("get", "--raw", "/apis/stable.example.com/v1/crontabs").ok)
            }
            await s.stop()
        }

        @Test func ownersAndNamespacesTakeTheirCustomResourcesWithThem() async throws {
            let s = try await TestServer()
            #expect(try s.kubectl("apply", "-f", "-", stdin: Self.cronTabs).ok)
            try established(s)
            #expect(try s.kubectl("create", "-f", "-", stdin: Self.cronTab("owner", #"{"cronSpec":"* * * * *"}"#)).ok)
            let uid = try s.kubectl("get", "ct", "owner", "-o", "jsonpath={.metadata.uid}").stdout
            // An operator's child: a ConfigMap owned by the custom resource.
            let child =
                #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"child","ownerReferences":[{"apiVersion":"stable.example.com/v1","kind":"CronTab","name":"owner","uid":"\#(uid)"}]}}"#
            #expect(try s.kubectl("create", "-f", "-", stdin: child).ok)
            // And a custom resource owned by a ConfigMap.
            #expect(try s.kubectl("create", "configmap", "parent").ok)
            let parentUID = try s.kubectl("get", "cm", "parent", "-o", "jsonpath={.metadata.uid}").stdout
            let owned =
                #"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"owned","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"parent","uid":"\#(parentUID)"}]},"spec":{"cronSpec":"* * * * *"}}"#
            #expect(try s.kubectl("create", "-f", "-", stdin: owned).ok)

            // Foreground: the custom resource waits for its child, then goes.
            let deleted = try s.kubectl("delete", "ct", "owner", "--cascade=foreground", "--timeout=30s")
            #expect(deleted.ok, "\(deleted.stderr)")
            #expect(!(try s.kubectl("get", "cm", "child").ok))
            #expect(try s.kubectl("delete", "cm", "parent").ok)
            try await s.eventually("the owned custom resource to be collected") {
                !(try s.kubectl("get", "ct", "owned").ok)
            }

            // A deleted namespace takes its custom resources.
            #expect(try s.kubectl("create", "namespace", "team").ok)
            #expect(
                try s.kubectl(
                    "create", "-n", "team", "-f", "-", stdin: Self.cronTab("nightly", #"{"cronSpec":"* * * * *"}"#)
                ).ok)
            #expect(try s.kubectl("delete", "namespace", "team").ok)
            try await s.eventually("the namespace's custom resources to go") {
                try s.kubectl("get", "--raw", "/apis/stable.example.com/v1/crontabs").stdout.contains(#""items":[]"#)
            }
            await s.stop()
        }
    }
}

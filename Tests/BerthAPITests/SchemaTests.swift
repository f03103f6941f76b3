@testable import BerthAPI
import Foundation
import Testing

/// The schema generated from k8s.io/api's Go types: the type checks a body meets (in Go's words,
/// naming the field), how strategic merge patch merges each list, and the OpenAPI documents built from it.
@Suite("generated schema")
struct SchemaTests {
    static let pods = Registry.all.first { $0.kind == "Pod" }!

    static func pod(_ container: JSON) -> JSON {
        ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "p"], "spec": ["containers": [container]]]
    }

    static func checkError(_ object: JSON) -> String? {
        do {
            try Schema.check(object, pods, strict: false)
            return nil
        } catch let error as APIError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    /// What decoding into the Go types does besides checking: quantities canonical, `+default=` markers set
    /// where a request leaves them unset (a string also where empty; a pointer only where absent).
    @Test func normalizingCanonicalizesQuantitiesAndSetsDeclaredDefaults() {
        var pod = Self.pod([
            "name": "c", "image": "busybox", "ports": [["containerPort": 80]],
            "resources": ["requests": ["cpu": .number("2"), "memory": "1024Mi"], "limits": ["memory": "1Gi"]],
            "livenessProbe": ["grpc": ["port": 9000]],
        ])
        pod["spec"]["volumes"] = [
            ["name": "r", "rbd": ["monitors": ["m:6789"], "image": "img", "pool": ""]],
            ["name": "a", "azureDisk": ["diskName": "d", "diskURI": "u", "fsType": ""]],
        ]
        Schema.normalize(&pod, Self.pods)
        let c = pod["spec"]["containers"][0]
        #expect(c["resources"] == ["requests": ["cpu": "2", "memory": "1Gi"], "limits": ["memory": "1Gi"]])
        #expect(c["ports"][0]["protocol"] == "TCP")
        #expect(c["livenessProbe"]["grpc"]["service"] == "")
        #expect(
            pod["spec"]["volumes"][0]["rbd"]["pool"] == "rbd" && pod["spec"]["volumes"][0]["rbd"]["user"] == "admin")
        #expect(pod["spec"]["volumes"][0]["rbd"]["keyring"] == "/etc/ceph/keyring")
        let azure = pod["spec"]["volumes"][1]["azureDisk"]
        #expect(azure["fsType"] == "", "a pointer set to empty is set")
        #expect(azure["cachingMode"] == "ReadWrite" && azure["kind"] == "Shared" && azure["readOnly"] == false)

        // Nothing to change: the same value back.
        let plain = Self.pod(["name": "c", "image": "busybox", "resources": ["requests": ["cpu": "500m"]]])
        var copy = plain
        Schema.normalize(&copy, Self.pods)
        #expect(copy == plain)
    }

    /// Server-side apply's field sets key each list by its merge key from the schema (a container by
    /// name, its ports by containerPort, a Service's by port); a list without one is a single field.
    @Test func fieldSetsKeyListsByTheSchemasMergeKeys() {
        var pod = Self.pod([
            "name": "c", "image": "busybox", "ports": [["containerPort": 80]], "env": [["name": "A", "value": "1"]],
        ])
        pod["spec"]["tolerations"] = [["key": "k", "operator": "Exists"]]
        let set = Patch.fieldSet(pod, schema: Schema.top(Self.pods))
        let container = set["f:spec"]["f:containers"][#"k:{"name":"c"}"#]
        #expect(container["."] == [:] && container["f:image"] == [:])
        #expect(container["f:ports"][#"k:{"containerPort":80}"#]["f:containerPort"] == [:])
        #expect(container["f:env"][#"k:{"name":"A"}"#]["f:value"] == [:])
        #expect(set["f:spec"]["f:tolerations"] == [:], "atomic: one field")
        #expect(set["f:metadata"].isNull, "only labels and annotations of metadata are recorded")

        let services = Registry.all.first { $0.kind == "Service" }!
        let service: JSON = ["metadata": ["name": "s"], "spec": ["ports": [["port": 80, "targetPort": 8080]]]]
        let serviceSet = Patch.fieldSet(service, schema: Schema.top(services))
        #expect(serviceSet["f:spec"]["f:ports"][#"k:{"port":80}"#]["f:targetPort"] == [:])
        // Without a schema (a kind with no generated type) every list is one field.
        #expect(Patch.fieldSet(pod, schema: nil)["f:spec"]["f:containers"] == [:])
    }

    @Test func everyStructTheServedKindsReachIsDefined() {
        var missing: [String] = []
        func visit(_ s: Schema, _ seen: inout Set<String>) {
            switch s {
            case .ref(let name):
                guard Schema.definitions[name] != nil else {
                    missing.append(name)
                    return
                }
                if seen.insert(name).inserted { visit(Schema.def(name), &seen) }
            case .object(_, let props): for p in props.values { visit(p, &seen) }
            case .array(let inner, _, _), .map(let inner): visit(inner, &seen)
            default: break
            }
        }
        var seen = Set<String>()
        for r in Registry.all { visit(Schema.top(r), &seen) }
        #expect(missing.isEmpty, "\(missing)")
        #expect(seen.contains("io.k8s.api.core.v1.Probe"))
        #expect(Schema.definitionName(Self.pods) == "io.k8s.api.core.v1.Pod")
    }

    @Test func wrongTypesAreNamedAsGoNamesThem() {
        let message = Self.checkError(Self.pod(["name": "c", "image": 5]))
        #expect(
            message
                == "json: cannot unmarshal number into Go struct field Container.spec.containers.image of type string")
        // Deep in a struct the old hand-written schema left free-form: a probe's port.
        let probe = Self.pod(["name": "c", "livenessProbe": ["periodSeconds": "often"]])
        #expect(
            Self.checkError(probe)?.contains(
                "Go struct field Probe.spec.containers.livenessProbe.periodSeconds of type int32") == true)
    }

    @Test func integersOutOfTheirGoRangeAreRefused() {
        let big = Self.pod(["name": "c", "ports": [["containerPort": 3_000_000_000]]])
        #expect(Self.checkError(big)?.contains("cannot unmarshal number 3000000000") == true)
        #expect(Self.checkError(big)?.contains("of type int32") == true)
        let fraction = Self.pod(["name": "c", "ports": [["containerPort": 80.5]]])
        #expect(Self.checkError(fraction)?.contains("of type int32") == true)
        let fits = Self.pod(["name": "c", "ports": [["containerPort": 80]]])
        #expect(Self.checkError(fits) == nil)
    }

    @Test func badTimesQuantitiesAndBytesAreRefusedNamingTheField() {
        var late = Self.pod(["name": "c"])
        late["metadata"]["creationTimestamp"] = "yesterday"
        #expect(Self.checkError(late)?.contains("metadata.creationTimestamp") == true)
        late["metadata"]["creationTimestamp"] = "2026-12-04T10:00:00Z"
        #expect(Self.checkError(late) == nil)

        let greedy = Self.pod(["name": "c", "resources": ["limits": ["cpu": "lots"]]])
        #expect(Self.checkError(greedy)?.contains("spec.containers.resources.limits.cpu") == true)
        for good: JSON in ["100m", "1.5Gi", "2", 2, 0.5, "1e3"] {
            #expect(Self.checkError(Self.pod(["name": "c", "resources": ["limits": ["cpu": good]]])) == nil, "\(good)")
        }

        let secrets = Registry.all.first { $0.kind == "Secret" }!
        let secret: JSON = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "s"], "data": ["k": "%%%"]]
        #expect(throws: APIError.self) { try Schema.check(secret, secrets, strict: false) }
    }

    @Test func strategicMergeFollowsEachListsPatchTags() throws {
        let current: JSON = [
            "metadata": ["finalizers": ["a"]],
            "spec": [
                "containers": [["name": "web", "image": "old", "ports": [["containerPort": 80, "name": "http"]]]],
                "tolerations": [["key": "x", "operator": "Exists"]],
            ],
        ]
        let patch: JSON = [
            "metadata": ["finalizers": ["b"]],
            "spec": [
                "containers": [["name": "web", "image": "new", "ports": [["containerPort": 443]]]],
                "tolerations": [["key": "y", "operator": "Exists"]],
            ],
        ]
        let merged = try Patch.strategic(current, patch, schema: Schema.top(Self.pods))
        // containers merge by name, and a container's ports by containerPort;
        #expect(merged["spec"]["containers"].array?.count == 1)
        #expect(merged["spec"]["containers"][0]["image"] == "new")
        #expect(merged["spec"]["containers"][0]["ports"].array?.count == 2)
        // tolerations carry no patch strategy: replaced whole; finalizers merge as a set.
        #expect(merged["spec"]["tolerations"] == [["key": "y", "operator": "Exists"]])
        #expect(merged["metadata"]["finalizers"] == ["a", "b"])
    }

    @Test func openAPIDocumentsReferToEveryDefinitionTheyUse() throws {
        let doc = OpenAPI.v2()
        let definitions = try #require(doc["definitions"].object)
        #expect(definitions["io.k8s.api.core.v1.PodSpec"] != nil)
        let containers = definitions["io.k8s.api.core.v1.PodSpec"]?["properties"]["containers"]
        #expect(containers?["x-kubernetes-patch-merge-key"] == "name")
        #expect(containers?["items"]["$ref"] == "#/definitions/io.k8s.api.core.v1.Container")
        var dangling: [String] = []
        func visit(_ j: JSON) {
            switch j {
            case .object(let o):
                if let ref = o["$ref"]?.string, definitions[String(ref.dropFirst("#/definitions/".count))] == nil {
                    dangling.append(ref)
                }
                for v in o.values { visit(v) }
            case .array(let a): for v in a { visit(v) }
            default: break
            }
        }
        visit(doc)
        #expect(dangling.isEmpty, "\(dangling.prefix(5))")
        let core = try #require(OpenAPI.v3(groupVersion: "api/v1"))
        #expect(core["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"]["image"] != .null)
        // Served as built once: a document per served group version, the same bytes a fresh build writes.
        #expect(Set(OpenAPI.v3Documents.keys) == Set(OpenAPI.groupVersions()))
        #expect(OpenAPI.v3Documents["api/v1"] == core.serialized())
        #expect(OpenAPI.v2Document == doc.serialized())
    }
}

/// OpenAPI v2 (`/openapi/v2`) and v3 (`/openapi/v3`, `/openapi/v3/<api|apis/g>/<v>`) documents for the
/// served types, generated from `Schema`: lists carry `x-kubernetes-patch-merge-key` /
/// `x-kubernetes-patch-strategy` (kubectl apply's strategic merge patch), top-level kinds carry
/// `x-kubernetes-group-version-kind` (kubectl explain), and PATCH/POST operations list the
/// `fieldValidation` parameter (so kubectl uses server-side field validation).
enum OpenAPI {
    /// A schema in OpenAPI form; a struct is a `$ref` under `refBase` (`#/definitions/` in v2,
    /// `#/components/schemas/` in v3), and its name is added to `used` so the document includes it.
    static func schema(_ s: Schema, refBase: String, used: inout Set<String>) -> JSON {
        switch s {
        case .string: return ["type": "string"]
        case .int(let bits): return ["type": "integer", "format": .string("int\(bits)")]
        case .bool: return ["type": "boolean"]
        case .number: return ["type": "number", "format": "double"]
        case .bytes: return ["type": "string", "format": "byte"]
        case .time: return ["type": "string", "format": "date-time"]
        case .intOrString: return ["type": "string", "format": "int-or-string", "x-kubernetes-int-or-string": true]
        case .quantity: return ["type": "string", "format": "quantity", "x-kubernetes-int-or-string": true]
        case .any: return ["x-kubernetes-preserve-unknown-fields": true]
        case .freeform: return ["type": "object", "x-kubernetes-preserve-unknown-fields": true]
        case .map(let inner):
            return ["type": "object", "additionalProperties": schema(inner, refBase: refBase, used: &used)]
        case .array(let inner, let key, let strategy):
            var j: JSON = ["type": "array", "items": schema(inner, refBase: refBase, used: &used)]
            if let key {
                j["x-kubernetes-patch-merge-key"] = .string(key); j["x-kubernetes-list-type"] = "map";
                j["x-kubernetes-list-map-keys"] = [.string(key)]
            }
            if let strategy { j["x-kubernetes-patch-strategy"] = .string(strategy) }
            return j
        case .object(let name, let props):
            return [
                "type": "object", "description": .string(describe(name)),
                "properties": .object(props.mapValues { schema($0, refBase: refBase, used: &used) }),
            ]
        case .ref(let n):
            used.insert(n)
            return ["$ref": .string(refBase + n)]
        }
    }

    /// The definitions `roots` refer to, transitively, each in OpenAPI form.
    static func closure(of roots: Set<String>, refBase: String) -> [String: JSON] {
        var done: [String: JSON] = [:]
        var pending = roots
        while let name = pending.popFirst() {
            if done[name] != nil { continue }
            var used = Set<String>()
            done[name] = schema(Schema.def(name), refBase: refBase, used: &used)
            pending.formUnion(used.subtracting(done.keys))
        }
        return done
    }

    static func describe(_ name: String) -> String {
        let short = name.split(separator: ".").last.map(String.init) ?? name
        let known: [String: String] = [
            "Pod":
                "Pod is a collection of containers that can run on a host. This resource is created by clients and scheduled onto hosts.",
            "Deployment": "Deployment enables declarative updates for Pods and ReplicaSets.",
            "ReplicaSet": "ReplicaSet ensures that a specified number of pod replicas are running at any given time.",
            "DaemonSet": "DaemonSet represents the configuration of a daemon set.",
            "Service":
                "Service is a named abstraction of software service (for example, mysql) consisting of local port (for example 3306) that the proxy listens on, and the selector that determines which pods will answer requests sent through the proxy.",
            "Namespace": "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
            "Node":
                "Node is a worker node in Kubernetes. Each node will have a unique identifier in the cache (i.e. in etcd).",
            "ConfigMap": "ConfigMap holds configuration data for pods to consume.",
            "Secret":
                "Secret holds secret data of a certain type. The total bytes of the values in the Data field must be less than MaxSecretSize bytes.",
            "ObjectMeta":
                "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
            "PodSpec": "PodSpec is a description of a pod.",
            "Container": "A single application container that you want to run within a pod.",
            "DeploymentSpec": "DeploymentSpec is the specification of the desired behavior of the Deployment.",
            "ServiceSpec": "ServiceSpec describes the attributes that a user creates on a service.",
            "Lease": "Lease defines a lease concept.",
            "LeaseSpec": "LeaseSpec is a specification of a Lease.",
        ]
        return known[short] ?? "\(short) (served by Berth)."
    }

    static func definition(_ r: ResourceType, refBase: String, used: inout Set<String>) -> JSON {
        var d: JSON
        if let custom = r.custom {
            // The definition's own schema, with metadata as every object's.
            d = custom.version.schemaJSON
            if d.object == nil { d = ["type": "object", "x-kubernetes-preserve-unknown-fields": true] }
            if refBase == "#/definitions/" { d = v2Compatible(d) }
            let meta = Schema.openAPIName("meta.v1.ObjectMeta")
            used.insert(meta)
            d["properties"]["metadata"] = ["$ref": .string(refBase + meta)]
        } else {
            d = schema(Schema.top(r), refBase: refBase, used: &used)
        }
        d["x-kubernetes-group-version-kind"] = [
            ["group": .string(r.group), "version": .string(r.version), "kind": .string(r.kind)]
        ]
        var props = d["properties"]
        props["apiVersion"] = [
            "type": "string",
            "description": "APIVersion defines the versioned schema of this representation of an object.",
        ]
        props["kind"] = [
            "type": "string",
            "description": "Kind is a string value representing the REST resource this object represents.",
        ]
        d["properties"] = props
        return d
    }

    /// Kinds served outside the generic resource path, described so clients find them: the reviews
    /// (created, never stored: kubectl's field validation looks for their POST) and ComponentStatus
    /// (read-only).
    static let createOnlyKinds: Set<String> = Set(AccessReview.all.map(\.kind) + ["SelfSubjectReview", "TokenReview"])
    static let readOnlyKinds: Set<String> = ["ComponentStatus"]
    static let unstoredKinds: [ResourceType] =
        [ComponentStatuses.resource] + AccessReview.all.map(\.resource) + [
            .init(
                group: Discovery.authenticationGroup, version: "v1", kind: "SelfSubjectReview",
                plural: "selfsubjectreviews", singular: "selfsubjectreview", namespaced: false),
            .init(
                group: Discovery.authenticationGroup, version: "v1", kind: "TokenReview", plural: "tokenreviews",
                singular: "tokenreview", namespaced: false),
        ]
    /// Everything the documents describe: the stored kinds and the unstored ones.
    static var documented: [ResourceType] { Registry.all + unstoredKinds }

    static func paths(_ rs: [ResourceType], v3: Bool) -> JSON {
        var paths: [String: JSON] = [:]
        for r in rs {
            let base = r.group.isEmpty ? "/api/v1" : "/apis/\(r.group)/\(r.version)"
            let coll = r.namespaced ? "\(base)/namespaces/{namespace}/\(r.plural)" : "\(base)/\(r.plural)"
            let gvk: JSON = ["group": .string(r.group), "version": .string(r.version), "kind": .string(r.kind)]
            func param(_ n: String) -> JSON {
                v3
                    ? ["name": .string(n), "in": "query", "schema": ["type": "string", "uniqueItems": true]]
                    : ["name": .string(n), "in": "query", "type": "string", "uniqueItems": true]
            }
            func op(_ action: String, _ params: [String]) -> JSON {
                [
                    "operationId": .string("\(action)\(r.kind)"), "x-kubernetes-action": .string(action),
                    "x-kubernetes-group-version-kind": gvk, "parameters": .array(params.map(param)),
                    "responses": ["200": ["description": "OK"]],
                ]
            }
            if createOnlyKinds.contains(r.kind) {
                paths[coll] = ["post": op("post", ["dryRun", "fieldManager", "fieldValidation"])]
                continue
            }
            if readOnlyKinds.contains(r.kind) {
                paths[coll] = ["get": op("list", ["labelSelector", "fieldSelector"])]
                paths[coll + "/{name}"] = ["get": op("get", [])]
                continue
            }
            paths[coll] = [
                "get": op("list", ["labelSelector", "fieldSelector", "limit", "continue", "watch", "resourceVersion"]),
                "post": op("post", ["dryRun", "fieldManager", "fieldValidation"]),
            ]
            paths[coll + "/{name}"] = [
                "get": op("get", []), "put": op("put", ["dryRun", "fieldManager", "fieldValidation"]),
                "patch": op("patch", ["dryRun", "fieldManager", "fieldValidation", "force"]),
                "delete": op("delete", ["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
            ]
        }
        return .object(paths)
    }

    /// A custom kind's definition is named as upstream names it, by its group reversed
    /// (`com.example.stable.v1.CronTab` for stable.example.com/v1).
    static func definitionName(_ r: ResourceType) -> String {
        guard r.custom != nil else { return Schema.definitionName(r) }
        return (r.group.split(separator: ".").reversed().map(String.init) + [r.version, r.kind]).joined(separator: ".")
    }

    /// OpenAPI v2 has no `nullable`, `anyOf`, `oneOf` or `not`: a custom schema in /openapi/v2 goes
    /// without them, as upstream publishes it.
    static func v2Compatible(_ j: JSON) -> JSON {
        switch j {
        case .object(let members):
            var out: [String: JSON] = [:]
            for (k, v) in members where !["nullable", "anyOf", "oneOf", "not"].contains(k) {
                out[k] =
                    ["properties", "definitions"].contains(k)
                    ? .object((v.object ?? [:]).mapValues(v2Compatible)) : v2Compatible(v)
            }
            return .object(out)
        case .array(let items): return .array(items.map(v2Compatible))
        default: return j
        }
    }

    /// The served kinds' definitions and every definition they refer to, transitively.
    static func definitions(_ rs: [ResourceType], refBase: String) -> [String: JSON] {
        var defs: [String: JSON] = [:]
        var used = Set<String>()
        for r in rs { defs[definitionName(r)] = definition(r, refBase: refBase, used: &used) }
        for (name, d) in closure(of: used, refBase: refBase) where defs[name] == nil { defs[name] = d }
        return defs
    }

    /// The built-in kinds' documents, built and written once (kubectl fetches a group's v3 document for
    /// each `apply` and `explain`); custom kinds' are `CustomResourceRegistry`'s, rebuilt when a
    /// definition changes.
    static let v2Document: [UInt8] = v2().serialized()
    static let v2DocumentProtobuf: [UInt8] = OpenAPIv2Protobuf.document(v2())
    static let v3IndexDocument: [UInt8] = v3Index().serialized()
    static let v3Documents: [String: [UInt8]] = Dictionary(
        uniqueKeysWithValues: groupVersions().compactMap { gv in v3(groupVersion: gv).map { (gv, $0.serialized()) } })

    static func v2(adding custom: [ResourceType] = []) -> JSON {
        let types = documented + custom
        let defs = definitions(types, refBase: "#/definitions/")
        return [
            "swagger": "2.0", "info": ["title": "Kubernetes", "version": "v1.32.0"],
            "paths": paths(types, v3: false),
            "definitions": .object(defs),
        ]
    }

    static func groupVersions(_ types: [ResourceType] = documented) -> [String] {
        Array(Set(types.map { $0.group.isEmpty ? "api/v1" : "apis/\($0.group)/\($0.version)" })).sorted()
    }

    /// The index of v3 documents; a custom group version's hash changes with every change of the
    /// custom kinds (`generation`), so clients caching by hash fetch it again.
    static func v3Index(custom: [ResourceType] = [], generation: Int = 0) -> JSON {
        var p: [String: JSON] = [:]
        for gv in groupVersions() { p[gv] = ["serverRelativeURL": .string("/openapi/v3/\(gv)?hash=berth2")] }
        for gv in groupVersions(custom) {
            p[gv] = ["serverRelativeURL": .string("/openapi/v3/\(gv)?hash=berth2-crd\(generation)")]
        }
        return ["paths": .object(p)]
    }

    static func v3(groupVersion: String, types: [ResourceType] = documented) -> JSON? {
        let rs = types.filter {
            ($0.group.isEmpty ? "api/v1" : "apis/\($0.group)/\($0.version)") == groupVersion
        }
        if rs.isEmpty { return nil }
        let schemas = definitions(rs, refBase: "#/components/schemas/")
        return [
            "openapi": "3.0.0", "info": ["title": "Kubernetes", "version": "v1.32.0"], "paths": paths(rs, v3: true),
            "components": ["schemas": .object(schemas)],
        ]
    }
}

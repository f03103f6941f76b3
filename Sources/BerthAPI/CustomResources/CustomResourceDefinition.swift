import Foundation

/// apiextensions.k8s.io/v1 CustomResourceDefinition: stored, defaulted and validated as
/// apiextensions-apiserver does (names, scope, versions with exactly one storage version, structural
/// schemas, subresources, printer columns). Its status (NamesAccepted, Established, acceptedNames,
/// storedVersions) is the `CustomResourceDefinitionController`'s to write; the served types come from it.
struct CustomResourceDefinitionStrategy: ResourceStrategy {
    /// Holds a definition until its custom resources are gone (upstream's finalizer of the same name).
    static let cleanupFinalizer = "customresourcecleanup.apiextensions.k8s.io"

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        var names = obj["spec"]["names"]
        if let kind = names["kind"].string, !kind.isEmpty {
            if (names["singular"].string ?? "").isEmpty { names["singular"] = .string(kind.lowercased()) }
            if (names["listKind"].string ?? "").isEmpty { names["listKind"] = .string(kind + "List") }
        }
        if !obj["spec"]["names"].isNull { obj["spec"]["names"] = names }
        if obj["spec"]["conversion"].isNull { obj["spec"]["conversion"] = ["strategy": "None"] }
    }

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        obj["status"] = [
            "conditions": [], "acceptedNames": ["kind": "", "plural": ""], "storedVersions": [],
        ]
        var finalizers = (obj["metadata"]["finalizers"].array ?? []).compactMap(\.string)
        if !finalizers.contains(Self.cleanupFinalizer) { finalizers.append(Self.cleanupFinalizer) }
        obj["metadata"]["finalizers"] = .array(finalizers.map { .string($0) })
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let spec = obj["spec"]
        let group = spec["group"].string ?? ""
        let plural = spec["names"]["plural"].string ?? ""
        if group.isEmpty {
            errs.append(FieldChecks.required("spec.group"))
        } else {
            errs += FieldChecks.dns1123Subdomain(group, "spec.group")
            if !group.contains(".") {
                errs.append(
                    FieldChecks.invalid("spec.group", .string(group), "should be a domain with at least one dot"))
            }
        }
        if let name = obj["metadata"]["name"].string, !plural.isEmpty, !group.isEmpty, name != "\(plural).\(group)" {
            errs.append(
                FieldChecks.invalid("metadata.name", .string(name), "must be spec.names.plural+\".\"+spec.group"))
        }
        errs += FieldChecks.supported(
            spec["scope"].isNull ? "" : spec["scope"], ["Cluster", "Namespaced"], "spec.scope")
        errs += Self.validateNames(spec["names"], "spec.names")
        errs += FieldChecks.supported(spec["conversion"]["strategy"], ["None"], "spec.conversion.strategy")
        let versions = spec["versions"].array ?? []
        if versions.isEmpty {
            errs.append(
                FieldChecks.required("spec.versions", "must have exactly one version marked as storage version"))
        }
        var seen = Set<String>()
        var storage = 0, served = 0
        for (i, v) in versions.enumerated() {
            let path = "spec.versions[\(i)]"
            let name = v["name"].string ?? ""
            if name.isEmpty {
                errs.append(FieldChecks.required("\(path).name"))
            } else if !Validation.isDNS1035Label(name) {
                errs.append(
                    FieldChecks.invalid(
                        "\(path).name", .string(name),
                        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                    ))
            }
            if !seen.insert(name).inserted {
                errs.append(FieldChecks.invalid("spec.versions", .string(name), "must contain unique version names"))
            }
            if v["storage"].bool == true { storage += 1 }
            if v["served"].bool == true { served += 1 }
            if v["served"].bool == nil { errs.append(FieldChecks.required("\(path).served")) }
            if v["storage"].bool == nil { errs.append(FieldChecks.required("\(path).storage")) }
            let schema = v["schema"]["openAPIV3Schema"]
            if schema.object == nil {
                errs.append(FieldChecks.required("\(path).schema.openAPIV3Schema", "schemas are required"))
            } else {
                _ = StructuralSchema(schema, path: "\(path).schema.openAPIV3Schema", errors: &errs, root: true)
            }
            let scale = v["subresources"]["scale"]
            if !scale.isNull {
                for key in ["specReplicasPath", "statusReplicasPath"] {
                    let p = scale[key].string ?? ""
                    if p.isEmpty {
                        errs.append(FieldChecks.required("\(path).subresources.scale.\(key)"))
                    } else if JSONFieldPath(p) == nil {
                        errs.append(
                            FieldChecks.invalid(
                                "\(path).subresources.scale.\(key)", .string(p), "should be a json path under .spec"))
                    }
                }
            }
            for (c, column) in (v["additionalPrinterColumns"].array ?? []).enumerated() {
                let cp = "\(path).additionalPrinterColumns[\(c)]"
                if (column["name"].string ?? "").isEmpty { errs.append(FieldChecks.required("\(cp).name")) }
                errs += FieldChecks.supported(
                    column["type"].isNull ? "" : column["type"], ["boolean", "date", "integer", "number", "string"],
                    "\(cp).type")
                let jp = column["jsonPath"].string ?? ""
                if jp.isEmpty {
                    errs.append(FieldChecks.required("\(cp).jsonPath"))
                } else if JSONPathExpression(jp) == nil {
                    errs.append(FieldChecks.invalid("\(cp).jsonPath", .string(jp), "must be a simple json path"))
                }
            }
        }
        if !versions.isEmpty && storage != 1 {
            errs.append(
                FieldChecks.invalid(
                    "spec.versions", .string(versions.compactMap { $0["name"].string }.joined(separator: ",")),
                    "must have exactly one version marked as storage version"))
        }
        if !versions.isEmpty && served == 0 {
            errs.append(
                FieldChecks.invalid(
                    "spec.versions", .string(versions.compactMap { $0["name"].string }.joined(separator: ",")),
                    "must have at least one version marked as served"))
        }
        return errs
    }

    static func validateNames(_ names: JSON, _ path: String) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        for key in ["plural", "singular"] {
            let v = names[key].string ?? ""
            if v.isEmpty {
                errs.append(FieldChecks.required("\(path).\(key)"))
            } else {
                errs += FieldChecks.dns1123Label(v, "\(path).\(key)")
            }
        }
        for key in ["kind", "listKind"] {
            let v = names[key].string ?? ""
            if v.isEmpty {
                errs.append(FieldChecks.required("\(path).\(key)", key == "kind" ? "" : "kind must be specified"))
            } else if !Validation.isDNS1035Label(v.lowercased()) {
                errs.append(
                    FieldChecks.invalid(
                        "\(path).\(key)", .string(v),
                        "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?"))
            }
        }
        if let kind = names["kind"].string, kind == names["listKind"].string, !kind.isEmpty {
            errs.append(FieldChecks.invalid("\(path).listKind", .string(kind), "kind and listKind may not be the same"))
        }
        for (i, s) in (names["shortNames"].array ?? []).enumerated() {
            errs += FieldChecks.dns1123Label(s.string ?? "", "\(path).shortNames[\(i)]")
        }
        for (i, c) in (names["categories"].array ?? []).enumerated() {
            errs += FieldChecks.dns1123Label(c.string ?? "", "\(path).categories[\(i)]")
        }
        return errs
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        var errs = FieldChecks.immutable(obj["spec"]["group"], old["spec"]["group"], "spec.group")
        errs += FieldChecks.immutable(obj["spec"]["scope"], old["spec"]["scope"], "spec.scope")
        // A version whose objects are stored must stay until they are migrated (storedVersions).
        let names = Set((obj["spec"]["versions"].array ?? []).compactMap { $0["name"].string })
        for stored in (old["status"]["storedVersions"].array ?? []).compactMap(\.string) where !names.contains(stored) {
            errs.append(
                FieldChecks.invalid(
                    "status.storedVersions[\(stored)]", .string(stored), "must appear in spec.versions"))
        }
        return errs
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn,
            .init(
                name: "Created At", type: "date",
                description:
                    "CreationTimestamp is a timestamp representing the server time when this object was created."),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        [Tables.nameCell(obj), obj["metadata"]["creationTimestamp"]]
    }
}

/// One definition as the server reads it for serving: its names and each version's schema, printer
/// columns and subresources.
struct CustomResourceDefinition: Sendable {
    struct Version: Sendable {
        var name: String
        var served: Bool
        var storage: Bool
        var schemaJSON: JSON
        var schema: StructuralSchema?
        var status: Bool
        var scale: CustomResourceScale?
        var columns: [CustomResourceColumn]
        var selectableFields: [String]
        var deprecationWarning: String?
    }
    var name: String
    var group: String
    var kind: String
    var listKind: String
    var plural: String
    var singular: String
    var shortNames: [String]
    var categories: [String]
    var namespaced: Bool
    var versions: [Version]

    init?(_ obj: JSON) {
        let spec = obj["spec"]
        guard let name = obj["metadata"]["name"].string, let group = spec["group"].string,
            let kind = spec["names"]["kind"].string, let plural = spec["names"]["plural"].string
        else { return nil }
        self.name = name
        self.group = group
        self.kind = kind
        self.plural = plural
        listKind = spec["names"]["listKind"].string ?? kind + "List"
        singular = spec["names"]["singular"].string ?? kind.lowercased()
        shortNames = (spec["names"]["shortNames"].array ?? []).compactMap(\.string)
        categories = (spec["names"]["categories"].array ?? []).compactMap(\.string)
        namespaced = spec["scope"].string != "Cluster"
        versions = (spec["versions"].array ?? []).compactMap { v in
            guard let vname = v["name"].string else { return nil }
            var ignored: [APIError.Cause] = []
            let schemaJSON = v["schema"]["openAPIV3Schema"]
            let schema =
                schemaJSON.object == nil ? nil : StructuralSchema(schemaJSON, path: "", errors: &ignored, root: true)
            let scaleJSON = v["subresources"]["scale"]
            let scale =
                scaleJSON.isNull
                ? nil
                : CustomResourceScale(
                    specReplicasPath: JSONFieldPath(scaleJSON["specReplicasPath"].string ?? "") ?? JSONFieldPath(
                        ".spec.replicas")!,
                    statusReplicasPath: JSONFieldPath(scaleJSON["statusReplicasPath"].string ?? "")
                        ?? JSONFieldPath(".status.replicas")!,
                    labelSelectorPath: scaleJSON["labelSelectorPath"].string.flatMap(JSONFieldPath.init))
            let columns = (v["additionalPrinterColumns"].array ?? []).compactMap { c -> CustomResourceColumn? in
                guard let cname = c["name"].string, let path = c["jsonPath"].string.flatMap(JSONPathExpression.init)
                else { return nil }
                return CustomResourceColumn(
                    name: cname, type: c["type"].string ?? "string", format: c["format"].string ?? "",
                    description: c["description"].string ?? "", priority: Int(c["priority"].int ?? 0), path: path)
            }
            return Version(
                name: vname, served: v["served"].bool ?? false, storage: v["storage"].bool ?? false,
                schemaJSON: schemaJSON, schema: schema, status: !v["subresources"]["status"].isNull, scale: scale,
                columns: columns,
                selectableFields: (v["selectableFields"].array ?? []).compactMap { $0["jsonPath"].string },
                deprecationWarning: v["deprecated"].bool == true
                    ? (v["deprecationWarning"].string ?? "\(group)/\(vname) \(kind) is deprecated") : nil)
        }
    }

    var storageVersion: String? { versions.first(where: \.storage)?.name }

    /// The served versions as resource types, in Kubernetes' version priority order (v1 before v1beta1).
    func resourceTypes() -> [ResourceType] {
        versions.filter(\.served).sorted { APIVersionOrder.before($0.name, $1.name) }.map { v in
            var subresources: [String] = []
            if v.status { subresources.append("status") }
            if v.scale != nil { subresources.append("scale") }
            return ResourceType(
                group: group, version: v.name, kind: kind, plural: plural, singular: singular, namespaced: namespaced,
                shortNames: shortNames, categories: categories, subresources: subresources, hasSpec: true,
                strategy: CustomResourceStrategy(definition: self, version: v))
        }
    }
}

/// Kubernetes' order of API versions (kube-aware sort): GA before beta before alpha, higher numbers
/// first, anything else after, alphabetically.
enum APIVersionOrder {
    static func parse(_ v: String) -> (major: Int, stage: Int, minor: Int)? {
        guard v.hasPrefix("v") else { return nil }
        let rest = v.dropFirst()
        let digits = rest.prefix { $0.isNumber }
        guard let major = Int(digits) else { return nil }
        let tail = rest.dropFirst(digits.count)
        if tail.isEmpty { return (major, 2, 0) }
        for (name, stage) in [("beta", 1), ("alpha", 0)] where tail.hasPrefix(name) {
            guard let minor = Int(tail.dropFirst(name.count)) else { return nil }
            return (major, stage, minor)
        }
        return nil
    }
    static func before(_ a: String, _ b: String) -> Bool {
        switch (parse(a), parse(b)) {
        case (let x?, let y?):
            if x.stage != y.stage { return x.stage > y.stage }
            if x.major != y.major { return x.major > y.major }
            return x.minor > y.minor
        case (.some, nil): return true
        case (nil, .some): return false
        case (nil, nil): return a < b
        }
    }
}

/// The resource types stored CustomResourceDefinitions serve, for code outside the API server's
/// request path (the namespace controller and garbage collector, over any client).
public enum CustomResourceTypes {
    /// The served versions of every definition whose names were accepted.
    public static func served(byDefinitions definitions: [JSON]) -> [ResourceType] {
        definitions.flatMap { obj -> [ResourceType] in
            let accepted = (obj["status"]["conditions"].array ?? []).contains {
                $0["type"].string == "NamesAccepted" && $0["status"].string == "True"
            }
            guard accepted, let crd = CustomResourceDefinition(obj) else { return [] }
            return crd.resourceTypes()
        }
    }

    /// The definitions' resource (apiextensions.k8s.io/v1 customresourcedefinitions).
    public static var definitions: ResourceType { CustomResourceDefinitionController.resource }
}

extension LocalClient {
    /// The custom resources this server serves now.
    public func customResourceTypes() -> [ResourceType] { handler.server.customResources.types }
}

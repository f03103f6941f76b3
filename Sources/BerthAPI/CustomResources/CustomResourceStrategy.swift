import Foundation

/// Where a custom resource keeps its replica counts and selector (a CRD version's `subresources.scale`).
struct CustomResourceScale: Sendable {
    var specReplicasPath: JSONFieldPath
    var statusReplicasPath: JSONFieldPath
    var labelSelectorPath: JSONFieldPath?
}

/// A printer column of a CRD version (`additionalPrinterColumns`).
struct CustomResourceColumn: Sendable {
    var name: String
    var type: String
    var format: String
    var description: String
    var priority: Int
    var path: JSONPathExpression
}

/// The rules of one served version of a custom resource: apiextensions-apiserver's strategy for
/// custom resources. Its schema prunes, defaults and validates; with a status subresource the main
/// resource ignores status and `/status` ignores everything else; `metadata.generation` counts changes
/// to anything but metadata (and status, when it is a subresource).
struct CustomResourceStrategy: ResourceStrategy {
    let definition: CustomResourceDefinition
    let version: CustomResourceDefinition.Version

    init(definition: CustomResourceDefinition, version: CustomResourceDefinition.Version) {
        self.definition = definition
        self.version = version
    }

    var schema: StructuralSchema? { version.schema }

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        schema?.applyDefaults(&obj)
    }

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        if version.status { obj["status"] = .null }
    }

    func prepareForUpdate(_ obj: inout JSON, old: JSON, _ ctx: StrategyContext) throws {
        guard version.status else { return }
        if ctx.subresource == "status" {
            prepareForStatusUpdate(&obj, old: old)
        } else {
            obj["status"] = old["status"]
        }
    }

    /// A write to /status changes the status only: everything else is the stored object's.
    func prepareForStatusUpdate(_ obj: inout JSON, old: JSON) {
        var kept = old
        kept["status"] = obj["status"]
        kept["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
        obj = kept
    }

    func generationChanged(old: JSON, new: JSON, _ r: ResourceType) -> Bool {
        var a = old, b = new
        for key in ["metadata", "apiVersion", "kind"] + (version.status ? ["status"] : []) {
            a[key] = .null; b[key] = .null
        }
        return a != b
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        schema?.validate(obj, path: "", into: &errs, root: true)
        return errs
    }

    /// Transition rules (`oldSelf`) against the stored object; everything else was checked by `validate`.
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        schema?.validate(obj, old: old, path: "", into: &errs, root: true, transitionsOnly: true)
        return errs
    }

    /// Fields the schema does not declare: dropped with a warning (Warn, the default), refused (Strict,
    /// kubectl's default) or dropped silently (Ignore), as for built-in kinds.
    func pruneUnknownFields(_ object: JSON, _ r: ResourceType, _ call: Call) throws -> JSON {
        let validation = try FieldValidation(call)
        guard let schema else { return object }
        var pruned = object
        var unknown: [String] = []
        schema.prune(&pruned, path: "", unknown: &unknown, root: true)
        if unknown.isEmpty { return pruned }
        let names = unknown.sorted().map { "unknown field \"\($0)\"" }
        switch validation {
        case .strict:
            throw APIError.badRequest(
                "\(r.kind) in version \"\(r.version)\" cannot be handled as a \(r.kind): strict decoding error: "
                    + names.joined(separator: ", "))
        case .warn: for name in names { call.warnings.add(name) }
        case .ignore: break
        }
        return pruned
    }

    /// What a stored object reads as: with the defaults its schema has now (upstream defaults on read).
    func fromStorage(_ obj: inout JSON) {
        schema?.applyDefaults(&obj)
    }

    var fieldLabels: FieldLabelSet {
        var getters: [String: FieldLabels.Getter] = [:]
        for path in version.selectableFields {
            guard let field = JSONFieldPath(path) else { continue }
            getters[String(path.dropFirst())] = { obj in
                let v = field.get(obj)
                return v.string ?? (v.isNull ? "" : v.text)
            }
        }
        return FieldLabelSet(getters: getters, ownConversion: false)
    }

    // MARK: printing

    /// Name, then the version's printer columns (Age alone when it declares none, as upstream).
    var tableColumns: [Tables.Column] {
        if version.columns.isEmpty { return [Tables.nameColumn, Tables.ageColumn] }
        return [Tables.nameColumn]
            + version.columns.map {
                Tables.Column(
                    name: $0.name, type: $0.type, format: $0.format, priority: $0.priority, description: $0.description)
            }
    }

    func tableCells(_ obj: JSON) -> [JSON] {
        if version.columns.isEmpty { return [Tables.nameCell(obj), Tables.ageCell(obj)] }
        return [Tables.nameCell(obj)] + version.columns.map { Self.cell($0, obj) }
    }

    /// A column's cell: the first match, as the column's type; nothing (kubectl's `<none>`) without one.
    static func cell(_ column: CustomResourceColumn, _ obj: JSON) -> JSON {
        guard let value = column.path.evaluate(obj).first else { return .null }
        switch column.type {
        case "integer": return value.int.map { .int($0) } ?? .null
        case "number": return value.double != nil ? value : .null
        case "boolean": return value.bool.map { .bool($0) } ?? .null
        case "date":
            guard let s = value.string, let d = APITime.parse(s) else { return .null }
            return .string(Tables.duration(Date().timeIntervalSince(d)))
        default:
            if let s = value.string { return .string(s) }
            return .string(value.text)
        }
    }

    // MARK: scale

    func scale(of obj: JSON) -> JSON {
        guard let scale = version.scale else { return Handler.scaleOf(obj) }
        var out = Handler.scaleOf(obj)
        out["spec"]["replicas"] = .int(scale.specReplicasPath.get(obj).int ?? 0)
        out["status"]["replicas"] = .int(scale.statusReplicasPath.get(obj).int ?? 0)
        if let path = scale.labelSelectorPath, let selector = path.get(obj).string {
            out["status"]["selector"] = .string(selector)
        } else {
            out["status"]["selector"] = .null
        }
        return out
    }

    func setReplicas(_ obj: inout JSON, _ replicas: Int64) {
        guard let scale = version.scale else { obj["spec"]["replicas"] = .int(replicas); return }
        scale.specReplicasPath.set(&obj, .int(replicas))
    }
}

extension ResourceType {
    /// The custom resource's rules, when this is a served version of a CustomResourceDefinition.
    var custom: CustomResourceStrategy? { strategy as? CustomResourceStrategy }
}

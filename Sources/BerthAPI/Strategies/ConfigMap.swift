/// core/v1 ConfigMap (upstream pkg/registry/core/configmap/strategy.go).
struct ConfigMapStrategy: ResourceStrategy {
    func validate(_ obj: JSON) -> [APIError.Cause] { ConfigData.validateKeys(obj) }
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        ConfigData.validateImmutable(obj, old: old, fields: ["data", "binaryData"])
    }

    var tableColumns: [Tables.Column] { [Tables.nameColumn, .init(name: "Data", type: "integer"), Tables.ageColumn] }
    func tableCells(_ obj: JSON) -> [JSON] {
        [
            Tables.nameCell(obj),
            .int(Int64((obj["data"].object?.count ?? 0) + (obj["binaryData"].object?.count ?? 0))), Tables.ageCell(obj),
        ]
    }
}

/// The rules ConfigMaps and Secrets share: key names, and what `immutable: true` freezes
/// (upstream's ValidateConfigMapUpdate, ValidateSecretUpdate).
enum ConfigData {
    static func validateKeys(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        for field in ["data", "binaryData", "stringData"] {
            for k in (obj[field].object ?? [:]).keys where !Validation.isConfigKey(k) {
                errs.append(
                    .init(
                        "\(field)[\(k)]", "FieldValueInvalid",
                        "Invalid value: \"\(k)\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
                    ))
            }
        }
        return errs
    }

    static let immutableMessage = "Forbidden: field is immutable when `immutable` is set"

    /// Once `immutable: true`, `fields` and the flag itself are fixed — only metadata may change and the
    /// object may be deleted.
    static func validateImmutable(_ new: JSON, old: JSON, fields: [String]) -> [APIError.Cause] {
        guard old["immutable"].bool == true else { return [] }
        var errs: [APIError.Cause] = []
        if new["immutable"].bool != true { errs.append(.init("immutable", "FieldValueForbidden", immutableMessage)) }
        for field in fields where !sameMap(new[field], old[field]) {
            errs.append(.init(field, "FieldValueForbidden", immutableMessage))
        }
        return errs
    }

    /// Absent and empty are one value for a map that round-trips through Go (nil and empty both omit).
    private static func sameMap(_ a: JSON, _ b: JSON) -> Bool {
        func norm(_ j: JSON) -> JSON { j.object?.isEmpty == true ? .null : j }
        return norm(a) == norm(b)
    }
}

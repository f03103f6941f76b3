import Foundation

/// core/v1 Secret (upstream pkg/registry/core/secret/strategy.go).
struct SecretStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if obj["type"].isNull { obj["type"] = "Opaque" }
        // stringData is write-only: merged into data (base64).
        if let sd = obj["stringData"].object {
            for (k, v) in sd { obj["data"][k] = .string(Data((v.string ?? "").utf8).base64EncodedString()) }
            obj["stringData"] = .null
        }
    }
    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        if obj["type"].string == "kubernetes.io/service-account-token",
            (obj["metadata"]["annotations"]["kubernetes.io/service-account.name"].string ?? "").isEmpty
        {
            errs.append(
                .init(
                    "metadata.annotations[kubernetes.io/service-account.name]", "FieldValueRequired", "Required value"))
        }
        return errs + ConfigData.validateKeys(obj)
    }
    /// A Secret's type never changes; immutable data as a ConfigMap's (no binaryData on Secrets).
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        if let was = old["type"].string, let now = obj["type"].string, was != now {
            errs.append(.init("type", "FieldValueInvalid", "Invalid value: \(obj["type"].text): field is immutable"))
        }
        return errs + ConfigData.validateImmutable(obj, old: old, fields: ["data"])
    }

    var fieldLabels: FieldLabelSet {
        .init(getters: ["type": FieldLabels.string("type", default: "Opaque")], ownConversion: true)
    }

    var tableColumns: [Tables.Column] {
        [Tables.nameColumn, .init(name: "Type"), .init(name: "Data", type: "integer"), Tables.ageColumn]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        [
            Tables.nameCell(obj), .string(obj["type"].string ?? "Opaque"), .int(Int64(obj["data"].object?.count ?? 0)),
            Tables.ageCell(obj),
        ]
    }
}

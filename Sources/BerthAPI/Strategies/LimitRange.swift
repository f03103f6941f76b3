import BerthKube
import Foundation

/// core/v1 LimitRange (upstream pkg/apis/core/validation ValidateLimitRange and SetDefaults_LimitRangeItem):
/// a namespace's per-container and per-pod bounds on resources, and the defaults the LimitRanger
/// admission gives containers that state none.
struct LimitRangeStrategy: ResourceStrategy {
    static let types = ["Container", "PersistentVolumeClaim", "Pod"]

    /// A Container item's defaults: the limit from max, the request from the limit, else from min.
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        guard var items = obj["spec"]["limits"].array else { return }
        for index in items.indices where items[index]["type"].string == "Container" {
            var item = items[index]
            var defaults = item["default"].object ?? [:]
            var requests = item["defaultRequest"].object ?? [:]
            for (key, value) in item["max"].object ?? [:] where defaults[key] == nil { defaults[key] = value }
            for (key, value) in defaults where requests[key] == nil { requests[key] = value }
            for (key, value) in item["min"].object ?? [:] where requests[key] == nil { requests[key] = value }
            if !defaults.isEmpty { item["default"] = .object(defaults) }
            if !requests.isEmpty { item["defaultRequest"] = .object(requests) }
            items[index] = item
        }
        obj["spec"]["limits"] = .array(items)
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        for (index, item) in (obj["spec"]["limits"].array ?? []).enumerated() {
            let path = "spec.limits[\(index)]"
            let type = item["type"].string ?? ""
            if !Self.types.contains(type) {
                errs.append(
                    .init(
                        "\(path).type", "FieldValueNotSupported",
                        "Unsupported value: \"\(type)\": supported values: \"Container\", \"PersistentVolumeClaim\", \"Pod\""
                    ))
            }
            if type == "Pod" {
                for field in ["default", "defaultRequest"] where !(item[field].object ?? [:]).isEmpty {
                    errs.append(
                        .init(
                            "\(path).\(field)", "FieldValueForbidden",
                            "Forbidden: may not be specified when `type` is 'Pod'"))
                }
            }
            errs += Self.orderErrors(item, path: path)
        }
        return errs
    }

    /// min ≤ default request ≤ default ≤ max for each resource, and a limit/request ratio of at least 1
    /// that min and max leave room for.
    static func orderErrors(_ item: JSON, path: String) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        func amounts(_ field: String) -> [String: (text: String, milli: Int64)] {
            (item[field].object ?? [:]).reduce(into: [:]) { result, entry in
                if let text = entry.value.string, let milli = Quantity.milli(text) { result[entry.key] = (text, milli) }
            }
        }
        let fields = ["min", "max", "default", "defaultRequest"]
        let bounds = Dictionary(uniqueKeysWithValues: fields.map { ($0, amounts($0)) })
        let min = bounds["min"]!, max = bounds["max"]!, ratios = amounts("maxLimitRequestRatio")
        // Upstream's order checks: the smaller field and its words, the larger and its, the field an
        // error names.
        let orders = [
            ("min", "min value", "max", "max value", "min"),
            ("min", "min value", "defaultRequest", "default request value", "defaultRequest"),
            ("defaultRequest", "default request value", "max", "max value", "defaultRequest"),
            ("defaultRequest", "default request value", "default", "default limit value", "defaultRequest"),
            ("min", "min value", "default", "default value", "default"),
            ("default", "default value", "max", "max value", "default"),
        ]
        let keys = Set(fields.flatMap { bounds[$0]!.keys }).sorted()
        for key in keys {
            for (smaller, smallerWords, larger, largerWords, field) in orders {
                guard let low = bounds[smaller]![key], let high = bounds[larger]![key], low.milli > high.milli else {
                    continue
                }
                errs.append(
                    .init(
                        "\(path).\(field)[\(key)]", "FieldValueInvalid",
                        "Invalid value: \"\(low.text)\": \(smallerWords) \(low.text) is greater than \(largerWords) \(high.text)"
                    ))
            }
        }
        for (key, ratio) in ratios.sorted(by: { $0.key < $1.key }) {
            if ratio.milli < 1000 {
                errs.append(
                    .init(
                        "\(path).maxLimitRequestRatio[\(key)]", "FieldValueInvalid",
                        "Invalid value: \"\(ratio.text)\": ratio \(ratio.text) is less than 1"))
            } else if let low = min[key], let high = max[key], low.milli > 0,
                Double(ratio.milli) / 1000 > Double(high.milli) / Double(low.milli)
            {
                errs.append(
                    .init(
                        "\(path).maxLimitRequestRatio[\(key)]", "FieldValueInvalid",
                        "Invalid value: \"\(ratio.text)\": ratio \(ratio.text) is greater than max/min = \(String(format: "%f", Double(high.milli) / Double(low.milli)))"
                    ))
            }
        }
        return errs
    }

    /// kubectl's columns for LimitRanges: the name and when it was made.
    var tableColumns: [Tables.Column] { [Tables.nameColumn, .init(name: "Created At", type: "date")] }
    func tableCells(_ obj: JSON) -> [JSON] {
        [Tables.nameCell(obj), .string(obj["metadata"]["creationTimestamp"].string ?? "")]
    }
}

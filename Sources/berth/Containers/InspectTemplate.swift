import ArgumentParser
import BerthEngine
import Foundation

/// `--format` for inspect: Go-template paths (`{{.State.Status}}`, `{{.NetworkSettings.IPAddress}}`,
/// `{{json .Config.Env}}`, `{{range}}` not supported) over the inspect JSON, printed as Go prints values.
func renderInspect(_ template: String, _ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let tree = try JSONSerialization.jsonObject(with: try encoder.encode(value), options: [.fragmentsAllowed])
    return try expandTemplate(template) { action, asJSON in
        guard action.hasPrefix(".") else { throw ValidationError("template: unsupported action {{\(action)}}") }
        var node: Any? = tree
        for key in action.dropFirst().split(separator: ".") {
            guard let object = node as? [String: Any] else {
                throw ValidationError("template: can't evaluate field \(key)")
            }
            guard object.keys.contains(String(key)) else {
                throw ValidationError("template: can't evaluate field \(key) in type")
            }
            node = object[String(key)]
        }
        guard asJSON else { return goPrint(node) }
        let data = try JSONSerialization.data(
            withJSONObject: node ?? NSNull(), options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

/// The text of a Go template with each `{{ action }}` replaced by `evaluate(action, json)`, where `json`
/// says the action was `json X` (and `action` is X); `\n` and `\t` as typed on a command line count.
func expandTemplate(_ template: String, _ evaluate: (String, Bool) throws -> String) throws -> String {
    var out = ""
    var rest = Substring(template.replacingOccurrences("\\n", "\n").replacingOccurrences("\\t", "\t"))
    while let open = rest.firstRange(of: "{{") {
        out += rest[..<open.lowerBound]
        guard let close = rest[open.upperBound...].firstRange(of: "}}") else {
            throw ValidationError("template: unclosed action in \(template)")
        }
        var action = rest[open.upperBound..<close.lowerBound].trimmingSpaces
        let asJSON = action.hasPrefix("json ")
        if asJSON { action = String(action.dropFirst(5)).trimmingSpaces }
        out += try evaluate(action, asJSON)
        rest = rest[close.upperBound...]
    }
    return out + rest
}

/// fmt.Print's rendering of decoded JSON: maps as map[k:v], slices as [a b], null as <nil>.
func goPrint(_ value: Any?) -> String {
    switch value {
    case nil, is NSNull: return "<nil>"
    case let s as String: return s
    case let n as NSNumber:
        // corelibs Foundation decodes JSON true/false as NSNumbers of type "c" (char).
        if String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
        return n.stringValue
    case let array as [Any]: return "[" + array.map { goPrint($0) }.joined(separator: " ") + "]"
    case let object as [String: Any]:
        return "map[" + object.keys.sorted().map { "\($0):\(goPrint(object[$0]))" }.joined(separator: " ") + "]"
    default: return "\(value!)"
    }
}

/// Docker's inspect layout: a JSON array, indented, keys in declaration order as Go writes them.
func prettyJSON(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
}

import Foundation

/// Upstream's ValidatingAdmissionPolicy type checking (the validating admission policy status
/// controller's TypeChecker), within what Berth's untyped CEL allows: the kinds a policy's
/// matchConstraints name are resolved to their schemas (built-in kinds from the generated table,
/// custom resources from their definition), and every validation's `expression` and
/// `messageExpression` is checked for field selections the schema does not have — `object.spec.foo`
/// where a Deployment's spec has no `foo`, a field of a string, `variables.x` where no variable is
/// named `x`. Upstream compiles the expression against the typed schema and so also finds overloads
/// that do not apply (`object.spec.replicas + 'a'`); Berth checks field references only. The
/// warnings read as cel-go's (`apps/v1, Kind=Deployment: ERROR: <input>:1:12: undefined field 'foo'`
/// with the source line and a caret under the `.`). Warnings never change what the policy does.
struct PolicyTypeChecker {
    /// The served kinds, built-in first (a custom resource cannot shadow one).
    var types: [ResourceType]

    /// Upstream checks at most this many kinds per policy.
    static let maxTypesToCheck = 10

    struct Warning: Equatable {
        var fieldRef: String
        var warning: String
    }

    /// The warnings of `policy` (empty when every expression checks, or no kind it matches is known).
    func check(_ policy: JSON) -> [Warning] {
        let spec = policy["spec"]
        let kinds = typesToCheck(spec["matchConstraints"])
        guard !kinds.isEmpty else { return [] }
        var params = CheckedType.dyn
        if let apiVersion = spec["paramKind"]["apiVersion"].string, let kind = spec["paramKind"]["kind"].string {
            let (group, version) = Self.split(apiVersion)
            if let r = types.first(where: { $0.group == group && $0.version == version && $0.kind == kind }) {
                params = CheckedType.of(r) ?? .dyn
            }
        }
        var out: [Warning] = []
        for (i, v) in (spec["validations"].array ?? []).enumerated() {
            for key in ["expression", "messageExpression"] {
                guard let text = v[key].string, !text.isEmpty else { continue }
                let results = kinds.compactMap { r -> String? in
                    let issues = issues(
                        text, object: CheckedType.of(r) ?? .dyn, params: params, variables: spec["variables"])
                    return issues.isEmpty ? nil : "\(Self.gvkText(r)): \(issues.joined(separator: "\n"))\n"
                }
                if !results.isEmpty {
                    out.append(
                        Warning(fieldRef: "spec.validations[\(i)].\(key)", warning: results.joined(separator: "\n")))
                }
            }
        }
        return out
    }

    /// The kinds the resource rules name exactly (no wildcard group or version; wildcard resources and
    /// subresources skipped), sorted by group, version and kind, at most `maxTypesToCheck`.
    func typesToCheck(_ match: JSON) -> [ResourceType] {
        var found: [String: ResourceType] = [:]
        for rule in match["resourceRules"].array ?? [] {
            let groups = (rule["apiGroups"].array ?? []).compactMap(\.string)
            let versions = (rule["apiVersions"].array ?? []).compactMap(\.string)
            let resources = (rule["resources"].array ?? []).compactMap(\.string).filter {
                !$0.contains("*") && !$0.contains("/")
            }
            guard !groups.contains(where: { $0.contains("*") }), !versions.contains(where: { $0.contains("*") })
            else { continue }
            for group in groups.sorted() {
                for version in versions.sorted() {
                    for plural in resources.sorted() {
                        guard
                            let r = types.first(where: {
                                $0.group == group && $0.version == version && $0.plural == plural
                            }), CheckedType.of(r) != nil
                        else { continue }
                        found["\(r.group)/\(r.version)/\(r.kind)"] = r
                        if found.count == Self.maxTypesToCheck { return Self.sorted(found) }
                    }
                }
            }
        }
        return Self.sorted(found)
    }

    private static func sorted(_ found: [String: ResourceType]) -> [ResourceType] {
        found.values.sorted { ($0.group, $0.version, $0.kind) < ($1.group, $1.version, $1.kind) }
    }

    private static func split(_ apiVersion: String) -> (group: String, version: String) {
        let parts = apiVersion.split(separator: "/", maxSplits: 1).map(String.init)
        return parts.count == 2 ? (parts[0], parts[1]) : ("", apiVersion)
    }

    /// Go's schema.GroupVersionKind.String().
    static func gvkText(_ r: ResourceType) -> String { "\(r.group)/\(r.version), Kind=\(r.kind)" }

    /// The issues of one expression with `object` and `oldObject` of type `object`, as cel-go prints
    /// them (`ERROR: <input>:line:column: message` and the line with a caret).
    func issues(_ text: String, object: CheckedType, params: CheckedType, variables: JSON) -> [String] {
        guard let expression = try? CELParser.parse(text) else { return [] }
        var scope: [String: CheckedType] = ["object": object, "oldObject": object, "params": params]
        var declared: [String: CheckedType] = [:]
        for v in variables.array ?? [] {
            guard let name = v["name"].string else { continue }
            let parsed = v["expression"].string.flatMap { try? CELParser.parse($0) }
            var ignored: [FieldReferenceCheck.Issue] = []
            scope["variables"] = .variables(declared)
            declared[name] = parsed.map { FieldReferenceCheck.type(of: $0, scope, &ignored) } ?? .dyn
        }
        scope["variables"] = .variables(declared)
        var found: [FieldReferenceCheck.Issue] = []
        _ = FieldReferenceCheck.type(of: expression, scope, &found)
        var seen: [String: Int] = [:]
        return found.map { issue in
            let occurrence = seen[issue.field, default: 0]
            seen[issue.field] = occurrence + 1
            return Self.display(issue.message, in: text, at: Self.locate(issue.field, in: text, occurrence: occurrence))
        }
    }

    /// Where the `occurrence`th selection of `.field` starts (its `.`): line and column from 1.
    static func locate(_ field: String, in text: String, occurrence: Int) -> (line: Int, column: Int)? {
        let chars = Array(text), name = Array(field)
        var seen = 0
        for i in chars.indices where chars[i] == "." {
            var j = i + 1
            while j < chars.count && chars[j] == " " { j += 1 }
            guard j + name.count <= chars.count, Array(chars[j..<(j + name.count)]) == name else { continue }
            let after = j + name.count
            if after < chars.count && (chars[after].isLetter || chars[after].isNumber || chars[after] == "_") {
                continue
            }
            if seen == occurrence {
                let before = chars[..<i]
                let line = before.filter { $0 == "\n" }.count + 1
                let column = i - (before.lastIndex(of: "\n").map { $0 + 1 } ?? 0) + 1
                return (line, column)
            }
            seen += 1
        }
        return nil
    }

    static func display(_ message: String, in text: String, at location: (line: Int, column: Int)?) -> String {
        guard let location else { return "ERROR: <input>: \(message)" }
        let line = text.split(separator: "\n", omittingEmptySubsequences: false)[location.line - 1]
        return "ERROR: <input>:\(location.line):\(location.column): \(message)\n | \(line)\n | "
            + String(repeating: ".", count: location.column - 1) + "^"
    }
}

import Foundation

/// One `x-kubernetes-validations` entry of a schema node, compiled.
struct CELValidationRule: Sendable {
    var rule: String
    var expression: CELExpression
    var message: String?
    /// `messageExpression`: a CEL expression whose string is the message (falls back to `message`).
    var messageExpression: CELExpression?
    /// `reason`: the error type (FieldValueInvalid unless FieldValueForbidden, Required or Duplicate).
    var reason: String
    /// `fieldPath`: where the error is reported, relative to the node (`.spec.replicas` style).
    var fieldPath: String?

    init?(_ j: JSON, path: String, errors: inout [APIError.Cause]) {
        guard let rule = j["rule"].string else {
            errors.append(FieldChecks.required("\(path).rule"))
            return nil
        }
        self.rule = rule
        do {
            expression = try CELParser.parse(rule)
            try CELRegexLiteralError.check(expression)
        } catch let error as CELRegexLiteralError {
            errors.append(FieldChecks.invalid("\(path).rule", .string(rule), error.description))
            return nil
        } catch {
            errors.append(FieldChecks.invalid("\(path).rule", .string(rule), "compilation failed: ERROR: \(error)"))
            return nil
        }
        message = j["message"].string
        if let text = j["messageExpression"].string {
            do { messageExpression = try CELParser.parse(text) } catch {
                errors.append(
                    FieldChecks.invalid(
                        "\(path).messageExpression", .string(text),
                        "messageExpression compilation failed: ERROR: \(error)"))
                return nil
            }
        }
        reason =
            ["FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"].first { $0 == j["reason"].string }
            ?? "FieldValueInvalid"
        fieldPath = j["fieldPath"].string
    }

    /// The rule's error for `value` (and `old` for a transition rule), nil when it holds. A transition
    /// rule without an old value is not evaluated, as upstream. The evaluation's cost is taken from
    /// `budget`; once a rule has exhausted it, no further rule of the object runs (upstream's words).
    func check(_ value: JSON, old: JSON?, path: String, budget: CELValidationBudget) -> APIError.Cause? {
        if expression.usesOldSelf && old == nil { return nil }
        guard !budget.isExhausted else { return nil }
        var variables = ["self": value]
        if let old { variables["oldSelf"] = old }
        let evaluator = CELEvaluator(variables: variables)
        let result = Result { try evaluator.eval(expression) }
        if case .failure(let error) = result, let exceeded = error as? CELCostLimitExceeded {
            budget.exhaust()
            return invalid(
                value, path,
                "'\(exceeded)': no further validation rules will be run due to call cost exceeds limit for rule: \(errorName)"
            )
        }
        guard budget.spend(evaluator.cost.cost) else {
            return invalid(
                value, path,
                "validation failed due to running out of cost budget, no further validation rules will be run")
        }
        switch result {
        case .failure(let error as CELError) where error.description.hasPrefix("no such overload"):
            return invalid(
                value, path,
                "'\(error)': call arguments did not match a supported operator, function or macro signature for rule: \(errorName)"
            )
        case .failure(let error):
            // no such key, index out of bounds, integer overflow, a pattern that is not RE2 …
            return invalid(value, path, "\(error) evaluating rule: \(errorName)")
        case .success(let outcome):
            guard let holds = outcome.bool else { return problem(value, path, "failed rule: \(rule)") }
            if holds { return nil }
            return problem(
                value, path,
                evaluator.failureMessage(messageExpression, message: message, otherwise: "failed rule: \(rule)"))
        }
    }

    /// An evaluation's error: upstream reports it at the node, as an invalid value, whatever the rule's
    /// reason and fieldPath.
    private func invalid(_ value: JSON, _ path: String, _ detail: String) -> APIError.Cause {
        .init(
            path.isEmpty ? "<nil>" : path, "FieldValueInvalid",
            "Invalid value: \"\(StructuralSchema.typeName(value))\": \(detail)")
    }

    /// How upstream names the rule in an evaluation error (`ruleErrorString`): its message if it has one.
    private var errorName: String {
        (message?.isEmpty == false ? message! : rule).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func problem(_ value: JSON, _ path: String, _ detail: String) -> APIError.Cause {
        var at = path.isEmpty ? "<nil>" : path
        if let fieldPath, fieldPath.hasPrefix(".") {
            at = (path.isEmpty ? "" : path) + (path.isEmpty ? String(fieldPath.dropFirst()) : fieldPath)
        }
        switch reason {
        case "FieldValueForbidden": return .init(at, reason, "Forbidden: \(detail)")
        case "FieldValueRequired": return .init(at, reason, "Required value: \(detail)")
        case "FieldValueDuplicate": return .init(at, reason, "Duplicate value: \(detail)")
        default:
            return .init(at, "FieldValueInvalid", "Invalid value: \"\(StructuralSchema.typeName(value))\": \(detail)")
        }
    }
}

extension CELEvaluator {
    /// What a failed rule or validation says, as upstream's CRD validator and admission policies both
    /// write it: its messageExpression's string when that evaluates to one non-empty line, else its
    /// message, else `otherwise`.
    func failureMessage(_ messageExpression: CELExpression?, message: String?, otherwise: String) -> String {
        if let messageExpression, let text = (try? eval(messageExpression))?.string, !text.isEmpty,
            !text.contains("\n")
        {
            return text
        }
        return message ?? otherwise
    }
}

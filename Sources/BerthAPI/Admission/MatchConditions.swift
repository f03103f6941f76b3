import Foundation

/// The `matchConditions` of a webhook or ValidatingAdmissionPolicy, compiled once per change of the
/// configuration: CEL expressions over the request that must all hold for it to be admitted by them.
/// One evaluation for both, so webhooks and policies cannot drift apart in what a condition means.
struct MatchConditions: Sendable {
    struct Condition: Sendable {
        var name: String
        var expression: CELExpression
    }

    enum Outcome: Equatable {
        /// Every condition holds (or there are none).
        case matches
        /// A condition is false: the webhook or policy leaves the request alone.
        case excluded
        /// A condition could not be evaluated; what that means is the failure policy's to say.
        case failed(condition: String, reason: String)
    }

    var conditions: [Condition]

    /// Conditions that do not compile are left out: validation refuses them when they are written.
    init(_ list: JSON) {
        conditions = (list.array ?? []).compactMap { c in
            guard let text = c["expression"].string, let parsed = try? CELParser.parse(text) else { return nil }
            return Condition(name: c["name"].string ?? "", expression: parsed)
        }
    }

    var isEmpty: Bool { conditions.isEmpty }

    /// Upstream's matcher: any condition that is false excludes the request, even after one that
    /// could not be evaluated (or is not a bool); only when none is false does the first such error
    /// fail it.
    func evaluate(_ variables: [String: JSON]) -> Outcome {
        var failure: Outcome?
        for condition in conditions {
            do {
                // An evaluator, and so a cost limit, per condition: upstream's limit is per expression.
                let evaluator = CELEvaluator(variables: variables)
                guard let holds = try evaluator.eval(condition.expression).bool else {
                    throw CELError("match condition did not evaluate to a bool")
                }
                if !holds { return .excluded }
            } catch {
                if failure == nil { failure = .failed(condition: condition.name, reason: "\(error)") }
            }
        }
        return failure ?? .matches
    }
}

@testable import BerthAPI
import Testing

/// matchConditions as upstream's matcher evaluates them: a false condition excludes the request even
/// after one that errs; an error fails it only when nothing is false.
@Suite struct MatchConditionsTests {
    static func conditions(_ expressions: [String]) -> MatchConditions {
        MatchConditions(
            .array(
                expressions.enumerated().map { ["name": .string("c\($0.offset)"), "expression": .string($0.element)] }))
    }
    let request: [String: JSON] = ["request": ["namespace": "team", "name": "web"]]

    @Test func falseWinsOverAnError() {
        #expect(Self.conditions(["request.namespace == 'team'"]).evaluate(request) == .matches)
        #expect(Self.conditions(["request.nope.deeper == 1", "request.name == 'db'"]).evaluate(request) == .excluded)
        guard
            case .failed(let name, _) = Self.conditions(["request.name == 'web'", "request.nope.deeper == 1"]).evaluate(
                request)
        else {
            Issue.record("an error with nothing false fails")
            return
        }
        #expect(name == "c1")
        guard case .failed(let first, _) = Self.conditions(["'a'", "request.nope.deeper == 1"]).evaluate(request) else {
            Issue.record("a condition that is not a bool fails")
            return
        }
        #expect(first == "c0")
        #expect(Self.conditions([]).evaluate(request) == .matches)
    }
}

@testable import BerthAPI
import Testing

/// CEL's regular-expression functions on the RE2 engine, a bad pattern refused where upstream refuses
/// it, and the runtime cost limit that stops a rule from running as long as an object's author likes.
@Suite("CEL regular expressions and cost")
struct CELCostAndRegexTests {
    func eval(_ rule: String, _ variables: [String: JSON] = [:]) throws -> JSON {
        try CELEvaluator(variables: variables).eval(try CELParser.parse(rule))
    }

    /// The message of the CEL error `rule` fails with ("" when it does not fail).
    func failure(_ rule: String, _ variables: [String: JSON] = [:]) -> String {
        do {
            _ = try eval(rule, variables)
            return ""
        } catch { return "\(error)" }
    }

    /// A schema's definition errors and, for `value`, its validation errors, as `field: message`.
    func check(_ schema: String, _ value: String? = nil) throws -> (definition: [String], value: [String]) {
        var definition: [APIError.Cause] = []
        let s = StructuralSchema(try JSON.parse(Array(schema.utf8)), path: "schema", errors: &definition, root: true)
        var errors: [APIError.Cause] = []
        if let value { s.validate(try JSON.parse(Array(value.utf8)), path: "", into: &errors, root: true) }
        return (definition.map { "\($0.field): \($0.message)" }, errors.map { "\($0.field): \($0.message)" })
    }

    @Test func matchesFindAndFindAllHaveRE2Semantics() throws {
        #expect(try eval("'abc'.matches('b')") == true)
        #expect(try eval("matches('abc', '^b')") == false)
        #expect(try eval("'abc 123 def 456'.find('[0-9]+')") == "123")
        #expect(try eval("'abc'.find('[0-9]+')") == "")
        #expect(try eval("'abc 123 def 456'.findAll('[0-9]+')") == ["123", "456"])
        #expect(try eval("'abc 123 def 456'.findAll('[0-9]+', 1)") == ["123"])
        #expect(try eval("'abc 123 def 456'.findAll('[0-9]+', -1)") == ["123", "456"])
        #expect(try eval("'ab'.find('a|ab')") == "a")
        let long = JSON.string(String(repeating: "a", count: 10_000) + "!")
        #expect(try eval("self.matches('^(a+)+$')", ["self": long]) == false)
    }

    @Test func aPatternFromTheObjectThatIsNotRE2FailsTheEvaluation() {
        #expect(failure("'a'.matches(p)", ["p": "(a)\\1"]) == #"error parsing regexp: invalid escape sequence: `\1`"#)
        #expect(
            failure("'a'.find(p)", ["p": "(?=a)"]) == "error parsing regexp: invalid or unsupported Perl syntax: `(?=`")
        #expect(failure("'a'.matches(1)").contains("no such overload"))
    }

    @Test func aLiteralPatternThatIsNotRE2IsRefusedWithTheRule() throws {
        let schema = #"""
            {"type":"object","properties":{"spec":{"type":"object","x-kubernetes-validations":[
              {"rule":"self.s.matches('x++')"},
              {"rule":"self.s.find(')') == ''"},
              {"rule":"self.s.findAll('(?<=a)b').size() == 0"},
              {"rule":"self.s.matches(self.p)"}],
            "properties":{"s":{"type":"string"},"p":{"type":"string"}}}}}
            """#
        let (definition, _) = try check(schema)
        let at = "schema.properties[spec].x-kubernetes-validations"
        #expect(
            definition == [
                #"\#(at)[0].rule: Invalid value: "self.s.matches('x++')": compilation failed: ERROR: invalid matches argument"#,
                #"\#(at)[1].rule: Invalid value: "self.s.find(')') == ''": program instantiation failed: error parsing regexp: unexpected ): `)`"#,
                #"\#(at)[2].rule: Invalid value: "self.s.findAll('(?<=a)b').size() == 0": program instantiation failed: error parsing regexp: invalid named capture: `(?<=a)b`"#,
            ])
    }

    @Test func aRuntimePatternErrorIsReportedAsUpstreamReportsEvaluationErrors() throws {
        let schema = #"""
            {"type":"object","properties":{"spec":{"type":"object",
              "x-kubernetes-validations":[{"rule":"self.s.matches(self.p)"}],
              "properties":{"s":{"type":"string"},"p":{"type":"string"}}}}}
            """#
        let (_, errors) = try check(schema, #"{"spec":{"s":"a","p":"("}}"#)
        #expect(
            errors == [
                #"spec: Invalid value: "object": error parsing regexp: missing closing ): `(` evaluating rule: self.s.matches(self.p)"#
            ])
        #expect(try check(schema, #"{"spec":{"s":"a","p":"^a$"}}"#).value.isEmpty)
    }

    @Test func anEvaluationPastThePerCallLimitIsAbandoned() throws {
        let cube = "self.all(x, self.all(y, self.all(z, true)))"
        let small = JSON.array(Array(repeating: .int(1), count: 20))
        #expect(try eval(cube, ["self": small]) == true)
        // 150³ iterations: past 1,000,000.
        let large = JSON.array(Array(repeating: .int(1), count: 150))
        #expect(failure(cube, ["self": large]) == "operation cancelled: actual cost limit exceeded")
        // Abandoning is no error that a decisive other side of || or && absorbs.
        #expect(failure("\(cube) || true", ["self": large]) == "operation cancelled: actual cost limit exceeded")
        // A regular expression is charged before it runs, by the text's and the pattern's length.
        let text = JSON.string(String(repeating: "a", count: 100_000))
        let pattern = JSON.string(String(repeating: "a?", count: 2_000))
        #expect(
            failure("s.matches(p)", ["s": text, "p": pattern]) == "operation cancelled: actual cost limit exceeded")
    }

    @Test func aRuleOverTheLimitGetsUpstreamsFieldError() throws {
        let schema = #"""
            {"type":"object","properties":{"spec":{"type":"object","properties":{"items":{"type":"array","maxItems":150,
              "items":{"type":"integer"},
              "x-kubernetes-validations":[{"rule":"self.all(x, self.all(y, self.all(z, x + y + z >= 0)))"}]}}}}}
            """#
        let items = Array(repeating: "1", count: 150).joined(separator: ",")
        let (definition, errors) = try check(schema, #"{"spec":{"items":[\#(items)]}}"#)
        #expect(definition.isEmpty)
        #expect(
            errors == [
                #"spec.items: Invalid value: "array": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.all(x, self.all(y, self.all(z, x + y + z >= 0)))"#
            ])
        #expect(try check(schema, #"{"spec":{"items":[1,2,3]}}"#).value.isEmpty)
    }

    @Test func aRulePastTheLimitStopsTheObjectsOtherRules() throws {
        let schema = #"""
            {"type":"object","properties":{"spec":{"type":"object","properties":{
              "a":{"type":"array","maxItems":150,"items":{"type":"integer"},
                "x-kubernetes-validations":[{"rule":"self.all(x, self.all(y, self.all(z, true)))"}]},
              "b":{"type":"string","x-kubernetes-validations":[{"rule":"self == 'never'"}]}}}}}
            """#
        let items = Array(repeating: "1", count: 150).joined(separator: ",")
        let (_, errors) = try check(schema, #"{"spec":{"a":[\#(items)],"b":"x"}}"#)
        #expect(errors.count == 1 && errors.first?.hasPrefix("spec.a: ") == true, "\(errors)")
        // Without the expensive list, the other rule runs.
        #expect(
            try check(schema, #"{"spec":{"a":[1],"b":"x"}}"#).value == [
                #"spec.b: Invalid value: "string": failed rule: self == 'never'"#
            ])
    }

    @Test func theRulesOfOneObjectShareOneBudget() throws {
        var definition: [APIError.Cause] = []
        let schema = #"""
            {"type":"object","properties":{"spec":{"type":"array","items":{"type":"array","items":{"type":"integer"},
              "x-kubernetes-validations":[{"rule":"self.all(x, x > 0)"}]}}}}
            """#
        let s = StructuralSchema(try JSON.parse(Array(schema.utf8)), path: "schema", errors: &definition, root: true)
        let row = "[" + Array(repeating: "1", count: 10).joined(separator: ",") + "]"
        let value = try JSON.parse(
            Array(#"{"spec":[\#(Array(repeating: row, count: 50).joined(separator: ","))]}"#.utf8))
        // Each row's rule is cheap; fifty of them are not, against a budget this small (upstream's is
        // CELValidationBudget.perObject).
        var errors: [APIError.Cause] = []
        s.validate(value, path: "", into: &errors, root: true, budget: CELValidationBudget(1_000))
        #expect(
            errors.map(\.message) == [
                #"Invalid value: "array": validation failed due to running out of cost budget, no further validation rules will be run"#
            ])
        errors = []
        s.validate(value, path: "", into: &errors, root: true)
        #expect(errors.isEmpty)
    }
}

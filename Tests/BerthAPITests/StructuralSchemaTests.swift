@testable import BerthAPI
import Testing

/// A custom resource schema's pruning, defaulting and validation, its CEL rules and the printer columns'
/// JSONPath, without a server (issue 16).
@Suite("structural schemas and CEL")
struct StructuralSchemaTests {
    func schema(_ text: String) throws -> StructuralSchema {
        var errors: [APIError.Cause] = []
        let s = StructuralSchema(try JSON.parse(Array(text.utf8)), path: "schema", errors: &errors, root: true)
        #expect(errors.isEmpty, "\(errors.map(\.message))")
        return s
    }

    func errors(_ s: StructuralSchema, _ value: String, old: String? = nil) throws -> [String] {
        var errs: [APIError.Cause] = []
        let v = try JSON.parse(Array(value.utf8))
        if let old {
            s.validate(
                v, old: try JSON.parse(Array(old.utf8)), path: "", into: &errs, root: true, transitionsOnly: true)
        } else {
            s.validate(v, path: "", into: &errs, root: true)
        }
        return errs.map { "\($0.field): \($0.message)" }
    }

    @Test func pruningKeepsWhatTheSchemaDeclaresOrPreserves() throws {
        let s = try schema(
            #"{"type":"object","properties":{"spec":{"type":"object","properties":{"a":{"type":"string"},"free":{"type":"object","x-kubernetes-preserve-unknown-fields":true},"labels":{"type":"object","additionalProperties":{"type":"string"}},"n":{"type":"integer","nullable":true},"m":{"type":"integer"}}}}}"#
        )
        var obj = try JSON.parse(
            Array(
                #"{"apiVersion":"x/v1","kind":"K","metadata":{"name":"a"},"spec":{"a":"x","b":1,"free":{"q":[1]},"labels":{"k":"v"},"n":null,"m":null},"other":true}"#
                    .utf8))
        var unknown: [String] = []
        s.prune(&obj, path: "", unknown: &unknown, root: true)
        #expect(unknown.sorted() == ["other", "spec.b"])
        #expect(obj["spec"]["free"]["q"] == [1] && obj["spec"]["labels"]["k"] == "v" && obj["metadata"]["name"] == "a")
        // A null is kept only where the schema is nullable.
        #expect(obj["spec"].object?["n"] == .null && obj["spec"].object?["m"] == nil)
    }

    @Test func defaultsFillAbsentMembersAtEveryDepth() throws {
        let s = try schema(
            #"{"type":"object","properties":{"spec":{"type":"object","default":{},"properties":{"size":{"type":"integer","default":3},"items":{"type":"array","items":{"type":"object","properties":{"on":{"type":"boolean","default":true}}}}}}}}"#
        )
        var obj = try JSON.parse(Array(#"{"spec":null}"#.utf8))
        s.applyDefaults(&obj)
        #expect(obj["spec"]["size"] == 3)
        obj = try JSON.parse(Array(#"{"spec":{"size":1,"items":[{},{"on":false}]}}"#.utf8))
        s.applyDefaults(&obj)
        #expect(
            obj["spec"]["size"] == 1 && obj["spec"]["items"][0]["on"] == true && obj["spec"]["items"][1]["on"] == false)
    }

    @Test func validationSpeaksUpstreamsWords() throws {
        let s = try schema(
            #"{"type":"object","properties":{"spec":{"type":"object","required":["name"],"properties":{"name":{"type":"string","minLength":2,"pattern":"^[a-z]+$"},"count":{"type":"integer","minimum":0,"exclusiveMaximum":true,"maximum":5,"multipleOf":2},"port":{"x-kubernetes-int-or-string":true},"tags":{"type":"array","maxItems":2,"items":{"type":"string"}},"ports":{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["p"],"items":{"type":"object","properties":{"p":{"type":"integer"}}}},"kind":{"type":"string","oneOf":[{"enum":["a"]},{"enum":["b"]}]}}}}}"#
        )
        #expect(
            try errors(
                s, #"{"spec":{"name":"ok","count":4,"port":"http","tags":["a"],"ports":[{"p":1},{"p":2}],"kind":"a"}}"#
            ).isEmpty)
        let errs = try errors(
            s, #"{"spec":{"name":"A","count":5,"port":1.5,"tags":["a","b","c"],"ports":[{"p":1},{"p":1}],"kind":"c"}}"#)
        let expected = [
            #"spec.name: Invalid value: "A": spec.name in body should be at least 2 chars long"#,
            #"spec.name: Invalid value: "A": spec.name in body should match '^[a-z]+$'"#,
            "spec.count: Invalid value: 5: spec.count in body should be less than 5",
            "spec.count: Invalid value: 5: spec.count in body should be a multiple of 2",
            #"spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number""#,
            "spec.tags: Too many: 3: must have at most 2 items",
            #"spec.ports[1]: Duplicate value: map["p":1]"#,
            #"spec.kind: Invalid value: "c": must validate one and only one schema (oneOf)"#,
        ]
        for e in expected { #expect(errs.contains(e), "\(e) in \(errs)") }
        #expect(try errors(s, #"{"spec":{}}"#) == ["spec.name: Required value"])
        #expect(
            try errors(s, #"{"spec":"x"}"#) == [
                #"spec: Invalid value: "string": spec in body must be of type object: "string""#
            ])
    }

    @Test func schemasThatAreNotStructuralAreRefused() {
        var errors: [APIError.Cause] = []
        _ = StructuralSchema(
            try! JSON.parse(
                Array(
                    #"{"type":"object","properties":{"a":{"properties":{"b":{"type":"string"}}},"l":{"type":"array"},"t":{"type":"strin"},"r":{"type":"string","pattern":"("},"c":{"type":"string","x-kubernetes-validations":[{"rule":"self.startsWith("}]}}}"#
                        .utf8)), path: "s", errors: &errors, root: true)
        let text = errors.map { "\($0.field): \($0.message)" }
        for e in [
            "s.properties[a].type: Required value: must not be empty for specified object fields",
            "s.properties[l].items: Required value: must be specified",
            #"s.properties[t].type: Unsupported value: "strin""#,
            "s.properties[r].pattern: Invalid value",
            "s.properties[c].x-kubernetes-validations[0].rule: Invalid value",
        ] {
            #expect(text.contains { $0.hasPrefix(e) }, "\(e) in \(text)")
        }
    }

    @Test func celRulesAreEvaluatedWithTheirMessagesAndTransitions() throws {
        let s = try schema(
            #"{"type":"object","properties":{"spec":{"type":"object","x-kubernetes-validations":[{"rule":"self.min <= self.max","message":"min must not exceed max"},{"rule":"!has(self.mode) || self.mode in ['a', 'b']"},{"rule":"self.name == oldSelf.name","message":"name is immutable","reason":"FieldValueForbidden"}],"properties":{"min":{"type":"integer"},"max":{"type":"integer"},"mode":{"type":"string"},"name":{"type":"string"},"tags":{"type":"array","items":{"type":"string"},"x-kubernetes-validations":[{"rule":"self.all(t, t.size() <= 4 && t.matches('^[a-z]+$'))"},{"rule":"size(self) == 0 || self.exists_one(t, t == 'main')","fieldPath":".tags"}]}}}}}"#
        )
        #expect(try errors(s, #"{"spec":{"min":1,"max":2,"name":"x","tags":["main","ab"]}}"#).isEmpty)
        let errs = try errors(s, #"{"spec":{"min":3,"max":2,"mode":"c","name":"x","tags":["toolong","B"]}}"#)
        #expect(errs.contains(#"spec: Invalid value: "object": min must not exceed max"#), "\(errs)")
        #expect(
            errs.contains(#"spec: Invalid value: "object": failed rule: !has(self.mode) || self.mode in ['a', 'b']"#),
            "\(errs)")
        #expect(errs.contains { $0.hasPrefix(#"spec.tags: Invalid value: "array": failed rule: self.all"#) }, "\(errs)")
        // A transition rule: only on update, against the stored value.
        #expect(
            try errors(s, #"{"spec":{"min":1,"max":2,"name":"y"}}"#, old: #"{"spec":{"min":1,"max":2,"name":"x"}}"#)
                == ["spec: Forbidden: name is immutable"])
        #expect(
            try errors(s, #"{"spec":{"min":1,"max":2,"name":"x"}}"#, old: #"{"spec":{"min":1,"max":2,"name":"x"}}"#)
                .isEmpty)
    }

    @Test func formatsAndMessageExpressions() throws {
        let s = try schema(
            #"{"type":"object","properties":{"spec":{"type":"object","x-kubernetes-validations":[{"rule":"self.replicas <= 5","messageExpression":"'replicas ' + string(self.replicas) + ' is over 5'"},{"rule":"self.replicas >= 0","messageExpression":"self.nothing","message":"replicas must not be negative"}],"properties":{"replicas":{"type":"integer"},"id":{"type":"string","format":"uuid"},"at":{"type":"string","format":"date-time"},"day":{"type":"string","format":"date"},"ip":{"type":"string","format":"ipv4"},"net":{"type":"string","format":"cidr"},"host":{"type":"string","format":"hostname"},"blob":{"type":"string","format":"byte"},"odd":{"type":"string","format":"no-such-format"}}}}}"#
        )
        #expect(
            try errors(
                s,
                #"{"spec":{"replicas":1,"id":"0f8fad5b-d9cb-469f-a165-70867728950e","at":"2026-12-06T10:00:00Z","day":"2024-02-29","ip":"10.0.0.1","net":"10.0.0.0/8","host":"web.example.com","blob":"aGk=","odd":"anything"}}"#
            ).isEmpty)
        let errs = try errors(
            s,
            #"{"spec":{"replicas":7,"id":"nope","at":"yesterday","day":"2026-02-30","ip":"300.1.1.1","net":"10.0.0.0","host":"-bad-","blob":"***"}}"#
        )
        for expected in [
            #"spec: Invalid value: "object": replicas 7 is over 5"#,
            #"spec.id: Invalid value: "nope": spec.id in body must be of type uuid: "nope""#,
            #"spec.at: Invalid value: "yesterday": spec.at in body must be of type date-time: "yesterday""#,
            #"spec.day: Invalid value: "2026-02-30": spec.day in body must be of type date: "2026-02-30""#,
            #"spec.ip: Invalid value: "300.1.1.1": spec.ip in body must be of type ipv4: "300.1.1.1""#,
            #"spec.net: Invalid value: "10.0.0.0": spec.net in body must be of type cidr: "10.0.0.0""#,
            #"spec.host: Invalid value: "-bad-": spec.host in body must be of type hostname: "-bad-""#,
            #"spec.blob: Invalid value: "***": spec.blob in body must be of type byte: "***""#,
        ] {
            #expect(errs.contains(expected), "\(expected) in \(errs)")
        }
        // A messageExpression that fails falls back to the message.
        #expect(
            try errors(s, #"{"spec":{"replicas":-1}}"#) == [
                #"spec: Invalid value: "object": replicas must not be negative"#
            ])
        // One that does not compile is the definition's error.
        var definitionErrors: [APIError.Cause] = []
        _ = StructuralSchema(
            try JSON.parse(
                Array(
                    #"{"type":"object","x-kubernetes-validations":[{"rule":"true","messageExpression":"'a' +"}]}"#.utf8)
            ),
            path: "schema", errors: &definitionErrors, root: true)
        #expect(definitionErrors.map(\.field) == ["schema.x-kubernetes-validations[0].messageExpression"])
    }

    @Test func celLibrariesOfQuantitiesURLsDurationsAndTimestamps() throws {
        func eval(_ rule: String, _ selfValue: String = "{}") throws -> JSON {
            try CELEvaluator(variables: ["self": try JSON.parse(Array(selfValue.utf8))]).eval(try CELParser.parse(rule))
        }
        let limits = #"{"memory":"512Mi","cpu":"250m","timeout":"90s","at":"2026-12-06T10:00:00Z"}"#
        #expect(try eval("quantity(self.memory).isLessThan(quantity('1Gi'))", limits) == true)
        #expect(try eval("quantity(self.cpu).compareTo(quantity('0.25'))", limits) == 0)
        #expect(try eval("quantity('1.5').add(quantity('500m')).asInteger()") == 2)
        #expect(try eval("quantity(self.cpu).isInteger() || !isQuantity('12 apples')", limits) == true)
        #expect(try eval("url('https://example.com:8443/a%20b?x=1&x=2').getHost()") == "example.com:8443")
        #expect(try eval("url('https://example.com/a%20b?x=1&x=2').getEscapedPath()") == "/a%20b")
        #expect(try eval("url('https://example.com/?x=1&x=2').getQuery()") == ["x": ["1", "2"]])
        #expect(try eval("isURL('not a url') == false && isURL('/relative/path')") == true)
        #expect(
            try eval("duration(self.timeout) > duration('1m') && duration(self.timeout) < duration('1h30m')", limits)
                == true)
        #expect(try eval("timestamp(self.at) - timestamp('2026-12-06T09:59:00Z') == duration('60s')", limits) == true)
        #expect(throws: CELError.self) { try eval("quantity('12 apples')") }
        #expect(throws: CELError.self) { try eval("duration('forever')") }
    }

    @Test func celOperatorsAndFunctions() throws {
        func eval(_ rule: String, _ selfValue: String = "{}") throws -> JSON {
            try CELEvaluator(variables: ["self": try JSON.parse(Array(selfValue.utf8))]).eval(try CELParser.parse(rule))
        }
        #expect(try eval("1 + 2 * 3 == 7 && 7 / 2 == 3 && 7 % 4 == 3 && -2 < 0") == true)
        #expect(try eval("1.5 * 2.0 == 3.0 && 'ab' + 'c' == 'abc' && [1, 2] + [3] == [1, 2, 3]") == true)
        #expect(try eval("self.a.b > 1 ? 'big' : 'small'", #"{"a":{"b":5}}"#) == "big")
        #expect(try eval("has(self.a) && !has(self.z)", #"{"a":1}"#) == true)
        #expect(try eval("self.l.filter(x, x > 1).map(x, x * 10) == [20, 30]", #"{"l":[1,2,3]}"#) == true)
        #expect(
            try eval(
                "self.m.all(k, k.startsWith('x')) && 'x1' in self.m && size(self.m) == 2", #"{"m":{"x1":1,"x2":2}}"#)
                == true)
        #expect(
            try eval("'Hello'.lowerAscii().endsWith('lo') && ' a '.trim() == 'a' && 'abc'.indexOf('c') == 2") == true)
        #expect(try eval("int('42') + 1 == 43 && string(7) == '7' && double(1) == 1.0") == true)
        // An error on one side of || is absorbed when the other side decides, as CEL's commutative logic.
        #expect(try eval("self.missing == 1 || true") == true)
        #expect(throws: CELError.self) { try eval("self.missing == 1") }
        #expect(throws: CELError.self) { try eval("1 + 'a'") }
        #expect(throws: CELError.self) { try CELParser.parse("self.a +") }
    }

    @Test func printerColumnPaths() throws {
        let obj = try JSON.parse(
            Array(
                #"{"status":{"conditions":[{"type":"Ready","status":"False"},{"type":"Synced","status":"True"}]},"spec":{"list":[{"n":1},{"n":2}]}}"#
                    .utf8))
        #expect(JSONPathExpression(#".status.conditions[?(@.type=="Synced")].status"#)?.evaluate(obj) == ["True"])
        #expect(JSONPathExpression(".spec.list[*].n")?.evaluate(obj) == [1, 2])
        #expect(JSONPathExpression(".spec.list[-1].n")?.evaluate(obj) == [2])
        #expect(JSONPathExpression("{.spec.list[0]['n']}")?.evaluate(obj) == [1])
        #expect(JSONPathExpression("spec") == nil)
        #expect(APIVersionOrder.before("v1", "v2beta1") && APIVersionOrder.before("v1beta2", "v1beta1"))
        #expect(APIVersionOrder.before("v1alpha1", "foo") && APIVersionOrder.before("v2", "v1"))
    }
}

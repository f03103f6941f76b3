@testable import BerthAPI
import Testing

/// The ValidatingAdmissionPolicy type checker (status.typeChecking): CEL field references checked
/// against the matched kinds' schemas, without a server.
@Suite("ValidatingAdmissionPolicy type checking")
struct PolicyTypeCheckerTests {
    @Test func thePolicyTypeCheckerFindsFieldsTheKindDoesNotHave() {
        let checker = PolicyTypeChecker(types: Registry.all)
        let deployments: JSON = [
            "resourceRules": [
                ["apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]]
            ]
        ]
        func warnings(_ expressions: [String], params: JSON = .null, variables: JSON = []) -> [PolicyTypeChecker
            .Warning]
        {
            var spec: JSON = [
                "matchConstraints": deployments,
                "validations": .array(expressions.map { ["expression": .string($0)] }), "variables": variables,
            ]
            if !params.isNull { spec["paramKind"] = params }
            return checker.check(["spec": spec])
        }
        #expect(checker.typesToCheck(deployments).map(\.kind) == ["Deployment"])
        #expect(warnings(["object.spec.replicas > 0 && has(object.metadata.labels)"]).isEmpty)
        #expect(
            warnings(["object.foo == 'bar'"]) == [
                .init(
                    fieldRef: "spec.validations[0].expression",
                    warning:
                        "apps/v1, Kind=Deployment: ERROR: <input>:1:7: undefined field 'foo'\n | object.foo == 'bar'\n | ......^\n"
                )
            ])
        #expect(
            warnings(["object.metadata.name.first == 'a'"]).first?.warning.contains(
                "type 'string' does not support field selection") == true)
        #expect(warnings(["has(object.spec.paused) && object.spec.template.spec.nodeName != ''"]).isEmpty)
        #expect(warnings(["object.spec.template.spec.containers.exists(c, c.name == 'x' && c.nme == 'x')"]).count == 1)
        #expect(warnings(["object.metadata.labels.anything == 'x'"]).isEmpty)
        // params typed by paramKind; variables by their expressions.
        #expect(
            warnings(
                ["params.data.limit == '1' && params.dta == null"], params: ["apiVersion": "v1", "kind": "ConfigMap"]
            )
            .first?.warning.contains("undefined field 'dta'") == true)
        #expect(
            warnings(
                ["variables.spec.replicas > 1 && variables.spec.replica > 1"],
                variables: [["name": "spec", "expression": "object.spec"]]
            ).first?.warning.contains("1:46: undefined field 'replica'") == true)
        // Wildcards and unknown resources resolve to no kind: nothing is checked.
        #expect(
            checker.typesToCheck([
                "resourceRules": [["apiGroups": ["*"], "apiVersions": ["v1"], "resources": ["deployments"]]]
            ]).isEmpty)
        #expect(
            checker.typesToCheck([
                "resourceRules": [
                    ["apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["widgets", "deployments/status"]]
                ]
            ]).isEmpty)
    }
}

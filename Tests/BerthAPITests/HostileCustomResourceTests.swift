import BerthAPI
import Foundation
import Testing

extension APITests {
    /// Custom resources written to tie up the API server: a value against a pattern that makes a
    /// backtracking engine take exponential time, a rule made to run for ever. Each is answered, in
    /// upstream's words, and the server goes on answering.
    @Suite("hostile custom resources", .serialized)
    struct HostileCustomResourceTests {
        static func definition(_ name: String, _ properties: String) -> String {
            #"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"\#(name)s.hostile.example.com"},"spec":{"group":"hostile.example.com","scope":"Namespaced","names":{"plural":"\#(name)s","kind":"\#(name.capitalized)"},"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object","properties":\#(properties)}}}}}]}}"#
        }

        static func object(_ kind: String, _ name: String, _ spec: String) -> String {
            #"{"apiVersion":"hostile.example.com/v1","kind":"\#(kind)","metadata":{"name":"\#(name)"},"spec":\#(spec)}"#
        }

        func established(_ s: TestServer, _ name: String) throws {
            let wait = try s.kubectl(
                "wait", "--for", "condition=Established", "--timeout=20s", "crd/\(name)s.hostile.example.com")
            #expect(wait.ok, "\(wait.stderr)")
        }

        @Test func aBacktrackingBombOfAValueIsAnsweredByThePattern() async throws {
            let s = try await TestServer()
            let created = try s.kubectl(
                "create", "-f", "-", stdin: Self.definition("bomb", #"{"word":{"type":"string","pattern":"^(a+)+$"}}"#))
            #expect(created.ok, "\(created.stderr)")
            try established(s, "bomb")
            let bomb = String(repeating: "a", count: 10_000) + "!"
            let refused = try s.kubectl(
                "create", "-f", "-", stdin: Self.object("Bomb", "hostile", #"{"word":"\#(bomb)"}"#))
            #expect(!refused.ok)
            expectMentions(
                refused.stderr, [#"The Bomb "hostile" is invalid"#, "spec.word in body should match '^(a+)+$'"])
            let accepted = try s.kubectl(
                "create", "-f", "-",
                stdin: Self.object("Bomb", "fine", #"{"word":"\#(String(repeating: "a", count: 10_000))"}"#))
            #expect(accepted.ok, "\(accepted.stderr)")
            await s.stop()
        }

        @Test func aPatternRE2DoesNotAcceptIsRefusedNamingTheField() async throws {
            let s = try await TestServer()
            let refused = try s.kubectl(
                "create", "-f", "-",
                stdin: Self.definition(
                    "echo",
                    #"{"word":{"type":"string","pattern":"^(a)\\1$"},"other":{"type":"string","pattern":"a(?=b)"}}"#
                ))
            #expect(!refused.ok)
            expectMentions(
                refused.stderr,
                [
                    #"spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[word].pattern: Invalid value: "^(a)\\1$": must be a valid regular expression, but isn't: error parsing regexp: invalid escape sequence: `\1`"#,
                    #"spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[other].pattern: Invalid value: "a(?=b)": must be a valid regular expression, but isn't: error parsing regexp: invalid or unsupported Perl syntax: `(?=`"#,
                ])
            #expect(try s.kubectl("get", "crd", "-o", "name").stdout.isEmpty)
            await s.stop()
        }

        @Test func aRulePastTheCostLimitIsReportedAndTheServerStaysResponsive() async throws {
            let s = try await TestServer()
            let rule = "self.all(x, self.all(y, self.all(z, x + y + z >= 0)))"
            let created = try s.kubectl(
                "create", "-f", "-",
                stdin: Self.definition(
                    "cube",
                    #"{"items":{"type":"array","maxItems":150,"items":{"type":"integer"},"x-kubernetes-validations":[{"rule":"\#(rule)"}]}}"#
                ))
            #expect(created.ok, "\(created.stderr)")
            try established(s, "cube")
            let items = Array(repeating: "1", count: 150).joined(separator: ",")
            let refused = try s.kubectl(
                "create", "-f", "-", stdin: Self.object("Cube", "hostile", #"{"items":[\#(items)]}"#))
            #expect(!refused.ok)
            expectMentions(
                refused.stderr,
                [
                    #"The Cube "hostile" is invalid: spec.items: Invalid value: "array": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: \#(rule)"#
                ])
            // Answered, and still answering: a small object under the same rule, and a list.
            let accepted = try s.kubectl(
                "create", "-f", "-", stdin: Self.object("Cube", "small", #"{"items":[1,2,3]}"#))
            #expect(accepted.ok, "\(accepted.stderr)")
            let listed = try s.kubectl("get", "cubes", "-o", "name")
            #expect(listed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "cube.hostile.example.com/small")
            await s.stop()
        }
    }
}

import BerthAPI
import Foundation
import Testing

extension APITests {
    /// Unknown fields in built-in kinds, as kube-apiserver treats them: dropped from what is stored, with a
    /// `Warning` header by default (kubectl prints it), refused under `fieldValidation=Strict`, silent under
    /// `Ignore` — through kubectl's own `--validate` flag, which sends the parameter.
    @Suite("field validation", .serialized)
    struct FieldValidationTests {
        static let podWithTypos = """
            apiVersion: v1
            kind: Pod
            metadata: {name: typo, labels: {app: web}}
            spec:
              containers:
              - name: c
                image: registry.local/pause:1
                imagePullPolcy: Always
                ports: [{containerPort: 80, hostPorrt: 8080}]
              restartPolcy: Never
            """

        @Test func unknownFieldsAreDroppedWithAWarningRefusedWhenStrictAndSilentWhenIgnored() async throws {
            let s = try await TestServer()
            let strict = try s.kubectl("create", "--validate=strict", "-f", "-", stdin: Self.podWithTypos)
            #expect(!strict.ok)
            #expect(strict.stderr.contains("strict decoding error"), "\(strict.stderr)")
            #expect(strict.stderr.contains(#"unknown field "spec.containers[0].imagePullPolcy""#), "\(strict.stderr)")
            #expect(strict.stderr.contains(#"unknown field "spec.restartPolcy""#), "\(strict.stderr)")
            #expect(!(try s.kubectl("get", "pod", "typo")).ok, "nothing was stored")

            let warned = try s.kubectl("create", "--validate=warn", "-f", "-", stdin: Self.podWithTypos)
            #expect(warned.ok, "\(warned.stderr)")
            for field in [
                "spec.containers[0].imagePullPolcy", "spec.containers[0].ports[0].hostPorrt", "spec.restartPolcy",
            ] {
                #expect(warned.stderr.contains("Warning: unknown field \"\(field)\""), "\(warned.stderr)")
            }
            let stored = try JSON.parse(Array(try s.kubectl("get", "pod", "typo", "-o", "json").stdout.utf8))
            #expect(stored["spec"]["restartPolcy"].isNull && stored["spec"]["containers"][0]["imagePullPolcy"].isNull)
            #expect(stored["spec"]["containers"][0]["ports"][0]["hostPorrt"].isNull)
            #expect(stored["spec"]["containers"][0]["ports"][0]["containerPort"] == 80, "known fields stay")
            #expect(stored["metadata"]["labels"]["app"] == "web")

            // A patch that adds an unknown field: warned and dropped; Strict refuses it.
            let patched = try s.kubectl(
                "patch", "pod", "typo", "--type=merge", "-p",
                #"{"metadata":{"labels":{"tier":"a"}},"spec":{"bogus":1}}"#)
            #expect(patched.ok && patched.stderr.contains(#"Warning: unknown field "spec.bogus""#), "\(patched.stderr)")
            let afterPatch = try JSON.parse(Array(try s.kubectl("get", "pod", "typo", "-o", "json").stdout.utf8))
            #expect(afterPatch["spec"]["bogus"].isNull && afterPatch["metadata"]["labels"]["tier"] == "a")
            let (code, body) = try s.curl(
                "PATCH", "/api/v1/namespaces/default/pods/typo?fieldValidation=Strict", body: #"{"spec":{"bogus":1}}"#,
                contentType: "application/merge-patch+json")
            #expect(code == 400 && (body["message"].string ?? "").contains(#"unknown field "spec.bogus""#), "\(body)")

            let ignored = try s.kubectl(
                "create", "--validate=ignore", "-f", "-",
                stdin: Self.podWithTypos.replacingOccurrences(of: "name: typo", with: "name: quiet"))
            #expect(ignored.ok && !ignored.stderr.contains("Warning"), "\(ignored.stderr)")
            let (badCode, _) = try s.curl(
                "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Loud",
                body: #"{"metadata":{"name":"x"}}"#)
            #expect(badCode == 400, "an unknown fieldValidation value is refused")
        }
    }
}

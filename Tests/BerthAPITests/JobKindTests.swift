import BerthAPI
import Foundation
import Testing

extension APITests {
    /// batch/v1 Job as the API server keeps it (issue 16): kube-apiserver's defaults, the generated
    /// selector, its checks and fixed fields, kubectl's columns.
    @Suite("jobs", .serialized)
    struct JobKindTests {
        @Test func jobsAreDefaultedAndGetTheirSelector() async throws {
            let s = try await TestServer()
            // kubectl's generator sends protobuf.
            let created = try s.kubectl("create", "job", "once", "--image=busybox", "--", "echo", "hi")
            #expect(created.ok, "\(created.stderr)")
            let spec = try s.kubectl(
                "get", "job", "once", "-o",
                "jsonpath={.spec.parallelism}/{.spec.completions}/{.spec.backoffLimit}/{.spec.completionMode}/{.spec.suspend}/{.spec.podReplacementPolicy}"
            )
            #expect(spec.stdout == "1/1/6/NonIndexed/false/TerminatingOrFailed", "\(spec.stdout)")
            let uid = try s.kubectl("get", "job", "once", "-o", "jsonpath={.metadata.uid}").stdout
            #expect(
                try s.kubectl("get", "job", "once", "-o", "jsonpath={.spec.selector.matchLabels}").stdout
                    == #"{"batch.kubernetes.io/controller-uid":"\#(uid)"}"#)
            let labels = try s.kubectl("get", "job", "once", "-o", "jsonpath={.spec.template.metadata.labels}").stdout
            for expected in [
                #""batch.kubernetes.io/job-name":"once""#, #""job-name":"once""#, #""controller-uid":"\#(uid)""#,
            ] {
                #expect(labels.contains(expected), "\(labels)")
            }
            let table = try s.kubectl("get", "jobs")
            #expect(
                table.stdout.contains("STATUS") && table.stdout.contains("COMPLETIONS")
                    && table.stdout.contains("DURATION") && table.stdout.contains("0/1"), "\(table.stdout)")

            // The template is fixed; so are completions of a non-Indexed Job.
            var refused = try s.kubectl(
                "patch", "job", "once", "--type=merge", "-p",
                #"{"spec":{"template":{"spec":{"activeDeadlineSeconds":5}}}}"#)
            #expect(
                refused.stderr.contains("spec.template: Invalid value:")
                    && refused.stderr.contains("field is immutable"))
            refused = try s.kubectl("patch", "job", "once", "--type=merge", "-p", #"{"spec":{"completions":4}}"#)
            #expect(
                refused.stderr.contains("spec.completions: Invalid value: 4: field is immutable"), "\(refused.stderr)")
            // Parallelism may change.
            #expect(try s.kubectl("patch", "job", "once", "--type=merge", "-p", #"{"spec":{"parallelism":2}}"#).ok)
            await s.stop()
        }

        @Test func badJobsAreRefusedWithUpstreamsWords() async throws {
            let s = try await TestServer()
            let bad = """
                apiVersion: batch/v1
                kind: Job
                metadata: {name: bad}
                spec:
                  completionMode: Indexed
                  parallelism: -1
                  activeDeadlineSeconds: 0
                  podFailurePolicy:
                    rules:
                    - action: Explode
                      onExitCodes: {operator: In, values: [0]}
                  template:
                    spec:
                      containers: [{name: c, image: busybox}]
                """
            let refused = try s.kubectl("apply", "-f", "-", stdin: bad)
            expectMentions(
                refused.stderr,
                [
                    "spec.completions: Required value: when completion mode is Indexed",
                    "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
                    "spec.activeDeadlineSeconds: Invalid value: 0: must be greater than 0",
                    "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
                    "spec.podFailurePolicy.rules[0].action: Unsupported value: \"Explode\"",
                    "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: 0: must not be 0 for the In operator",
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ])
            // A manual selector that does not match the template.
            let manual = """
                apiVersion: batch/v1
                kind: Job
                metadata: {name: manual}
                spec:
                  manualSelector: true
                  selector: {matchLabels: {app: a}}
                  template:
                    metadata: {labels: {app: b}}
                    spec:
                      restartPolicy: Never
                      containers: [{name: c, image: busybox}]
                """
            let mismatch = try s.kubectl("apply", "-f", "-", stdin: manual)
            #expect(mismatch.stderr.contains("`selector` does not match template `labels`"), "\(mismatch.stderr)")

            // Per-index limits and success policies belong to Indexed Jobs, within their completions.
            let policies = """
                apiVersion: batch/v1
                kind: Job
                metadata: {name: policies}
                spec:
                  completions: 3
                  maxFailedIndexes: 4
                  successPolicy:
                    rules: [{succeededIndexes: "1-5"}, {succeededCount: 9}, {}]
                  podFailurePolicy:
                    rules: [{action: FailIndex, onExitCodes: {operator: In, values: [3]}}]
                  template:
                    spec:
                      restartPolicy: Never
                      containers: [{name: c, image: busybox}]
                """
            let refusedPolicies = try s.kubectl("apply", "-f", "-", stdin: policies)
            expectMentions(
                refusedPolicies.stderr,
                [
                    "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified",
                    "spec.maxFailedIndexes: Invalid value: 4: must be less than or equal to completions",
                    "spec.successPolicy: Invalid value:", "requires indexed completion mode",
                    #"spec.successPolicy.rules[0].succeededIndexes: Invalid value: "1-5""#,
                    "spec.successPolicy.rules[1].succeededCount: Invalid value: 9: must be less than or equal to 3",
                    "spec.successPolicy.rules[2]: Required value: at least one of succeededCount or succeededIndexes must be specified",
                    #"spec.podFailurePolicy.rules[0].action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set"#,
                ])
            let indexed = try s.kubectl(
                "apply", "-f", "-",
                stdin: """
                    apiVersion: batch/v1
                    kind: Job
                    metadata: {name: indexed}
                    spec:
                      completions: 3
                      completionMode: Indexed
                      backoffLimitPerIndex: 1
                      maxFailedIndexes: 1
                      successPolicy: {rules: [{succeededIndexes: "0-1", succeededCount: 1}]}
                      template:
                        spec:
                          restartPolicy: Never
                          containers: [{name: c, image: busybox}]
                    """)
            #expect(indexed.ok, "\(indexed.stderr)")
            // With a per-index limit the Job-wide limit defaults to "none".
            #expect(
                try s.kubectl("get", "job", "indexed", "-o", "jsonpath={.spec.backoffLimit}").stdout == "2147483647")
            await s.stop()
        }
    }
}

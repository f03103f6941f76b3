import BerthOS
import Foundation
import Testing

/// batch/v1 Jobs on a real node (issue 16): pods run to completion in parallel, each index once for an
/// Indexed Job, failures replaced until the backoff limit, a pod failure policy that fails the Job at
/// once, a deadline, suspend and resume, and the TTL that deletes a finished Job — proved with kubectl
/// and what the pods printed.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct JobTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    func create(_ manifest: String) throws {
        let applied = try box.kubectl(["create", "-f", "-"], input: manifest)
        try #require(applied.status.succeeded, "\(applied.stderrText)")
    }

    func job(_ name: String, _ spec: String, command: String, restart: String = "Never") throws -> String {
        let box = try box
        return """
            apiVersion: batch/v1
            kind: Job
            metadata: {name: \(name)}
            spec:
            \(spec.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
              template:
                spec:
                  restartPolicy: \(restart)
                  terminationGracePeriodSeconds: 1
                  containers:
                  - name: main
                    image: \(box.image)
                    command: ["sh", "-c", \(String(reflecting: command))]
            """
    }

    func wait(_ job: String, for condition: String, seconds: Int = 60) throws -> Bool {
        try box.kubectl(["wait", "--for=condition=\(condition)", "job/\(job)", "--timeout=\(seconds)s"]).status
            .succeeded
    }

    @Test func podsRunToCompletionInParallel() throws {
        let box = try box
        try create(try job("batch", "completions: 3\nparallelism: 2", command: "echo done by $(hostname)"))
        #expect(try wait("batch", for: "complete"), "\(box.diagnostics())")
        #expect(try box.get("job/batch", "{.status.succeeded}/{.status.active}") == "3/")
        let table = try box.kubectl(["get", "job", "batch"]).stdoutText
        #expect(table.contains("Complete") && table.contains("3/3"), "\(table)")
        let pods = try box.kubectl([
            "get", "pods", "-l", "batch.kubernetes.io/job-name=batch", "-o",
            "jsonpath={range .items[*]}{.status.phase} {.metadata.finalizers}{\"\\n\"}{end}",
        ]).stdoutText
        // Three pods, all succeeded, none left holding the tracking finalizer.
        #expect(pods.split(separator: "\n").map(String.init) == ["Succeeded ", "Succeeded ", "Succeeded "], "\(pods)")
        #expect(try box.kubectl(["logs", "job/batch"]).stdoutText.hasPrefix("done by batch-"))
        _ = try box.kubectl(["delete", "job", "batch"])
    }

    @Test func anIndexedJobRunsEachIndexOnce() throws {
        let box = try box
        try create(
            try job(
                "indexed", "completions: 3\nparallelism: 3\ncompletionMode: Indexed",
                command: "echo index $JOB_COMPLETION_INDEX on $(hostname)"))
        #expect(try wait("indexed", for: "complete"), "\(box.diagnostics())")
        #expect(try box.get("job/indexed", "{.status.completedIndexes}") == "0-2")
        for index in 0..<3 {
            let name = try box.kubectl([
                "get", "pods", "-l", "batch.kubernetes.io/job-completion-index=\(index)", "-o",
                "jsonpath={.items[0].metadata.name}",
            ]).stdoutText
            #expect(name.hasPrefix("indexed-\(index)-"), "\(name)")
            #expect(
                try box.kubectl(["logs", name]).stdoutText == "index \(index) on indexed-\(index)\n")
        }
        _ = try box.kubectl(["delete", "job", "indexed"])
    }

    @Test func failuresAreReplacedUntilTheBackoffLimit() throws {
        let box = try box
        try create(try job("flaky", "backoffLimit: 1", command: "exit 3"))
        #expect(try wait("flaky", for: "failed", seconds: 90), "\(box.diagnostics())")
        #expect(
            try box.get("job/flaky", "{.status.conditions[?(@.type==\"Failed\")].reason}") == "BackoffLimitExceeded")
        #expect(try box.get("job/flaky", "{.status.failed}") == "2")
        let table = try box.kubectl(["get", "job", "flaky"]).stdoutText
        #expect(table.contains("Failed") && table.contains("0/1"), "\(table)")
        _ = try box.kubectl(["delete", "job", "flaky"])
    }

    @Test func aFailJobRuleEndsTheJobAtOnce() throws {
        let box = try box
        try create(
            try job(
                "policed",
                """
                backoffLimit: 6
                podFailurePolicy:
                  rules:
                  - action: Ignore
                    onExitCodes: {operator: In, values: [7]}
                  - action: FailJob
                    onExitCodes: {containerName: main, operator: In, values: [42]}
                """, command: "exit 42"))
        #expect(try wait("policed", for: "failed", seconds: 30), "\(box.diagnostics())")
        let message = try box.get("job/policed", "{.status.conditions[?(@.type==\"Failed\")].message}")
        #expect(message.hasPrefix("Container main for pod default/policed-"), "\(message)")
        #expect(message.hasSuffix("failed with exit code 42 matching FailJob rule at index 1"), "\(message)")
        #expect(try box.get("job/policed", "{.status.conditions[?(@.type==\"Failed\")].reason}") == "PodFailurePolicy")
        _ = try box.kubectl(["delete", "job", "policed"])
    }

    @Test func theDeadlineFailsAJobAndStopsItsPods() throws {
        let box = try box
        try create(try job("slow", "activeDeadlineSeconds: 2", command: "sleep 1000"))
        #expect(try wait("slow", for: "failed", seconds: 30), "\(box.diagnostics())")
        #expect(try box.get("job/slow", "{.status.conditions[?(@.type==\"Failed\")].reason}") == "DeadlineExceeded")
        #expect(
            try box.eventually(30) {
                try box.kubectl(["get", "pods", "-l", "batch.kubernetes.io/job-name=slow", "-o", "name"]).stdoutText
                    .isEmpty
            }, "\(box.diagnostics())")
        _ = try box.kubectl(["delete", "job", "slow"])
    }

    @Test func aSuspendedJobWaitsThenRunsAndItsTTLDeletesIt() throws {
        let box = try box
        try create(try job("later", "suspend: true\nttlSecondsAfterFinished: 1", command: "echo resumed"))
        #expect(try wait("later", for: "suspended"), "\(box.diagnostics())")
        #expect(try box.kubectl(["get", "pods", "-l", "job-name=later", "-o", "name"]).stdoutText.isEmpty)
        #expect(try box.kubectl(["get", "job", "later"]).stdoutText.contains("Suspended"))
        let resumed = try box.kubectl(["patch", "job", "later", "--type=merge", "-p", #"{"spec":{"suspend":false}}"#])
        #expect(resumed.status.succeeded, "\(resumed.stderrText)")
        // Complete, then deleted a second later with its pods.
        let gone = try box.kubectl(["wait", "--for=delete", "job/later", "--timeout=60s"])
        #expect(gone.status.succeeded, "\(gone.stderrText) \(box.diagnostics())")
        #expect(
            try box.eventually(30) {
                try box.kubectl(["get", "pods", "-l", "job-name=later", "-o", "name"]).stdoutText.isEmpty
            })
        let events = try box.kubectl([
            "get", "events", "--field-selector", "involvedObject.name=later", "-o", "jsonpath={.items[*].reason}",
        ]).stdoutText
        #expect(events.contains("Suspended") && events.contains("Resumed") && events.contains("Completed"), "\(events)")
    }
}

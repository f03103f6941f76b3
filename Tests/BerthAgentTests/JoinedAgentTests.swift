#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Foundation
import Testing

/// `berth agent --server URL --token-file F` against a `berth server --disable-agent`: a machine with
/// nothing but the server's address and its join token becomes a node, runs its pods with their
/// Secrets and ConfigMaps, serves their logs with the serving certificate the join gave it — and,
/// as that node, reaches nothing of the cluster's that is not its own.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"))
struct JoinedAgentTests {
    @Test func aJoinedAgentRunsItsPodsAndReachesOnlyWhatTheyUse() throws {
        let box = try ServerBox(extraArguments: ["--disable-agent"])
        defer { box.tearDown() }
        let node = "joined-node"
        let server = "https://127.0.0.1:\(box.port)"
        let token = box.base + "/server/token"
        let tokenText = try FileSystem.readString(token).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(box.log().contains(token), "the server's startup line says where the token is")

        // Bad tokens end the agent at once, saying what is wrong.
        let secret = tokenText.components(separatedBy: "::server:").last ?? ""
        let otherHash = String(repeating: "0", count: 64)
        for (text, says) in [
            ("not-a-token", "expected K10<sha256 hex of the CA certificate>::server:<secret>"),
            (tokenText + "x", "the join token is not this cluster's"),
            ("K10\(otherHash)::server:\(secret)", "is not the one the join token pins (sha256 \(otherHash))"),
        ] {
            try text.write(toFile: box.base + "/bad-token", atomically: true, encoding: .utf8)
            let refused = try ChildProcess.run(
                box.berth,
                arguments: [
                    box.berth, "agent", "--server", server, "--token-file", box.base + "/bad-token", "--node-name",
                    "intruder", "--agent-root", box.base + "/intruder", "--kubelet-port", "0",
                ], environment: box.environment)
            #expect(!refused.status.succeeded)
            #expect(refused.stderrText.contains(says), "\(refused.stderrText)")
        }
        #expect(!FileSystem.exists(box.base + "/intruder/kubelet.kubeconfig"))

        let arguments = [
            box.berth, "agent", "--server", server, "--node-name", node, "--node-ip", "127.0.0.1", "--root",
            box.base + "/engine", "--agent-root", box.base + "/agent", "--pod-log-dir", box.base + "/logs",
            "--cgroup-root", box.cgroupRoot, "--kubelet-port", String(box.kubeletPort), "--kubelet-address",
            "127.0.0.1",
        ]
        func start(_ extra: [String]) throws -> pid_t {
            let log = open(box.base + "/agent.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            defer { close(log) }
            return try ChildProcess.spawn(
                box.berth, arguments: arguments + extra, environment: box.environment, fileDescriptors: [2: log])
        }
        var agent = try start(["--token-file", token])
        defer {
            _ = try? box.kubectl(["delete", "pods", "--all", "--wait=true", "--timeout=60s", "--grace-period=1"])
            kill(agent, SIGTERM)
            _ = try? ChildProcess.wait(agent)
        }
        let agentLog = { (try? FileSystem.readString(box.base + "/agent.log")) ?? "" }
        let ready = "{.status.conditions[?(@.type==\"Ready\")].status}"
        #expect(try box.eventually(60) { try box.get("node/\(node)", ready) == "True" }, "\(agentLog())")

        let objects = """
            apiVersion: v1
            kind: Secret
            metadata: {name: app-secret}
            stringData: {password: hunter2}
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: other-secret}
            stringData: {password: not-yours}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: app-config}
            data: {greeting: hello from a joined node}
            ---
            apiVersion: v1
            kind: Node
            metadata: {name: other-node}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: joined}
            spec:
              containers:
              - name: c
                image: \(box.image)
                command: [sh, -c, 'cat /etc/secret/password; echo; echo "$GREETING"; exec sleep 3600']
                env:
                - name: GREETING
                  valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}
                volumeMounts: [{name: secret, mountPath: /etc/secret}]
              volumes:
              - name: secret
                secret: {secretName: app-secret}
            """
        let applied = try box.kubectl(["apply", "-f", "-"], input: objects)
        try #require(applied.status.succeeded, "\(applied.stderrText)")
        #expect(try box.eventually { try box.get("pod/joined", "{.status.phase}") == "Running" }, "\(agentLog())")
        #expect(try box.get("pod/joined", "{.spec.nodeName}") == node)
        // Logs through the API server and the agent's HTTPS API, on the joined serving certificate.
        let expected = "hunter2\nhello from a joined node\n"
        #expect(
            try box.eventually(20) { try box.kubectl(["logs", "joined"]).stdoutText == expected }, "\(agentLog())")

        // As the node (the kubeconfig the agent keeps): its pod's Secret, not another; not another Node.
        let kubeconfig = box.base + "/agent/kubelet.kubeconfig"
        func asNode(_ arguments: [String]) throws -> ChildProcess.Output {
            try ChildProcess.run(
                "/usr/bin/kubectl", arguments: ["kubectl", "--kubeconfig", kubeconfig] + arguments,
                environment: box.environment)
        }
        let own = try asNode(["get", "secret", "app-secret", "-o", "jsonpath={.metadata.name}"])
        #expect(own.stdoutText == "app-secret", "\(own.stderrText)")
        let other = try asNode(["get", "secret", "other-secret"])
        #expect(!other.status.succeeded && other.stderrText.contains("Forbidden"), "\(other.stderrText)")
        let list = try asNode(["get", "secrets"])
        #expect(!list.status.succeeded && list.stderrText.contains("Forbidden"), "\(list.stderrText)")
        let label = try asNode(["label", "node", "other-node", "stolen=yes"])
        #expect(!label.status.succeeded && label.stderrText.contains("Forbidden"), "\(label.stderrText)")
        let audit = (try? FileSystem.readString(box.base + "/server/audit.log")) ?? ""
        #expect(audit.contains("other-secret") && audit.contains("system:node:\(node)"), "\(audit)")

        // Restarted, the agent needs no token: it is the node it joined as.
        kill(agent, SIGTERM)
        _ = try? ChildProcess.wait(agent)
        agent = try start([])
        #expect(
            try box.eventually(30) {
                agentLog().contains("using the node's stored credentials")
                    && (try? box.kubectl(["logs", "joined"]).stdoutText) == expected
            }, "\(agentLog().suffix(3000))")
        #expect(kill(agent, 0) == 0, "still running")
    }
}

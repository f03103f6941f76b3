#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Foundation
import Testing

/// `berth agent` on its own, against a `berth server --disable-agent`: a node that reaches the API
/// server only over HTTPS with a kubeconfig, as it would from another machine. It registers, runs the
/// pods bound to it, records their events, and serves logs to kubectl through its HTTPS API with a
/// serving certificate from the cluster CA.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"))
struct RemoteAgentTests {
    @Test func aRemoteAgentRunsThePodsBoundToIt() throws {
        let box = try ServerBox(extraArguments: ["--disable-agent"])
        defer { box.tearDown() }
        let node = "remote-node"
        // A serving certificate for the agent, signed with the cluster's CA as a join would give it.
        let pki = box.base + "/server/pki"
        let certificate = box.base + "/agent.crt", key = box.base + "/agent.key"
        try FileManager.default.createDirectory(atPath: box.base + "/agent-run", withIntermediateDirectories: true)
        let script = """
            set -e
            openssl ecparam -name prime256v1 -genkey -noout -out \(key)
            openssl req -new -key \(key) -subj "/CN=system:node:\(node)/O=system:nodes" -out \(box.base)/agent.csr
            printf 'subjectAltName=IP:127.0.0.1,DNS:\(node)\\nextendedKeyUsage=serverAuth\\n' > \(box.base)/agent.ext
            openssl x509 -req -in \(box.base)/agent.csr -CA \(pki)/ca.crt -CAkey \(pki)/ca.key -CAcreateserial \
              -days 1 -extfile \(box.base)/agent.ext -out \(certificate) 2>/dev/null
            """
        let made = try ChildProcess.run("/bin/sh", arguments: ["sh", "-c", script], environment: box.environment)
        try #require(made.status.succeeded, "\(made.stderrText)")

        let output = try BerthOS.Pipe()
        let log = open(box.base + "/agent.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        let agent = try ChildProcess.spawn(
            box.berth,
            arguments: [
                box.berth, "agent", "--kubeconfig", box.base + "/server/admin.kubeconfig", "--node-name", node,
                "--node-ip", "127.0.0.1", "--root", box.base + "/engine", "--agent-root", box.base + "/agent",
                "--pod-log-dir", box.base + "/logs", "--cgroup-root", box.cgroupRoot, "--kubelet-port",
                String(box.kubeletPort), "--kubelet-address", "127.0.0.1", "--tls-cert-file", certificate,
                "--tls-private-key-file", key,
            ],
            environment: box.environment, fileDescriptors: [1: output.writing.rawValue, 2: log])
        close(log)
        output.writing.close()
        defer {
            _ = try? box.kubectl(["delete", "pods", "--all", "--wait=true", "--timeout=60s", "--grace-period=1"])
            kill(agent, SIGTERM)
            _ = try? ChildProcess.wait(agent)
        }
        let agentLog = { (try? FileSystem.readString(box.base + "/agent.log")) ?? "" }

        #expect(
            try box.eventually(60) {
                try box.get("node/\(node)", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
            }, "\(agentLog())")
        let created = try box.kubectl([
            "run", "remote", "--image=\(box.image)", "--", "sh", "-c",
            "echo hello from afar; exec httpd -f -p 8080 -h /www",
        ])
        try #require(created.status.succeeded, "\(created.stderrText)")
        #expect(try box.eventually { try box.get("pod/remote", "{.status.phase}") == "Running" }, "\(agentLog())")
        #expect(try box.get("pod/remote", "{.spec.nodeName}") == node)
        let ip = try box.get("pod/remote", "{.status.podIP}")
        let body = try ChildProcess.run(
            "/usr/bin/curl", arguments: ["curl", "-s", "-m", "5", "http://\(ip):8080/index.html"], environment: [])
        #expect(body.stdoutText == "served by a pod\n")
        // Logs through the API server and the agent's HTTPS API.
        #expect(
            try box.eventually(20) { try box.kubectl(["logs", "remote"]).stdoutText == "hello from afar\n" },
            "\(agentLog())")
        // Events written over HTTPS.
        let reasons = try box.kubectl([
            "get", "events", "--field-selector", "involvedObject.name=remote", "-o", "jsonpath={.items[*].reason}",
        ]).stdoutText
        #expect(reasons.contains("Started"), "\(reasons)")
        let deleted = try box.kubectl(["delete", "pod", "remote", "--grace-period=1", "--timeout=60s"])
        #expect(deleted.status.succeeded, "\(deleted.stderrText)")
    }
}

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
        // httpd may take a moment to listen once its container runs.
        #expect(
            try box.eventually(20) {
                (try? ChildProcess.run(
                    "/usr/bin/curl", arguments: ["curl", "-s", "-m", "2", "http://\(ip):8080/index.html"],
                    environment: []))?.stdoutText == "served by a pod\n"
            }, "\(ip) \(agentLog().suffix(3000))")
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

    /// Starts `berth engine` serving the CRI on `socket`; returns its pid once it says so.
    func startEngine(_ box: ServerBox, socket: String) throws -> pid_t {
        let output = try BerthOS.Pipe()
        let log = open(box.base + "/engine.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer { close(log) }
        let engine = try ChildProcess.spawn(
            box.berth,
            arguments: [
                box.berth, "engine", "--root", box.base + "/engine", "-H", "unix://\(box.base)/run/docker.sock",
                "--cri-socket", socket,
            ],
            environment: box.environment, fileDescriptors: [1: output.writing.rawValue, 2: log])
        output.writing.close()
        try awaitOutput(output.reading, containing: "ready cri", seconds: 30, what: "berth engine") {
            (try? FileSystem.readString(box.base + "/engine.log")) ?? ""
        }
        return engine
    }

    /// The runtime gone, the node is NotReady saying why, as the kubelet's runtime check says; back,
    /// the node is Ready again.
    @Test func aNodeWhoseRuntimeIsDownIsNotReady() throws {
        let box = try ServerBox(extraArguments: ["--disable-agent"])
        defer { box.tearDown() }
        let node = "runtime-watch"
        let socket = box.base + "/run/cri.sock"
        var engine = try startEngine(box, socket: socket)
        let log = open(box.base + "/agent.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        let agent = try ChildProcess.spawn(
            box.berth,
            arguments: [
                box.berth, "agent", "--kubeconfig", box.base + "/server/admin.kubeconfig", "--node-name", node,
                "--node-ip", "127.0.0.1", "--container-runtime-endpoint", "unix://" + socket, "--agent-root",
                box.base + "/agent", "--pod-log-dir", box.base + "/logs", "--cgroup-root", box.cgroupRoot,
                "--kubelet-port", "0",
            ],
            environment: box.environment, fileDescriptors: [2: log])
        close(log)
        defer {
            kill(agent, SIGTERM)
            _ = try? ChildProcess.wait(agent)
            kill(engine, SIGTERM)
            _ = try? ChildProcess.wait(engine)
        }
        let agentLog = { (try? FileSystem.readString(box.base + "/agent.log")) ?? "" }
        let ready = "{.status.conditions[?(@.type==\"Ready\")].status}"
        #expect(try box.eventually(60) { try box.get("node/\(node)", ready) == "True" }, "\(agentLog())")

        kill(engine, SIGKILL)
        _ = try? ChildProcess.wait(engine)
        #expect(try box.eventually(30) { try box.get("node/\(node)", ready) == "False" }, "\(agentLog())")
        let message = try box.get("node/\(node)", "{.status.conditions[?(@.type==\"Ready\")].message}")
        #expect(message.hasPrefix("container runtime is down"), "\(message)")
        #expect(
            try box.get("node/\(node)", "{.status.conditions[?(@.type==\"Ready\")].reason}") == "KubeletNotReady")

        engine = try startEngine(box, socket: socket)
        #expect(try box.eventually(30) { try box.get("node/\(node)", ready) == "True" }, "\(agentLog())")
    }
}

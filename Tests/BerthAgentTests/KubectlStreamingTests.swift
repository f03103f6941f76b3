import BerthOS
import Foundation
import Testing

/// `kubectl logs`, `exec`, `attach` and `cp` against real pods: the API server checks the request and
/// passes it to the node agent's HTTPS API (logs as a stream, exec and attach as WebSocket messages),
/// which reads the CRI log or relays to the runtime's streaming server.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct KubectlStreamingTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    /// A pod running `script` (restartPolicy `restart`), Running or the test fails.
    private func run(_ name: String, _ script: String, restart: String = "Always") throws {
        let box = try box
        let arguments = ["run", name, "--image=\(box.image)", "--restart=\(restart)"]
        let created = try box.kubectl(arguments + ["--", "sh", "-c", script])
        try #require(created.status.succeeded, "\(created.stderrText)")
        try #require(
            try box.eventually { try box.get("pod/\(name)", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
    }

    @Test func logsShowWhatTheContainerWroteWithTheKubeletsOptions() throws {
        let box = try box
        try run("talker", "echo one; echo two; echo three; echo oops >&2; sleep 1000")
        var logs = ""
        #expect(
            try box.eventually(20) {
                logs = try box.kubectl(["logs", "talker"]).stdoutText
                return logs.contains("oops")
            }, "\(logs)")
        #expect(logs.hasPrefix("one\ntwo\nthree\n") || logs.hasPrefix("oops\none\ntwo\nthree\n"), "\(logs)")
        let tail = try box.kubectl(["logs", "talker", "--tail=2"]).stdoutText
        #expect(tail.split(separator: "\n").count == 2, "\(tail)")
        let stamped = try box.kubectl(["logs", "talker", "--timestamps", "--tail=1"]).stdoutText
        // 2026-12-05T01:02:03.123456789Z oops
        #expect(
            stamped.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z \S+\n$"#, options: .regularExpression) != nil,
            "\(stamped)")
        let limited = try box.kubectl(["logs", "talker", "--limit-bytes=5"]).stdoutText
        #expect(limited.utf8.count == 5, "\(limited)")
        // The API server's and the kubelet's refusals, in their words.
        let wrong = try box.kubectl(["logs", "talker", "-c", "nosuch"])
        #expect(wrong.stderrText.contains("container nosuch is not valid for pod talker"), "\(wrong.stderrText)")
        let previous = try box.kubectl(["logs", "talker", "--previous"])
        #expect(
            previous.stderrText.contains("previous terminated container \"talker\" in pod \"talker\" not found"),
            "\(previous.stderrText)")
        _ = try box.kubectl(["delete", "pod", "talker", "--grace-period=0", "--force"])
    }

    @Test func logsFollowUntilTheContainerEndsAndPreviousReadsTheLastRun() throws {
        let box = try box
        // Written after `logs -f` started (the test waits for "a" first): only a stream shows b and c.
        try run("slow", "echo a; sleep 2; echo b; sleep 1; echo c", restart: "Never")
        #expect(try box.eventually(20) { try box.kubectl(["logs", "slow"]).stdoutText.hasPrefix("a\n") })
        let followed = try box.kubectl(["logs", "-f", "slow"])
        #expect(followed.status.succeeded, "\(followed.stderrText)")
        #expect(followed.stdoutText == "a\nb\nc\n")

        _ = try box.kubectl(["run", "again", "--image=\(box.image)", "--", "sh", "-c", "echo run; sleep 1; exit 1"])
        #expect(
            try box.eventually(40) {
                (Int(try box.get("pod/again", "{.status.containerStatuses[0].restartCount}")) ?? 0) >= 1
            }, "\(box.diagnostics())")
        let last = try box.kubectl(["logs", "again", "--previous"])
        #expect(last.stdoutText == "run\n", "\(last.stderrText)")
        _ = try box.kubectl(["delete", "pod", "slow", "again", "--grace-period=0", "--force"])
    }

    @Test func execRunsInTheContainerWithItsStreamsAndExitCode() throws {
        let box = try box
        try run("shell", "sleep 1000")
        let ran = try box.kubectl(["exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(ran.stdoutText == "out\n")
        #expect(ran.stderrText.contains("err\n"))
        #expect(ran.status == .exited(3), "\(ran.stderrText)")
        #expect(ran.stderrText.contains("command terminated with exit code 3"))
        // stdin to the end (v5's close): cat ends when the input does.
        let echoed = try box.kubectl(["exec", "-i", "shell", "--", "cat"], input: "through stdin\n")
        #expect(echoed.status.succeeded, "\(echoed.stderrText)")
        #expect(echoed.stdoutText == "through stdin\n")
        // The process runs in the container: its hostname is the pod's.
        #expect(try box.kubectl(["exec", "shell", "--", "hostname"]).stdoutText == "shell\n")
        // A program that is not there: the runtime's reason, and kubectl fails.
        let missing = try box.kubectl(["exec", "shell", "--", "/no/such/program"])
        #expect(!missing.status.succeeded)
        #expect(missing.stderrText.contains("no/such/program"), "\(missing.stderrText)")
        let wrong = try box.kubectl(["exec", "shell", "-c", "nosuch", "--", "true"])
        #expect(!wrong.status.succeeded)
        #expect(wrong.stderrText.contains("container nosuch is not valid for pod shell"), "\(wrong.stderrText)")
        // Impersonated, kubectl acts as the impersonated user, whom RBAC allows neither the pod nor its exec.
        let impersonated = try box.kubectl(["exec", "--as=nobody", "shell", "--", "true"])
        #expect(!impersonated.status.succeeded)
        #expect(impersonated.stderrText.contains(#"User "nobody" cannot"#), "\(impersonated.stderrText)")
        _ = try box.kubectl(["delete", "pod", "shell", "--grace-period=0", "--force"])
    }

    @Test func execWithATerminalGetsOne() throws {
        let box = try box
        try run("terminal", "sleep 1000")
        // `script` gives kubectl a terminal of its own, so `-t` is honoured.
        let command =
            "/usr/bin/kubectl --kubeconfig \(box.base)/server/admin.kubeconfig exec -it terminal -- sh -c 'tty; echo rows=$(stty size)'"
        let ran = try ChildProcess.run(
            "/usr/bin/script", arguments: ["script", "-qec", command, "/dev/null"], environment: box.environment,
            input: [])
        #expect(ran.status.succeeded, "\(ran.stdoutText) \(ran.stderrText)")
        #expect(ran.stdoutText.contains("/dev/pts/"), "\(ran.stdoutText)")
        _ = try box.kubectl(["delete", "pod", "terminal", "--grace-period=0", "--force"])
    }

    @Test func copyGoesBothWays() throws {
        let box = try box
        try run("files", "sleep 1000")
        let local = box.base + "/to-pod.txt"
        try "copied in\n".write(toFile: local, atomically: true, encoding: .utf8)
        let up = try box.kubectl(["cp", local, "files:/tmp/in.txt"])
        #expect(up.status.succeeded, "\(up.stderrText)")
        #expect(try box.kubectl(["exec", "files", "--", "cat", "/tmp/in.txt"]).stdoutText == "copied in\n")
        let back = box.base + "/from-pod.html"
        let down = try box.kubectl(["cp", "files:/www/index.html", back])
        #expect(down.status.succeeded, "\(down.stderrText)")
        #expect(try String(contentsOfFile: back, encoding: .utf8) == "served by a pod\n")
        _ = try box.kubectl(["delete", "pod", "files", "--grace-period=0", "--force"])
    }

    @Test func attachReachesTheContainersStdinAndOutput() throws {
        let box = try box
        // stdinOnce: the end of the attached client's input ends the container's (kubectl's own default
        // for `run -i`; without it the container keeps its stdin for the next client).
        let created = try box.kubectl(
            ["create", "-f", "-"],
            input: """
                apiVersion: v1
                kind: Pod
                metadata: {name: reader}
                spec:
                  restartPolicy: Never
                  containers:
                  - name: reader
                    image: \(box.image)
                    stdin: true
                    stdinOnce: true
                    command: ["sh", "-c", "while read line; do echo got $line; done; echo done"]
                """)
        try #require(created.status.succeeded, "\(created.stderrText)")
        try #require(try box.eventually { try box.get("pod/reader", "{.status.phase}") == "Running" })
        let attached = try box.kubectl(["attach", "-i", "reader"], input: "hello\n")
        #expect(attached.stdoutText.contains("got hello"), "\(attached.stdoutText) \(attached.stderrText)")
        _ = try box.kubectl(["delete", "pod", "reader", "--grace-period=0", "--force"])
    }

    @Test func theAgentsPortTakesOnlyTheAPIServersCertificate() throws {
        let box = try box
        let url = "https://127.0.0.1:\(box.kubeletPort)/pods"
        let anonymous = try ChildProcess.run(
            "/usr/bin/curl", arguments: ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", url], environment: [])
        #expect(anonymous.stdoutText == "000", "a client without a certificate must fail the handshake")
        let pki = box.base + "/server/pki"
        let client = try ChildProcess.run(
            "/usr/bin/curl",
            arguments: [
                "curl", "-s", "--cacert", pki + "/ca.crt", "--cert", pki + "/apiserver-kubelet-client.crt", "--key",
                pki + "/apiserver-kubelet-client.key", url,
            ], environment: [])
        #expect(client.stdoutText.contains("\"kind\":\"PodList\""), "\(client.stdoutText) \(client.stderrText)")
    }
}

/// `kubectl port-forward`: SPDY in a WebSocket from kubectl through the API server and the agent to the
/// runtime's streaming server, which connects to the port on the pod's localhost.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct KubectlPortForwardTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    @Test func portForwardReachesThePodsPortAndReportsAClosedOne() throws {
        let box = try box
        let created = try box.kubectl([
            "run", "web", "--image=\(box.image)", "--", "sh", "-c",
            "head -c 1048576 /dev/urandom > /www/big; exec httpd -f -p 8080 -h /www",
        ])
        try #require(created.status.succeeded, "\(created.stderrText)")
        try #require(
            try box.eventually { try box.get("pod/web", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        // Serving (the megabyte written, httpd listening) before anything is forwarded to it.
        try #require(
            try box.eventually(20) {
                try box.kubectl(["exec", "web", "--", "wget", "-qO-", "http://127.0.0.1:8080/index.html"]).stdoutText
                    == "served by a pod\n"
            })
        let local = freeLocalPort()
        let output = try BerthOS.Pipe()
        let forwarder = try ChildProcess.spawn(
            "/usr/bin/kubectl",
            arguments: [
                "kubectl", "--kubeconfig", box.base + "/server/admin.kubeconfig", "port-forward", "pod/web",
                "\(local):8080", "\(local + 1):9999",
            ], environment: box.environment, fileDescriptors: [1: output.writing.rawValue, 2: output.writing.rawValue])
        output.writing.close()
        defer {
            kill(forwarder, SIGTERM)
            _ = try? ChildProcess.wait(forwarder)
        }
        // kubectl says when it listens.
        try awaitOutput(
            output.reading, containing: "Forwarding from 127.0.0.1:\(local + 1)", seconds: 20,
            what: "kubectl port-forward")
        func curl(_ path: String, port: UInt16) throws -> ChildProcess.Output {
            try ChildProcess.run(
                "/usr/bin/curl", arguments: ["curl", "-s", "-m", "10", "http://127.0.0.1:\(port)\(path)"],
                environment: [])
        }
        #expect(try curl("/index.html", port: local).stdoutText == "served by a pod\n")
        // A megabyte through the tunnel, byte for byte what the pod has.
        let big = try curl("/big", port: local)
        #expect(big.stdout.count == 1_048_576)
        let digest = try box.kubectl(["exec", "web", "--", "md5sum", "/www/big"]).stdoutText.prefix(32)
        let local5 = try ChildProcess.run("/usr/bin/md5sum", arguments: ["md5sum"], environment: [], input: big.stdout)
        #expect(local5.stdoutText.prefix(32) == digest)
        // Several connections at once.
        for _ in 0..<3 { #expect(try curl("/index.html", port: local).stdoutText == "served by a pod\n") }
        // Nothing listens on 9999 in the pod: the connection fails and kubectl prints the reason (and, as
        // kubectl 1.32 does after an error, ends the whole forward).
        #expect(try curl("/", port: local + 1).stdoutText.isEmpty)
        var more = ""
        while !more.contains("error forwarding port 9999") {
            var entry = pollfd(fd: output.reading.rawValue, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 10_000) > 0 else { break }
            let bytes = try output.reading.read(upTo: 4096)
            if bytes.isEmpty { break }
            more += String(decoding: bytes, as: UTF8.self)
        }
        #expect(more.contains("error forwarding port 9999"), "\(more)")
        _ = try box.kubectl(["delete", "pod", "web", "--grace-period=0", "--force"])
    }
}

/// kubectl's SPDY/3.1 path (its fallback when a server refuses the WebSocket upgrade, forced here with
/// its environment switches): the API server and the agent pass the upgrade on as kube-apiserver and the
/// kubelet do, and the runtime's streaming server serves the session.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct KubectlSPDYTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }
    let spdy = ["KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"]

    @Test func execAttachAndCopyOverSPDY() throws {
        let box = try box
        let created = try box.kubectl(
            ["create", "-f", "-"],
            input: """
                apiVersion: v1
                kind: Pod
                metadata: {name: spdy}
                spec:
                  containers:
                  - name: main
                    image: \(box.image)
                    command: ["sh", "-c", "sleep 1000"]
                  - name: reader
                    image: \(box.image)
                    stdin: true
                    stdinOnce: true
                    command: ["sh", "-c", "while read line; do echo got $line; done"]
                """)
        try #require(created.status.succeeded, "\(created.stderrText)")
        try #require(
            try box.eventually { try box.get("pod/spdy", "{.status.phase}") == "Running" }, "\(box.diagnostics())")

        // SPDY indeed: kubectl's POST answered 101 (its WebSocket request would be a GET).
        let ran = try box.kubectl(
            ["-v=6", "exec", "spdy", "-c", "main", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
            environment: spdy)
        #expect(ran.stdoutText == "out\n")
        #expect(ran.stderrText.contains("err\n"))
        #expect(ran.status == .exited(3), "\(ran.stderrText)")
        let upgrade = ran.stderrText.split(separator: "\n").filter { $0.contains("/pods/spdy/exec?") }
        #expect(upgrade.count == 1 && upgrade[0].contains("POST https://"), "\(ran.stderrText)")
        #expect(upgrade.first?.contains("101 Switching Protocols") == true, "\(ran.stderrText)")

        let echoed = try box.kubectl(
            ["exec", "-i", "spdy", "-c", "main", "--", "cat"], input: "through stdin\n", environment: spdy)
        #expect(echoed.status.succeeded, "\(echoed.stderrText)")
        #expect(echoed.stdoutText == "through stdin\n")
        // Failed checks come back as the API server's Status, printed by kubectl.
        let wrong = try box.kubectl(["exec", "spdy", "-c", "nosuch", "--", "true"], environment: spdy)
        #expect(!wrong.status.succeeded)
        #expect(wrong.stderrText.contains("container nosuch is not valid for pod spdy"), "\(wrong.stderrText)")
        let missing = try box.kubectl(["exec", "nopod", "--", "true"], environment: spdy)
        #expect(missing.stderrText.contains("pods \"nopod\" not found"), "\(missing.stderrText)")
        let impersonated = try box.kubectl(["exec", "--as=nobody", "spdy", "--", "true"], environment: spdy)
        #expect(impersonated.stderrText.contains(#"User "nobody" cannot"#), "\(impersonated.stderrText)")

        // A terminal, with its size sent on the resize stream.
        let command =
            "/usr/bin/kubectl --kubeconfig \(box.base)/server/admin.kubeconfig exec -it spdy -c main -- sh -c 'tty; echo rows=$(stty size)'"
        let terminal = try ChildProcess.run(
            "/usr/bin/script", arguments: ["script", "-qec", "stty rows 33 cols 101; " + command, "/dev/null"],
            environment: box.environment + spdy, input: [])
        #expect(terminal.stdoutText.contains("/dev/pts/"), "\(terminal.stdoutText) \(terminal.stderrText)")
        #expect(terminal.stdoutText.contains("rows=33 101"), "\(terminal.stdoutText)")

        let attached = try box.kubectl(["attach", "-i", "spdy", "-c", "reader"], input: "hello\n", environment: spdy)
        #expect(attached.stdoutText.contains("got hello"), "\(attached.stdoutText) \(attached.stderrText)")

        // cp is tar over exec: both ways.
        let local = box.base + "/spdy-in.txt"
        try "copied over spdy\n".write(toFile: local, atomically: true, encoding: .utf8)
        let up = try box.kubectl(["cp", "-c", "main", local, "spdy:/tmp/in.txt"], environment: spdy)
        #expect(up.status.succeeded, "\(up.stderrText)")
        let back = box.base + "/spdy-back.txt"
        let down = try box.kubectl(["cp", "-c", "main", "spdy:/tmp/in.txt", back], environment: spdy)
        #expect(down.status.succeeded, "\(down.stderrText)")
        #expect(try String(contentsOfFile: back, encoding: .utf8) == "copied over spdy\n")
        _ = try box.kubectl(["delete", "pod", "spdy", "--grace-period=0", "--force"])
    }

    @Test func portForwardOverSPDY() throws {
        let box = try box
        let created = try box.kubectl([
            "run", "spdyweb", "--image=\(box.image)", "--", "sh", "-c", "exec httpd -f -p 8080 -h /www",
        ])
        try #require(created.status.succeeded, "\(created.stderrText)")
        try #require(
            try box.eventually { try box.get("pod/spdyweb", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        try #require(
            try box.eventually(20) {
                try box.kubectl(["exec", "spdyweb", "--", "wget", "-qO-", "http://127.0.0.1:8080/index.html"])
                    .stdoutText == "served by a pod\n"
            })
        let local = freeLocalPort()
        let output = try BerthOS.Pipe()
        let forwarder = try ChildProcess.spawn(
            "/usr/bin/kubectl",
            arguments: [
                "kubectl", "--kubeconfig", box.base + "/server/admin.kubeconfig", "-v=6", "port-forward",
                "pod/spdyweb", "\(local):8080",
            ], environment: box.environment + spdy,
            fileDescriptors: [1: output.writing.rawValue, 2: output.writing.rawValue])
        output.writing.close()
        defer {
            kill(forwarder, SIGTERM)
            _ = try? ChildProcess.wait(forwarder)
        }
        let said = try awaitOutput(
            output.reading, containing: "Forwarding from 127.0.0.1:\(local)", seconds: 20, what: "kubectl port-forward")
        // SPDY's POST, answered 101, before kubectl listens.
        let upgrade = said.split(separator: "\n").filter { $0.contains("/pods/spdyweb/portforward") }
        #expect(upgrade.first?.contains("POST https://") == true, "\(said)")
        #expect(upgrade.first?.contains("101 Switching Protocols") == true, "\(said)")
        let fetched = try ChildProcess.run(
            "/usr/bin/curl", arguments: ["curl", "-s", "-m", "10", "http://127.0.0.1:\(local)/index.html"],
            environment: [])
        #expect(fetched.stdoutText == "served by a pod\n")
        _ = try box.kubectl(["delete", "pod", "spdyweb", "--grace-period=0", "--force"])
    }
}

/// `kubectl top`: the agents' Summary API (from the runtime's stats RPCs) served as metrics.k8s.io.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct KubectlTopTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    @Test func topShowsTheNodeAndABusyPod() throws {
        let box = try box
        let created = try box.kubectl(["run", "busy", "--image=\(box.image)", "--", "sh", "-c", "while :; do :; done"])
        try #require(created.status.succeeded, "\(created.stderrText)")
        try #require(
            try box.eventually { try box.get("pod/busy", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        // A rate needs two samples of the agent (10 s apart): until then kubectl says none are available.
        var top: ChildProcess.Output?
        #expect(
            try box.eventually(45) {
                top = try box.kubectl(["top", "pod", "busy", "--no-headers"])
                return top?.status.succeeded == true
            }, "\(top?.stderrText ?? "")")
        let shown = top?.stdoutText ?? ""
        // busy   987m   1Mi: a core spinning shows as hundreds of millicores.
        let fields = shown.split(separator: " ", omittingEmptySubsequences: true)
        #expect(fields.first == "busy")
        let millicores = fields.count > 1 ? Int(fields[1].dropLast()) ?? 0 : 0
        #expect(millicores > 300, "\(shown)")
        let node = try box.kubectl(["top", "node", "--no-headers"])
        #expect(node.status.succeeded, "\(node.stderrText)")
        #expect(node.stdoutText.hasPrefix(box.nodeName), "\(node.stdoutText)")
        let containers = try box.kubectl(["top", "pod", "busy", "--containers", "--no-headers"]).stdoutText
        #expect(containers.contains("busy"), "\(containers)")
        // In protobuf where asked first, as metrics-server answers kube-controller-manager's HPA client.
        let serverPKI = box.base + "/server/pki"
        let protobuf = try ChildProcess.run(
            "/usr/bin/curl",
            arguments: [
                "curl", "-s", "-D", "/dev/stderr", "--cacert", serverPKI + "/ca.crt", "--cert",
                serverPKI + "/admin.crt",
                "--key", serverPKI + "/admin.key", "-H",
                "Accept: application/vnd.kubernetes.protobuf, application/json",
                "https://127.0.0.1:\(box.port)/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/busy",
            ], environment: [])
        #expect(
            protobuf.stderrText.lowercased().contains("content-type: application/vnd.kubernetes.protobuf"),
            "\(protobuf.stderrText)")
        #expect(protobuf.stdout.starts(with: [0x6b, 0x38, 0x73, 0x00]))
        #expect(protobuf.stdoutText.contains("PodMetrics") && protobuf.stdoutText.contains("busy"))
        // The kubelet's endpoints themselves, with the API server's client certificate.
        let pki = box.base + "/server/pki"
        func agent(_ path: String) throws -> String {
            try ChildProcess.run(
                "/usr/bin/curl",
                arguments: [
                    "curl", "-s", "--cacert", pki + "/ca.crt", "--cert", pki + "/apiserver-kubelet-client.crt", "--key",
                    pki + "/apiserver-kubelet-client.key", "https://127.0.0.1:\(box.kubeletPort)\(path)",
                ], environment: []
            ).stdoutText
        }
        #expect(try agent("/stats/summary").contains("\"name\":\"busy\""))
        let metrics = try agent("/metrics/resource")
        #expect(
            metrics.contains("container_cpu_usage_seconds_total{container=\"busy\",namespace=\"default\",pod=\"busy\"}")
        )
        #expect(metrics.contains("node_memory_working_set_bytes "))
        _ = try box.kubectl(["delete", "pod", "busy", "--grace-period=0", "--force"])
    }
}

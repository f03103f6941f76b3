#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Foundation
import Testing

/// The node agent on a CRI runtime that is not Berth's: Debian's containerd 1.6 (started by
/// scripts/containerd-cri.sh on a socket and directories of its own), images pulled from a local
/// docker-registry. What a pod does proves the CRI path: it runs and serves on its address, its log
/// reaches kubectl, exec streams both ways (the agent speaks SPDY to containerd's streaming server),
/// port-forward reaches it, a crashing container backs off, and deleting it leaves nothing.
@Suite(
    .serialized, .enabled(if: isRealRoot, "runs containers: needs real root"),
    .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/containerd"), "needs containerd"))
struct ContainerdAgentTests {
    @Test func podsRunOnContainerdThroughTheCRI() throws {
        let directory =
            NSTemporaryDirectory() + "berth-containerd-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Tests/BerthAgentTests/ThisFile.swift → the package's root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let script = root + "/scripts/containerd-cri.sh"
        // The registry the images come from.
        let port = Int(freeLocalPort())
        let registry = "127.0.0.1:\(port)"
        try """
        version: 0.1
        log: {level: error, accesslog: {disabled: true}}
        storage: {filesystem: {rootdirectory: \(directory)/registry}}
        http: {addr: \(registry)}
        """.write(toFile: directory + "/registry.yml", atomically: true, encoding: .utf8)
        let registryLog = open(directory + "/registry.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        let registryPID = try ChildProcess.spawn(
            "/usr/bin/docker-registry", arguments: ["docker-registry", "serve", directory + "/registry.yml"],
            environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], fileDescriptors: [1: registryLog, 2: registryLog])
        close(registryLog)
        defer {
            kill(registryPID, SIGTERM)
            _ = try? ChildProcess.wait(registryPID)
            try? FileManager.default.removeItem(atPath: directory)
        }
        let runtimeDirectory = directory + "/containerd"
        let started = try ChildProcess.run(
            "/bin/bash", arguments: ["bash", script, "start", runtimeDirectory, registry],
            environment: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        defer {
            _ = try? ChildProcess.run(
                "/bin/bash", arguments: ["bash", script, "stop", runtimeDirectory],
                environment: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        }
        try #require(started.status.succeeded, "\(started.stderrText)")

        let box = try ServerBox(extraArguments: [
            "--container-runtime-endpoint", "unix://\(runtimeDirectory)/containerd.sock",
        ])
        defer { box.tearDown() }
        let image = "\(registry)/busybox:1"
        #expect(
            try box.eventually(60) {
                try box.get("node/\(box.nodeName)", "{.status.nodeInfo.containerRuntimeVersion}").hasPrefix(
                    "containerd://")
            })
        let created = try box.kubectl([
            "run", "on-containerd", "--image=\(image)", "--", "sh", "-c",
            "echo hello from containerd; exec httpd -f -p 8080 -h /www",
        ])
        try #require(created.status.succeeded, "\(created.stderrText)")
        #expect(
            try box.eventually(90) { try box.get("pod/on-containerd", "{.status.phase}") == "Running" },
            "\(box.log().suffix(3000))")
        #expect(
            try box.get("pod/on-containerd", "{.status.containerStatuses[0].containerID}").hasPrefix("containerd://"))
        let ip = try box.get("pod/on-containerd", "{.status.podIP}")
        #expect(ip.hasPrefix("10.99."), "\(ip)")
        #expect(
            try box.eventually(20) {
                (try? ChildProcess.run(
                    "/usr/bin/curl", arguments: ["curl", "-s", "-m", "2", "http://\(ip):8080/index.html"],
                    environment: []))?.stdoutText == "served by a pod\n"
            })
        #expect(
            try box.eventually(20) {
                try box.kubectl(["logs", "on-containerd"]).stdoutText == "hello from containerd\n"
            })
        // exec with stdin that ends (v5's close of stdin becomes the SPDY stream's FIN) and an exit code.
        let exec = try box.kubectl(
            ["exec", "-i", "on-containerd", "--", "sh", "-c", "cat; exit 3"], input: "through containerd\n")
        #expect(exec.stdoutText == "through containerd\n", "\(exec.stderrText)")
        #expect(exec.status == .exited(3), "\(exec.stderrText)")
        // kubectl's SPDY fallback: tunnelled by the API server and the agent to containerd's own server.
        let spdy = try box.kubectl(
            ["exec", "-i", "on-containerd", "--", "sh", "-c", "cat; exit 4"], input: "spdy to containerd\n",
            environment: ["KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"])
        #expect(spdy.stdoutText == "spdy to containerd\n", "\(spdy.stderrText)")
        #expect(spdy.status == .exited(4), "\(spdy.stderrText)")
        // A crashing container backs off as it does on Berth's engine.
        _ = try box.kubectl(["run", "crasher", "--image=\(image)", "--", "sh", "-c", "exit 1"])
        #expect(
            try box.eventually(60) {
                try box.get("pod/crasher", "{.status.containerStatuses[0].state.waiting.reason}") == "CrashLoopBackOff"
            }, "\(box.log().suffix(3000))")
        for pod in ["on-containerd", "crasher"] {
            let deleted = try box.kubectl(["delete", "pod", pod, "--grace-period=1", "--timeout=60s"])
            #expect(deleted.status.succeeded, "\(deleted.stderrText)")
        }
        let left = try ChildProcess.run(
            "/usr/bin/ctr",
            arguments: [
                "ctr", "--address", runtimeDirectory + "/containerd.sock", "--namespace", "k8s.io", "containers", "ls",
                "-q",
            ],
            environment: [])
        #expect(
            try box.eventually(30) {
                (try? ChildProcess.run(
                    "/usr/bin/ctr",
                    arguments: [
                        "ctr", "--address", runtimeDirectory + "/containerd.sock", "--namespace", "k8s.io",
                        "containers", "ls", "-q",
                    ],
                    environment: []))?.stdoutText.isEmpty == true
            }, "\(left.stdoutText)")
    }
}

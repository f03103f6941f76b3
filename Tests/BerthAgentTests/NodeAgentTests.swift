import BerthCRIProtocol
import BerthOS
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization
import Testing

/// `berth server` as a one-node cluster: its agent registers the node and runs real pods through the
/// engine's CRI, driven with kubectl as a user drives a cluster.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct NodeAgentTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    @Test func theNodeRegistersReadyWithTheMachinesCapacity() throws {
        let box = try box
        #expect(
            try box.eventually {
                try box.get("node/\(box.nodeName)", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
            }, "\(box.diagnostics())")
        let cpus = try box.get("node/\(box.nodeName)", "{.status.capacity.cpu}")
        #expect(Int(cpus) == Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #expect(try box.get("node/\(box.nodeName)", "{.status.nodeInfo.containerRuntimeVersion}").hasPrefix("berth://"))
        let holder = try box.kubectl([
            "get", "lease", box.nodeName, "-n", "kube-node-lease", "-o", "jsonpath={.spec.holderIdentity}",
        ]).stdoutText
        #expect(holder == box.nodeName)
    }

    @Test func aPodRunsAndServesOnItsAddress() throws {
        let box = try box
        let created = try box.kubectl([
            "run", "web", "--image=\(box.image)", "--port=8080", "--", "httpd", "-f", "-p", "8080", "-h", "/www",
        ])
        #expect(created.status.succeeded, "\(created.stderrText)")
        #expect(try box.eventually { try box.get("pod/web", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        #expect(
            try box.eventually { try box.get("pod/web", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True" }
        )
        let ip = try box.get("pod/web", "{.status.podIP}")
        #expect(!ip.isEmpty)
        #expect(try box.get("pod/web", "{.status.containerStatuses[0].containerID}").hasPrefix("berth://"))
        #expect(try box.get("pod/web", "{.status.qosClass}") == "BestEffort")
        var body = ""
        #expect(
            try box.eventually(20) {
                body =
                    (try? ChildProcess.run(
                        "/usr/bin/curl", arguments: ["curl", "-s", "-m", "2", "http://\(ip):8080/index.html"],
                        environment: []))?.stdoutText ?? ""
                return body == "served by a pod\n"
            })
        // Deleted: stopped within its grace period and gone from the API.
        let deleted = try box.kubectl(["delete", "pod", "web", "--grace-period=2", "--timeout=60s"])
        #expect(deleted.status.succeeded, "\(deleted.stderrText)")
        #expect(try box.kubectl(["get", "pod", "web"]).status != .exited(0))
    }

    @Test func aCrashingContainerBacksOffAsTheKubeletsDoes() throws {
        let box = try box
        _ = try box.kubectl(["run", "crasher", "--image=\(box.image)", "--", "sh", "-c", "echo bye; exit 3"])
        #expect(
            try box.eventually(40) {
                try box.get("pod/crasher", "{.status.containerStatuses[0].state.waiting.reason}") == "CrashLoopBackOff"
            }, "\(box.diagnostics())")
        #expect(Int(try box.get("pod/crasher", "{.status.containerStatuses[0].restartCount}")) ?? 0 >= 1)
        #expect(try box.get("pod/crasher", "{.status.containerStatuses[0].lastState.terminated.exitCode}") == "3")
        #expect(try box.get("pod/crasher", "{.status.phase}") == "Running")
        let uid = try box.get("pod/crasher", "{.metadata.uid}")
        let log = try FileSystem.readString("\(box.base)/logs/default_crasher_\(uid)/crasher/0.log")
        #expect(log.hasSuffix(" stdout F bye\n"))
        _ = try box.kubectl(["delete", "pod", "crasher", "--grace-period=0", "--force"])
    }

    @Test func aContainerThatCannotStartIsRetriedWithBackOffOrFailsThePod() throws {
        let box = try box
        _ = try box.kubectl(["run", "unstartable", "--image=\(box.image)", "--command", "--", "/no/such/binary"])
        _ = try box.kubectl([
            "run", "unstartable-once", "--image=\(box.image)", "--restart=Never", "--command", "--", "/no/such/binary",
        ])
        // As the kubelet over containerd: the failed start is a terminated run (128, StartError) and the
        // container is made again by its restartPolicy, backing off; with Never the pod fails.
        #expect(
            try box.eventually(40) {
                try box.get("pod/unstartable", "{.status.containerStatuses[0].state.waiting.reason}")
                    == "CrashLoopBackOff"
            }, "\(box.diagnostics())")
        #expect(Int(try box.get("pod/unstartable", "{.status.containerStatuses[0].restartCount}")) ?? 0 >= 1)
        #expect(try box.get("pod/unstartable", "{.status.containerStatuses[0].lastState.terminated.exitCode}") == "128")
        #expect(
            try box.get("pod/unstartable", "{.status.containerStatuses[0].lastState.terminated.reason}") == "StartError"
        )
        #expect(
            try box.eventually { try box.get("pod/unstartable-once", "{.status.phase}") == "Failed" },
            "\(box.diagnostics())")
        #expect(
            try box.get("pod/unstartable-once", "{.status.containerStatuses[0].state.terminated.reason}")
                == "StartError")
        #expect(
            try box.get("pod/unstartable-once", "{.status.containerStatuses[0].state.terminated.message}")
                .contains("/no/such/binary"))
        _ = try box.kubectl(["delete", "pod", "unstartable", "unstartable-once", "--grace-period=0", "--force"])
    }

    @Test func aPodThatEndsSucceedsOrFailsByItsRestartPolicy() throws {
        let box = try box
        _ = try box.kubectl(["run", "once", "--image=\(box.image)", "--restart=Never", "--", "true"])
        _ = try box.kubectl(["run", "fails", "--image=\(box.image)", "--restart=Never", "--", "false"])
        #expect(
            try box.eventually { try box.get("pod/once", "{.status.phase}") == "Succeeded" }, "\(box.diagnostics())")
        #expect(try box.eventually { try box.get("pod/fails", "{.status.phase}") == "Failed" })
        #expect(try box.get("pod/once", "{.status.containerStatuses[0].state.terminated.reason}") == "Completed")
        #expect(try box.get("pod/fails", "{.status.containerStatuses[0].state.terminated.reason}") == "Error")
    }

    @Test func environmentFromConfigMapsAndTheDownwardAPI() throws {
        let box = try box
        _ = try box.kubectl(["create", "configmap", "settings", "--from-literal=greeting=hello"])
        let manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: env, labels: {app: env}}
            spec:
              restartPolicy: Never
              containers:
              - name: main
                image: \(box.image)
                command: ["sh", "-c", "echo $GREETING $(POD_NAME) $NODE; cat /config/greeting; echo"]
                env:
                - {name: GREETING, valueFrom: {configMapKeyRef: {name: settings, key: greeting}}}
                - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
                - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
                volumeMounts: [{name: config, mountPath: /config}]
              volumes: [{name: config, configMap: {name: settings}}]
            """
        let applied = try box.kubectl(["apply", "-f", "-"], input: manifest)
        #expect(applied.status.succeeded, "\(applied.stderrText)")
        #expect(try box.eventually { try box.get("pod/env", "{.status.phase}") == "Succeeded" }, "\(box.diagnostics())")
        let uid = try box.get("pod/env", "{.metadata.uid}")
        let log = try FileSystem.readString("\(box.base)/logs/default_env_\(uid)/main/0.log")
        let lines = log.split(separator: "\n").map {
            $0.split(separator: " ", maxSplits: 3).last.map(String.init) ?? ""
        }
        #expect(lines == ["hello env \(box.nodeName)", "hello"])

        // A missing ConfigMap: the kubelet's reason and message, not a stuck pod without one.
        _ = try box.kubectl(
            ["apply", "-f", "-"],
            input: manifest.replacingOccurrences(of: "name: env,", with: "name: broken,")
                .replacingOccurrences(of: "configMapKeyRef: {name: settings", with: "configMapKeyRef: {name: absent"))
        #expect(
            try box.eventually(30) {
                try box.get("pod/broken", "{.status.containerStatuses[0].state.waiting.reason}")
                    == "CreateContainerConfigError"
            }, "\(box.diagnostics())")
        #expect(
            try box.get("pod/broken", "{.status.containerStatuses[0].state.waiting.message}")
                == "configmap \"absent\" not found")
    }

    @Test func anImageThatIsNotThereWithPolicyNeverSaysSo() throws {
        let box = try box
        _ = try box.kubectl(["run", "ghost", "--image=test/absent:1", "--image-pull-policy=Never", "--", "true"])
        #expect(
            try box.eventually(30) {
                try box.get("pod/ghost", "{.status.containerStatuses[0].state.waiting.reason}") == "ErrImageNeverPull"
            }, "\(box.diagnostics())")
        #expect(try box.get("pod/ghost", "{.status.phase}") == "Pending")
    }

    @Test func aDeploymentsReplicasRunOnTheNode() throws {
        let box = try box
        let created = try box.kubectl([
            "create", "deployment", "hello", "--image=\(box.image)", "--replicas=2", "--", "sleep", "1000",
        ])
        #expect(created.status.succeeded, "\(created.stderrText)")
        #expect(
            try box.eventually { try box.get("deployment/hello", "{.status.readyReplicas}") == "2" },
            "\(box.diagnostics())")
        _ = try box.kubectl(["delete", "deployment", "hello"])
    }
}

/// Init containers: run in order to completion before the app containers start.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct InitContainerTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    @Test func initContainersRunFirstInOrderAndShareTheirVolumes() throws {
        let box = try box
        let manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: staged}
            spec:
              restartPolicy: Never
              initContainers:
              - {name: first, image: \(box.image), command: ["sh", "-c", "echo one > /work/steps"], volumeMounts: [{name: work, mountPath: /work}]}
              - {name: second, image: \(box.image), command: ["sh", "-c", "echo two >> /work/steps"], volumeMounts: [{name: work, mountPath: /work}]}
              containers:
              - {name: main, image: \(box.image), command: ["cat", "/work/steps"], volumeMounts: [{name: work, mountPath: /work}]}
              volumes: [{name: work, emptyDir: {}}]
            """
        let applied = try box.kubectl(["apply", "-f", "-"], input: manifest)
        #expect(applied.status.succeeded, "\(applied.stderrText)")
        #expect(
            try box.eventually { try box.get("pod/staged", "{.status.phase}") == "Succeeded" }, "\(box.diagnostics())")
        #expect(
            try box.get("pod/staged", "{.status.initContainerStatuses[*].state.terminated.reason}")
                == "Completed Completed")
        #expect(try box.get("pod/staged", "{.status.conditions[?(@.type==\"Initialized\")].status}") == "True")
        let uid = try box.get("pod/staged", "{.metadata.uid}")
        let log = try FileSystem.readString("\(box.base)/logs/default_staged_\(uid)/main/0.log")
        #expect(
            log.split(separator: "\n").map { $0.split(separator: " ", maxSplits: 3).last.map(String.init) ?? "" } == [
                "one", "two",
            ])
    }

    @Test func aFailingInitContainerFailsAPodThatDoesNotRestart() throws {
        let box = try box
        let manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: blocked}
            spec:
              restartPolicy: Never
              initContainers: [{name: check, image: \(box.image), command: ["sh", "-c", "exit 2"]}]
              containers: [{name: main, image: \(box.image), command: ["true"]}]
            """
        _ = try box.kubectl(["apply", "-f", "-"], input: manifest)
        #expect(
            try box.eventually { try box.get("pod/blocked", "{.status.phase}") == "Failed" }, "\(box.diagnostics())")
        #expect(try box.get("pod/blocked", "{.status.initContainerStatuses[0].state.terminated.exitCode}") == "2")
        #expect(try box.get("pod/blocked", "{.status.containerStatuses[0].state.waiting.reason}") == "PodInitializing")
    }
}

/// Probes: readiness gates the pod's Ready, liveness restarts the container.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct ProbeTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    @Test func readinessWaitsForTheServerAndTCPAndExecProbesAnswer() throws {
        let box = try box
        let manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: slow}
            spec:
              containers:
              - name: web
                image: \(box.image)
                command: ["sh", "-c", "sleep 3; exec httpd -f -p 8080 -h /www"]
                ports: [{name: http, containerPort: 8080}]
                readinessProbe: {httpGet: {path: /index.html, port: http}, periodSeconds: 1}
              - name: tcp
                image: \(box.image)
                command: ["httpd", "-f", "-p", "9090", "-h", "/www"]
                readinessProbe: {tcpSocket: {port: 9090}, periodSeconds: 1}
              - name: never
                image: \(box.image)
                command: ["sleep", "1000"]
                readinessProbe: {exec: {command: ["false"]}, periodSeconds: 1}
            """
        let applied = try box.kubectl(["apply", "-f", "-"], input: manifest)
        #expect(applied.status.succeeded, "\(applied.stderrText)")
        #expect(try box.eventually { try box.get("pod/slow", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        // Running but not ready while httpd sleeps; then web and tcp ready, never not.
        #expect(try box.get("pod/slow", "{.status.containerStatuses[?(@.name==\"web\")].ready}") == "false")
        #expect(
            try box.eventually(20) {
                try box.get("pod/slow", "{.status.containerStatuses[?(@.name==\"web\")].ready}") == "true"
            }, "\(box.diagnostics())")
        #expect(
            try box.eventually(10) {
                try box.get("pod/slow", "{.status.containerStatuses[?(@.name==\"tcp\")].ready}") == "true"
            })
        #expect(try box.get("pod/slow", "{.status.containerStatuses[?(@.name==\"never\")].ready}") == "false")
        #expect(try box.get("pod/slow", "{.status.conditions[?(@.type==\"Ready\")].status}") == "False")
        _ = try box.kubectl(["delete", "pod", "slow", "--grace-period=1"])
    }

    @Test func aFailingLivenessProbeRestartsTheContainer() throws {
        let box = try box
        let manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: sick}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: main
                image: \(box.image)
                command: ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 1000"]
                livenessProbe: {exec: {command: ["test", "-f", "/tmp/healthy"]}, periodSeconds: 1, failureThreshold: 2}
            """
        _ = try box.kubectl(["apply", "-f", "-"], input: manifest)
        #expect(
            try box.eventually(40) {
                Int(try box.get("pod/sick", "{.status.containerStatuses[0].restartCount}")) ?? 0 >= 1
            }, "\(box.diagnostics())")
        let events = try box.kubectl([
            "get", "events", "--field-selector", "involvedObject.name=sick", "-o", "jsonpath={.items[*].reason}",
        ]).stdoutText
        #expect(events.contains("Unhealthy"))
        #expect(events.contains("Killing"))
        _ = try box.kubectl(["delete", "pod", "sick", "--grace-period=1"])
    }
}

/// A grpc probe asks the health protocol on the pod's address: here a host-network pod, whose address is
/// the node's, and a health server run by the test, whose answer decides the container's readiness.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct GRPCProbeTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    /// The health service: SERVING or NOT_SERVING for the service "berth", as the test sets it.
    final class Health: Grpc_Health_V1_Health.SimpleServiceProtocol {
        let serving = Mutex(false)
        func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws
            -> Grpc_Health_V1_HealthCheckResponse
        {
            guard request.service == "berth" else { throw RPCError(code: .notFound, message: "unknown service") }
            var response = Grpc_Health_V1_HealthCheckResponse()
            response.status = serving.withLock { $0 } ? .serving : .notServing
            return response
        }
        func watch(
            request: Grpc_Health_V1_HealthCheckRequest,
            response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>, context: ServerContext
        ) async throws {
            throw RPCError(code: .unimplemented, message: "watch")
        }
    }

    @Test func readinessFollowsTheHealthServersAnswer() async throws {
        let box = try box
        let health = Health()
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: "0.0.0.0", port: 0), transportSecurity: .plaintext),
            services: [health])
        let serving = Task { try await server.serve() }
        defer { server.beginGracefulShutdown() }
        let port = try #require(try await server.listeningAddress?.ipv4?.port)
        let manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: grpc-probed}
            spec:
              hostNetwork: true
              terminationGracePeriodSeconds: 1
              containers:
              - name: main
                image: \(box.image)
                command: ["sleep", "1000"]
                readinessProbe: {grpc: {port: \(port), service: berth}, periodSeconds: 1}
            """
        let applied = try box.kubectl(["apply", "-f", "-"], input: manifest)
        #expect(applied.status.succeeded, "\(applied.stderrText)")
        #expect(
            try box.eventually { try box.get("pod/grpc-probed", "{.status.phase}") == "Running" },
            "\(box.diagnostics())")
        // NOT_SERVING: not ready, and the event quotes the answer as the kubelet's does.
        #expect(
            try box.eventually(20) {
                try box.kubectl([
                    "get", "events", "--field-selector", "involvedObject.name=grpc-probed", "-o",
                    "jsonpath={.items[*].message}",
                ]).stdoutText.contains("service unhealthy (responded with \"NOT_SERVING\")")
            })
        #expect(try box.get("pod/grpc-probed", "{.status.containerStatuses[0].ready}") == "false")
        health.serving.withLock { $0 = true }
        #expect(
            try box.eventually(20) { try box.get("pod/grpc-probed", "{.status.containerStatuses[0].ready}") == "true" },
            "\(box.diagnostics())")
        _ = try box.kubectl(["delete", "pod", "grpc-probed", "--grace-period=1"])
        server.beginGracefulShutdown()
        try await serving.value
    }
}

/// The agent and engine killed and started again while pods run: the running containers are adopted
/// from the runtime, not restarted, and the pods go on being looked after.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct AgentRestartTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    @Test func runningPodsSurviveACrashOfTheServer() throws {
        let box = try box
        let created = try box.kubectl([
            "run", "survivor", "--image=\(box.image)", "--", "httpd", "-f", "-p", "8080", "-h", "/www",
        ])
        try #require(created.status.succeeded, "\(created.stderrText)")
        try #require(
            try box.eventually { try box.get("pod/survivor", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        let containerID = try box.get("pod/survivor", "{.status.containerStatuses[0].containerID}")
        let ip = try box.get("pod/survivor", "{.status.podIP}")
        func serving() -> String {
            (try? ChildProcess.run(
                "/usr/bin/curl", arguments: ["curl", "-s", "-m", "2", "http://\(ip):8080/index.html"], environment: []))?
                .stdoutText ?? ""
        }
        // Serving before the crash (httpd may take a moment to listen once the container runs).
        #expect(try box.eventually(20) { serving() == "served by a pod\n" }, "\(ip) \(box.log().suffix(3000))")
        try box.crashAndRestart()
        // Still the same container, never restarted, still serving, still looked after.
        #expect(
            try box.eventually(30) {
                try box.get("node/\(box.nodeName)", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
            })
        #expect(try box.get("pod/survivor", "{.status.containerStatuses[0].containerID}") == containerID)
        #expect(try box.get("pod/survivor", "{.status.containerStatuses[0].restartCount}") == "0")
        #expect(serving() == "served by a pod\n", "\(ip) \(box.log().suffix(3000))")
        let exec = try box.kubectl(["exec", "survivor", "--", "true"])
        #expect(exec.status.succeeded, "\(exec.stderrText) \(box.log().suffix(4000))")
        // And a change after the restart is acted on: deletion stops it.
        let deleted = try box.kubectl(["delete", "pod", "survivor", "--grace-period=1", "--timeout=60s"])
        #expect(deleted.status.succeeded, "\(deleted.stderrText)")
    }
}

/// Image garbage collection with thresholds that always apply: the unused image goes, the one a pod
/// runs stays.
@Suite(
    .serialized, .enabled(if: isRealRoot, "runs containers: needs real root"),
    .berthServer([
        // The minimum age lets the suite's pod start on its image before that image could be collected.
        "--image-gc-high-threshold", "0", "--image-gc-low-threshold", "0", "--image-minimum-gc-age", "15",
        "--image-gc-period", "1",
    ]))
struct ImageGarbageCollectionTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    func images() throws -> String {
        let box = try box
        return try ChildProcess.run(
            box.berth, arguments: [box.berth, "images", "--root", box.base + "/engine"], environment: box.environment
        ).stdoutText
    }

    @Test func unusedImagesAreRemovedAndUsedOnesKept() throws {
        let box = try box
        let created = try box.kubectl(["run", "keeper", "--image=\(box.image)", "--", "sleep", "1000"])
        try #require(created.status.succeeded, "\(created.stderrText)")
        try #require(
            try box.eventually { try box.get("pod/keeper", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        let tar = try busyboxLayer(in: box.base, files: ["/unused": "not used by any pod\n"])
        let imported = try ChildProcess.run(
            box.berth,
            arguments: [box.berth, "image", "import", "--root", box.base + "/engine", tar, "--tag", "test/unused:1"],
            environment: box.environment)
        try #require(imported.status.succeeded, "\(imported.stderrText)")
        #expect(try box.eventually(60) { !(try images()).contains("test/unused") }, "\((try? images()) ?? "")")
        #expect(try images().contains("test/agent"))
        #expect(try box.get("pod/keeper", "{.status.phase}") == "Running")
        _ = try box.kubectl(["delete", "pod", "keeper", "--grace-period=0", "--force"])
    }
}

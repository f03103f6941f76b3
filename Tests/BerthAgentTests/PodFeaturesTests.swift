import BerthOS
import Foundation
import Testing

/// Volumes, hooks and security checks proved by what a pod sees: downwardAPI and projected files, a
/// memory-backed emptyDir, fsGroup ownership, postStart and preStop hooks, runAsNonRoot refused, the
/// RuntimeClass's handler.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct PodFeaturesTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    func apply(_ manifest: String) throws {
        let applied = try box.kubectl(["create", "-f", "-"], input: manifest)
        try #require(applied.status.succeeded, "\(applied.stderrText)")
    }

    func exec(_ pod: String, _ script: String) throws -> String {
        try box.kubectl(["exec", pod, "--", "sh", "-c", script]).stdoutText
    }

    @Test func downwardAPIProjectedAndMemoryVolumes() throws {
        let box = try box
        try apply(
            """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings}
            data: {mode: fast}
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              name: volumes
              labels: {app: volumes, tier: backend}
              annotations: {note: "two \\"quoted\\" words"}
            spec:
              securityContext: {fsGroup: 2345}
              containers:
              - name: main
                image: \(box.image)
                command: ["sleep", "1000"]
                resources: {limits: {memory: 64Mi}}
                volumeMounts:
                - {name: info, mountPath: /etc/info}
                - {name: all, mountPath: /etc/all}
                - {name: scratch, mountPath: /scratch}
              volumes:
              - name: info
                downwardAPI:
                  items:
                  - {path: name, fieldRef: {fieldPath: metadata.name}}
                  - {path: labels, fieldRef: {fieldPath: metadata.labels}}
                  - {path: annotations, fieldRef: {fieldPath: metadata.annotations}}
                  - {path: memory, resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}
              - name: all
                projected:
                  sources:
                  - configMap: {name: settings}
                  - downwardAPI: {items: [{path: namespace, fieldRef: {fieldPath: metadata.namespace}}]}
              - name: scratch
                emptyDir: {medium: Memory, sizeLimit: 16Mi}
            """)
        #expect(
            try box.eventually { try box.get("pod/volumes", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        #expect(try exec("volumes", "cat /etc/info/name") == "volumes")
        #expect(try exec("volumes", "cat /etc/info/labels") == "app=\"volumes\"\ntier=\"backend\"")
        #expect(try exec("volumes", "cat /etc/info/annotations") == #"note="two \"quoted\" words""#)
        #expect(try exec("volumes", "cat /etc/info/memory") == "64")
        #expect(try exec("volumes", "cat /etc/all/mode /etc/all/namespace") == "fastdefault")
        // The kubelet's service variables: client-go's in-cluster configuration needs these two.
        let apiServer = try box.get("service/kubernetes", "{.spec.clusterIP}")
        let seen = try exec("volumes", "printf %s $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT")
        #expect(!apiServer.isEmpty && seen == "\(apiServer):443", "\(seen) for \(apiServer)")
        // A tmpfs of the size asked for, inside the container.
        let mount = try exec("volumes", "grep ' /scratch ' /proc/mounts")
        #expect(mount.hasPrefix("tmpfs /scratch tmpfs"), "\(mount)")
        #expect(mount.contains("size=16384k"), "\(mount)")
        // fsGroup owns what the agent wrote.
        #expect(try exec("volumes", "stat -c %g /etc/info/name").hasPrefix("2345"))
        let uid = try box.get("pod/volumes", "{.metadata.uid}")
        _ = try box.kubectl(["delete", "pod", "volumes", "--grace-period=1"])
        // Deleted: the tmpfs is unmounted with the pod's directory.
        #expect(
            try box.eventually(30) {
                !((try? FileSystem.readString("/proc/self/mountinfo")) ?? "").contains("\(uid)/volumes")
                    && !FileManager.default.fileExists(atPath: "\(box.base)/agent/pods/\(uid)")
            })
    }

    @Test func postStartRunsBeforeAndPreStopOnDeletion() throws {
        let box = try box
        let marks = box.base + "/marks"
        try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)
        try apply(
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: hooks}
            spec:
              terminationGracePeriodSeconds: 20
              containers:
              - name: main
                image: \(box.image)
                command: ["sleep", "1000"]
                volumeMounts: [{name: marks, mountPath: /marks}]
                lifecycle:
                  postStart: {exec: {command: ["sh", "-c", "echo started > /marks/post-start"]}}
                  preStop: {exec: {command: ["sh", "-c", "echo stopping > /marks/pre-stop"]}}
              volumes:
              - {name: marks, hostPath: {path: \(marks)}}
            """)
        #expect(try box.eventually { try box.get("pod/hooks", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        #expect(try String(contentsOfFile: marks + "/post-start", encoding: .utf8) == "started\n")
        #expect(!FileManager.default.fileExists(atPath: marks + "/pre-stop"))
        let deleted = try box.kubectl(["delete", "pod", "hooks", "--timeout=60s"])
        #expect(deleted.status.succeeded, "\(deleted.stderrText) \(box.log().suffix(3000))")
        #expect((try? String(contentsOfFile: marks + "/pre-stop", encoding: .utf8)) == "stopping\n")
    }

    @Test func aLivenessKillRunsPreStopFirst() throws {
        let box = try box
        let marks = box.base + "/liveness-marks"
        try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)
        try apply(
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: unhealthy}
            spec:
              terminationGracePeriodSeconds: 2
              containers:
              - name: main
                image: \(box.image)
                command: ["sleep", "1000"]
                volumeMounts: [{name: marks, mountPath: /marks}]
                livenessProbe: {exec: {command: ["false"]}, periodSeconds: 1, failureThreshold: 1}
                lifecycle:
                  preStop: {exec: {command: ["sh", "-c", "echo stopping >> /marks/pre-stop"]}}
              volumes:
              - {name: marks, hostPath: {path: \(marks)}}
            """)
        #expect(
            try box.eventually(40) {
                (Int(try box.get("pod/unhealthy", "{.status.containerStatuses[0].restartCount}")) ?? 0) >= 1
            }, "\(box.diagnostics())")
        #expect((try? String(contentsOfFile: marks + "/pre-stop", encoding: .utf8))?.hasPrefix("stopping\n") == true)
        _ = try box.kubectl(["delete", "pod", "unhealthy", "--grace-period=0", "--force"])
    }

    @Test func aFailingPostStartKillsTheContainer() throws {
        let box = try box
        try apply(
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: badhook}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: main
                image: \(box.image)
                command: ["sleep", "1000"]
                lifecycle: {postStart: {exec: {command: ["false"]}}}
            """)
        #expect(
            try box.eventually(40) {
                (Int(try box.get("pod/badhook", "{.status.containerStatuses[0].restartCount}")) ?? 0) >= 1
            }, "\(box.diagnostics())")
        let events = try box.kubectl(["get", "events", "--field-selector", "involvedObject.name=badhook"]).stdoutText
        #expect(events.contains("FailedPostStartHook"), "\(events)")
        _ = try box.kubectl(["delete", "pod", "badhook", "--grace-period=0", "--force"])
    }

    @Test func runAsNonRootRefusesAnImageThatRunsAsRoot() throws {
        let box = try box
        try apply(
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: nonroot}
            spec:
              securityContext: {runAsNonRoot: true}
              containers:
              - {name: main, image: \(box.image), command: ["sleep", "1000"]}
            """)
        var reason = ""
        #expect(
            try box.eventually(30) {
                reason = try box.get("pod/nonroot", "{.status.containerStatuses[0].state.waiting.reason}")
                return reason == "CreateContainerConfigError"
            }, "\(reason) \(box.log())")
        let message = try box.get("pod/nonroot", "{.status.containerStatuses[0].state.waiting.message}")
        #expect(message.hasPrefix("container has runAsNonRoot and image will run as root"), "\(message)")
        // With a non-root user it runs.
        _ = try box.kubectl(["delete", "pod", "nonroot", "--grace-period=0", "--force"])
        try apply(
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: nonroot2}
            spec:
              securityContext: {runAsNonRoot: true, runAsUser: 1000}
              containers:
              - {name: main, image: \(box.image), command: ["sleep", "1000"]}
            """)
        #expect(try box.eventually { try box.get("pod/nonroot2", "{.status.phase}") == "Running" })
        #expect(try exec("nonroot2", "id -u") == "1000\n")
        _ = try box.kubectl(["delete", "pod", "nonroot2", "--grace-period=0", "--force"])
    }

    /// A pod's RuntimeClass names the CRI handler its sandbox runs with: a handler the engine has runs
    /// the pod; one it does not have fails the sandbox with the kubelet's event, and the pod waits.
    @Test func theRuntimeClassPicksTheHandler() throws {
        let box = try box
        try apply(
            """
            apiVersion: node.k8s.io/v1
            kind: RuntimeClass
            metadata: {name: berth}
            handler: berth-runtime
            ---
            apiVersion: node.k8s.io/v1
            kind: RuntimeClass
            metadata: {name: kata}
            handler: kata
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: classed}
            spec:
              runtimeClassName: berth
              terminationGracePeriodSeconds: 1
              containers:
              - {name: main, image: \(box.image), command: ["sleep", "1000"]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: unrunnable}
            spec:
              runtimeClassName: kata
              containers:
              - {name: main, image: \(box.image), command: ["sleep", "1000"]}
            """)
        #expect(
            try box.eventually { try box.get("pod/classed", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        var events = ""
        #expect(
            try box.eventually(30) {
                events = try box.kubectl([
                    "get", "events", "--field-selector", "involvedObject.name=unrunnable,reason=FailedCreatePodSandBox",
                    "-o", "jsonpath={.items[*].message}",
                ]).stdoutText
                return !events.isEmpty
            }, "\(box.diagnostics())")
        #expect(events.contains("Failed to create pod sandbox: no runtime for \"kata\" is configured"), "\(events)")
        #expect(try box.get("pod/unrunnable", "{.status.phase}") == "Pending")
        _ = try box.kubectl(["delete", "pod", "classed", "unrunnable", "--grace-period=0", "--force"])
    }
}

/// Sidecar containers (init containers with restartPolicy Always): they start before the next init
/// container, run beside the app, and do not keep a finished pod from completing.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .berthServer)
struct SidecarTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    @Test func aSidecarServesTheInitContainerAfterItAndTheApp() throws {
        let box = try box
        let created = try box.kubectl(
            ["create", "-f", "-"],
            input: """
                apiVersion: v1
                kind: Pod
                metadata: {name: withsidecar}
                spec:
                  initContainers:
                  - name: proxy
                    image: \(box.image)
                    restartPolicy: Always
                    command: ["httpd", "-f", "-p", "8081", "-h", "/www"]
                  - name: wait
                    image: \(box.image)
                    command: ["sh", "-c", "until wget -qO- http://127.0.0.1:8081/index.html; do sleep 0.2; done"]
                  containers:
                  - name: app
                    image: \(box.image)
                    command: ["sh", "-c", "wget -qO- http://127.0.0.1:8081/index.html; sleep 1000"]
                """)
        try #require(created.status.succeeded, "\(created.stderrText)")
        #expect(
            try box.eventually {
                try box.get("pod/withsidecar", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
            },
            "\(box.diagnostics())")
        #expect(try box.get("pod/withsidecar", "{.status.initContainerStatuses[0].state.running.startedAt}") != "")
        #expect(try box.get("pod/withsidecar", "{.status.initContainerStatuses[0].started}") == "true")
        #expect(try box.get("pod/withsidecar", "{.status.initContainerStatuses[1].state.terminated.exitCode}") == "0")
        #expect(try box.kubectl(["logs", "withsidecar", "-c", "wait"]).stdoutText == "served by a pod\n")
        #expect(
            try box.eventually(20) {
                try box.kubectl(["logs", "withsidecar", "-c", "app"]).stdoutText == "served by a pod\n"
            })
        _ = try box.kubectl(["delete", "pod", "withsidecar", "--grace-period=1"])
    }

    @Test func aPodWhoseAppEndsCompletesDespiteItsSidecar() throws {
        let box = try box
        let created = try box.kubectl(
            ["create", "-f", "-"],
            input: """
                apiVersion: v1
                kind: Pod
                metadata: {name: job}
                spec:
                  restartPolicy: Never
                  terminationGracePeriodSeconds: 1
                  initContainers:
                  - {name: logger, image: \(box.image), restartPolicy: Always, command: ["sleep", "1000"]}
                  containers:
                  - {name: work, image: \(box.image), command: ["sh", "-c", "echo done"]}
                """)
        try #require(created.status.succeeded, "\(created.stderrText)")
        #expect(
            try box.eventually(40) { try box.get("pod/job", "{.status.phase}") == "Succeeded" }, "\(box.diagnostics())")
        _ = try box.kubectl(["delete", "pod", "job", "--grace-period=0", "--force"])
    }
}

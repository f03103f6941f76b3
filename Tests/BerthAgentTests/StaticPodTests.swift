import BerthOS
import Foundation
import Testing

/// Static pods: manifests in --pod-manifest-path run on the node whatever the API says, with a mirror
/// pod in the API that is made again when deleted and follows the file's changes and removal.
@Suite(
    .serialized, .enabled(if: isRealRoot, "runs containers: needs real root"),
    .berthServer(["--pod-manifest-path", "{base}/manifests", "--file-check-frequency", "2"]))
struct StaticPodTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    func manifest(_ box: ServerBox, message: String) -> String {
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: static-web, labels: {tier: static}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: web
            image: \(box.image)
            command: ["sh", "-c", "echo \(message) > /tmp/said; exec httpd -f -p 8080 -h /www"]
        """
    }

    @Test func aManifestRunsAPodMirroredInTheAPI() throws {
        let box = try box
        let mirror = "pod/static-web-\(box.nodeName)"
        let file = box.base + "/manifests/web.yaml"
        try manifest(box, message: "first").write(toFile: file, atomically: true, encoding: .utf8)
        // A file that is not a pod is reported, naming it, and runs nothing.
        try "apiVersion: v1\nkind: Service\nmetadata: {name: nope}\n".write(
            toFile: box.base + "/manifests/service.yaml", atomically: true, encoding: .utf8)

        #expect(try box.eventually { try box.get(mirror, "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        let hash = try box.get(mirror, "{.metadata.annotations.kubernetes\\.io/config\\.hash}")
        #expect(hash.count == 32)
        #expect(try box.get(mirror, "{.metadata.annotations.kubernetes\\.io/config\\.mirror}") == hash)
        #expect(try box.get(mirror, "{.metadata.annotations.kubernetes\\.io/config\\.source}") == "file")
        #expect(
            try box.get(mirror, "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}")
                == "Node/\(box.nodeName)")
        #expect(try box.get(mirror, "{.spec.nodeName}") == box.nodeName)
        #expect(box.log().contains("service.yaml"))
        let exec = try box.kubectl(["exec", "static-web-\(box.nodeName)", "--", "cat", "/tmp/said"])
        #expect(exec.stdoutText == "first\n", "\(exec.stderrText)")
        let containerID = try box.get(mirror, "{.status.containerStatuses[0].containerID}")
        #expect(!containerID.isEmpty)

        // Deleting the mirror pod does not stop the static pod: the mirror comes back with its status.
        let firstUID = try box.get(mirror, "{.metadata.uid}")
        _ = try box.kubectl(["delete", "pod", "static-web-\(box.nodeName)", "--wait=false"])
        #expect(
            try box.eventually(30) {
                let uid = (try? box.get(mirror, "{.metadata.uid}")) ?? ""
                return !uid.isEmpty && uid != firstUID
                    && (try? box.get(mirror, "{.status.containerStatuses[0].containerID}")) == containerID
            }, "\(box.diagnostics())")

        // The agent restarting finds the same pod (the UID is the file's hash), and does not restart it.
        try box.crashAndRestart()
        #expect(
            try box.eventually(30) {
                try box.get("node/\(box.nodeName)", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
            })
        #expect(try box.get(mirror, "{.status.containerStatuses[0].containerID}") == containerID)
        #expect(try box.get(mirror, "{.status.containerStatuses[0].restartCount}") == "0")

        // A changed file is a new pod: the old one is stopped, the new one runs, the mirror follows.
        try manifest(box, message: "second").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(
            try box.eventually(30) {
                let newHash = try box.get(mirror, "{.metadata.annotations.kubernetes\\.io/config\\.mirror}")
                return !newHash.isEmpty && newHash != hash && (try? box.get(mirror, "{.status.phase}")) == "Running"
            }, "\(box.diagnostics())")
        // What the last try said, for the failure message (a CI run once saw no "second" within 20 s,
        // under load, with nothing to tell why).
        var said = ""
        #expect(
            try box.eventually(40) {
                let exec = try? box.kubectl(["exec", "static-web-\(box.nodeName)", "--", "cat", "/tmp/said"])
                said = "\(exec?.status as Any) \(exec?.stdoutText ?? "") \(exec?.stderrText ?? "")"
                return exec?.stdoutText == "second\n"
            }, "\(said) \(box.log().suffix(3000))")
        #expect(try box.get(mirror, "{.status.containerStatuses[0].containerID}") != containerID)

        // The file removed: the pod stops and its mirror goes.
        let ip = try box.get(mirror, "{.status.podIP}")
        func serving() -> Bool {
            let answer = try? ChildProcess.run(
                "/usr/bin/curl", arguments: ["curl", "-s", "-m", "2", "http://\(ip):8080/index.html"], environment: [])
            return answer?.stdoutText == "served by a pod\n"
        }
        #expect(serving())
        try FileManager.default.removeItem(atPath: file)
        #expect(
            try box.eventually(30) {
                let listed = try box.kubectl(["get", "pods", "-o", "name"]).stdoutText
                return !listed.contains("static-web")
            }, "\(box.diagnostics())")
        #expect(try box.eventually(20) { !serving() })
    }
}

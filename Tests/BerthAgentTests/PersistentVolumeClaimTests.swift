import BerthOS
import Foundation
import Testing

/// Persistent volumes on a real node (issue 16): the local-path provisioner's volume made on the node
/// the pod went to, written by one pod and read back by the next, removed from the disk with its
/// claim; a read-only claim; a pod whose claim is not bound waits and then runs; and a StatefulSet's
/// pods keep their data through being deleted and made again.
@Suite(
    .serialized, .enabled(if: isRealRoot, "runs containers: needs real root"),
    .berthServer(["--default-local-storage-path", "{base}/storage"]))
struct PersistentVolumeClaimTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    func apply(_ manifest: String) throws {
        let applied = try box.kubectl(["apply", "-f", "-"], input: manifest)
        try #require(applied.status.succeeded, "\(applied.stderrText)")
    }

    func claim(_ name: String, className: String? = nil) -> String {
        """
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata: {name: \(name)}
        spec:
          \(className.map { "storageClassName: \($0)" } ?? "")
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 100Mi}}
        """
    }

    func pod(_ name: String, claim: String, command: String, readOnly: Bool = false, node: String? = nil) throws
        -> String
    {
        let box = try box
        return """
            apiVersion: v1
            kind: Pod
            metadata: {name: \(name)}
            spec:
              \(node.map { "nodeName: \($0)" } ?? "")
              restartPolicy: Never
              terminationGracePeriodSeconds: 1
              containers:
              - name: main
                image: \(box.image)
                command: ["sh", "-c", \(String(reflecting: command))]
                volumeMounts: [{name: data, mountPath: /data}]
              volumes:
              - name: data
                persistentVolumeClaim: {claimName: \(claim), readOnly: \(readOnly)}
            """
    }

    func waitFor(_ object: String, _ condition: String, seconds: Int = 60) throws -> Bool {
        try box.kubectl(["wait", "--for=\(condition)", object, "--timeout=\(seconds)s"]).status.succeeded
    }

    @Test func dataWrittenToAClaimOutlivesThePodAndGoesWithTheClaim() throws {
        let box = try box
        try apply(claim("notes"))
        try apply(try pod("writer", claim: "notes", command: "echo written by writer > /data/note"))
        #expect(try waitFor("pod/writer", "jsonpath={.status.phase}=Succeeded"), "\(box.diagnostics())")
        let uid = try box.get("pvc/notes", "{.metadata.uid}")
        #expect(try box.get("pvc/notes", "{.status.phase} {.spec.volumeName}") == "Bound pvc-\(uid)")
        let directory = "\(box.base)/storage/pvc-\(uid)_default_notes"
        #expect(try box.get("pv/pvc-\(uid)", "{.spec.hostPath.path}") == directory)
        var info = stat()
        #expect(stat(directory, &info) == 0 && info.st_mode & 0o777 == 0o777, "made world-writable, as k3s makes it")
        #expect(FileManager.default.contents(atPath: directory + "/note") == Data("written by writer\n".utf8))

        _ = try box.kubectl(["delete", "pod", "writer"])
        try apply(try pod("reader", claim: "notes", command: "cat /data/note"))
        #expect(try waitFor("pod/reader", "jsonpath={.status.phase}=Succeeded"), "\(box.diagnostics())")
        #expect(try box.kubectl(["logs", "reader"]).stdoutText == "written by writer\n")

        // A read-only claim: the pod sees the data and cannot change it.
        try apply(
            try pod(
                "looker", claim: "notes",
                command: "cat /data/note; sh -c 'echo more >> /data/note' 2>/dev/null || echo refused",
                readOnly: true))
        #expect(try waitFor("pod/looker", "jsonpath={.status.phase}=Succeeded"), "\(box.diagnostics())")
        #expect(try box.kubectl(["logs", "looker"]).stdoutText.hasSuffix("written by writer\nrefused\n"))

        // The claim goes once no pod uses it; its volume (reclaim Delete) and its directory with it.
        _ = try box.kubectl(["delete", "pod", "reader", "looker"])
        #expect(try box.kubectl(["delete", "pvc", "notes"]).status.succeeded)
        #expect(try waitFor("pv/pvc-\(uid)", "delete"), "\(box.diagnostics())")
        #expect(!FileManager.default.fileExists(atPath: directory), "the node removed the volume's directory")
    }

    /// A generic ephemeral volume: its claim made from the pod's template, provisioned on the pod's node,
    /// and gone with the pod (the garbage collector deletes the claim it owns, then its volume goes).
    @Test func anEphemeralVolumeLivesAndDiesWithItsPod() throws {
        let box = try box
        try apply(
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: scratch}
            spec:
              restartPolicy: Never
              terminationGracePeriodSeconds: 1
              containers:
              - name: main
                image: \(box.image)
                command: ["sh", "-c", "echo scratch > /scratch/file && cat /scratch/file"]
                volumeMounts: [{name: work, mountPath: /scratch}]
              volumes:
              - name: work
                ephemeral:
                  volumeClaimTemplate:
                    metadata: {labels: {purpose: scratch}}
                    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 50Mi}}}
            """)
        #expect(try waitFor("pod/scratch", "jsonpath={.status.phase}=Succeeded"), "\(box.diagnostics())")
        #expect(try box.kubectl(["logs", "scratch"]).stdoutText == "scratch\n")
        let podUID = try box.get("pod/scratch", "{.metadata.uid}")
        #expect(
            try box.get(
                "pvc/scratch-work", "{.metadata.ownerReferences[0].uid} {.metadata.labels.purpose} {.status.phase}")
                == "\(podUID) scratch Bound")
        let uid = try box.get("pvc/scratch-work", "{.metadata.uid}")
        let directory = "\(box.base)/storage/pvc-\(uid)_default_scratch-work"
        #expect(FileManager.default.contents(atPath: directory + "/file") == Data("scratch\n".utf8))
        _ = try box.kubectl(["delete", "pod", "scratch"])
        #expect(try waitFor("pvc/scratch-work", "delete"), "\(box.diagnostics())")
        #expect(try waitFor("pv/pvc-\(uid)", "delete"), "\(box.diagnostics())")
        #expect(!FileManager.default.fileExists(atPath: directory), "the node removed the volume's directory")
    }

    @Test func aPodWhoseClaimIsNotBoundWaitsUntilItIs() throws {
        let box = try box
        try apply(
            """
            apiVersion: storage.k8s.io/v1
            kind: StorageClass
            metadata: {name: manual}
            provisioner: kubernetes.io/no-provisioner
            """)
        try apply(claim("later", className: "manual"))
        // Bound to the node by hand, past the scheduler (which would keep it Pending): the agent waits.
        try apply(try pod("patient", claim: "later", command: "cat /data/hello", node: box.nodeName))
        #expect(
            try box.eventually(30) {
                try box.get("pod/patient", "{.status.containerStatuses[0].state.waiting.message}")
                    == "error processing PVC default/later: PVC is not bound"
            }, "\(box.diagnostics())")
        let path = "\(box.base)/static"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Data("hello from a static volume\n".utf8).write(to: URL(fileURLWithPath: path + "/hello"))
        try apply(
            """
            apiVersion: v1
            kind: PersistentVolume
            metadata: {name: static}
            spec:
              storageClassName: manual
              accessModes: [ReadWriteOnce]
              capacity: {storage: 1Gi}
              hostPath: {path: \(path)}
            """)
        #expect(try waitFor("pod/patient", "jsonpath={.status.phase}=Succeeded"), "\(box.diagnostics())")
        #expect(try box.kubectl(["logs", "patient"]).stdoutText == "hello from a static volume\n")
        _ = try box.kubectl(["delete", "pod", "patient"])
        _ = try box.kubectl(["delete", "pvc", "later"])
        // Retain: the volume is Released and its data stays where it was.
        #expect(try waitFor("pv/static", "jsonpath={.status.phase}=Released"), "\(box.diagnostics())")
        #expect(FileManager.default.fileExists(atPath: path + "/hello"))
    }

    @Test func aStatefulSetsPodsKeepTheirDataWhenTheyAreMadeAgain() throws {
        let box = try box
        try apply(
            """
            apiVersion: apps/v1
            kind: StatefulSet
            metadata: {name: db}
            spec:
              replicas: 2
              serviceName: db
              selector: {matchLabels: {app: db}}
              template:
                metadata: {labels: {app: db}}
                spec:
                  terminationGracePeriodSeconds: 1
                  containers:
                  - name: main
                    image: \(box.image)
                    command: ["sh", "-c", "[ -f /data/born ] || hostname > /data/born; echo start >> /data/starts; exec sleep 3600"]
                    volumeMounts: [{name: data, mountPath: /data}]
              volumeClaimTemplates:
              - metadata: {name: data}
                spec:
                  accessModes: [ReadWriteOnce]
                  resources: {requests: {storage: 50Mi}}
            """)
        #expect(
            try box.kubectl(["rollout", "status", "sts/db", "--timeout=120s"]).status.succeeded, "\(box.diagnostics())")
        #expect(try box.get("pvc/data-db-0", "{.status.phase}") == "Bound")
        #expect(try box.get("pvc/data-db-1", "{.status.phase}") == "Bound")
        let uid = try box.get("pod/db-0", "{.metadata.uid}")
        #expect(try box.kubectl(["exec", "db-0", "--", "cat", "/data/born"]).stdoutText == "db-0\n")

        _ = try box.kubectl(["delete", "pod", "db-0"])
        #expect(
            try box.eventually(60) {
                (try? box.get("pod/db-0", "{.metadata.uid}")).map { !$0.isEmpty && $0 != uid } ?? false
            })
        #expect(try waitFor("pod/db-0", "condition=Ready", seconds: 60), "\(box.diagnostics())")
        #expect(try box.kubectl(["exec", "db-0", "--", "cat", "/data/born"]).stdoutText == "db-0\n")
        #expect(
            try box.kubectl(["exec", "db-0", "--", "cat", "/data/starts"]).stdoutText == "start\nstart\n",
            "the same volume, mounted again")
        #expect(try box.kubectl(["exec", "db-1", "--", "cat", "/data/born"]).stdoutText == "db-1\n")
        _ = try box.kubectl(["delete", "sts", "db"])
    }
}

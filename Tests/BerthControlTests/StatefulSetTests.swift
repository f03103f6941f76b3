import BerthAPI
import BerthAgent
import BerthControl
import Foundation
import Testing

/// What a watch saw, for invariants checked on every change (a lock, as the predicates run on the watch's task).
final class Observations: @unchecked Sendable {
    private let lock = NSLock()
    private var notes: [String] = []
    func note(_ s: String) { lock.withLock { notes.append(s) } }
    var all: [String] { lock.withLock { notes } }
}

extension ControlTests {
    /// StatefulSets and ControllerRevisions with kubectl 1.32 against the controllers and hollow nodes.
    @Suite(
        "stateful sets and controller history",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    struct StatefulSetTests {
        static func statefulSet(
            _ name: String = "web", replicas: Int = 3, policy: String = "OrderedReady", image: String = "busybox:1",
            nodeSelector: String? = nil, extra: String = ""
        ) -> String {
            """
            apiVersion: apps/v1
            kind: StatefulSet
            metadata:
              name: \(name)
            spec:
              replicas: \(replicas)
              serviceName: \(name)-headless
              podManagementPolicy: \(policy)
              selector:
                matchLabels: {app: \(name)}
            \(extra)
              template:
                metadata:
                  labels: {app: \(name)}
                spec:
                  \(nodeSelector.map { "nodeSelector: {tier: \($0)}" } ?? "")
                  containers:
                  - name: web
                    image: \(image)
            """
        }

        /// The set's pods by ordinal (terminating ones included).
        static func members(_ items: [JSON], _ set: String = "web") -> [Int: JSON] {
            var out: [Int: JSON] = [:]
            for p in items where p["metadata"]["ownerReferences"][0]["name"].string == set {
                let name = p["metadata"]["name"].string ?? ""
                if let n = Int(name.dropFirst(set.count + 1)) { out[n] = p }
            }
            return out
        }
        static func live(_ p: JSON?) -> Bool { p != nil && p!["metadata"]["deletionTimestamp"].isNull }
        static func ready(_ p: JSON?) -> Bool { p.map { PodJSON.isReady($0) } ?? false }
        static func image(_ p: JSON?) -> String { p?["spec"]["containers"][0]["image"].string ?? "" }

        static func waitForSet(_ c: Cluster, _ what: String, _ check: @escaping @Sendable (JSON) -> Bool) async throws {
            try await c.waitFor(Registry.statefulSets, namespace: "default", what) { items in
                items.first { $0["metadata"]["name"] == "web" }.map(check) ?? false
            }
        }

        @Test func orderedReadyCreatesPodOneOnlyOncePodZeroIsRunningAndReady() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            // No node is a `db` node yet: web-0 stays Pending.
            var out = try c.kubectl("apply", "-f", "-", stdin: Self.statefulSet(nodeSelector: "db"))
            #expect(out.ok, "\(out.stderr)")
            // A sync that saw web-0 has run (status counts it) and left web-1 uncreated.
            try await Self.waitForSet(c, "status counting web-0") {
                $0["status"]["replicas"] == 1 && $0["status"]["observedGeneration"] == 1
            }
            var pods = Self.members(try await c.client.list(Registry.pods, namespace: "default").items)
            #expect(pods.keys.sorted() == [0])
            let pod = try #require(pods[0])
            #expect(pod["spec"]["hostname"] == "web-0" && pod["spec"]["subdomain"] == "web-headless")
            let labels = pod["metadata"]["labels"]
            #expect(
                labels["statefulset.kubernetes.io/pod-name"] == "web-0" && labels["apps.kubernetes.io/pod-index"] == "0"
            )
            let set = try #require(try await c.client.get(Registry.statefulSets, namespace: "default", name: "web"))
            #expect(labels["controller-revision-hash"] == set["status"]["updateRevision"])
            #expect(set["status"]["currentRevision"] == set["status"]["updateRevision"])
            #expect(set["spec"]["updateStrategy"] == ["type": "RollingUpdate", "rollingUpdate": ["partition": 0]])
            #expect(
                set["spec"]["persistentVolumeClaimRetentionPolicy"] == [
                    "whenDeleted": "Retain", "whenScaled": "Retain",
                ])
            #expect(set["spec"]["revisionHistoryLimit"] == 10)

            // The node becomes a db node: every pod appears only once the one before is Running and Ready.
            let seen = Observations()
            #expect(try c.kubectl("label", "node", "--all", "tier=db").ok)
            try await c.waitFor(Registry.pods, namespace: "default", "3 ready pods in order") { items in
                let m = Self.members(items)
                for n in 1..<3 where m[n] != nil && !Self.ready(m[n - 1]) {
                    seen.note("web-\(n) before web-\(n - 1) was ready")
                }
                return (0..<3).allSatisfy { Self.ready(m[$0]) }
            }
            #expect(seen.all.isEmpty, "\(seen.all)")
            out = try c.kubectl("rollout", "status", "sts/web", "--timeout=60s")
            #expect(
                out.ok && out.stdout.contains("partitioned roll out complete: 3 new pods have been updated"),
                "\(out.stdout) \(out.stderr)")
            out = try c.kubectl("get", "sts", "--no-headers")
            #expect(out.stdout.hasPrefix("web") && out.stdout.contains("3/3"), "\(out.stdout)")
            pods = Self.members(try await c.client.list(Registry.pods, namespace: "default").items)
            #expect(pods.count == 3)
            out = try c.kubectl("describe", "sts/web")
            #expect(
                out.ok && out.stdout.contains("3 Running / 0 Waiting / 0 Succeeded / 0 Failed")
                    && out.stdout.contains("SuccessfulCreate"), "\(out.stdout) \(out.stderr)")
        }

        @Test func parallelCreatesEveryPodWithoutWaiting() async throws {
            let c = try await Cluster(hollowNodes: 1)
            defer { Task { await c.stop() } }
            #expect(
                try c.kubectl("apply", "-f", "-", stdin: Self.statefulSet(policy: "Parallel", nodeSelector: "db")).ok)
            // Nothing can run (no db node), yet all three exist.
            try await c.waitFor(Registry.pods, namespace: "default", "3 pending pods") { items in
                let m = Self.members(items)
                return m.keys.sorted() == [0, 1, 2] && m.values.allSatisfy { !PodJSON.isReady($0) }
            }
        }

        @Test func ordinalsStartAtSpecOrdinalsStartAndOnDeleteWaitsForADeletion() async throws {
            let c = try await Cluster(hollowNodes: 1)
            defer { Task { await c.stop() } }
            let extra = "  ordinals: {start: 3}\n  updateStrategy: {type: OnDelete}"
            #expect(try c.kubectl("apply", "-f", "-", stdin: Self.statefulSet(replicas: 2, extra: extra)).ok)
            try await c.waitFor(Registry.pods, namespace: "default", "web-3 and web-4 ready") { items in
                let m = Self.members(items)
                return m.keys.sorted() == [3, 4] && Self.ready(m[3]) && Self.ready(m[4])
            }
            let pod = try #require(Self.members(try await c.client.list(Registry.pods, namespace: "default").items)[4])
            #expect(pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "4")
            // OnDelete: a new template changes no pod until one is deleted; that one comes back updated.
            #expect(try c.kubectl("set", "image", "sts/web", "web=busybox:2").ok)
            try await Self.waitForSet(c, "the new revision observed") {
                $0["status"]["observedGeneration"] == 2
                    && $0["status"]["currentRevision"] != $0["status"]["updateRevision"]
            }
            var pods = Self.members(try await c.client.list(Registry.pods, namespace: "default").items)
            #expect(pods.values.allSatisfy { Self.image($0) == "busybox:1" })
            // --wait=false: a hollow node removes the pod at once and the set makes web-4 again within
            // milliseconds; kubectl's wait, if its list came after both, would watch the new pod for a
            // deletion that never comes (a race real nodes' termination time hides).
            let deleted = try c.kubectl("delete", "pod", "web-4", "--wait=false")
            #expect(deleted.ok, "\(deleted.stderr)")
            try await c.waitFor(Registry.pods, namespace: "default", "web-4 back at busybox:2") { items in
                let m = Self.members(items)
                return Self.live(m[4]) && Self.image(m[4]) == "busybox:2" && Self.ready(m[4])
            }
            pods = Self.members(try await c.client.list(Registry.pods, namespace: "default").items)
            #expect(Self.image(pods[3]) == "busybox:1")
            // One pod at each revision; OnDelete never makes the update revision the current one by itself.
            try await Self.waitForSet(c, "one updated and one current") {
                $0["status"]["updatedReplicas"] == 1 && $0["status"]["currentReplicas"] == 1
                    && $0["status"]["readyReplicas"] == 2
            }
        }

        @Test func theOfficialPythonClientReadsAndScalesAStatefulSet() async throws {
            try #require(hasPythonClient, "the kubernetes Python client is installed by scripts/api-setup.sh")
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            let out = try pythonScript("statefulset_client.py", c)
            #expect(out.ok && out.stdout.hasSuffix("ok\n"), "\(out.stdout)\(out.stderr)")
        }

        @Test func scalingDownRemovesTheHighestOrdinalFirstOneAtATime() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            #expect(try c.kubectl("apply", "-f", "-", stdin: Self.statefulSet(replicas: 4)).ok)
            #expect(try c.kubectl("rollout", "status", "sts/web", "--timeout=60s").ok)
            let seen = Observations()
            let out = try c.kubectl("scale", "sts/web", "--replicas=1")
            #expect(out.ok, "\(out.stderr)")
            try await c.waitFor(Registry.pods, namespace: "default", "only web-0 left") { items in
                let m = Self.members(items)
                // Live pods are always web-0…web-k; at most one is terminating at a time.
                let live = m.filter { Self.live($0.value) }.keys.sorted()
                if live != Array(0..<live.count) { seen.note("live \(live)") }
                if m.values.filter({ !Self.live($0) }).count > 1 { seen.note("two terminating at once") }
                return m.keys.sorted() == [0]
            }
            #expect(seen.all.isEmpty, "\(seen.all)")
            try await Self.waitForSet(c, "status at 1 replica") {
                $0["status"]["replicas"] == 1 && $0["spec"]["replicas"] == 1 && $0["status"]["readyReplicas"] == 1
            }
        }

        @Test func rollingUpdateWithPartitionThenHistoryAndUndo() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            #expect(try c.kubectl("apply", "-f", "-", stdin: Self.statefulSet()).ok)
            #expect(try c.kubectl("rollout", "status", "sts/web", "--timeout=60s").ok)
            var out = try c.kubectl(
                "patch", "sts/web", "-p", #"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}}}}"#)
            #expect(out.ok, "\(out.stderr)")
            let seen = Observations()
            #expect(try c.kubectl("set", "image", "sts/web", "web=busybox:2").ok)
            out = try c.kubectl("rollout", "status", "sts/web", "--timeout=60s")
            #expect(
                out.stdout.contains("partitioned roll out complete: 2 new pods have been updated"),
                "\(out.stdout) \(out.stderr)")
            try await c.waitFor(Registry.pods, namespace: "default", "web-2 and web-1 updated") { items in
                let m = Self.members(items)
                // web-1 is replaced only once web-2 runs the new image and is ready.
                if let p = m[1], Self.image(p) == "busybox:2", !(Self.image(m[2]) == "busybox:2" && Self.ready(m[2])) {
                    seen.note("web-1 updated before web-2 was ready")
                }
                return Self.image(m[2]) == "busybox:2" && Self.image(m[1]) == "busybox:2" && Self.ready(m[1])
                    && Self.ready(m[2])
            }
            #expect(seen.all.isEmpty, "\(seen.all)")
            var pods = Self.members(try await c.client.list(Registry.pods, namespace: "default").items)
            #expect(Self.image(pods[0]) == "busybox:1", "below the partition web-0 keeps the old template")
            var set = try #require(try await c.client.get(Registry.statefulSets, namespace: "default", name: "web"))
            #expect(set["status"]["currentRevision"] != set["status"]["updateRevision"])
            #expect(set["status"]["updatedReplicas"] == 2 && set["status"]["currentReplicas"] == 1)
            #expect(pods[0]?["metadata"]["labels"]["controller-revision-hash"] == set["status"]["currentRevision"])

            // Partition 0: web-0 too, and the update revision becomes the current one.
            #expect(
                try c.kubectl(
                    "patch", "sts/web", "-p", #"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#
                ).ok)
            try await Self.waitForSet(c, "the update complete") {
                $0["status"]["observedGeneration"] == $0["metadata"]["generation"]
                    && $0["status"]["currentRevision"] == $0["status"]["updateRevision"]
                    && $0["status"]["updatedReplicas"] == 3
                    && $0["status"]["readyReplicas"] == 3
            }
            out = try c.kubectl("get", "controllerrevisions", "--no-headers")
            let rows = out.stdout.split(separator: "\n").map {
                $0.split(separator: " ", omittingEmptySubsequences: true)
            }
            #expect(
                rows.count == 2 && rows.allSatisfy { $0.count == 4 && $0[1] == "statefulset.apps/web" }, "\(out.stdout)"
            )
            #expect(Set(rows.map { $0[2] }) == ["1", "2"], "\(out.stdout)")

            out = try c.kubectl("rollout", "history", "sts/web")
            #expect(
                out.ok && out.stdout.contains("1         <none>") && out.stdout.contains("2         <none>"),
                "\(out.stdout) \(out.stderr)")
            out = try c.kubectl("rollout", "history", "sts/web", "--revision=1")
            #expect(
                out.ok && out.stdout.contains("busybox:1") && !out.stdout.contains("busybox:2"),
                "\(out.stdout) \(out.stderr)")

            out = try c.kubectl("rollout", "undo", "sts/web")
            #expect(out.ok && out.stdout.contains("rolled back"), "\(out.stdout) \(out.stderr)")
            try await Self.waitForSet(c, "rolled back") {
                $0["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
                    && $0["status"]["observedGeneration"] == $0["metadata"]["generation"]
                    && $0["status"]["currentRevision"] == $0["status"]["updateRevision"]
                    && $0["status"]["updatedReplicas"] == 3
                    && $0["status"]["readyReplicas"] == 3
            }
            pods = Self.members(try await c.client.list(Registry.pods, namespace: "default").items)
            #expect(pods.values.allSatisfy { Self.image($0) == "busybox:1" })
            // The old revision was renumbered as the newest rather than copied.
            out = try c.kubectl("rollout", "history", "sts/web")
            #expect(
                out.stdout.contains("2         <none>") && out.stdout.contains("3         <none>")
                    && !out.stdout.contains("1         <none>"), "\(out.stdout)")
            out = try c.kubectl("rollout", "undo", "sts/web", "--to-revision=2")
            #expect(out.ok, "\(out.stderr)")
            try await Self.waitForSet(c, "back at busybox:2") {
                $0["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2"
            }
            set = try #require(try await c.client.get(Registry.statefulSets, namespace: "default", name: "web"))
            #expect(set["metadata"]["generation"].int ?? 0 >= 4)
            try await c.waitFor(Registry.controllerRevisions, namespace: "default", "revision 2 renumbered 4") {
                items in
                items.contains { $0["revision"] == 4 }
            }
            out = try c.kubectl("rollout", "undo", "sts/web", "--to-revision=4")
            #expect(
                out.stdout.contains("skipped rollback (current template already matches revision 4)"),
                "\(out.stdout) \(out.stderr)")
        }

        @Test func daemonSetHistoryListsRevisionsAndUndoRestoresThem() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            _ = try await c.client.create(Registry.daemonSets, DaemonSetTests.daemonSet("agent"))
            var out = try c.kubectl("rollout", "status", "ds/agent", "--timeout=60s")
            #expect(out.ok, "\(out.stderr)")
            // Annotated first: a revision copies its owner's annotations when it is made, never later.
            #expect(try c.kubectl("annotate", "ds/agent", "kubernetes.io/change-cause=two").ok)
            #expect(try c.kubectl("set", "image", "ds/agent", "agent=busybox:2").ok)
            out = try c.kubectl("rollout", "status", "ds/agent", "--timeout=60s")
            #expect(out.ok, "\(out.stderr)")
            try await c.waitFor(Registry.controllerRevisions, namespace: "default", "two revisions") { $0.count == 2 }
            let revisions = try await c.client.list(Registry.controllerRevisions, namespace: "default").items
            let pods = try await c.client.list(Registry.pods, namespace: "default").items
            let hash =
                pods.first { PodJSON.isActive($0) }?["metadata"]["labels"]["controller-revision-hash"].string ?? "?"
            let newest = try #require(revisions.first { $0["revision"] == 2 })
            #expect(newest["metadata"]["name"].string == "agent-" + hash)
            #expect(
                newest["metadata"]["labels"]["app"] == "agent"
                    && newest["metadata"]["labels"]["controller-revision-hash"].string == hash)
            #expect(newest["data"]["spec"]["template"]["$patch"] == "replace")
            #expect(newest["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet")

            out = try c.kubectl("rollout", "history", "ds/agent")
            #expect(
                out.ok && out.stdout.contains("1         <none>") && out.stdout.contains("2         two"),
                "\(out.stdout) \(out.stderr)")
            out = try c.kubectl("rollout", "history", "ds/agent", "--revision=1")
            #expect(out.ok && out.stdout.contains("busybox:1"), "\(out.stdout) \(out.stderr)")
            out = try c.kubectl("rollout", "undo", "ds/agent")
            #expect(out.ok && out.stdout.contains("rolled back"), "\(out.stdout) \(out.stderr)")
            #expect(try c.kubectl("rollout", "status", "ds/agent", "--timeout=60s").ok)
            try await c.waitFor(Registry.pods, namespace: "default", "busybox:1 pods again") { items in
                let active = items.filter { PodJSON.isActive($0) && $0["metadata"]["deletionTimestamp"].isNull }
                return active.count == 2 && active.allSatisfy { $0["spec"]["containers"][0]["image"] == "busybox:1" }
            }
            out = try c.kubectl("rollout", "history", "ds/agent")
            #expect(
                out.stdout.contains("2         two") && out.stdout.contains("3         <none>")
                    && !out.stdout.contains("1         "), "\(out.stdout)")
            out = try c.kubectl("rollout", "undo", "ds/agent", "--to-revision=2")
            #expect(out.ok, "\(out.stderr)")
            out = try c.kubectl("get", "ds/agent", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
            #expect(out.stdout == "busybox:2")
            // kubectl compares the revision's bytes with its own patch of the DaemonSet (revision 2, now
            // renumbered 4, is the current one).
            try await c.waitFor(Registry.controllerRevisions, namespace: "default", "revision 2 renumbered 4") {
                items in
                items.contains { $0["revision"] == 4 }
            }
            out = try c.kubectl("rollout", "undo", "ds/agent", "--to-revision=4")
            #expect(
                out.stdout.contains("skipped rollback (current template already matches revision 4)"),
                "\(out.stdout) \(out.stderr)")
            out = try c.kubectl("rollout", "undo", "ds/agent", "--to-revision=9")
            #expect(!out.ok && out.stderr.contains("unable to find specified revision 9 in history"), "\(out.stderr)")
        }

        @Test func invalidStatefulSetsAndRevisionsAreRefusedWithKubernetesWords() async throws {
            let c = try await Cluster(hollowNodes: 0)
            defer { Task { await c.stop() } }
            var out = try c.kubectl(
                "apply", "-f", "-",
                stdin: Self.statefulSet(
                    extra:
                        "  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: -1}}\n  ordinals: {start: -2}"
                )
                .replacingOccurrences(of: "matchLabels: {app: web}", with: "matchLabels: {app: other}"))
            #expect(!out.ok)
            #expect(
                out.stderr.contains(
                    "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"
                ), "\(out.stderr)")
            #expect(
                out.stderr.contains("spec.ordinals.start: Invalid value: -2: must be greater than or equal to 0"),
                "\(out.stderr)")
            #expect(
                out.stderr.contains(
                    "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"
                ) || out.stderr.contains("`selector` does not match template `labels`"), "\(out.stderr)")
            out = try c.kubectl(
                "apply", "-f", "-",
                stdin: Self.statefulSet(
                    policy: "Sometimes", extra: "  persistentVolumeClaimRetentionPolicy: {whenDeleted: Keep}"))
            #expect(
                out.stderr.contains(
                    "spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or 'Parallel'"),
                "\(out.stderr)")
            #expect(
                out.stderr.contains(
                    "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Delete\", \"Retain\""
                ), "\(out.stderr)")

            // The Status itself: 422 Invalid, a cause per field with its path.
            var bad = try JSON.parse(
                Array(
                    try c.kubectl("create", "--dry-run=client", "-o", "json", "-f", "-", stdin: Self.statefulSet())
                        .stdout.utf8))
            bad["spec"]["replicas"] = -1
            bad["spec"]["updateStrategy"] = ["type": "OnDelete", "rollingUpdate": ["partition": 1]]
            do {
                _ = try await c.client.create(Registry.statefulSets, bad)
                Issue.record("an invalid StatefulSet was stored")
            } catch let e as APIError {
                #expect(e.code == 422 && e.reason == "Invalid")
                let causes = (e.status["details"]["causes"].array ?? []).map {
                    "\($0["field"].string ?? "") \($0["reason"].string ?? "")"
                }
                #expect(
                    Set(causes) == [
                        "spec.replicas FieldValueInvalid", "spec.updateStrategy.rollingUpdate FieldValueInvalid",
                    ],
                    "\(causes)")
                #expect(e.status["details"]["kind"] == "StatefulSet" && e.status["details"]["group"] == "apps")
            }
            #expect(try c.kubectl("apply", "-f", "-", stdin: Self.statefulSet()).ok)
            out = try c.kubectl("patch", "sts/web", "-p", #"{"spec":{"serviceName":"other"}}"#)
            #expect(
                out.stderr.contains(
                    "The StatefulSet \"web\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
                ),
                "\(out.stderr)")
            // Server-side apply of a new template goes through the same rules.
            out = try c.kubectl(
                "apply", "--server-side", "--force-conflicts", "-f", "-", stdin: Self.statefulSet(image: "busybox:3"))
            #expect(out.ok, "\(out.stderr)")
            out = try c.kubectl("get", "sts/web", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
            #expect(out.stdout == "busybox:3")
            // What may change does.
            #expect(
                try c.kubectl("patch", "sts/web", "-p", #"{"spec":{"minReadySeconds":3,"revisionHistoryLimit":2}}"#).ok)

            out = try c.kubectl(
                "create", "-f", "-",
                stdin: """
                    apiVersion: apps/v1
                    kind: ControllerRevision
                    metadata: {name: by-hand}
                    data: {spec: {template: {metadata: {labels: {a: b}}}}}
                    revision: -1
                    """)
            #expect(
                out.stderr.contains(
                    "The ControllerRevision \"by-hand\" is invalid: revision: Invalid value: -1: must be greater than or equal to 0"
                ), "\(out.stderr)")
            out = try c.kubectl(
                "create", "-f", "-",
                stdin:
                    "apiVersion: apps/v1\nkind: ControllerRevision\nmetadata: {name: by-hand}\ndata: {a: 1}\nrevision: 1\n"
            )
            #expect(out.ok, "\(out.stderr)")
            out = try c.kubectl("patch", "controllerrevision/by-hand", "--type=merge", "-p", #"{"data":{"a":2}}"#)
            #expect(
                out.stderr.contains("data: Invalid value: ") && out.stderr.contains("field is immutable"),
                "\(out.stderr)")
            #expect(try c.kubectl("patch", "controllerrevision/by-hand", "--type=merge", "-p", #"{"revision":5}"#).ok)
            out = try c.kubectl("get", "controllerrevision/by-hand", "--no-headers")
            #expect(out.stdout.contains("<none>") && out.stdout.contains(" 5 "), "\(out.stdout)")
            out = try c.kubectl("explain", "statefulset.spec.persistentVolumeClaimRetentionPolicy")
            #expect(out.ok && out.stdout.contains("whenScaled"), "\(out.stdout) \(out.stderr)")
            out = try c.kubectl("api-resources", "--api-group=apps", "--no-headers")
            #expect(
                out.stdout.contains("statefulsets") && out.stdout.contains("sts")
                    && out.stdout.contains("controllerrevisions"), "\(out.stdout)")
        }

        @Test func aSetDeletedWithItsPodsOrphanedAndMadeAgainAdoptsThemAndKeepsItsHistory() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            #expect(try c.kubectl("apply", "-f", "-", stdin: Self.statefulSet(replicas: 2)).ok)
            #expect(try c.kubectl("rollout", "status", "sts/web", "--timeout=60s").ok)
            #expect(try c.kubectl("apply", "-f", "-", stdin: Self.statefulSet(replicas: 2, image: "busybox:2")).ok)
            #expect(try c.kubectl("rollout", "status", "sts/web", "--timeout=60s").ok)
            let before = Self.members(try await c.client.list(Registry.pods, namespace: "default").items)
            #expect(before.count == 2)
            var out = try c.kubectl("delete", "sts/web", "--cascade=orphan")
            #expect(out.ok, "\(out.stderr)")
            try await c.waitFor(Registry.controllerRevisions, namespace: "default", "revisions orphaned") { items in
                items.count == 2 && items.allSatisfy { $0["metadata"]["ownerReferences"].isNull }
            }
            try await c.waitFor(Registry.pods, namespace: "default", "pods orphaned") { items in
                items.filter { $0["metadata"]["labels"]["app"] == "web" }.allSatisfy {
                    $0["metadata"]["ownerReferences"].isNull
                }
            }
            #expect(try c.kubectl("apply", "-f", "-", stdin: Self.statefulSet(replicas: 2, image: "busybox:2")).ok)
            try await Self.waitForSet(c, "the new set counting both pods at the adopted revision") {
                $0["status"]["replicas"] == 2 && $0["status"]["updatedReplicas"] == 2
                    && $0["status"]["readyReplicas"] == 2
            }
            let after = Self.members(try await c.client.list(Registry.pods, namespace: "default").items)
            // The same pods (no restart), now the new set's; the history continues where it was.
            #expect(after.mapValues { $0["metadata"]["uid"] } == before.mapValues { $0["metadata"]["uid"] })
            let set = try #require(try await c.client.get(Registry.statefulSets, namespace: "default", name: "web"))
            #expect(after.values.allSatisfy { $0["metadata"]["ownerReferences"][0]["uid"] == set["metadata"]["uid"] })
            out = try c.kubectl("rollout", "history", "sts/web")
            #expect(out.stdout.contains("1         <none>") && out.stdout.contains("2         <none>"), "\(out.stdout)")
            out = try c.kubectl("get", "controllerrevisions", "--no-headers")
            #expect(out.stdout.split(separator: "\n").count == 2, "no third revision: \(out.stdout)")
        }

        static let claimTemplate = """
              volumeClaimTemplates:
              - metadata: {name: www}
                spec:
                  accessModes: [ReadWriteOnce]
                  resources: {requests: {storage: 1Gi}}
            """

        static func claims(_ c: Cluster) async throws -> [String: JSON] {
            var out: [String: JSON] = [:]
            for claim in try await c.client.list(Registry.persistentVolumeClaims, namespace: "default").items {
                out[claim["metadata"]["name"].string ?? ""] = claim
            }
            return out
        }

        @Test func volumeClaimTemplatesGiveEachPodItsClaimAndTheRetentionPolicyDecidesTheirFate() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            let policy = "  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Retain}\n"
            #expect(
                try c.kubectl(
                    "apply", "-f", "-", stdin: Self.statefulSet(replicas: 2, extra: policy + Self.claimTemplate)
                ).ok)
            #expect(try c.kubectl("rollout", "status", "sts/web", "--timeout=60s").ok)
            var claims = try await Self.claims(c)
            #expect(claims.keys.sorted() == ["www-web-0", "www-web-1"])
            let claim = try #require(claims["www-web-0"])
            // The default class (local-path) provisioned each claim's volume on its pod's node before the
            // pod was bound there.
            #expect(claim["metadata"]["labels"]["app"] == "web" && claim["status"]["phase"] == "Bound")
            #expect(claim["spec"]["storageClassName"] == "local-path")
            #expect(
                claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
                    && claim["spec"]["volumeMode"] == "Filesystem")
            #expect(claim["metadata"]["ownerReferences"].isNull, "whenDeleted Retain: the set does not own it")
            let pods = Self.members(try await c.client.list(Registry.pods, namespace: "default").items)
            #expect(
                pods[1]?["spec"]["volumes"].array?.contains {
                    $0["name"] == "www" && $0["persistentVolumeClaim"]["claimName"] == "www-web-1"
                } == true)
            var out = try c.kubectl("get", "pvc", "--no-headers")
            #expect(out.stdout.contains("www-web-0") && out.stdout.contains("Bound"), "\(out.stdout)")

            // whenScaled Delete: the claim of the pod a scale-down removes goes with it.
            #expect(try c.kubectl("scale", "sts/web", "--replicas=1").ok)
            try await c.waitFor(Registry.persistentVolumeClaims, namespace: "default", "www-web-1 removed") { items in
                items.compactMap { $0["metadata"]["name"].string } == ["www-web-0"]
            }
            // whenDeleted Delete: the set becomes the claim's owner, and deleting the set removes it.
            out = try c.kubectl(
                "patch", "sts/web", "-p", #"{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Delete"}}}"#
            )
            #expect(out.ok, "\(out.stderr)")
            try await c.waitFor(Registry.persistentVolumeClaims, namespace: "default", "www-web-0 owned by the set") {
                items in
                items.first?["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
            }
            #expect(try c.kubectl("delete", "sts/web").ok)
            try await c.waitFor(Registry.persistentVolumeClaims, namespace: "default", "no claims left") { $0.isEmpty }

            // Retain (the default) keeps claims through a scale-down and the set's deletion.
            #expect(
                try c.kubectl(
                    "apply", "-f", "-", stdin: Self.statefulSet("keep", replicas: 2, extra: Self.claimTemplate)
                ).ok)
            #expect(try c.kubectl("rollout", "status", "sts/keep", "--timeout=60s").ok)
            #expect(try c.kubectl("scale", "sts/keep", "--replicas=1").ok)
            try await c.waitFor(Registry.pods, namespace: "default", "keep-1 gone") {
                Self.members($0, "keep").keys.sorted() == [0]
            }
            #expect(try c.kubectl("delete", "sts/keep").ok)
            try await c.waitFor(Registry.pods, namespace: "default", "keep's pods gone") {
                Self.members($0, "keep").isEmpty
            }
            claims = try await Self.claims(c)
            #expect(claims.keys.sorted() == ["www-keep-0", "www-keep-1"])
        }

        @Test func claimsAndVolumesAreCheckedAsKubernetesChecksThem() async throws {
            let c = try await Cluster(hollowNodes: 0)
            defer { Task { await c.stop() } }
            var out = try c.kubectl(
                "create", "-f", "-",
                stdin:
                    "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: bad}\nspec: {volumeMode: Sideways}\n"
            )
            #expect(
                out.stderr.contains("spec.accessModes: Required value: at least 1 access mode is required"),
                "\(out.stderr)")
            #expect(out.stderr.contains("spec.resources[storage]: Required value"), "\(out.stderr)")
            #expect(
                out.stderr.contains(
                    "spec.volumeMode: Unsupported value: \"Sideways\": supported values: \"Block\", \"Filesystem\""),
                "\(out.stderr)")
            let good =
                "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"
            #expect(try c.kubectl("create", "-f", "-", stdin: good).ok)
            out = try c.kubectl("patch", "pvc/data", "-p", #"{"spec":{"accessModes":["ReadWriteMany"]}}"#)
            #expect(
                out.stderr.contains(
                    "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
                ),
                "\(out.stderr)")
            out = try c.kubectl(
                "create", "-f", "-",
                stdin:
                    "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv1}\nspec: {accessModes: [ReadWriteOnce], capacity: {storage: 0}}\n"
            )
            #expect(out.stderr.contains("spec: Required value: must specify a volume type"), "\(out.stderr)")
            #expect(
                out.stderr.contains("spec.capacity[storage]: Invalid value: \"0\": must be greater than zero"),
                "\(out.stderr)")
            out = try c.kubectl(
                "create", "-f", "-",
                stdin:
                    "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv1}\nspec: {accessModes: [ReadWriteOnce, ReadOnlyMany], capacity: {storage: 2Gi}, hostPath: {path: /tmp/pv1}}\n"
            )
            #expect(out.ok, "\(out.stderr)")
            // The binder finds no claim for it: Available.
            try await c.waitFor(Registry.persistentVolumes, "pv1 Available") {
                $0.first?["status"]["phase"] == "Available"
            }
            out = try c.kubectl("get", "pv", "--no-headers")
            let cells = out.stdout.split(separator: " ", omittingEmptySubsequences: true)
            #expect(Array(cells.prefix(5)) == ["pv1", "2Gi", "RWO,ROX", "Retain", "Available"], "\(out.stdout)")
        }
    }
}

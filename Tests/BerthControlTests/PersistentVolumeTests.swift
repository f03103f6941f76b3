import BerthAPI
import BerthControl
import Foundation
import Testing

extension ControlTests {
    /// Claims and volumes bound, provisioned, released and protected by the control plane, driven with
    /// kubectl 1.32 against hollow nodes (which run pods but own no disk).
    @Suite(
        "persistent volumes: binding, local-path provisioning, reclaim and protection",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    struct PersistentVolumeTests {
        static let manualClass = """
            apiVersion: storage.k8s.io/v1
            kind: StorageClass
            metadata: {name: manual}
            provisioner: kubernetes.io/no-provisioner
            volumeBindingMode: Immediate
            """

        static func volume(_ name: String, _ size: String, reclaim: String = "Retain", extra: String = "") -> String {
            """
            apiVersion: v1
            kind: PersistentVolume
            metadata: {name: \(name)}
            spec:
              storageClassName: manual
              accessModes: [ReadWriteOnce]
              capacity: {storage: \(size)}
              persistentVolumeReclaimPolicy: \(reclaim)
              hostPath: {path: /tmp/berth-test-\(name)}
            \(extra)
            """
        }

        static func claim(_ name: String, _ size: String = "1Gi", className: String? = "manual", extra: String = "")
            -> String
        {
            """
            apiVersion: v1
            kind: PersistentVolumeClaim
            metadata: {name: \(name)}
            spec:
              \(className.map { "storageClassName: \"\($0)\"" } ?? "")
              accessModes: [ReadWriteOnce]
              resources: {requests: {storage: \(size)}}
            \(extra)
            """
        }

        static func pod(_ name: String, claim: String) -> String {
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: \(name)}
            spec:
              containers: [{name: c, image: busybox:1}]
              volumes: [{name: data, persistentVolumeClaim: {claimName: \(claim)}}]
            """
        }

        static func named(_ items: [JSON], _ name: String) -> JSON? {
            items.first { $0["metadata"]["name"].string == name }
        }

        static func apply(_ c: Cluster, _ yaml: String) throws {
            let out = try c.kubectl("apply", "-f", "-", stdin: yaml)
            #expect(out.ok, "\(out.stderr)")
        }

        /// Waits for an Event about `object` with this reason and message.
        static func event(_ c: Cluster, about object: String, _ reason: String, _ message: String) async throws {
            try await c.waitFor(Registry.events, namespace: "default", "\(reason) on \(object): \(message)") { items in
                items.contains {
                    $0["involvedObject"]["name"].string == object && $0["reason"].string == reason
                        && $0["message"].string == message
                }
            }
        }

        func waitForClaim(
            _ c: Cluster, _ name: String, _ what: String, _ predicate: @escaping @Sendable (JSON) -> Bool
        ) async throws {
            try await c.waitFor(Registry.persistentVolumeClaims, namespace: "default", "claim \(name): \(what)") {
                Self.named($0, name).map(predicate) ?? false
            }
        }

        func waitForVolume(
            _ c: Cluster, _ name: String, _ what: String, _ predicate: @escaping @Sendable (JSON?) -> Bool
        ) async throws {
            try await c.waitFor(Registry.persistentVolumes, "volume \(name): \(what)") {
                predicate(Self.named($0, name))
            }
        }

        @Test func aClaimBindsToTheSmallestFittingVolumeAndItsVolumeIsReleasedThenRetainedOrFailed() async throws {
            let c = try await Cluster(hollowNodes: 0)
            defer { Task { await c.stop() } }
            try Self.apply(c, Self.manualClass)
            try Self.apply(c, Self.volume("pv-5g", "5Gi", reclaim: "Delete"))
            try Self.apply(c, Self.volume("pv-1g", "1Gi"))
            try await waitForVolume(c, "pv-1g", "Available") { $0?["status"]["phase"] == "Available" }
            #expect(
                try await c.client.get(Registry.persistentVolumes, namespace: nil, name: "pv-1g")?["metadata"][
                    "finalizers"] == ["kubernetes.io/pv-protection"])

            try Self.apply(c, Self.claim("small", "500Mi"))
            try await waitForClaim(c, "small", "Bound") { $0["status"]["phase"] == "Bound" }
            let claim = try #require(
                try await c.client.get(Registry.persistentVolumeClaims, namespace: "default", name: "small"))
            #expect(claim["spec"]["volumeName"] == "pv-1g", "the smallest volume that fits")
            #expect(
                claim["status"]["capacity"]["storage"] == "1Gi" && claim["status"]["accessModes"] == ["ReadWriteOnce"])
            #expect(claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes")
            #expect(claim["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes")
            #expect(claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"])
            try await waitForVolume(c, "pv-1g", "Bound") { $0?["status"]["phase"] == "Bound" }
            let volume = try #require(try await c.client.get(Registry.persistentVolumes, namespace: nil, name: "pv-1g"))
            #expect(
                volume["spec"]["claimRef"]["name"] == "small"
                    && volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"])
            #expect(volume["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes")
            var out = try c.kubectl("get", "pvc", "small", "--no-headers")
            #expect(
                out.stdout.split(separator: " ", omittingEmptySubsequences: true).prefix(5).joined(separator: " ")
                    == "small Bound pv-1g 1Gi RWO", "\(out.stdout)")

            // Nothing left that fits 10Gi; the claim waits, Pending.
            try Self.apply(c, Self.claim("huge", "10Gi"))
            try Self.apply(c, Self.claim("big", "2Gi"))
            try await waitForClaim(c, "big", "Bound to pv-5g") { $0["spec"]["volumeName"] == "pv-5g" }
            #expect(
                try await c.client.get(Registry.persistentVolumeClaims, namespace: "default", name: "huge")?["status"][
                    "phase"] == "Pending")

            // Retain: Released, and kept.
            #expect(try c.kubectl("delete", "pvc", "small").ok)
            try await waitForVolume(c, "pv-1g", "Released") { $0?["status"]["phase"] == "Released" }
            out = try c.kubectl("get", "pv", "pv-1g", "--no-headers")
            #expect(out.stdout.contains("Released") && out.stdout.contains("default/small"), "\(out.stdout)")

            // Delete, but nothing provisioned it: Failed, as upstream says when no plugin can delete it.
            #expect(try c.kubectl("delete", "pvc", "big").ok)
            try await waitForVolume(c, "pv-5g", "Failed") { $0?["status"]["phase"] == "Failed" }
            try await Self.event(
                c, about: "pv-5g", "VolumeFailedDelete",
                "error getting deleter volume plugin for volume \"pv-5g\": no deletable volume plugin matched")
        }

        @Test func preBindingFromEitherSideAndClaimsWithoutAClass() async throws {
            let c = try await Cluster(hollowNodes: 0)
            defer { Task { await c.stop() } }
            try Self.apply(c, Self.manualClass)
            // The claim names its volume: that one, though a smaller one fits.
            try Self.apply(c, Self.volume("wanted", "3Gi"))
            try Self.apply(c, Self.volume("smaller", "1Gi"))
            try Self.apply(c, Self.claim("picky", extra: "  volumeName: wanted"))
            try await waitForClaim(c, "picky", "Bound") { $0["status"]["phase"] == "Bound" }
            let picky = try #require(
                try await c.client.get(Registry.persistentVolumeClaims, namespace: "default", name: "picky"))
            #expect(picky["spec"]["volumeName"] == "wanted")
            #expect(
                picky["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"].isNull, "its author bound it")
            // The volume names its claim: that claim, and no other, gets it.
            try Self.apply(c, Self.volume("reserved", "1Gi", extra: "  claimRef: {namespace: default, name: owner}"))
            try Self.apply(c, Self.claim("stranger"))
            try await waitForClaim(c, "stranger", "Bound to smaller") { $0["spec"]["volumeName"] == "smaller" }
            try Self.apply(c, Self.claim("owner"))
            try await waitForClaim(c, "owner", "Bound to reserved") {
                $0["spec"]["volumeName"] == "reserved" && $0["status"]["phase"] == "Bound"
            }
            // No class, nothing to bind: upstream's event.
            try Self.apply(c, Self.claim("classless", className: ""))
            try await Self.event(
                c, about: "classless", "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set")
        }

        @Test func waitForFirstConsumerProvisionsALocalPathVolumeOnTheNodeThePodWasScheduledTo() async throws {
            let storage = NSTemporaryDirectory() + "berth-storage-\(UUID().uuidString.prefix(8))"
            let c = try await Cluster(hollowNodes: 3, control: { $0.localPathStorageDirectory = storage })
            defer { Task { await c.stop() } }
            var out = try c.kubectl("get", "storageclass", "--no-headers")
            let cells = out.stdout.split(separator: " ", omittingEmptySubsequences: true)
            #expect(
                Array(cells.prefix(5)) == [
                    "local-path", "(default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer",
                ],
                "\(out.stdout)")

            // The claim names no class: the default one is written in; it waits for a pod.
            try Self.apply(c, Self.claim("data", "2Gi", className: nil))
            try await Self.event(
                c, about: "data", "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
            var claim = try #require(
                try await c.client.get(Registry.persistentVolumeClaims, namespace: "default", name: "data"))
            #expect(claim["spec"]["storageClassName"] == "local-path" && claim["status"]["phase"] == "Pending")

            try Self.apply(c, Self.pod("user", claim: "data"))
            try await c.waitFor(Registry.pods, namespace: "default", "user Running") {
                Self.named($0, "user")?["status"]["phase"] == "Running"
            }
            let pod = try #require(try await c.client.get(Registry.pods, namespace: "default", name: "user"))
            let node = try #require(pod["spec"]["nodeName"].string)
            claim = try #require(
                try await c.client.get(Registry.persistentVolumeClaims, namespace: "default", name: "data"))
            let uid = try #require(claim["metadata"]["uid"].string)
            #expect(claim["status"]["phase"] == "Bound" && claim["spec"]["volumeName"].string == "pvc-\(uid)")
            #expect(claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"].string == node)
            let volume = try #require(
                try await c.client.get(Registry.persistentVolumes, namespace: nil, name: "pvc-\(uid)"))
            #expect(volume["spec"]["hostPath"]["path"].string == "\(storage)/pvc-\(uid)_default_data")
            #expect(
                volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [
                    .string(node)
                ])
            #expect(volume["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path")
            #expect(
                volume["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
                    && volume["spec"]["capacity"]["storage"] == "2Gi")
            try await Self.event(
                c, about: "data", "ProvisioningSucceeded", "Successfully provisioned volume pvc-\(uid)")
            #expect(!FileManager.default.fileExists(atPath: storage), "a hollow node makes no directory")

            // A second pod of the claim goes where the volume is, whatever the scores say.
            try Self.apply(c, Self.pod("second", claim: "data"))
            try await c.waitFor(Registry.pods, namespace: "default", "second placed") {
                !(Self.named($0, "second")?["spec"]["nodeName"].string ?? "").isEmpty
            }
            #expect(
                try await c.client.get(Registry.pods, namespace: "default", name: "second")?["spec"]["nodeName"].string
                    == node)

            // pvc-protection: deleting the claim leaves it Terminating while pods use it.
            #expect(try c.kubectl("delete", "pvc", "data", "--wait=false").ok)
            out = try c.kubectl("get", "pvc", "data", "--no-headers")
            #expect(out.stdout.contains("Terminating"), "\(out.stdout)")
            #expect(try c.kubectl("delete", "pod", "user", "--wait=false").ok)
            try await c.waitFor(Registry.pods, namespace: "default", "user gone") { Self.named($0, "user") == nil }
            claim = try #require(
                try await c.client.get(Registry.persistentVolumeClaims, namespace: "default", name: "data"))
            #expect(claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"], "second still uses it")
            #expect(try c.kubectl("delete", "pod", "second", "--wait=false").ok)
            try await waitForVolume(c, "pvc-\(uid)", "deleted with its claim (reclaim Delete)") { $0 == nil }
            #expect(try await c.client.get(Registry.persistentVolumeClaims, namespace: "default", name: "data") == nil)
        }

        @Test func podsWhoseClaimsCannotBindStayUnschedulableWithUpstreamsReasons() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            try Self.apply(c, Self.pod("orphan", claim: "missing"))
            try await Self.event(
                c, about: "orphan", "FailedScheduling",
                "0/2 nodes are available: persistentvolumeclaim \"missing\" not found.")

            try Self.apply(c, Self.manualClass)
            try Self.apply(c, Self.claim("immediate"))
            try Self.apply(c, Self.pod("waiting", claim: "immediate"))
            try await Self.event(
                c, about: "waiting", "FailedScheduling",
                "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.")
            let waiting = try #require(try await c.client.get(Registry.pods, namespace: "default", name: "waiting"))
            #expect(waiting["spec"]["nodeName"].isNull)

            // A volume for it: the claim binds, and the pod is scheduled without being touched.
            try Self.apply(c, Self.volume("late", "1Gi"))
            try await c.waitFor(Registry.pods, namespace: "default", "waiting scheduled") {
                !(Self.named($0, "waiting")?["spec"]["nodeName"].string ?? "").isEmpty
            }
        }

        /// VolumeRestrictions: a ReadWriteOncePod claim is one pod's; a second pod of the same priority
        /// waits (no victims), one of higher priority preempts the holder where it runs, as kube-scheduler
        /// does since the claim's conflict became a Filter failure preemption can cure.
        @Test func aReadWriteOncePodClaimServesOnePodAtATime() async throws {
            let c = try await Cluster(hollowNodes: 2)
            defer { Task { await c.stop() } }
            try Self.apply(c, Self.manualClass)
            try Self.apply(
                c,
                Self.volume("solo", "1Gi").replacingOccurrences(
                    of: "accessModes: [ReadWriteOnce]", with: "accessModes: [ReadWriteOncePod]"))
            try Self.apply(
                c,
                Self.claim("solo").replacingOccurrences(
                    of: "accessModes: [ReadWriteOnce]", with: "accessModes: [ReadWriteOncePod]"))
            try await waitForClaim(c, "solo", "bound") { $0["status"]["phase"].string == "Bound" }
            try Self.apply(c, Self.pod("first", claim: "solo"))
            try await c.waitFor(Registry.pods, namespace: "default", "first scheduled") {
                !(Self.named($0, "first")?["spec"]["nodeName"].string ?? "").isEmpty
            }
            let firstNode = try #require(
                try await c.client.get(Registry.pods, namespace: "default", name: "first")?["spec"]["nodeName"].string)
            try Self.apply(c, Self.pod("second", claim: "solo"))
            try await Self.event(
                c, about: "second", "FailedScheduling",
                "0/2 nodes are available: 2 node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
            )
            // A pod of higher priority takes the claim: the holder is preempted on its node. (Without
            // `second`: waiting too, it could take the claim on the other node while `first` leaves and
            // be preempted in turn — kube-scheduler's order of events as much as Berth's.)
            #expect(try c.kubectl("delete", "pod", "second", "--grace-period=0", "--force").ok)
            try Self.apply(
                c,
                """
                apiVersion: scheduling.k8s.io/v1
                kind: PriorityClass
                metadata: {name: rwop-urgent}
                value: 1000
                """)
            try Self.apply(
                c,
                Self.pod("urgent", claim: "solo").replacingOccurrences(
                    of: "spec:\n", with: "spec:\n  priorityClassName: rwop-urgent\n"))
            try await c.waitFor(Registry.pods, namespace: "default", "urgent scheduled where first was") {
                Self.named($0, "urgent")?["spec"]["nodeName"].string == firstNode && Self.named($0, "first") == nil
            }
            let urgentUID = try #require(
                try await c.client.get(Registry.pods, namespace: "default", name: "urgent")?["metadata"]["uid"].string)
            try await Self.event(c, about: "first", "Preempted", "Preempted by pod \(urgentUID) on node \(firstNode)")
            // The claim is the urgent pod's now: a pod of its own priority waits for it.
            try Self.apply(c, Self.pod("second", claim: "solo"))
            let secondUID = try #require(
                try await c.client.get(Registry.pods, namespace: "default", name: "second")?["metadata"]["uid"].string)
            try await c.waitFor(Registry.events, namespace: "default", "the new second waits for the claim") { items in
                items.contains {
                    $0["involvedObject"]["uid"].string == secondUID && $0["reason"] == "FailedScheduling"
                        && $0["message"].string?.contains("ReadWriteOncePod access mode") == true
                }
            }
            let second = try await c.client.get(Registry.pods, namespace: "default", name: "second")
            #expect(second?["spec"]["nodeName"].isNull == true)
            #expect(try c.kubectl("delete", "pod", "urgent", "--grace-period=0", "--force").ok)
            try await c.waitFor(Registry.pods, namespace: "default", "second scheduled once urgent is gone") {
                !(Self.named($0, "second")?["spec"]["nodeName"].string ?? "").isEmpty
            }
        }

        @Test func aBoundVolumeIsProtectedUntilItsClaimIsGone() async throws {
            let c = try await Cluster(hollowNodes: 0)
            defer { Task { await c.stop() } }
            try Self.apply(c, Self.manualClass)
            try Self.apply(c, Self.volume("kept", "1Gi"))
            try Self.apply(c, Self.claim("holder"))
            try await waitForVolume(c, "kept", "Bound") { $0?["status"]["phase"] == "Bound" }
            #expect(try c.kubectl("delete", "pv", "kept", "--wait=false").ok)
            var out = try c.kubectl("get", "pv", "kept", "--no-headers")
            #expect(out.stdout.contains("Terminating"), "pv-protection holds a Bound volume: \(out.stdout)")
            #expect(try c.kubectl("delete", "pvc", "holder").ok)
            try await waitForVolume(c, "kept", "gone once Released") { $0 == nil }
            out = try c.kubectl("get", "pv", "--no-headers")
            #expect(!out.stdout.contains("kept"), "\(out.stdout)")
        }
    }
}

@testable import BerthAPI
import Foundation
import Testing

/// What a node identity may do (the node authorizer and NodeRestriction): its own objects and its
/// pods', Secrets and ConfigMaps only those its pods use.
extension APITests {
    @Suite("Node authorizer", .serialized)
    struct NodeAuthorizerTests {
        @Test func aPodReferencesWhatItsVolumesEnvAndPullSecretsName() {
            let pod: JSON = [
                "metadata": ["name": "p"],
                "spec": [
                    "imagePullSecrets": [["name": "pull"]],
                    "volumes": [
                        ["name": "a", "secret": ["secretName": "vol-secret"]],
                        ["name": "b", "configMap": ["name": "vol-cm"]],
                        [
                            "name": "c",
                            "projected": [
                                "sources": [
                                    ["secret": ["name": "proj-secret"]], ["configMap": ["name": "proj-cm"]],
                                    ["serviceAccountToken": ["path": "t"]],
                                ]
                            ],
                        ],
                        ["name": "d", "persistentVolumeClaim": ["claimName": "claim"]],
                        ["name": "e", "csi": ["driver": "x", "nodePublishSecretRef": ["name": "csi-secret"]]],
                        ["name": "f", "ephemeral": ["volumeClaimTemplate": ["spec": [:]]]],
                    ],
                    "initContainers": [
                        ["name": "i", "envFrom": [["configMapRef": ["name": "init-cm"]]]]
                    ],
                    "containers": [
                        [
                            "name": "c",
                            "env": [
                                ["name": "A", "valueFrom": ["secretKeyRef": ["name": "env-secret", "key": "k"]]],
                                ["name": "B", "valueFrom": ["configMapKeyRef": ["name": "env-cm", "key": "k"]]],
                                ["name": "C", "value": "plain"],
                            ],
                            "envFrom": [["secretRef": ["name": "from-secret"]]],
                        ]
                    ],
                ],
            ]
            let references = PodReferences(pod)
            #expect(
                references.secrets == ["pull", "vol-secret", "proj-secret", "csi-secret", "env-secret", "from-secret"])
            #expect(references.configMaps == ["vol-cm", "proj-cm", "init-cm", "env-cm"])
            #expect(references.claims == ["claim", "p-f"])
            #expect(PodReferences(["spec": ["containers": [["name": "c", "image": "i"]]]]).isEmpty)
        }

        @Test func onlyANameSelectorNarrowsToOneObject() {
            #expect(Handler.singleName("metadata.name=s1") == "s1")
            #expect(Handler.singleName("metadata.name==s1") == "s1")
            #expect(Handler.singleName("metadata.name=s1,metadata.namespace=x") == nil)
            #expect(Handler.singleName("metadata.name!=s1") == nil)
            #expect(Handler.singleName("metadata.name=") == nil)
            #expect(Handler.singleName(nil) == nil)
        }

        @Test func aNodeMirrorsOnlyItsOwnStaticPodsAndNoSecrets() {
            let mirror: JSON = [
                "metadata": [
                    "name": "web-n1", "annotations": ["kubernetes.io/config.mirror": "hash"],
                    "ownerReferences": [["apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u"]],
                ],
                "spec": ["nodeName": "n1", "containers": [["name": "c", "image": "i"]]],
            ]
            #expect(Handler.isOwnMirrorPod(mirror, node: "n1"))
            #expect(!Handler.isOwnMirrorPod(mirror, node: "n2"), "bound elsewhere")
            var plain = mirror
            plain["metadata"]["annotations"] = [:]
            #expect(!Handler.isOwnMirrorPod(plain, node: "n1"), "not a mirror pod")
            var owned = mirror
            owned["metadata"]["ownerReferences"] = [["kind": "ReplicaSet", "name": "rs", "uid": "u"]]
            #expect(!Handler.isOwnMirrorPod(owned, node: "n1"))
            var reaching = mirror
            reaching["spec"]["volumes"] = [["name": "s", "secret": ["secretName": "s"]]]
            #expect(!Handler.isOwnMirrorPod(reaching, node: "n1"), "a way to read a secret")
        }

        @Test func aNodeReachesOnlyItsOwnObjectsAndWhatItsPodsUse() async throws {
            let dir = NSTemporaryDirectory() + "berth-nodeauthz-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try "admintok,admin,admin,\"system:masters\"\nnode1tok,system:node:n1,n1,\"system:nodes\"\n".write(
                toFile: dir + "/tokens.csv", atomically: true, encoding: .utf8)
            let t = try await TestServer(configure: { $0.dataDir = dir })
            func admin(_ method: String, _ path: String, _ body: String? = nil) throws -> Int {
                try t.curl(method, path, body: body, token: "admintok").0
            }
            func node(_ method: String, _ path: String, _ body: String? = nil, type: String = "application/json")
                throws -> (Int, JSON)
            {
                try t.curl(method, path, body: body, contentType: type, token: "node1tok")
            }
            let ns = "/api/v1/namespaces/default"
            for name in ["mine", "theirs", "nobodys"] {
                #expect(try admin("POST", ns + "/secrets", #"{"metadata":{"name":"\#(name)"}}"#) == 201)
                #expect(try admin("POST", ns + "/configmaps", #"{"metadata":{"name":"\#(name)"}}"#) == 201)
            }
            for (pod, host, used) in [("on1", "n1", "mine"), ("on2", "n2", "theirs")] {
                let body = """
                    {"metadata":{"name":"\(pod)"},"spec":{"nodeName":"\(host)",
                     "volumes":[{"name":"s","secret":{"secretName":"\(used)"}}],
                     "containers":[{"name":"c","image":"i","env":[{"name":"A","valueFrom":{"configMapKeyRef":{"name":"\(used)","key":"k"}}}]}]}}
                    """
                #expect(try admin("POST", ns + "/pods", body) == 201)
            }
            // Secrets and ConfigMaps: only those its pods use, one at a time.
            #expect(try node("GET", ns + "/secrets/mine").0 == 200)
            #expect(try node("GET", ns + "/configmaps/mine").0 == 200)
            var (code, status) = try node("GET", ns + "/secrets/theirs")
            #expect(code == 403)
            #expect(
                status["message"]
                    == "secrets \"theirs\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\""
            )
            #expect(try node("GET", ns + "/secrets/nobodys").0 == 403)
            #expect(try node("GET", ns + "/configmaps/theirs").0 == 403)
            #expect(try node("GET", ns + "/secrets").0 == 403, "no list")
            #expect(try node("GET", "/api/v1/secrets").0 == 403)
            #expect(try node("GET", ns + "/secrets?fieldSelector=metadata.name%3Dmine").0 == 200)
            #expect(try node("GET", ns + "/secrets?fieldSelector=metadata.name%3Dtheirs").0 == 403)
            // Everything else it reads as before.
            #expect(try node("GET", "/api/v1/pods").0 == 200)
            #expect(try node("GET", "/api/v1/nodes").0 == 200)
            #expect(try node("GET", "/api/v1/services").0 == 200)
            // Its own Node and Lease; not another's.
            let nodeBody = #"{"metadata":{"name":"NAME"}}"#
            #expect(try node("POST", "/api/v1/nodes", nodeBody.replacingOccurrences(of: "NAME", with: "n1")).0 == 201)
            #expect(try node("POST", "/api/v1/nodes", nodeBody.replacingOccurrences(of: "NAME", with: "n9")).0 == 403)
            #expect(try admin("POST", "/api/v1/nodes", nodeBody.replacingOccurrences(of: "NAME", with: "n2")) == 201)
            let label = #"{"metadata":{"labels":{"x":"y"}}}"#
            let merge = "application/merge-patch+json"
            #expect(try node("PATCH", "/api/v1/nodes/n1", label, type: merge).0 == 200)
            #expect(try node("PATCH", "/api/v1/nodes/n2", label, type: merge).0 == 403)
            #expect(try node("PATCH", "/api/v1/nodes/n2/status", label, type: merge).0 == 403)
            let leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
            #expect(try node("POST", leases, #"{"metadata":{"name":"n1"},"spec":{}}"#).0 == 201)
            #expect(try node("POST", leases, #"{"metadata":{"name":"n2"},"spec":{}}"#).0 == 403)
            // Its pods' status, deletion and eviction; not another node's pods.
            #expect(
                try node("PATCH", ns + "/pods/on1/status", #"{"status":{"phase":"Running"}}"#, type: merge).0 == 200)
            #expect(
                try node("PATCH", ns + "/pods/on2/status", #"{"status":{"phase":"Running"}}"#, type: merge).0 == 403)
            #expect(try node("DELETE", ns + "/pods/on2").0 == 403)
            #expect(try node("DELETE", ns + "/pods").0 == 403, "no deletecollection")
            #expect(try node("DELETE", ns + "/pods/on1?gracePeriodSeconds=0").0 == 200)
            // Mirror pods of its own static pods only.
            let mirror = """
                {"metadata":{"name":"static-n1","annotations":{"kubernetes.io/config.mirror":"h"}},
                 "spec":{"nodeName":"NODE","containers":[{"name":"c","image":"i"}]}}
                """
            #expect(try node("POST", ns + "/pods", mirror.replacingOccurrences(of: "NODE", with: "n1")).0 == 201)
            #expect(try node("POST", ns + "/pods", mirror.replacingOccurrences(of: "NODE", with: "n2")).0 == 403)
            (code, status) = try node(
                "POST", ns + "/pods", #"{"metadata":{"name":"x"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#)
            #expect(code == 403)
            (code, status) = try node("DELETE", ns + "/pods/static-n1?gracePeriodSeconds=0")
            #expect(code == 200, "\(status)")
            // And nothing else.
            #expect(try node("POST", ns + "/configmaps", #"{"metadata":{"name":"x"}}"#).0 == 403)
            #expect(try node("DELETE", ns + "/secrets/mine").0 == 403)

            // Each refusal is in the audit log, under the node's name.
            let audit = try String(contentsOfFile: dir + "/audit.log", encoding: .utf8)
            let events = audit.split(separator: "\n").compactMap { try? JSON.parse(Array($0.utf8)) }
            #expect(events.allSatisfy { $0["user"]["username"] == "system:node:n1" }, "\(audit)")
            let theirs = events.first { $0["requestURI"] == .string(ns + "/secrets/theirs") }
            #expect(theirs?["verb"] == "get" && theirs?["responseStatus"]["code"] == .int(403))
            #expect(theirs?["annotations"]["berth.io/node"] == "n1")
            #expect(events.contains { $0["verb"] == "patch" && $0["requestURI"] == "/api/v1/nodes/n2" })
            await t.stop()
        }

        @Test func aNodeListsVolumesAndReleasesOnlyItsOwnDeletedLocalVolumes() async throws {
            let dir = NSTemporaryDirectory() + "berth-nodeauthz-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try "admintok,admin,admin,\"system:masters\"\nnode1tok,system:node:n1,n1,\"system:nodes\"\n".write(
                toFile: dir + "/tokens.csv", atomically: true, encoding: .utf8)
            let t = try await TestServer(configure: { $0.dataDir = dir })
            func call(_ token: String, _ method: String, _ path: String, _ body: String? = nil) throws -> Int {
                let type = method == "PATCH" ? "application/merge-patch+json" : "application/json"
                return try t.curl(method, path, body: body, contentType: type, token: token).0
            }
            for host in ["n1", "n2"] {
                let volume = """
                    {"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv-\(host)",
                     "finalizers":["external-provisioner.volume.kubernetes.io/finalizer"],
                     "annotations":{"pv.kubernetes.io/provisioned-by":"rancher.io/local-path",
                                    "local.path.provisioner/selected-node":"\(host)"}},
                     "spec":{"accessModes":["ReadWriteOnce"],"capacity":{"storage":"1Gi"},
                             "hostPath":{"path":"/var/lib/berth/storage/pvc-\(host)"}}}
                    """
                #expect(try t.curl("POST", "/api/v1/persistentvolumes", body: volume, token: "admintok").0 == 201)
            }
            // It watches every volume (the agent's cleanup does), but reads one by name only through its pods.
            #expect(try call("node1tok", "GET", "/api/v1/persistentvolumes") == 200)
            #expect(try call("node1tok", "GET", "/api/v1/persistentvolumes?watch=true&timeoutSeconds=1") == 200)
            #expect(try call("node1tok", "GET", "/api/v1/persistentvolumes/pv-n1") == 403)
            let release = #"{"metadata":{"finalizers":["kubernetes.io/pv-protection"]}}"#
            #expect(try call("node1tok", "PATCH", "/api/v1/persistentvolumes/pv-n1", release) == 403, "not deleted yet")
            for host in ["n1", "n2"] {
                // 202: marked, and kept by its finalizers.
                #expect(try call("admintok", "DELETE", "/api/v1/persistentvolumes/pv-\(host)") == 202)
            }
            #expect(try call("node1tok", "PATCH", "/api/v1/persistentvolumes/pv-n2", release) == 403, "another node's")
            #expect(try call("node1tok", "PATCH", "/api/v1/persistentvolumes/pv-n1", release) == 200)
            #expect(try call("node1tok", "DELETE", "/api/v1/persistentvolumes/pv-n1") == 403, "no deletes")
            await t.stop()
        }
    }
}

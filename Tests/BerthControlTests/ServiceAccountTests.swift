import BerthAPI
import BerthControl
import Foundation
import Testing

extension ControlTests {
    @Suite("service accounts") struct ServiceAccountTests {
        @Test func defaultAccountIsRepaired() async throws {
            try await withControlCluster { c in
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "team"]])
                let first = try #require(
                    try await c.client.get(Registry.serviceAccounts, namespace: "team", name: "default"))
                #expect(try c.kubectl("-n", "team", "delete", "serviceaccount", "default").ok)
                let oldUID = first["metadata"]["uid"]
                try await c.waitFor(Registry.serviceAccounts, namespace: "team", "default recreated") { items in
                    guard let sa = named(items, "default") else { return false }
                    return sa["metadata"]["uid"] != oldUID
                }
            }
        }

        @Test func theClusterCAIsPublishedInEveryNamespaceAndPutBack() async throws {
            try await withControlCluster { c in
                let ca = c.server.pki.caPEM
                func published(_ namespace: String, _ what: String) async throws {
                    try await c.waitFor(configMapType, namespace: namespace, what) { items in
                        guard let map = named(items, "kube-root-ca.crt") else { return false }
                        return map["data"]["ca.crt"].string == ca
                            && !(map["metadata"]["annotations"]["kubernetes.io/description"].string ?? "").isEmpty
                    }
                }
                try await published("default", "in a namespace that was there before")
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "tools"]])
                try await published("tools", "in a new namespace")
                let first = try #require(
                    try await c.client.get(configMapType, namespace: "tools", name: "kube-root-ca.crt"))
                #expect(try c.kubectl("-n", "tools", "delete", "configmap", "kube-root-ca.crt").ok)
                try await c.waitFor(configMapType, namespace: "tools", "recreated") { items in
                    guard let map = named(items, "kube-root-ca.crt") else { return false }
                    return map["metadata"]["uid"] != first["metadata"]["uid"] && map["data"]["ca.crt"].string == ca
                }
                // An edit is undone; what the publisher does not own (a label) stays.
                let patch = #"{"metadata":{"labels":{"team":"ops"}},"data":{"ca.crt":"not a CA","extra":"x"}}"#
                #expect(try c.kubectl("-n", "tools", "patch", "configmap", "kube-root-ca.crt", "-p", patch).ok)
                try await c.waitFor(configMapType, namespace: "tools", "restored") { items in
                    guard let map = named(items, "kube-root-ca.crt") else { return false }
                    return map["data"] == ["ca.crt": .string(ca)] && map["metadata"]["labels"]["team"] == "ops"
                }
            }
        }

        @Test func tokenSecretsAuthenticateReadOnly() async throws {
            try await withControlCluster { c in
                try await c.client.create(Registry.namespaces, ["metadata": ["name": "apps"]])
                let sa = try await c.client.create(
                    Registry.serviceAccounts, ["metadata": ["name": "robot", "namespace": "apps"]])
                try await c.client.create(configMapType, ["metadata": ["name": "settings", "namespace": "apps"]])
                try await c.client.create(
                    Registry.secrets,
                    [
                        "metadata": [
                            "name": "robot-token", "namespace": "apps",
                            "annotations": ["kubernetes.io/service-account.name": "robot"],
                        ],
                        "type": "kubernetes.io/service-account-token",
                    ])
                try await c.waitFor(Registry.secrets, namespace: "apps", "token filled in") { items in
                    !(named(items, "robot-token")?["data"]["token"].string ?? "").isEmpty
                }
                let secret = try #require(
                    try await c.client.get(Registry.secrets, namespace: "apps", name: "robot-token"))
                func decoded(_ key: String) -> String {
                    String(decoding: Data(base64Encoded: secret["data"][key].string ?? "") ?? Data(), as: UTF8.self)
                }
                let token = decoded("token")
                #expect(decoded("ca.crt") == c.server.pki.caPEM)
                #expect(decoded("namespace") == "apps")
                #expect(secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == sa["metadata"]["uid"])
                // The JWT's claims.
                let parts = token.split(separator: ".")
                #expect(parts.count == 3)
                var payload = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(
                    of: "_", with: "/")
                while payload.count % 4 != 0 { payload += "=" }
                let claims = try JSON.parse(Array(Data(base64Encoded: payload) ?? Data()))
                #expect(claims["iss"] == "kubernetes/serviceaccount")
                #expect(claims["sub"] == "system:serviceaccount:apps:robot")
                #expect(claims["kubernetes.io/serviceaccount/secret.name"] == "robot-token")
                #expect(claims["kubernetes.io/serviceaccount/service-account.uid"] == sa["metadata"]["uid"])

                // kubectl with only the token (and the cluster CA): nothing until the account is bound
                // (RBAC); then its role's reads work and writes are Forbidden.
                let config = c.dir + "/robot.kubeconfig"
                try c.server.pki.kubeconfig(server: c.server.url, token: "unset", user: "robot")
                    .write(toFile: config, atomically: true, encoding: .utf8)
                func kubectl(_ token: String, _ args: String...) throws -> Output {
                    try run("/usr/bin/kubectl", ["--kubeconfig", config, "--token", token, "-n", "apps"] + args)
                }
                #expect(try kubectl(token, "auth", "can-i", "list", "pods").stdout.hasPrefix("no"))
                let binding = try c.kubectl(
                    "-n", "apps", "create", "rolebinding", "robot-view", "--clusterrole=view",
                    "--serviceaccount=apps:robot")
                #expect(binding.ok, "\(binding.stderr)")
                let get = try kubectl(token, "get", "configmaps")
                #expect(get.ok && get.stdout.contains("settings"), "\(get.stderr)")
                #expect(try kubectl(token, "get", "pods").ok)
                #expect(try kubectl(token, "auth", "can-i", "list", "pods").stdout.hasPrefix("yes"))
                let del = try kubectl(token, "delete", "configmap", "settings")
                #expect(
                    !del.ok && del.stderr.contains("Forbidden")
                        && del.stderr.contains(
                            "User \"system:serviceaccount:apps:robot\" cannot delete resource \"configmaps\""),
                    "\(del.stderr)")
                #expect(try await c.client.get(configMapType, namespace: "apps", name: "settings") != nil)
                // A token with a changed signature (or payload) is rejected outright.
                var tampered = Array(token)
                tampered[tampered.count - 3] = tampered[tampered.count - 3] == "A" ? "B" : "A"
                let bad = try kubectl(String(tampered), "get", "pods")
                #expect(!bad.ok && bad.stderr.contains("Unauthorized"), "\(bad.stderr)")
                let forged = String(parts[0]) + "." + String(parts[1].dropLast(2)) + "." + String(parts[2])
                #expect(try kubectl(forged, "get", "pods").stderr.contains("Unauthorized"))

                // Deleting the account deletes its token Secret, and the token stops working.
                #expect(try c.kubectl("-n", "apps", "delete", "serviceaccount", "robot").ok)
                try await c.waitFor(Registry.secrets, namespace: "apps", "token secret deleted") {
                    named($0, "robot-token") == nil
                }
                let after = try kubectl(token, "get", "pods")
                #expect(!after.ok && after.stderr.contains("Unauthorized"), "\(after.stderr)")
            }
        }

        @Test func tokenForMissingAccountIsDeleted() async throws {
            try await withControlCluster { c in
                try await c.client.create(
                    Registry.secrets,
                    [
                        "metadata": [
                            "name": "nobody-token", "namespace": "default",
                            "annotations": ["kubernetes.io/service-account.name": "nobody"],
                        ],
                        "type": "kubernetes.io/service-account-token",
                    ])
                try await c.waitFor(Registry.secrets, namespace: "default", "token of a missing account deleted") {
                    named($0, "nobody-token") == nil
                }
                // The annotation is required.
                let r = try c.kubectl(
                    "-n", "default", "create", "-f", "-",
                    stdin:
                        #"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"},"type":"kubernetes.io/service-account-token"}"#
                )
                #expect(!r.ok && r.stderr.contains("kubernetes.io/service-account.name"), "\(r.stderr)")
            }
        }
    }

    @Suite("admission") struct AdmissionTests {
        @Test func podsGetTheirServiceAccountsCredentialsMounted() async throws {
            try await withControlCluster { c in
                let pod = try await c.client.create(
                    Registry.pods,
                    [
                        "metadata": ["name": "api-user", "namespace": "default"],
                        "spec": [
                            "schedulerName": "nobody",
                            "initContainers": [["name": "setup", "image": "busybox"]],
                            "containers": [
                                ["name": "app", "image": "busybox"],
                                [
                                    "name": "own", "image": "busybox",
                                    "volumeMounts": [
                                        ["name": "mine", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"]
                                    ],
                                ],
                            ],
                            "volumes": [["name": "mine", "emptyDir": [:]]],
                        ],
                    ])
                #expect(pod["spec"]["serviceAccountName"] == "default" && pod["spec"]["serviceAccount"] == "default")
                let volumes = pod["spec"]["volumes"].array ?? []
                let access = try #require(volumes.first { ($0["name"].string ?? "").hasPrefix("kube-api-access-") })
                let volumeName = try #require(access["name"].string)
                #expect(volumeName.count == "kube-api-access-".count + 5)
                let sources = access["projected"]["sources"].array ?? []
                #expect(access["projected"]["defaultMode"] == 420)
                #expect(sources.first?["serviceAccountToken"] == ["path": "token", "expirationSeconds": 3607])
                #expect(sources.dropFirst().first?["configMap"]["name"] == "kube-root-ca.crt")
                #expect(sources.last?["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace")
                let mount: JSON = [
                    "name": .string(volumeName), "readOnly": true,
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                ]
                #expect(pod["spec"]["initContainers"][0]["volumeMounts"] == [mount])
                #expect(pod["spec"]["containers"][0]["volumeMounts"] == [mount])
                // A container with its own volume at that path keeps it.
                #expect(pod["spec"]["containers"][1]["volumeMounts"].array?.count == 1)
                #expect(pod["spec"]["containers"][1]["volumeMounts"][0]["name"] == "mine")

                // Opting out: the pod, or its ServiceAccount (unless the pod asks).
                try await c.client.create(
                    Registry.serviceAccounts,
                    ["metadata": ["name": "quiet", "namespace": "default"], "automountServiceAccountToken": false])
                func created(_ name: String, _ spec: JSON) async throws -> JSON {
                    var full = spec
                    full["schedulerName"] = "nobody"
                    full["containers"] = [["name": "c", "image": "busybox"]]
                    return try await c.client.create(
                        Registry.pods, ["metadata": ["name": .string(name), "namespace": "default"], "spec": full])
                }
                func mounts(_ pod: JSON) -> Bool { !(pod["spec"]["volumes"].array ?? []).isEmpty }
                #expect(!mounts(try await created("no-token", ["automountServiceAccountToken": false])))
                let quiet = try await created("quiet-account", ["serviceAccountName": "quiet"])
                #expect(!mounts(quiet) && quiet["spec"]["serviceAccountName"] == "quiet")
                #expect(
                    mounts(
                        try await created(
                            "asks-anyway", ["serviceAccountName": "quiet", "automountServiceAccountToken": true])))

                // A ServiceAccount that does not exist: refused, as upstream words it.
                let refused = try c.kubectl(
                    "create", "-f", "-",
                    stdin:
                        #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ghost"},"spec":{"serviceAccountName":"nobody-here","containers":[{"name":"c","image":"busybox"}]}}"#
                )
                #expect(!refused.ok)
                #expect(
                    refused.stderr.contains(
                        "error looking up service account default/nobody-here: serviceaccount \"nobody-here\" not found"
                    ),
                    "\(refused.stderr)")

                // A mirror pod is left as it is, and may not name an account.
                let mirror = try await c.client.create(
                    Registry.pods,
                    [
                        "metadata": [
                            "name": "static-node1", "namespace": "default",
                            "annotations": ["kubernetes.io/config.mirror": "abc"],
                        ],
                        "spec": ["nodeName": "node1", "containers": [["name": "c", "image": "busybox"]]],
                    ])
                #expect(!mounts(mirror) && mirror["spec"]["serviceAccountName"].isNull)
                await #expect(throws: APIError.self) {
                    try await c.client.create(
                        Registry.pods,
                        [
                            "metadata": [
                                "name": "static-node2", "namespace": "default",
                                "annotations": ["kubernetes.io/config.mirror": "abc"],
                            ],
                            "spec": [
                                "nodeName": "node1", "serviceAccountName": "default",
                                "containers": [["name": "c", "image": "busybox"]],
                            ],
                        ])
                }
            }
        }

        @Test func podsGetDefaultTolerations() async throws {
            try await withControlCluster { c in
                let pod = try await c.client.create(
                    Registry.pods,
                    [
                        "metadata": ["name": "p", "namespace": "default"],
                        "spec": ["schedulerName": "nobody", "containers": [["name": "c", "image": "busybox"]]],
                    ])
                let expected: JSON = [
                    [
                        "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                        "tolerationSeconds": 5,
                    ],
                    [
                        "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                        "tolerationSeconds": 5,
                    ],
                ]
                #expect(pod["spec"]["tolerations"] == expected)
                // Through kubectl as well, and kept as the pod's own tolerations.
                let run = try c.kubectl(
                    "create", "-f", "-",
                    stdin:
                        #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"k"},"spec":{"schedulerName":"nobody","containers":[{"name":"c","image":"busybox"}]}}"#
                )
                #expect(run.ok, "\(run.stderr)")
                let k = try JSON.parse(try c.kubectl("get", "pod", "k", "-o", "json").stdout)
                #expect(k["spec"]["tolerations"] == expected)
                // A pod that already tolerates one of them (its own seconds) gets only the other.
                let own: JSON = [
                    "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": 60,
                ]
                let q = try await c.client.create(
                    Registry.pods,
                    [
                        "metadata": ["name": "q", "namespace": "default"],
                        "spec": [
                            "schedulerName": "nobody", "tolerations": [own],
                            "containers": [["name": "c", "image": "busybox"]],
                        ],
                    ])
                #expect(q["spec"]["tolerations"] == [own, expected[1]])
                // Tolerating everything (empty key, operator Exists) needs no defaults.
                let all: JSON = ["operator": "Exists"]
                let r = try await c.client.create(
                    Registry.pods,
                    [
                        "metadata": ["name": "r", "namespace": "default"],
                        "spec": [
                            "schedulerName": "nobody", "tolerations": [all],
                            "containers": [["name": "c", "image": "busybox"]],
                        ],
                    ])
                #expect(r["spec"]["tolerations"] == [all])
            }
        }
    }
}

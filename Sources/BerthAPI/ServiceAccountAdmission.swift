/// Upstream's ServiceAccount admission plugin (plugin/pkg/admission/serviceaccount), on pod create: the
/// pod runs as its namespace's "default" ServiceAccount unless it names one, which must exist; and unless
/// the pod or its ServiceAccount opts out (`automountServiceAccountToken: false`), every container and
/// init container gets the account's API credentials at /var/run/secrets/kubernetes.io/serviceaccount —
/// a projected volume `kube-api-access-xxxxx` of a bound token (refreshed by the node agent), the cluster
/// CA (the `kube-root-ca.crt` ConfigMap) and the namespace — which is what in-cluster clients read.
/// Mirror pods (a node's static pods) are left as they are and may not use ServiceAccounts or Secrets.
enum ServiceAccountAdmission {
    static let mountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
    static let volumePrefix = "kube-api-access-"
    static let mirrorAnnotation = "kubernetes.io/config.mirror"
    /// Upstream's WarnOnlyBoundTokenExpirationSeconds: an hour and seven seconds (the seven mark tokens
    /// made for this volume in audit logs).
    static let tokenExpirationSeconds: Int64 = 3607

    static func admit(_ pod: inout JSON, handler: Handler) async throws {
        let name = pod["metadata"]["name"].string ?? ""
        let namespace = pod["metadata"]["namespace"].string ?? ""
        if pod["metadata"]["annotations"][mirrorAnnotation].string != nil {
            try checkMirror(pod, name: name)
            return
        }
        var account = pod["spec"]["serviceAccountName"].string ?? ""
        if account.isEmpty { account = pod["spec"]["serviceAccount"].string ?? "" }
        if account.isEmpty { account = "default" }
        pod["spec"]["serviceAccountName"] = .string(account)
        pod["spec"]["serviceAccount"] = .string(account)
        guard
            let serviceAccount = try await handler.storedObject(
                Registry.serviceAccounts, namespace: namespace, name: account)
        else {
            throw APIError.forbidden(
                "pods \"\(name)\" is forbidden: error looking up service account \(namespace)/\(account): serviceaccount \"\(account)\" not found"
            )
        }
        let automount =
            pod["spec"]["automountServiceAccountToken"].bool
            ?? serviceAccount["automountServiceAccountToken"].bool ?? true
        if automount { mountToken(&pod) }
    }

    /// Every container without something of its own at the mount path gets the credentials volume (an
    /// existing `kube-api-access-` volume, else a new one with a random suffix).
    static func mountToken(_ pod: inout JSON) {
        var volumes = pod["spec"]["volumes"].array ?? []
        let existing = volumes.compactMap { $0["name"].string }.first { $0.hasPrefix(volumePrefix) }
        let volumeName = existing ?? volumePrefix + randomSuffix()
        let mount: JSON = ["name": .string(volumeName), "readOnly": true, "mountPath": .string(mountPath)]
        var mounted = false
        for list in ["initContainers", "containers"] {
            guard var containers = pod["spec"][list].array else { continue }
            for index in containers.indices {
                var mounts = containers[index]["volumeMounts"].array ?? []
                if mounts.contains(where: { $0["mountPath"].string == mountPath }) { continue }
                mounts.append(mount)
                containers[index]["volumeMounts"] = .array(mounts)
                mounted = true
            }
            pod["spec"][list] = .array(containers)
        }
        guard mounted, existing == nil else { return }
        volumes.append(["name": .string(volumeName), "projected": projectedSource])
        pod["spec"]["volumes"] = .array(volumes)
    }

    /// Upstream's TokenVolumeSource, defaultMode set explicitly as it does.
    static let projectedSource: JSON = [
        "defaultMode": 420,
        "sources": [
            ["serviceAccountToken": ["path": "token", "expirationSeconds": .int(tokenExpirationSeconds)]],
            ["configMap": ["name": "kube-root-ca.crt", "items": [["key": "ca.crt", "path": "ca.crt"]]]],
            [
                "downwardAPI": [
                    "items": [
                        ["path": "namespace", "fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.namespace"]]
                    ]
                ]
            ],
        ],
    ]

    /// The suffix generateName uses (no vowels, no look-alike digits).
    static func randomSuffix() -> String {
        let characters = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in characters.randomElement()! })
    }

    /// A mirror pod stands for a static pod the node runs from a file: it may not name a ServiceAccount
    /// or reach Secrets (the node could not be trusted with them).
    static func checkMirror(_ pod: JSON, name: String) throws {
        let forbidden = { (what: String) in APIError.forbidden("pods \"\(name)\" is forbidden: \(what)") }
        if !(pod["spec"]["serviceAccountName"].string ?? "").isEmpty {
            throw forbidden("a mirror pod may not reference service accounts")
        }
        for volume in pod["spec"]["volumes"].array ?? [] {
            let projectsSecret = (volume["projected"]["sources"].array ?? []).contains { !$0["secret"].isNull }
            if !volume["secret"].isNull || projectsSecret {
                throw forbidden("a mirror pod may not reference secrets")
            }
        }
    }
}

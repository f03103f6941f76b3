import BerthStore

/// What a node identity (`system:node:<name>`, group system:nodes) may do: upstream's node authorizer
/// and NodeRestriction admission in one place. A node reads what it needs to run pods and route
/// Services (pods, nodes, services, endpointslices, namespaces …) but Secrets, ConfigMaps and volume
/// claims only one at a time and only when a pod bound to it references them; it writes its own
/// Node, its own Lease, Events, the status of pods bound to it (checked by the pod strategy), mirror
/// pods of its static pods, deletions and evictions of pods bound to it, and tokens for them
/// (checked by TokenRequest). So a stolen node credential exposes that node's pods, not the cluster.
///
/// Beyond upstream: a node lists and watches PersistentVolumes (they hold no credentials — those are
/// Secrets, still read one at a time) and may drop the finalizer of a deleted local-path volume of its
/// own, because only the node can remove that volume's directory (``LocalVolumeCleanup`` in the agent).
extension Handler {
    /// The kinds a node reads only through the pods bound to it.
    static let nodeGraphKinds: Set<String> = ["Secret", "ConfigMap", "PersistentVolumeClaim", "PersistentVolume"]

    /// Whether node `node` may make this request (`reading`: get, list or watch).
    func nodeMay(
        _ node: String, _ call: Call, _ r: ResourceType, namespace: String?, name: String?, sub: String?,
        reading: Bool
    ) async throws -> Bool {
        if reading {
            guard Self.nodeGraphKinds.contains(r.kind) else { return true }
            if r.kind == "PersistentVolume" && name == nil && sub == nil { return true }
            // One object: by name, or a list/watch narrowed to its name (the kubelet's watch-based
            // secret and config map managers watch that way).
            guard let wanted = name ?? Self.singleName(call.query["fieldSelector"]), sub == nil else { return false }
            return try await nodeReferences(node, kind: r.kind, namespace: namespace, name: wanted)
        }
        switch r.kind {
        case "Node":
            if let name { return name == node }
            return call.method == .post && (try? bodyJSON(call, kind: "Node"))?["metadata"]["name"].string == node
        case "Lease" where namespace == "kube-node-lease":
            if let name { return name == node }
            return call.method == .post && (try? bodyJSON(call, kind: "Lease"))?["metadata"]["name"].string == node
        case "Event":
            return true
        case "Pod":
            switch (call.method, name, sub) {
            case (.put, _?, "status"), (.patch, _?, "status"):
                return true  // the pod strategy refuses a pod bound elsewhere
            case (.post, nil, nil):
                guard let pod = try? bodyJSON(call, kind: "Pod") else { return false }
                return Self.isOwnMirrorPod(pod, node: node)
            case (.delete, let pod?, nil), (.post, let pod?, "eviction"):
                guard let namespace else { return false }
                guard let kv = try await store.get(Registry.pods.key(namespace: namespace, name: pod)) else {
                    return true  // the answer is 404 either way
                }
                return (try? JSON.parse(kv.value))?["spec"]["nodeName"].string == node
            default:
                return false
            }
        case "ServiceAccount":
            return call.method == .post && sub == "token" && name != nil  // TokenRequest checks the bound pod
        case "PersistentVolume":
            guard call.method == .patch || call.method == .put, let name, sub == nil,
                let kv = try await store.get(Registry.persistentVolumes.key(namespace: nil, name: name)),
                let volume = try? JSON.parse(kv.value)
            else { return false }
            return Self.isOwnDeletedLocalVolume(volume, node: node)
        default:
            return false
        }
    }

    /// A mirror pod a node may create: bound to it, marked as a mirror, owned by nothing but its Node,
    /// and reaching no Secret, ConfigMap or claim (it would be a way to read them), as NodeRestriction.
    static func isOwnMirrorPod(_ pod: JSON, node: String) -> Bool {
        guard pod["spec"]["nodeName"].string == node,
            !(pod["metadata"]["annotations"][StaticPodManifest.mirrorAnnotation].string ?? "").isEmpty
        else { return false }
        for owner in pod["metadata"]["ownerReferences"].array ?? [] {
            guard owner["kind"].string == "Node", owner["name"].string == node else { return false }
        }
        return PodReferences(pod).isEmpty
    }

    /// A local-path volume provisioned on `node` that is being deleted: its node removes the data and
    /// then the finalizer that waits for it.
    static func isOwnDeletedLocalVolume(_ volume: JSON, node: String) -> Bool {
        let annotations = volume["metadata"]["annotations"]
        return !volume["metadata"]["deletionTimestamp"].isNull
            && annotations["pv.kubernetes.io/provisioned-by"].string == "rancher.io/local-path"
            && annotations["local.path.provisioner/selected-node"].string == node
    }

    /// The name a field selector narrows a list or watch to (`metadata.name=X`, alone), if any.
    static func singleName(_ selector: String?) -> String? {
        guard let selector, !selector.contains(",") else { return nil }
        for form in ["metadata.name==", "metadata.name="] where selector.hasPrefix(form) {
            let name = String(selector.dropFirst(form.count))
            return name.isEmpty ? nil : name
        }
        return nil
    }

    /// Whether a pod bound to `node` references the object (a PersistentVolume: through a claim).
    /// Only the pods of the object's namespace are read (all of them for a PersistentVolume, which
    /// is rare): a node asks for these objects when it starts a pod, not in a loop.
    func nodeReferences(_ node: String, kind: String, namespace: String?, name: String) async throws -> Bool {
        if kind == "PersistentVolume" {
            let claims = Registry.find(group: "", version: "v1", plural: "persistentvolumeclaims")!
            for pod in try await podsBound(to: node, namespace: nil) {
                let ns = pod["metadata"]["namespace"].string ?? ""
                for claim in PodReferences(pod).claims {
                    guard let kv = try await store.get(claims.key(namespace: ns, name: claim)) else { continue }
                    if (try? JSON.parse(kv.value))?["spec"]["volumeName"].string == name { return true }
                }
            }
            return false
        }
        guard let namespace else { return false }
        for pod in try await podsBound(to: node, namespace: namespace) {
            let references = PodReferences(pod)
            switch kind {
            case "Secret" where references.secrets.contains(name): return true
            case "ConfigMap" where references.configMaps.contains(name): return true
            case "PersistentVolumeClaim" where references.claims.contains(name): return true
            default: continue
            }
        }
        return false
    }

    /// The pods of `namespace` (or every namespace) bound to `node`.
    func podsBound(to node: String, namespace: String?) async throws -> [JSON] {
        let page = try await store.list(
            prefix: Registry.pods.prefix(namespace: namespace), startAfter: nil, limit: 0, revision: nil)
        return page.items.compactMap { kv in
            guard let pod = try? JSON.parse(kv.value), pod["spec"]["nodeName"].string == node else { return nil }
            return pod
        }
    }
}

/// The Secrets, ConfigMaps and PersistentVolumeClaims a pod names: what its node needs to run it.
struct PodReferences: Equatable {
    var secrets: Set<String> = []
    var configMaps: Set<String> = []
    var claims: Set<String> = []
    var isEmpty: Bool { secrets.isEmpty && configMaps.isEmpty && claims.isEmpty }

    init(_ pod: JSON) {
        let spec = pod["spec"]
        for secret in spec["imagePullSecrets"].array ?? [] { insert(secret["name"], into: \.secrets) }
        for volume in spec["volumes"].array ?? [] {
            insert(volume["secret"]["secretName"], into: \.secrets)
            insert(volume["configMap"]["name"], into: \.configMaps)
            insert(volume["persistentVolumeClaim"]["claimName"], into: \.claims)
            if !volume["ephemeral"].isNull, let pod = pod["metadata"]["name"].string,
                let volumeName = volume["name"].string
            {
                claims.insert("\(pod)-\(volumeName)")  // the claim an ephemeral volume makes
            }
            for source in volume["projected"]["sources"].array ?? [] {
                insert(source["secret"]["name"], into: \.secrets)
                insert(source["configMap"]["name"], into: \.configMaps)
            }
            // Volume plugins' credentials: csi's nodePublishSecretRef, the secretRef of cephfs, rbd,
            // iscsi, flexVolume, scaleIO, storageos; azureFile's secretName.
            for (_, source) in volume.object ?? [:] {
                insert(source["secretRef"]["name"], into: \.secrets)
                insert(source["nodePublishSecretRef"]["name"], into: \.secrets)
            }
            insert(volume["azureFile"]["secretName"], into: \.secrets)
        }
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            for container in spec[list].array ?? [] {
                for env in container["env"].array ?? [] {
                    insert(env["valueFrom"]["secretKeyRef"]["name"], into: \.secrets)
                    insert(env["valueFrom"]["configMapKeyRef"]["name"], into: \.configMaps)
                }
                for from in container["envFrom"].array ?? [] {
                    insert(from["secretRef"]["name"], into: \.secrets)
                    insert(from["configMapRef"]["name"], into: \.configMaps)
                }
            }
        }
    }

    private mutating func insert(_ name: JSON, into set: WritableKeyPath<PodReferences, Set<String>>) {
        if let name = name.string, !name.isEmpty { self[keyPath: set].insert(name) }
    }
}

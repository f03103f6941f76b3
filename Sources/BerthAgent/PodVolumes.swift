import BerthCRIProtocol
import BerthControl
import BerthKube
import BerthOS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A pod's volumes as host directories the runtime bind-mounts: emptyDir (a directory of the pod's, a
/// tmpfs of `sizeLimit` for medium Memory), hostPath, configMap, secret and downwardAPI (their keys or
/// fields written as files), projected (configMap, secret and downwardAPI sources in one
/// directory), and persistentVolumeClaim (the bound volume's directory, ``claimPath``). With the pod's fsGroup, the volumes the agent writes belong to that group (setgid
/// directories, group read and write), as the kubelet's SetVolumeOwnership leaves them.
enum PodVolumes {
    /// What the downward API reads besides the pod itself.
    struct Facts {
        var podIPs: [String]
        var hostIPs: [String]
        var nodeName: String
        var allocatable: [String: Quantity]
        /// Whether memory-backed emptyDirs are mounted (tmpfs); a hollow node's are plain directories.
        var mountsMemory = true
        /// Whether volumes' directories on the node's disk are made (a hollow node has no disk of its own).
        var makesDirectories = true
    }

    /// The mounts of `container`, each volume prepared on first use.
    static func mounts(
        for container: CoreV1.Container, pod: CoreV1.Pod, root: String, client: any KubeClient, facts: Facts,
        tokens: ServiceAccountTokens
    )
        async throws -> [Runtime_V1_Mount]
    {
        let uid = pod.metadata.uid ?? ""
        let namespace = pod.metadata.namespace ?? "default"
        var mounts: [Runtime_V1_Mount] = []
        for mount in container.volumeMounts {
            guard let volume = pod.spec.volumes.first(where: { $0.name == mount.name }) else {
                throw PodConfigError("volume \(mount.name) of container \(container.name) is not defined in the pod")
            }
            var hostPath: String
            var readOnly = mount.readOnly ?? false
            // Whether the agent made this volume's contents just now (and so may give them to fsGroup).
            var written = false
            if let path = volume.hostPath?.path {
                hostPath = path
            } else if let claim = volume.persistentVolumeClaim {
                hostPath = try await claimPath(
                    claim.claimName, namespace: namespace, client: client, makesDirectories: facts.makesDirectories)
                readOnly = readOnly || claim.readOnly == true
            } else if volume.ephemeral != nil {
                // A generic ephemeral volume: the claim the ephemeral-volume controller made for this pod
                // (one of the same name made for something else is not this pod's, as the kubelet checks).
                let name = "\(pod.metadata.name ?? "")-\(volume.name)"
                if let claim = try await client.get(
                    CoreV1.PersistentVolumeClaim.self, namespace: namespace, name: name),
                    claim.controllerRef?.uid != pod.metadata.uid
                {
                    throw PodConfigError("error processing PVC \(namespace)/\(name): PVC was not created for pod")
                }
                hostPath = try await claimPath(
                    name, namespace: namespace, client: client, makesDirectories: facts.makesDirectories)
            } else if let emptyDir = volume.emptyDir {
                hostPath = "\(root)/pods/\(uid)/volumes/kubernetes.io~empty-dir/\(volume.name)"
                // Only a new one gets fsGroup ownership: once a container has used it, its contents are
                // the container's, and root must not follow what it left there.
                written = !FileManager.default.fileExists(atPath: hostPath)
                try FileManager.default.createDirectory(atPath: hostPath, withIntermediateDirectories: true)
                if emptyDir.medium == .memory && facts.mountsMemory {
                    try mountMemory(hostPath, sizeLimit: emptyDir.sizeLimit)
                }
                chmod(hostPath, 0o777)
            } else if let source = volume.downwardAPI {
                hostPath = "\(root)/pods/\(uid)/volumes/kubernetes.io~downward-api/\(volume.name)"
                let files = try downwardFiles(source.items, container: container, pod: pod, facts: facts)
                try write(
                    files.mapValues(\.bytes),
                    items: files.keys.sorted().map { CoreV1.KeyToPath(key: $0, path: $0, mode: files[$0]!.mode) },
                    mode: source.defaultMode ?? 0o644, to: hostPath, what: "the downward API")
                readOnly = true
                written = true
            } else if let source = volume.projected {
                hostPath = "\(root)/pods/\(uid)/volumes/kubernetes.io~projected/\(volume.name)"
                let files = try await projectedFiles(
                    source, container: container, pod: pod, client: client, facts: facts, tokens: tokens)
                try write(
                    files.mapValues(\.bytes),
                    items: files.keys.sorted().map { CoreV1.KeyToPath(key: $0, path: $0, mode: files[$0]!.mode) },
                    mode: source.defaultMode ?? 0o644, to: hostPath, what: "projected volume \(volume.name)")
                readOnly = true
                written = true
            } else if let source = volume.configMap {
                hostPath = "\(root)/pods/\(uid)/volumes/kubernetes.io~configmap/\(volume.name)"
                let name = source.name ?? ""
                guard let object = try await client.get(CoreV1.ConfigMap.self, namespace: namespace, name: name) else {
                    if source.optional == true {
                        try FileManager.default.createDirectory(atPath: hostPath, withIntermediateDirectories: true)
                        mounts.append(Self.mount(mount, hostPath: hostPath, readOnly: true))
                        continue
                    }
                    throw PodConfigError("configmap \"\(name)\" not found")
                }
                var data = object.data.mapValues { Array($0.utf8) }
                for (key, value) in object.binaryData { data[key] = value }
                try write(
                    data, items: source.items, mode: source.defaultMode ?? 0o644, to: hostPath,
                    what: "ConfigMap \(namespace)/\(name)")
                readOnly = true
                written = true
            } else if let source = volume.secret {
                hostPath = "\(root)/pods/\(uid)/volumes/kubernetes.io~secret/\(volume.name)"
                let name = source.secretName ?? ""
                guard let object = try await client.get(CoreV1.Secret.self, namespace: namespace, name: name) else {
                    if source.optional == true {
                        try FileManager.default.createDirectory(atPath: hostPath, withIntermediateDirectories: true)
                        mounts.append(Self.mount(mount, hostPath: hostPath, readOnly: true))
                        continue
                    }
                    throw PodConfigError("secret \"\(name)\" not found")
                }
                try write(
                    object.data, items: source.items, mode: source.defaultMode ?? 0o644, to: hostPath,
                    what: "Secret \(namespace)/\(name)")
                readOnly = true
                written = true
            } else {
                throw PodConfigError(
                    "volume \(volume.name): this volume type is not supported by the Berth node agent yet")
            }
            if written, let group = pod.spec.securityContext?.fsGroup {
                applyGroup(hostPath, group: gid_t(truncatingIfNeeded: group), readOnly: readOnly)
            }
            if let sub = mount.subPath, !sub.isEmpty {
                guard !sub.hasPrefix("/"), !sub.split(separator: "/").contains("..") else {
                    throw PodConfigError("subPath \(sub) of volume \(volume.name) must be a relative path inside it")
                }
                hostPath += "/" + sub
                if !FileManager.default.fileExists(atPath: hostPath) {
                    try FileManager.default.createDirectory(atPath: hostPath, withIntermediateDirectories: true)
                }
            }
            mounts.append(Self.mount(mount, hostPath: hostPath, readOnly: readOnly))
        }
        return mounts
    }

    /// A file the downward API or a projection writes: its bytes and its own mode, if any.
    struct File {
        var bytes: [UInt8]
        var mode: Int32?
    }

    /// The downward API's items: pod fields and container resources as files.
    static func downwardFiles(
        _ items: [CoreV1.DownwardAPIVolumeFile], container: CoreV1.Container, pod: CoreV1.Pod, facts: Facts
    ) throws -> [String: File] {
        var files: [String: File] = [:]
        for item in items {
            let value: String
            if let field = item.fieldRef {
                value = try PodConfigs.fieldValue(
                    field, pod: pod, podIPs: facts.podIPs, hostIPs: facts.hostIPs, nodeName: facts.nodeName)
            } else if let resource = item.resourceFieldRef {
                value = try PodConfigs.resourceValue(
                    resource, container: container, pod: pod, allocatable: facts.allocatable)
            } else {
                throw PodConfigError("downward API item \(item.path) has neither fieldRef nor resourceFieldRef")
            }
            files[item.path] = File(bytes: Array(value.utf8), mode: item.mode)
        }
        return files
    }

    /// A projected volume's sources in one directory (a later source's file replaces an earlier one's).
    static func projectedFiles(
        _ source: CoreV1.ProjectedVolumeSource, container: CoreV1.Container, pod: CoreV1.Pod, client: any KubeClient,
        facts: Facts, tokens: ServiceAccountTokens
    ) async throws -> [String: File] {
        let namespace = pod.metadata.namespace ?? "default"
        var files: [String: File] = [:]
        func add(_ data: [String: [UInt8]], items: [CoreV1.KeyToPath], what: String) throws {
            if items.isEmpty {
                for (key, bytes) in data { files[key] = File(bytes: bytes, mode: nil) }
                return
            }
            for item in items {
                guard let bytes = data[item.key] else {
                    throw PodConfigError("couldn't find key \(item.key) in \(what)")
                }
                files[item.path] = File(bytes: bytes, mode: item.mode)
            }
        }
        for projection in source.sources {
            if let reference = projection.configMap {
                let name = reference.name ?? ""
                guard let object = try await client.get(CoreV1.ConfigMap.self, namespace: namespace, name: name) else {
                    if reference.optional == true { continue }
                    throw PodConfigError("configmap \"\(name)\" not found")
                }
                var data = object.data.mapValues { Array($0.utf8) }
                for (key, value) in object.binaryData { data[key] = value }
                try add(data, items: reference.items, what: "ConfigMap \(namespace)/\(name)")
            } else if let reference = projection.secret {
                let name = reference.name ?? ""
                guard let object = try await client.get(CoreV1.Secret.self, namespace: namespace, name: name) else {
                    if reference.optional == true { continue }
                    throw PodConfigError("secret \"\(name)\" not found")
                }
                try add(object.data, items: reference.items, what: "Secret \(namespace)/\(name)")
            } else if let downward = projection.downwardAPI {
                for (path, file) in try downwardFiles(downward.items, container: container, pod: pod, facts: facts) {
                    files[path] = file
                }
            } else if let projection = projection.serviceAccountToken {
                let token = try await tokens.token(for: pod, projection, client: client)
                files[projection.path] = File(bytes: Array(token.utf8), mode: nil)
            } else {
                throw PodConfigError("a projected volume source of a kind the Berth node agent does not support yet")
            }
        }
        return files
    }

    /// A tmpfs on `path` (emptyDir medium Memory), `sizeLimit` its size; mounted once.
    static func mountMemory(_ path: String, sizeLimit: Quantity?) throws {
        if mountPoints().contains(path) { return }
        var options = "mode=0777"
        if let bytes = sizeLimit?.value, bytes > 0 { options += ",size=\(bytes)" }
        guard Glibc.mount("tmpfs", path, "tmpfs", UInt(MS_NOSUID | MS_NODEV), options) == 0 else {
            throw PodConfigError("mounting a tmpfs for emptyDir at \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Every mount the agent made under a pod's directory, undone (before the directory is removed).
    static func unmountAll(under directory: String) {
        let points = mountPoints().filter { $0.hasPrefix(directory + "/") }
        for point in points.sorted(by: { $0.count > $1.count }) { umount2(point, Int32(MNT_DETACH)) }
    }

    /// Every mount point of the agent's mount namespace. Read to the end with BerthOS: Foundation's
    /// String(contentsOfFile:) stops after the first read of a /proc file (its size says 0), and
    /// mountinfo is longer than one page on any busy host — mounts past the first page were missed.
    static func mountPoints() -> [String] {
        let mounts = (try? FileSystem.readString("/proc/self/mountinfo")) ?? ""
        return mounts.split(separator: "\n").compactMap { line in
            line.split(separator: " ").dropFirst(4).first.map(String.init)
        }
    }

    /// The pod's fsGroup owns the volume: group-owned files, group read (and write unless read-only),
    /// setgid directories so that new files join the group. Called only on what the agent has just
    /// made, before any container can have changed it, and on a volume's root (never through a subPath).
    static func applyGroup(_ path: String, group: gid_t, readOnly: Bool) {
        func apply(_ path: String) {
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFLNK else { return }
            _ = lchown(path, uid_t.max, group)
            let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
            var mode = info.st_mode & 0o7777
            mode |= readOnly ? 0o040 : 0o060
            if isDirectory { mode |= 0o2010 }
            // Never through a symlink (lstat above says this is none; only the agent has written here).
            _ = fchmodat(AT_FDCWD, path, mode, 0)
            if isDirectory, let entries = try? FileManager.default.contentsOfDirectory(atPath: path) {
                for entry in entries { apply(path + "/" + entry) }
            }
        }
        apply(path)
    }

    static func mount(_ mount: CoreV1.VolumeMount, hostPath: String, readOnly: Bool) -> Runtime_V1_Mount {
        var result = Runtime_V1_Mount()
        result.containerPath = mount.mountPath
        result.hostPath = hostPath
        result.readonly = readOnly
        switch mount.mountPropagation {
        case .hostToContainer?: result.propagation = .propagationHostToContainer
        case .bidirectional?: result.propagation = .propagationBidirectional
        default: result.propagation = .propagationPrivate
        }
        return result
    }

    /// Writes the keys (or only `items`, at their paths) into `directory`, replacing what was there. The
    /// directory itself stays (a container may have it bind-mounted already): each file is replaced by a
    /// rename, so a reader sees the old content or the new, and files no longer wanted are removed.
    static func write(
        _ data: [String: [UInt8]], items: [CoreV1.KeyToPath], mode: Int32, to directory: String, what: String
    ) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let entries: [(key: String, path: String, mode: Int32)] =
            items.isEmpty ? data.keys.sorted().map { ($0, $0, mode) } : items.map { ($0.key, $0.path, $0.mode ?? mode) }
        var wanted: Set<String> = []
        for entry in entries {
            guard let bytes = data[entry.key] else {
                throw PodConfigError("couldn't find key \(entry.key) in \(what)")
            }
            guard !entry.path.hasPrefix("/"), !entry.path.split(separator: "/").contains("..") else {
                throw PodConfigError("path \(entry.path) of key \(entry.key) must be relative and inside the volume")
            }
            let file = directory + "/" + entry.path
            try FileManager.default.createDirectory(
                atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let temporary = file + ".berth-new"
            try Data(bytes).write(to: URL(fileURLWithPath: temporary))
            chmod(temporary, mode_t(entry.mode & 0o777))
            guard rename(temporary, file) == 0 else {
                throw PodConfigError("writing \(entry.path) of \(what): \(String(cString: strerror(errno)))")
            }
            wanted.insert(entry.path)
        }
        // What an earlier write left that this one does not have (a key removed since).
        let enumerator = FileManager.default.enumerator(atPath: directory)
        var stale: [String] = []
        while let path = enumerator?.nextObject() as? String {
            var info = stat()
            guard lstat(directory + "/" + path, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR else { continue }
            if !wanted.contains(path) { stale.append(path) }
        }
        for path in stale { unlink(directory + "/" + path) }
    }
}

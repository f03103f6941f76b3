import BerthCRIProtocol
import BerthControl
import BerthKube
import Foundation

/// A pod's volumes as host directories the runtime bind-mounts: emptyDir (a directory of the pod's,
/// tmpfs for medium Memory), hostPath, and configMap and secret (their keys written as files).
enum PodVolumes {
    /// The mounts of `container`, each volume prepared on first use.
    static func mounts(for container: CoreV1.Container, pod: CoreV1.Pod, root: String, client: any KubeClient)
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
            if let path = volume.hostPath?.path {
                hostPath = path
            } else if volume.emptyDir != nil {
                hostPath = "\(root)/pods/\(uid)/volumes/kubernetes.io~empty-dir/\(volume.name)"
                try FileManager.default.createDirectory(atPath: hostPath, withIntermediateDirectories: true)
                chmod(hostPath, 0o777)
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
            } else {
                throw PodConfigError(
                    "volume \(volume.name): this volume type is not supported by the Berth node agent yet")
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

    /// Writes the keys (or only `items`, at their paths) into `directory`, replacing what was there.
    static func write(
        _ data: [String: [UInt8]], items: [CoreV1.KeyToPath], mode: Int32, to directory: String, what: String
    ) throws {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let entries: [(key: String, path: String, mode: Int32)] =
            items.isEmpty ? data.keys.sorted().map { ($0, $0, mode) } : items.map { ($0.key, $0.path, $0.mode ?? mode) }
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
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            chmod(file, mode_t(entry.mode & 0o777))
        }
    }
}

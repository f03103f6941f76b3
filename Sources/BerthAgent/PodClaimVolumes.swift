import BerthControl
import BerthKube
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A pod's persistentVolumeClaim volumes: the claim, the volume it is bound to, and that volume's
/// directory on this node (hostPath or local, as the kubelet's plugins for them mount it). A claim not
/// bound yet is an error the pod waits on (the kubelet's volume manager reports the same), not a crash:
/// its next sync tries again.
extension PodVolumes {
    /// The host directory behind claim `name`, made for a volume the local-path provisioner made
    /// (world-writable, as the provisioner's helper makes it) or a hostPath of type DirectoryOrCreate.
    static func claimPath(_ name: String, namespace: String, client: any KubeClient, makesDirectories: Bool)
        async throws -> String
    {
        let what = "error processing PVC \(namespace)/\(name)"
        guard let claim = try await client.get(CoreV1.PersistentVolumeClaim.self, namespace: namespace, name: name)
        else {
            throw PodConfigError(
                "\(what): failed to fetch PVC from API server: persistentvolumeclaims \"\(name)\" not found")
        }
        if claim.metadata.deletionTimestamp != nil { throw PodConfigError("\(what): PVC is being deleted") }
        guard let volumeName = claim.spec.volumeName, !volumeName.isEmpty, claim.status.phase == .claimBound else {
            throw PodConfigError("\(what): PVC is not bound")
        }
        guard let volume = try await client.get(CoreV1.PersistentVolume.self, namespace: nil, name: volumeName) else {
            throw PodConfigError(
                "\(what): failed to fetch PV \(volumeName) from API server: persistentvolumes \"\(volumeName)\" not found"
            )
        }
        if let local = volume.spec.local { return local.path }
        guard let hostPath = volume.spec.hostPath else {
            throw PodConfigError(
                "volume \(volumeName) of claim \(namespace)/\(name): this volume type is not supported by the Berth node agent yet"
            )
        }
        let provisioned = volume.metadata.annotations[VolumeMatching.Keys.provisionedBy] == "rancher.io/local-path"
        if makesDirectories && (provisioned || hostPath.type == CoreV1.HostPathType.directoryOrCreate)
            && !FileManager.default.fileExists(atPath: hostPath.path)
        {
            do {
                try FileManager.default.createDirectory(atPath: hostPath.path, withIntermediateDirectories: true)
            } catch {
                throw PodConfigError("\(what): making the directory \(hostPath.path) of volume \(volumeName): \(error)")
            }
            // The provisioner's helper runs `mkdir -m 0777 -p`: any container user may write there.
            chmod(hostPath.path, provisioned ? 0o777 : 0o755)
        }
        return hostPath.path
    }
}

import BerthImage
import BerthOCI
import BerthOS

extension Engine {
    /// docker's `diff` of a container: its overlay changes, less the mount points the runtime made
    /// (from the container's spec: /proc, /dev, /etc/hosts, volumes …), which are not its doing.
    /// nil for a container on a copy snapshot.
    public func changes(_ reference: String) throws(EngineError) -> [FileChange]? {
        let record = try lookup(reference)
        let spec = RecordFile.read(Spec.self, layout.container(record.id) + "/config.json")
        let mountPoints = Set((spec?.mounts ?? []).map { FileSystem.clean($0.destination) })
        do throws(ImageError) { return try images.changes(containerID: record.id, mountPoints: mountPoints) } catch {
            throw .image(error)
        }
    }
}

import BerthOCI
import BerthOS

/// What a bind's propagation asks of the host and of the container's root (moby `withMounts`): a
/// shared bind only propagates if its source is on a shared mount and the container's root is shared
/// too; a slave bind needs a shared or slave source and a slave (or shared) root.
enum BindPropagation {
    /// The mount holding a path, from mountinfo: its mount point and optional fields (`shared:5 master:2`).
    struct HostMount: Equatable {
        var mountPoint: String
        var optionalFields: [String]
        var isShared: Bool { optionalFields.contains { $0.hasPrefix("shared:") } }
        var isSlave: Bool { optionalFields.contains { $0.hasPrefix("master:") } }
    }

    /// `linux.rootfsPropagation` for these binds (nil: the runtime's default), after checking each
    /// shared or slave bind's source against the host's mount table (`mountInfo`, read only when needed).
    static func rootfsPropagation(for mounts: [Spec.Mount], mountInfo: () -> [UInt8]) throws(EngineError) -> String? {
        var table: [UInt8]?
        var result: String?
        for mount in mounts where mount.type == "bind" {
            let options = mount.options ?? []
            let shared = options.contains("shared") || options.contains("rshared")
            let slave = options.contains("slave") || options.contains("rslave")
            guard shared || slave, let source = mount.source else { continue }
            if table == nil { table = mountInfo() }
            let path = (try? FileSystem.realPath(source)) ?? source
            guard let host = hostMount(of: path, in: table!) else {
                throw .invalidArgument(
                    what: "mount \(mount.destination)", reason: "Can't find mount point of \(source)")
            }
            if shared {
                guard host.isShared else {
                    throw .invalidArgument(
                        what: "mount \(mount.destination)",
                        reason: "path \(source) is mounted on \(host.mountPoint) but it is not a shared mount")
                }
                result = "shared"
            } else {
                guard host.isShared || host.isSlave else {
                    throw .invalidArgument(
                        what: "mount \(mount.destination)",
                        reason: "path \(source) is mounted on \(host.mountPoint) but it is not a shared or slave mount")
                }
                if result == nil { result = "rslave" }
            }
        }
        return result
    }

    /// The mount whose mount point is the longest prefix of `path`.
    static func hostMount(of path: String, in mountInfo: [UInt8]) -> HostMount? {
        var best: HostMount?
        for line in mountInfo.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "))
            // id parent major:minor root mountpoint options [optional…] - type source superoptions
            guard fields.count > 6, let dash = fields.firstIndex(where: { $0.elementsEqual("-".utf8) }), dash >= 6
            else { continue }
            let mountPoint = MountInfo.unescape(fields[4])
            let contains = mountPoint == "/" || path == mountPoint || path.hasPrefix(mountPoint + "/")
            guard contains, mountPoint.count >= (best?.mountPoint.count ?? -1) else { continue }
            best = HostMount(
                mountPoint: mountPoint,
                optionalFields: fields[6..<dash].map { String(decoding: $0, as: UTF8.self) })
        }
        return best
    }
}

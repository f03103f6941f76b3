#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import CImageSys

extension ImageService {
    /// Commits a container's changes (the overlay upper directory of a container prepared with
    /// ``prepareRootfs(image:containerID:snapshotter:)``) as a new image: the base image's layers plus one
    /// layer holding the changes, overlay whiteouts turned back into OCI `.wh.` entries.
    public func commit(containerID: String, name: String) throws(ImageError) -> ImageRecord {
        let dir = "\(store.containersDirectory)/\(containerID)"
        guard let container = store.containers().first(where: { $0.id == containerID }) else {
            throw .notFound("container \(containerID)")
        }
        guard container.snapshotter == Snapshotter.overlay.rawValue else {
            throw .invalidManifest("container \(containerID)", "commit needs an overlay snapshot (this one is a copy)")
        }
        guard let base = store.image(container.image) else { throw .notFound("image \(container.image)") }
        let reference = try Reference(parsing: name)
        let tarPath = store.temporaryPath("commit")
        defer { unlink(tarPath) }
        do {
            let output = try FileDescriptor.open(tarPath, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
            let writer = TarWriter { bytes in try output.write(bytes) }
            var links: [UInt64: String] = [:]
            try archiveUpper(dir + "/upper", relative: "", writer: writer, links: &links)
            try writer.finish()
            output.close()
            let (descriptor, diffID) = try ingestLayer(tarPath)
            var config = try ImageCoding.decode(ImageConfig.self, try store.readBlob(base.config.digest))
            config.rootfs = ImageConfig.RootFS(diffIDs: base.diffIDs + [diffID])
            config.history =
                (config.history ?? []) + [
                    ImageConfig.History(
                        created: nil, created_by: "berth commit \(containerID)", empty_layer: nil, comment: nil)
                ]
            return try register(reference: reference, config: config, layers: base.layers + [descriptor])
        } catch { throw ImageError.wrap(error) }
    }

    /// Writes the upper directory as a layer: 0/0 character devices become `.wh.<name>`, opaque
    /// directories get `.wh..wh..opq`, hard links within the layer stay links.
    private nonisolated func archiveUpper(
        _ root: String, relative: String, writer: TarWriter, links: inout [UInt64: String]
    ) throws {
        let path = relative.isEmpty ? root : root + "/" + relative
        for name in try FileSystem.listDirectory(path) {
            let child = relative.isEmpty ? name : relative + "/" + name
            let full = root + "/" + child
            var info = stat()
            _ = try sys("lstat", full) { lstat(full, &info) }
            let mode = UInt32(info.st_mode & 0o7777)
            let (uid, gid, mtime) = (Int(info.st_uid), Int(info.st_gid), Int(info.st_mtim.tv_sec))
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                try writer.addEntry(child + "/", type: "5", mode: mode, uid: uid, gid: gid, mtime: mtime)
                var value = [UInt8](repeating: 0, count: 2)
                if lgetxattr(full, "trusted.overlay.opaque", &value, 2) == 1 && value[0] == UInt8(ascii: "y") {
                    try writer.addEntry(child + "/.wh..wh..opq", type: "0")
                }
                try archiveUpper(root, relative: child, writer: writer, links: &links)
            case S_IFCHR where info.st_rdev == 0:
                let parent = FileSystem.parent(of: "/" + child)
                try writer.addEntry(String((parent == "/" ? "" : parent + "/").dropFirst()) + ".wh." + name, type: "0")
            case S_IFREG:
                if info.st_nlink > 1, let first = links[UInt64(info.st_ino)] {
                    try writer.addEntry(child, type: "1", link: first, mode: mode, uid: uid, gid: gid, mtime: mtime)
                    continue
                }
                if info.st_nlink > 1 { links[UInt64(info.st_ino)] = child }
                let fd = try FileDescriptor.open(full, O_RDONLY | O_NOFOLLOW)
                try writer.addFile(
                    child, fd: fd.rawValue, size: Int64(info.st_size), mode: mode, uid: uid, gid: gid, mtime: mtime)
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: 4097)
                let n = readlink(full, &buffer, 4096)
                let target = String(decoding: buffer[0..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                try writer.addEntry(child, type: "2", link: target, mode: mode, uid: uid, gid: gid, mtime: mtime)
            case S_IFIFO:
                try writer.addEntry(child, type: "6", mode: mode, uid: uid, gid: gid, mtime: mtime)
            case S_IFCHR, S_IFBLK:
                let major = Int64((info.st_rdev >> 8) & 0xfff) | Int64((info.st_rdev >> 32) & ~0xfff)
                let minor = Int64(info.st_rdev & 0xff) | Int64((info.st_rdev >> 12) & ~0xff)
                try writer.addEntry(
                    child, type: (info.st_mode & S_IFMT) == S_IFCHR ? "3" : "4", mode: mode,
                    major: major, minor: minor & 0xffffffff, uid: uid, gid: gid, mtime: mtime)
            default:
                continue  // sockets are not archived
            }
        }
    }
}

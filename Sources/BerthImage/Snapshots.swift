#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// How a container's root filesystem is assembled from an image's layer snapshots.
public enum Snapshotter: String, Sendable, Codable {
    /// overlayfs: the snapshots as read-only lower directories, an upper/work pair per container.
    case overlay
    /// A private copy: every layer applied in order into the container's directory (no overlayfs).
    case copy

    /// overlay when running as root and `BERTH_SNAPSHOTTER` does not say `copy`.
    public static var preferred: Snapshotter {
        if let env = getenv("BERTH_SNAPSHOTTER"), String(cString: env) == "copy" { return .copy }
        return geteuid() == 0 ? .overlay : .copy
    }
}

extension ImageService {
    /// Prepares the root filesystem of container `containerID` from `image` and returns its path,
    /// `<root>/containers/<id>/rootfs`, ready to be an OCI bundle's `root.path`.
    ///
    /// - With overlayfs (root, the default) the path is an overlay mount: lower = the image's layer
    ///   snapshots (top layer first), upper and work in `<root>/containers/<id>/`. Writes go to upper.
    /// - Otherwise (or with `BERTH_SNAPSHOTTER=copy`) the layers are applied one after another into a
    ///   plain directory at the same path.
    /// The image stays referenced (not garbage-collected, `rmi` refuses) until ``removeRootfs(containerID:)``.
    /// Preparing an ID that already exists throws; call `removeRootfs` first.
    public nonisolated func prepareRootfs(image: String, containerID: String, snapshotter: Snapshotter = .preferred)
        throws(ImageError) -> String
    {
        guard let record = store.lookup(image) else { throw .notFound("image \(image)") }
        guard !containerID.isEmpty, !containerID.contains("/"), containerID != ".", containerID != ".." else {
            throw .invalidReference(containerID, "container ID must be a single path component")
        }
        let dir = "\(store.containersDirectory)/\(containerID)"
        let rootfs = dir + "/rootfs"
        if FileSystem.exists(dir) { throw .inUse("container directory \(dir)", "an existing container \(containerID)") }
        do {
            try store.withLock(exclusive: false) { () throws(ImageError) in
                try ensureSnapshots(layers: record.layers, diffIDs: record.diffIDs)
                do {
                    try FileSystem.makeDirectories(rootfs, mode: 0o755)
                    let container = ContentStore.ContainerRecord(
                        id: containerID, image: record.name, chainIDs: record.chainIDs,
                        snapshotter: snapshotter.rawValue)
                    try writeAtomically(dir + "/snapshot.json", try ImageCoding.encode(container, pretty: true))
                } catch let e as SystemCallError { throw .system(e) } catch {
                    throw .invalidManifest(record.name, "\(error)")
                }
            }
            var mode = snapshotter
            if mode == .overlay {
                try FileSystem.makeDirectories(dir + "/upper", mode: 0o755)
                try FileSystem.makeDirectories(dir + "/work", mode: 0o700)
                do {
                    try mountOverlay(dir, chainIDs: record.chainIDs)
                } catch {
                    // No overlayfs here (or not on this filesystem): fall back to a private copy.
                    logger.notice(
                        "overlay mount for container \(containerID) failed (\(error)); copying layers instead")
                    try FileSystem.removeTree(dir + "/upper")
                    try FileSystem.removeTree(dir + "/work")
                    mode = .copy
                    let container = ContentStore.ContainerRecord(
                        id: containerID, image: record.name, chainIDs: record.chainIDs,
                        snapshotter: Snapshotter.copy.rawValue)
                    try writeAtomically(dir + "/snapshot.json", try ImageCoding.encode(container, pretty: true))
                }
            }
            switch mode {
            case .overlay:
                break
            case .copy:
                let root = try Root(path: rootfs)
                for layer in record.layers {
                    _ = try unpackLocalBlob(
                        store: store, descriptor: layer, expectedDiffID: nil, into: root,
                        options: UnpackOptions(privileged: unpackOptions.privileged, whiteouts: .apply))
                }
            }
            return rootfs
        } catch {
            _ = try? removeRootfs(containerID: containerID)
            throw ImageError.wrap(error)
        }
    }

    /// Unmounts and deletes a container's root filesystem and its upper/work directories.
    public nonisolated func removeRootfs(containerID: String) throws(ImageError) {
        let dir = "\(store.containersDirectory)/\(containerID)"
        guard !containerID.isEmpty, !containerID.contains("/"), FileSystem.exists(dir) else { return }
        let rootfs = dir + "/rootfs"
        let record = store.containers().first { $0.id == containerID }
        if record?.snapshotter != Snapshotter.copy.rawValue,
            (try? FileSystemMagic.of(path: rootfs)) == FileSystemMagic.overlay
        {
            do { try Mount.unmount(rootfs, flags: Int32(MNT_DETACH)) } catch  where error.errno != EINVAL {
                throw .system(error)
            } catch {}
        }
        do { try FileSystem.removeTree(dir) } catch { throw .system(error) }
    }

    /// The overlay of a container directory: its snapshots (top layer first) under its upper and work.
    private nonisolated func mountOverlay(_ dir: String, chainIDs: [Digest]) throws(SystemCallError) {
        let lowers = chainIDs.reversed().map { store.snapshotPath($0) }
        if lowers.isEmpty {
            // An image without layers: an empty read-only lower.
            try FileSystem.makeDirectories(dir + "/empty", mode: 0o755)
        }
        let lowerdir = lowers.isEmpty ? dir + "/empty" : lowers.joined(separator: ":")
        try Mount.mount(
            source: "overlay", target: dir + "/rootfs", type: "overlay", flags: 0,
            data: "lowerdir=\(lowerdir),upperdir=\(dir)/upper,workdir=\(dir)/work,index=off")
    }

    /// Mounts a prepared container's overlay again if it is not mounted: mounts do not survive a reboot,
    /// while the container's upper directory (what it wrote) does. A copy snapshot needs nothing.
    public nonisolated func mountRootfs(containerID: String) throws(ImageError) {
        let dir = "\(store.containersDirectory)/\(containerID)"
        guard !containerID.isEmpty, !containerID.contains("/"),
            let bytes = try? FileSystem.readFile(dir + "/snapshot.json"),
            let record = try? ImageCoding.decode(ContentStore.ContainerRecord.self, bytes)
        else {
            throw .notFound("the root filesystem of container \(containerID)")
        }
        guard record.snapshotter == Snapshotter.overlay.rawValue,
            (try? FileSystemMagic.of(path: dir + "/rootfs")) != FileSystemMagic.overlay
        else { return }
        do { try mountOverlay(dir, chainIDs: record.chainIDs) } catch { throw .system(error) }
    }

    /// The root filesystem of a prepared container, if there is one.
    public nonisolated func rootfsPath(containerID: String) -> String? {
        let path = "\(store.containersDirectory)/\(containerID)/rootfs"
        return FileSystem.exists(path) ? path : nil
    }
}

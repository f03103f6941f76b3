#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// What a container changed in its root filesystem (docker's `diff`), read from its overlay upper
/// directory: an entry there is new when no lower layer has the path, modified when one does, and an
/// overlay whiteout (a 0/0 character device) is a deletion.
public struct FileChange: Sendable, Equatable {
    public enum Kind: Int, Sendable { case modified = 0, added = 1, deleted = 2 }
    public var path: String
    public var kind: Kind
}

extension ImageService {
    /// The changes of a container prepared from an image, sorted by path; nil for a copy snapshot
    /// (it has no upper directory to read them from).
    public nonisolated func changes(containerID: String) throws(ImageError) -> [FileChange]? {
        let dir = "\(store.containersDirectory)/\(containerID)"
        guard !containerID.isEmpty, !containerID.contains("/"),
              let bytes = try? FileSystem.readFile(dir + "/snapshot.json"),
              let record = try? JSON.decode(ContentStore.ContainerRecord.self, bytes) else {
            throw .notFound("the root filesystem of container \(containerID)")
        }
        guard record.snapshotter == Snapshotter.overlay.rawValue else { return nil }
        let lowers = record.chainIDs.reversed().map { store.snapshotPath($0) }
        var changes: [FileChange] = []
        func walk(_ relative: String) {
            let full = dir + "/upper" + relative
            guard let names = try? FileSystem.listDirectory(full) else { return }
            for name in names {
                let path = relative + "/" + name
                var info = stat()
                guard lstat(dir + "/upper" + path, &info) == 0 else { continue }
                if (info.st_mode & S_IFMT) == S_IFCHR && info.st_rdev == 0 {
                    changes.append(FileChange(path: path, kind: .deleted))
                    continue
                }
                let inLower = lowers.contains { lower in
                    var below = stat()
                    return lstat(lower + path, &below) == 0
                }
                changes.append(FileChange(path: path, kind: inLower ? .modified : .added))
                if (info.st_mode & S_IFMT) == S_IFDIR { walk(path) }
            }
        }
        walk("")
        return changes.sorted { $0.path < $1.path }
    }

    /// Bytes held by a container's upper directory (what removing it reclaims); 0 for a copy snapshot.
    public nonisolated func writableLayerSize(containerID: String) -> Int64 {
        guard !containerID.isEmpty, !containerID.contains("/") else { return 0 }
        var total: Int64 = 0
        func walk(_ path: String) {
            guard let names = try? FileSystem.listDirectory(path) else { return }
            for name in names {
                var info = stat()
                guard lstat(path + "/" + name, &info) == 0 else { continue }
                if (info.st_mode & S_IFMT) == S_IFDIR { walk(path + "/" + name) } else if (info.st_mode & S_IFMT) == S_IFREG { total += Int64(info.st_size) }
            }
        }
        walk("\(store.containersDirectory)/\(containerID)/upper")
        return total
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// What a container changed in its root filesystem (docker's `diff`), read from its overlay upper
/// directory with docker's rules: an entry there is new when no lower layer has the path, modified
/// when one does, and an overlay whiteout (a 0/0 character device) is a deletion. A directory a lower
/// layer has is reported only when its mode changed or something was added to it or deleted from it
/// (copy-up alone brings a parent into the upper directory).
public struct FileChange: Sendable, Equatable {
    public enum Kind: Int, Sendable { case modified = 0, added = 1, deleted = 2 }
    public var path: String
    public var kind: Kind
}

extension ImageService {
    /// The changes of a container prepared from an image, sorted by path; nil for a copy snapshot
    /// (it has no upper directory to read them from). `mountPoints` are left out where no lower
    /// layer has them: the runtime made them to mount on (docker keeps those in an init layer).
    public nonisolated func changes(containerID: String, mountPoints: Set<String> = []) throws(ImageError)
        -> [FileChange]?
    {
        let dir = "\(store.containersDirectory)/\(containerID)"
        guard !containerID.isEmpty, !containerID.contains("/"),
            let bytes = try? FileSystem.readFile(dir + "/snapshot.json"),
            let record = try? ImageCoding.decode(ContentStore.ContainerRecord.self, bytes)
        else {
            throw .notFound("the root filesystem of container \(containerID)")
        }
        guard record.snapshotter == Snapshotter.overlay.rawValue else { return nil }
        let lowers = record.chainIDs.reversed().map { store.snapshotPath($0) }
        func below(_ path: String) -> stat? {
            for lower in lowers {
                var info = stat()
                if lstat(lower + path, &info) == 0 { return info }
            }
            return nil
        }
        var changes: [String: FileChange.Kind] = [:]
        func walk(_ relative: String) {
            guard let names = try? FileSystem.listDirectory(dir + "/upper" + relative) else { return }
            for name in names {
                let path = relative + "/" + name
                var info = stat()
                guard lstat(dir + "/upper" + path, &info) == 0 else { continue }
                if (info.st_mode & S_IFMT) == S_IFCHR && info.st_rdev == 0 {
                    changes[path] = .deleted
                    continue
                }
                let lower = below(path)
                let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
                if lower == nil && mountPoints.contains(path) { continue }
                if let lower, isDirectory, (lower.st_mode & S_IFMT) == S_IFDIR {
                    if lower.st_mode != info.st_mode { changes[path] = .modified }
                } else {
                    changes[path] = lower == nil ? .added : .modified
                }
                if isDirectory { walk(path) }
            }
        }
        walk("")
        // The directory something was added to or deleted from changed too (docker's rule).
        for (path, kind) in changes where kind != .modified {
            let parent = FileSystem.parent(of: path)
            if parent != "/" && changes[parent] == nil { changes[parent] = .modified }
        }
        return changes.map { FileChange(path: $0.key, kind: $0.value) }.sorted { $0.path < $1.path }
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
                if (info.st_mode & S_IFMT) == S_IFDIR {
                    walk(path + "/" + name)
                } else if (info.st_mode & S_IFMT) == S_IFREG {
                    total += Int64(info.st_size)
                }
            }
        }
        walk("\(store.containersDirectory)/\(containerID)/upper")
        return total
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import CImageSys

/// How whiteouts in a layer are recorded.
public enum WhiteoutMode: Sendable {
    /// As overlayfs expects them (a 0/0 character device; `trusted.overlay.opaque=y`): needs root.
    case overlay
    /// Kept as the `.wh.` files of the archive (unprivileged snapshots; never mounted).
    case keep
    /// Applied: the named files are deleted from the target (flattening layers into one directory).
    case apply
}

public struct UnpackOptions: Sendable {
    /// chown to the archive's uid/gid and create device nodes; otherwise both are skipped (rootless).
    public var privileged: Bool
    public var whiteouts: WhiteoutMode
    /// Every entry owned by this uid/gid instead of the archive's (docker cp without -a: root's).
    public var owner: (uid: Int, gid: Int)?
    /// An entry may not replace a directory with a non-directory or the reverse (docker's
    /// `noOverwriteDirNonDir`): EISDIR or ENOTDIR instead of the tree going.
    public var noOverwriteDirNonDir = false

    public init(privileged: Bool = geteuid() == 0, whiteouts: WhiteoutMode? = nil, owner: (uid: Int, gid: Int)? = nil) {
        self.privileged = privileged
        self.whiteouts = whiteouts ?? (privileged ? .overlay : .keep)
        self.owner = owner
    }
}

/// Applies tar entries under a ``Root``: every path is resolved inside it (openat2 RESOLVE_IN_ROOT), the
/// final component is always handled with *at calls that never follow a symlink, and `..` is refused.
final class LayerUnpacker: TarSink {
    let root: Root
    let options: UnpackOptions
    let layerName: String
    /// Hard links whose target is not in this layer (it is in a lower one): resolved by the caller.
    private(set) var pendingLinks: [(path: String, target: String)] = []
    private(set) var skippedDevices = 0
    private var directoryTimes: [(String, timespec)] = []
    private var createdHere: Set<String> = []
    private var current: (fd: Int32, entry: TarEntry)?
    private var parentCache: (path: String, fd: FileDescriptor)?

    init(root: Root, options: UnpackOptions, layerName: String) {
        self.root = root
        self.options = options
        self.layerName = layerName
    }

    deinit {
        if let current { Glibc.close(current.fd) }
    }

    private func hostile(_ path: String, _ why: String) -> ImageError { .hostileLayer(layerName, path: path, why: why) }

    /// Cleans an archive path to components; refuses `..`.
    func components(_ path: String) throws -> [Substring] {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { throw hostile(path, "path escapes the layer root with ..") }
            parts.append(part)
        }
        return parts
    }

    private func parent(_ parts: ArraySlice<Substring>) throws -> FileDescriptor {
        let path = parts.joined(separator: "/")
        if let cache = parentCache, cache.path == path { return cache.fd }
        let fd = try makeDirectories(Array(parts), depth: 0)
        parentCache = (path, fd)
        return fd
    }

    /// mkdir -p inside the root. A component that is a symlink is followed inside the root (openat2
    /// RESOLVE_IN_ROOT); when its target is missing, the target is created inside the root, as containerd does.
    private func makeDirectories(_ parts: [Substring], depth: Int) throws -> FileDescriptor {
        guard depth < 40 else {
            throw SystemCallError(
                call: "openat2", errno: ELOOP, subject: root.path + "/" + parts.joined(separator: "/"))
        }
        var current = try root.open("", BERTH_O_PATH | O_DIRECTORY)
        var prefix = ""
        for component in parts {
            let name = String(component)
            let parentPrefix = prefix
            prefix = prefix.isEmpty ? name : prefix + "/" + name
            if mkdirat(current.rawValue, name, 0o755) != 0 && errno != EEXIST {
                throw SystemCallError(call: "mkdirat", errno: errno, subject: root.path + "/" + prefix)
            }
            var fd = openInRoot(prefix)
            if fd < 0 && errno == ENOENT {
                var buffer = [CChar](repeating: 0, count: 4097)
                let n = readlinkat(current.rawValue, name, &buffer, 4096)
                guard n > 0 else {
                    throw SystemCallError(call: "openat2", errno: ENOENT, subject: root.path + "/" + prefix)
                }
                let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let resolved = FileSystem.clean(target.hasPrefix("/") ? target : "/" + parentPrefix + "/" + target)
                _ = try makeDirectories(resolved.split(separator: "/"), depth: depth + 1)
                fd = openInRoot(prefix)
            }
            if fd < 0 { throw SystemCallError(call: "openat2", errno: errno, subject: root.path + "/" + prefix) }
            current = FileDescriptor(owning: fd)
        }
        return current
    }

    private func openInRoot(_ path: String) -> Int32 {
        berth_openat2(
            root.descriptor.rawValue, path, UInt64(BERTH_O_PATH | O_DIRECTORY | O_CLOEXEC), 0,
            ResolveFlags([.inRoot, .noMagicLinks]).rawValue)
    }

    func begin(_ entry: TarEntry) throws {
        let parts = try components(entry.path)
        guard let last = parts.last else { return }  // the root itself
        let name = String(last)
        let relative = parts.joined(separator: "/")
        if name.hasPrefix(".wh.") {
            try whiteout(parts: parts, name: name)
            return
        }
        let dir = try parent(parts.dropLast())
        let dfd = dir.rawValue
        if options.whiteouts == .apply { createdHere.insert(relative) }
        switch entry.kind {
        case .regular:
            var fd = berth_openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd < 0 && errno == EEXIST {
                try refuseKindChange(dfd, name, relative: relative, toDirectory: false)
                try removeEntry(dfd, name, keepDirectory: false)
                fd = berth_openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            }
            if fd < 0 { throw SystemCallError(call: "openat", errno: errno, subject: root.path + "/" + relative) }
            current = (fd, entry)
        case .directory:
            if mkdirat(dfd, name, 0o700) != 0 {
                guard errno == EEXIST else {
                    throw SystemCallError(call: "mkdirat", errno: errno, subject: root.path + "/" + relative)
                }
                if !isDirectory(dfd, name) {
                    try refuseKindChange(dfd, name, relative: relative, toDirectory: true)
                    try removeEntry(dfd, name, keepDirectory: false)
                    _ = try sys("mkdirat", root.path + "/" + relative) { mkdirat(dfd, name, 0o700) }
                }
            }
            let fd = try sys("openat", root.path + "/" + relative) {
                berth_openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
            }
            defer { Glibc.close(fd) }
            try applyMetadata(fd: fd, entry: entry)
            directoryTimes.append((relative, timespec(tv_sec: entry.mtimeSeconds, tv_nsec: entry.mtimeNanoseconds)))
        case .symlink:
            try replace(dfd, name) { symlinkat(entry.linkTarget, dfd, name) }
            if options.privileged {
                _ = try sys("fchownat", relative) {
                    fchownat(
                        dfd, name, uid_t(options.owner?.uid ?? entry.uid), gid_t(options.owner?.gid ?? entry.gid),
                        AT_SYMLINK_NOFOLLOW)
                }
            }
            var times = [
                timespec(tv_sec: entry.mtimeSeconds, tv_nsec: entry.mtimeNanoseconds),
                timespec(tv_sec: entry.mtimeSeconds, tv_nsec: entry.mtimeNanoseconds),
            ]
            _ = utimensat(dfd, name, &times, AT_SYMLINK_NOFOLLOW)
            parentCache = nil
        case .hardLink:
            let targetParts = try components(entry.linkTarget)
            guard !targetParts.isEmpty else { throw hostile(entry.path, "hard link to the root") }
            let target = targetParts.joined(separator: "/")
            let opened = berth_openat2(
                root.descriptor.rawValue, target, UInt64(BERTH_O_PATH | O_NOFOLLOW | O_CLOEXEC), 0,
                ResolveFlags([.inRoot, .noMagicLinks]).rawValue)
            if opened < 0 {
                let code = errno
                guard code == ENOENT else { throw SystemCallError(call: "openat2", errno: code, subject: target) }
                if options.whiteouts == .apply { throw hostile(entry.path, "hard link to missing \(entry.linkTarget)") }
                pendingLinks.append((relative, target))
                return
            }
            let source = FileDescriptor(owning: opened)
            var info = stat()
            _ = fstat(source.rawValue, &info)
            if (info.st_mode & S_IFMT) == S_IFDIR { throw hostile(entry.path, "hard link to a directory") }
            try replace(dfd, name) { linkat(AT_FDCWD, source.procPath, dfd, name, AT_SYMLINK_FOLLOW) }
        case .characterDevice, .blockDevice, .fifo:
            let type: mode_t = entry.kind == .fifo ? S_IFIFO : (entry.kind == .blockDevice ? S_IFBLK : S_IFCHR)
            if entry.kind != .fifo && !options.privileged { skippedDevices += 1; return }
            let device = makeDevice(entry.deviceMajor, entry.deviceMinor)
            try replace(dfd, name) { mknodat(dfd, name, type | mode_t(entry.mode & 0o7777), device) }
            let fd = try sys("openat", relative) { berth_openat(dfd, name, BERTH_O_PATH | O_NOFOLLOW | O_CLOEXEC, 0) }
            defer { Glibc.close(fd) }
            if options.privileged {
                _ = try sys("fchownat", relative) {
                    fchownat(
                        dfd, name, uid_t(options.owner?.uid ?? entry.uid), gid_t(options.owner?.gid ?? entry.gid),
                        AT_SYMLINK_NOFOLLOW)
                }
            }
            _ = try sys("fchmodat", relative) { fchmodat(dfd, name, mode_t(entry.mode & 0o7777), 0) }
            var times = [
                timespec(tv_sec: entry.mtimeSeconds, tv_nsec: entry.mtimeNanoseconds),
                timespec(tv_sec: entry.mtimeSeconds, tv_nsec: entry.mtimeNanoseconds),
            ]
            _ = utimensat(dfd, name, &times, AT_SYMLINK_NOFOLLOW)
        }
    }

    func data(_ bytes: UnsafeRawBufferPointer) throws {
        guard let current else { return }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(current.fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(call: "write", errno: errno, subject: root.path + "/" + current.entry.path)
            }
            offset += n
        }
    }

    func end() throws {
        guard let current else { return }
        self.current = nil
        defer { Glibc.close(current.fd) }
        try applyMetadata(fd: current.fd, entry: current.entry)
        var times = [
            timespec(tv_sec: current.entry.mtimeSeconds, tv_nsec: current.entry.mtimeNanoseconds),
            timespec(tv_sec: current.entry.mtimeSeconds, tv_nsec: current.entry.mtimeNanoseconds),
        ]
        _ = futimens(current.fd, &times)
    }

    /// Sets directory mtimes last (creating children changed them).
    func finish() throws {
        for (path, time) in directoryTimes.reversed() {
            guard let fd = try? root.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) else { continue }
            var times = [time, time]
            _ = futimens(fd.rawValue, &times)
        }
        directoryTimes.removeAll()
        parentCache = nil
    }

    private func applyMetadata(fd: Int32, entry: TarEntry) throws {
        if options.privileged {
            _ = try sys("fchown", entry.path) {
                fchown(fd, uid_t(options.owner?.uid ?? entry.uid), gid_t(options.owner?.gid ?? entry.gid))
            }
        }
        _ = try sys("fchmod", entry.path) { fchmod(fd, mode_t(entry.mode & 0o7777)) }
        for (key, value) in entry.xattrs {
            if !options.privileged && !key.hasPrefix("user.") { continue }
            let rc = value.withUnsafeBytes { fsetxattr(fd, key, $0.baseAddress, $0.count, 0) }
            if rc != 0 && errno != EOPNOTSUPP && errno != ENOTSUP && errno != EPERM {
                throw SystemCallError(call: "fsetxattr", errno: errno, subject: "\(entry.path) \(key)")
            }
        }
    }

    private func whiteout(parts: [Substring], name: String) throws {
        let dirParts = parts.dropLast()
        let dir = try parent(dirParts)
        let dfd = dir.rawValue
        if name == ".wh..wh..opq" {
            switch options.whiteouts {
            case .overlay:
                let fd = try sys("openat", dirParts.joined(separator: "/")) {
                    berth_openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
                }
                defer { Glibc.close(fd) }
                _ = try sys("fsetxattr", "trusted.overlay.opaque") {
                    fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0)
                }
            case .keep:
                try replace(dfd, name) {
                    berth_openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                }
            case .apply:
                // Everything below from lower layers goes; what this layer already put there stays.
                let prefix = dirParts.joined(separator: "/")
                for child in listDirectory(dfd) {
                    let childPath = prefix.isEmpty ? child : prefix + "/" + child
                    if !createdHere.contains(childPath) { try removeEntry(dfd, child, keepDirectory: false) }
                }
            }
            return
        }
        if name.hasPrefix(".wh..wh.") { return }  // aufs bookkeeping, not a whiteout
        let victim = String(name.dropFirst(4))
        guard !victim.isEmpty, victim != ".", victim != ".." else { throw hostile(name, "invalid whiteout") }
        switch options.whiteouts {
        case .overlay:
            try replace(dfd, victim) { mknodat(dfd, victim, S_IFCHR, 0) }
        case .keep:
            try replace(dfd, name) {
                berth_openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            }
        case .apply:
            try removeEntry(dfd, victim, keepDirectory: false)
        }
        parentCache = nil
    }

    /// Runs `create`; if the name exists, removes it (never following it) and tries once more.
    private func replace(_ dfd: Int32, _ name: String, _ create: () -> Int32) throws {
        var rc = create()
        if rc < 0 && errno == EEXIST {
            try refuseKindChange(dfd, name, relative: name, toDirectory: false)
            try removeEntry(dfd, name, keepDirectory: false)
            rc = create()
        }
        if rc < 0 { throw SystemCallError(call: "create", errno: errno, subject: "\(root.path): \(name)") }
        if rc > 0, options.whiteouts == .keep || name.hasPrefix(".wh.") == false { /* fd from openat */  }
        if rc > 2 { Glibc.close(rc) }
    }

    /// With ``UnpackOptions/noOverwriteDirNonDir``: fails when `name` exists as the other kind.
    private func refuseKindChange(_ dfd: Int32, _ name: String, relative: String, toDirectory: Bool) throws {
        guard options.noOverwriteDirNonDir else { return }
        var info = stat()
        guard fstatat(dfd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        let existingIsDirectory = (info.st_mode & S_IFMT) == S_IFDIR
        if existingIsDirectory && !toDirectory {
            throw SystemCallError(
                call: "cannot overwrite directory with non-directory", errno: EISDIR, subject: relative)
        }
        if !existingIsDirectory && toDirectory {
            throw SystemCallError(
                call: "cannot overwrite non-directory with directory", errno: ENOTDIR, subject: relative)
        }
    }

    private func isDirectory(_ dfd: Int32, _ name: String) -> Bool {
        var info = stat()
        return fstatat(dfd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Removes `name` under `dfd` recursively without following symlinks.
    func removeEntry(_ dfd: Int32, _ name: String, keepDirectory: Bool) throws {
        var info = stat()
        if fstatat(dfd, name, &info, AT_SYMLINK_NOFOLLOW) != 0 {
            if errno == ENOENT { return }
            throw SystemCallError(call: "fstatat", errno: errno, subject: name)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            let fd = try sys("openat", name) {
                berth_openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
            }
            defer { Glibc.close(fd) }
            for child in listDirectory(fd) { try removeEntry(fd, child, keepDirectory: false) }
            if !keepDirectory { _ = try sys("unlinkat", name) { unlinkat(dfd, name, AT_REMOVEDIR) } }
        } else {
            _ = try sys("unlinkat", name) { unlinkat(dfd, name, 0) }
        }
        parentCache = nil
    }

    private func listDirectory(_ fd: Int32) -> [String] {
        let copy = berth_openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        guard copy >= 0, let dir = fdopendir(copy) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private func makeDevice(_ major: UInt32, _ minor: UInt32) -> dev_t {
        let ma = UInt64(major), mi = UInt64(minor)
        return dev_t(((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff))
    }
}

/// Hashes a layer blob as it streams (digest and size of the compressed bytes, DiffID of the tar), and
/// optionally decompresses and unpacks it on the way.
final class LayerPipeline {
    private(set) var compressedHasher = DigestHasher()
    /// The DiffID hasher lives in a box so the background stage can own it without owning the pipeline.
    final class HasherBox: @unchecked Sendable { var hasher = DigestHasher() }
    private let diffBox = HasherBox()
    var diffHasher: DigestHasher { diffBox.hasher }
    private let decompressor: any Decompressor
    private let tar: TarReader?
    let unpacker: LayerUnpacker?

    private var stage: BackgroundStage?

    /// `threaded`: hash and unpack on a second thread while this one decompresses (compressed layers only).
    init(compression: Compression, unpacker: LayerUnpacker?, threaded: Bool = false) {
        self.decompressor = makeDecompressor(compression)
        self.unpacker = unpacker
        self.tar = unpacker.map { TarReader(sink: $0) }
        if threaded && compression != .none {
            let box = diffBox, tar = self.tar
            stage = BackgroundStage { plain in
                box.hasher.update(plain)
                try tar?.feed(plain)
            }
        }
    }

    deinit {
        // A stream abandoned half-way (an error upstream): stop the consumer thread.
        if let stage { try? stage.close() }
    }

    func feed(_ bytes: UnsafeRawBufferPointer) throws {
        compressedHasher.update(bytes)
        if let stage {
            try decompressor.feed(bytes) { try stage.push($0) }
            return
        }
        try decompressor.feed(bytes) { plain in
            diffBox.hasher.update(plain)
            try tar?.feed(plain)
        }
    }

    /// Ends the stream; returns (digest, size, diffID).
    func finish() throws -> (digest: Digest, size: Int64, diffID: Digest) {
        if let stage {
            self.stage = nil
            try stage.close()
        }
        try decompressor.finish()
        try tar?.finish()
        try unpacker?.finish()
        return (compressedHasher.finalize(), compressedHasher.count, diffBox.hasher.finalize())
    }
}

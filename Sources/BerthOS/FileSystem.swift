#if canImport(Glibc)
import Glibc
#endif
import CBerthShim

/// RESOLVE_* flags for openat2(2) (linux/openat2.h); not exported to Swift as constants.
public struct ResolveFlags: OptionSet, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let noXDev = ResolveFlags(rawValue: 0x01)
    public static let noMagicLinks = ResolveFlags(rawValue: 0x02)
    public static let noSymlinks = ResolveFlags(rawValue: 0x04)
    public static let beneath = ResolveFlags(rawValue: 0x08)
    /// Resolve as if `dirfd` were the root: `..` and absolute symlinks stay inside it.
    public static let inRoot = ResolveFlags(rawValue: 0x10)
}

/// Whole-file helpers and path resolution that never leaves a given root.
public enum FileSystem {
    public static func readFile(_ path: String) throws(SystemCallError) -> [UInt8] {
        try FileDescriptor.open(path, O_RDONLY).readAll()
    }

    public static func readString(_ path: String) throws(SystemCallError) -> String {
        String(decoding: try readFile(path), as: UTF8.self)
    }

    /// Writes a file in place (for kernel interfaces such as cgroup and /proc files: no temp file).
    public static func writeFile(_ path: String, _ contents: String, flags: Int32 = O_WRONLY | O_TRUNC)
        throws(SystemCallError)
    {
        let fd = try FileDescriptor.open(path, flags)
        try fd.write(contents)
    }

    /// Writes a file atomically: a temporary file beside it, fsync, rename.
    /// Without `durable` the data is not flushed before the rename: for files that mean nothing after a
    /// reboot (a runtime's state, which lives on /run like runc's).
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, durable: Bool = true)
        throws(SystemCallError)
    {
        let temporary = "\(path).tmp\(getpid())"
        do {
            let fd = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
            try fd.write(bytes)
            if durable { _ = try sys("fsync", temporary) { fsync(fd.rawValue) } }
        } catch {
            unlink(temporary)
            throw error
        }
        _ = try sys("rename", path) { rename(temporary, path) }
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemCallError) {
        if path.isEmpty || path == "/" { return }
        if mkdir(path, mode) == 0 { return }
        let code = errno
        if code == EEXIST { return }
        if code != ENOENT { throw SystemCallError(call: "mkdir", errno: code, subject: path) }
        try makeDirectories(parent(of: path), mode: mode)
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw SystemCallError(call: "mkdir", errno: errno, subject: path)
        }
    }

    /// rm -rf that never follows symlinks and never crosses into another mount.
    public static func removeTree(_ path: String) throws(SystemCallError) {
        var info = stat()
        if lstat(path, &info) != 0 {
            if errno == ENOENT { return }
            throw SystemCallError(call: "lstat", errno: errno, subject: path)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard let dir = opendir(path) else { throw SystemCallError(call: "opendir", errno: errno, subject: path) }
            var children: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." { children.append(name) }
            }
            closedir(dir)
            for child in children {
                var childInfo = stat()
                let childPath = path + "/" + child
                if lstat(childPath, &childInfo) == 0 && (childInfo.st_mode & S_IFMT) == S_IFDIR
                    && childInfo.st_dev != info.st_dev
                {
                    throw SystemCallError(call: "rmdir", errno: EBUSY, subject: childPath + " (a mount point)")
                }
                try removeTree(childPath)
            }
            _ = try sys("rmdir", path) { rmdir(path) }
        } else {
            _ = try sys("unlink", path) { unlink(path) }
        }
    }

    public static func listDirectory(_ path: String) throws(SystemCallError) -> [String] {
        guard let dir = opendir(path) else { throw SystemCallError(call: "opendir", errno: errno, subject: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Names of the sub-directories of `path`, sorted, from readdir's d_type (no stat per entry; an
    /// entry of unknown type is stat'ed). A cgroup directory holds dozens of files and few children.
    public static func listSubdirectories(_ path: String) throws(SystemCallError) -> [String] {
        guard let dir = opendir(path) else { throw SystemCallError(call: "opendir", errno: errno, subject: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let type = entry.pointee.d_type
            guard type == UInt8(DT_DIR) || type == UInt8(DT_UNKNOWN) else { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name == "." || name == ".." { continue }
            if type == UInt8(DT_UNKNOWN) && !isDirectory(path + "/" + name) { continue }
            names.append(name)
        }
        return names.sorted()
    }

    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// Joins path components with single slashes.
    public static func join(_ base: String, _ rest: String) -> String {
        if rest.isEmpty { return base }
        let trimmedBase = base.hasSuffix("/") ? String(base.dropLast()) : base
        let trimmedRest = rest.hasPrefix("/") ? String(rest.dropFirst()) : rest
        return trimmedBase + "/" + trimmedRest
    }

    /// The lexically cleaned form of an absolute or relative path (`.`/`..`/`//` folded; `..` stops at /).
    public static func clean(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    public static func realPath(_ path: String) throws(SystemCallError) -> String {
        guard let resolved = realpath(path, nil) else {
            throw SystemCallError(call: "realpath", errno: errno, subject: path)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// A directory that paths are resolved inside of, as the container's root will be: symlinks and `..`
/// can never lead out of it (openat2 RESOLVE_IN_ROOT), so an image cannot redirect a mount or a write.
public struct Root: Sendable {
    public let path: String
    public let descriptor: FileDescriptor

    public init(path: String) throws(SystemCallError) {
        self.path = path
        self.descriptor = try FileDescriptor.open(path, BERTH_O_PATH | O_DIRECTORY)
    }

    /// Opens `path` (relative to the root; a leading / is allowed) resolved inside the root.
    public func open(
        _ path: String, _ flags: Int32, mode: mode_t = 0,
        resolve: ResolveFlags = [.inRoot, .noMagicLinks]
    ) throws(SystemCallError) -> FileDescriptor {
        let relative = path.hasPrefix("/") ? String(path.drop(while: { $0 == "/" })) : path
        let fd = try sys("openat2", "\(self.path)/\(relative)") {
            berth_openat2(
                descriptor.rawValue, relative.isEmpty ? "." : relative,
                UInt64(flags | O_CLOEXEC), UInt64(mode), resolve.rawValue)
        }
        return FileDescriptor(owning: fd)
    }

    /// Creates every missing directory of `path` inside the root, each step resolved inside it, and
    /// returns an BERTH_O_PATH descriptor of the final directory.
    @discardableResult
    public func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemCallError) -> FileDescriptor {
        try makeDirectories(path, mode: mode, depth: 0)
    }

    private func makeDirectories(_ path: String, mode: mode_t, depth: Int) throws(SystemCallError) -> FileDescriptor {
        // Most targets exist already: one resolution inside the root instead of one per component.
        if let existing = try? open(path, BERTH_O_PATH | O_DIRECTORY) { return existing }
        var current = try open("", BERTH_O_PATH | O_DIRECTORY)
        var prefix = ""
        let components = FileSystem.clean("/" + path).split(separator: "/")
        for (index, component) in components.enumerated() {
            let parent = prefix
            prefix += "/" + component
            // mkdirat never follows a symlink named `component`; the reopen below resolves one inside the root.
            if mkdirat(current.rawValue, String(component), mode) != 0 && errno != EEXIST {
                throw SystemCallError(call: "mkdirat", errno: errno, subject: self.path + prefix)
            }
            do {
                current = try open(prefix, BERTH_O_PATH | O_DIRECTORY)
            } catch  where error.errno == ENOENT {
                // A dangling symlink (e.g. absolute, to a path the image lacks): create its target, inside
                // the root, as the kernel would resolve it there; then go on from it.
                var target = [CChar](repeating: 0, count: Int(PATH_MAX))
                let length = readlinkat(current.rawValue, String(component), &target, target.count - 1)
                guard length > 0, depth < 40 else { throw error }
                let link = String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let resolved = link.hasPrefix("/") ? link : parent + "/" + link
                let rest = components[(index + 1)...].joined(separator: "/")
                return try makeDirectories(FileSystem.clean(resolved + "/" + rest), mode: mode, depth: depth + 1)
            }
        }
        return current
    }

    /// Opens `path` inside the root, creating it as an empty file (a bind-mount target) when missing.
    public func makeFile(_ path: String, mode: mode_t = 0o644) throws(SystemCallError) -> FileDescriptor {
        try makeDirectories(FileSystem.parent(of: FileSystem.clean("/" + path)))
        return try open(path, O_RDONLY | O_CREAT | O_NOCTTY, mode: mode)
    }
}

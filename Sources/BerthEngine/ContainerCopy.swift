#if canImport(Glibc)
import Glibc
#endif
import BerthImage
import BerthOS
import CBerthShim

/// `docker cp` both ways, contained in the container's filesystem: every path inside the container is
/// resolved in its root (openat2 RESOLVE_IN_ROOT) and used through the descriptor that resolution gave,
/// and what goes in is unpacked by the image layer's unpacker, which never follows a symlink out. A
/// hostile symlink in the container (`/etc -> /host-etc`, `x -> ../../..`) never reads or writes
/// outside it. Paths under a volume or bind mount go to that mount's source, as they would in the
/// container.
public struct ContainerCopy: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    /// Where a container path lives on the host: the root it must stay in, and the path inside that root.
    struct Location {
        var root: String
        var path: String
    }

    func locate(_ record: ContainerRecord, _ containerPath: String) throws(EngineError) -> Location {
        guard containerPath.hasPrefix("/") || !containerPath.isEmpty else {
            throw .invalidArgument(what: "path", reason: "empty path")
        }
        let clean = FileSystem.clean(containerPath.hasPrefix("/") ? containerPath : "/" + containerPath)
        // The deepest mount whose target contains the path wins, as in the container's mount table.
        let mounts = record.configuration.mounts.enumerated().filter { $0.element.type != .tmpfs }
            .sorted { $0.element.target.count > $1.element.target.count }
        for (_, mount) in mounts where clean == mount.target || clean.hasPrefix(mount.target + "/") {
            let source = mount.type == .volume ? engine.volumes.dataPath(mount.source) : mount.source
            let rest = String(clean.dropFirst(mount.target.count))
            return Location(root: source, path: rest.isEmpty ? "/" : rest)
        }
        return Location(root: engine.layout.container(record.id) + "/rootfs", path: clean)
    }

    /// Copies `containerPath` out to `hostPath` (docker's rules: into an existing directory under its
    /// own name, else to that name). `followLink` (-L) copies what a symlink points at, inside the root.
    public func copyOut(_ reference: String, from containerPath: String, to hostPath: String, followLink: Bool = false)
        throws(EngineError)
    {
        let record = try engine.lookup(reference)
        let location = try locate(record, containerPath)
        let source = try open(location, containerPath: containerPath, record: record, followLink: followLink)
        if hostPath == "-" { return try archive(record, containerPath, location: location, to: STDOUT_FILENO) }
        let name = containerPath.split(separator: "/").last.map(String.init) ?? "root"
        var destination = hostPath
        if FileSystem.isDirectory(hostPath) && !hostPath.hasSuffix("/.") {
            destination = FileSystem.join(hostPath, name)
        }
        let parent = FileSystem.parent(of: destination)
        guard FileSystem.isDirectory(parent) else {
            throw .invalidArgument(what: "destination", reason: "destination directory \"\(parent)\" must exist")
        }
        // Through our descriptor (by pid: cp's /proc/self is its own), so no component is resolved again.
        let through = "/proc/\(getpid())/fd/\(source.rawValue)"
        if isSymlink(source) {
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = readlinkat(source.rawValue, "", &buffer, buffer.count - 1)
            guard n >= 0 else {
                throw .system(SystemCallError(call: "readlinkat", errno: errno, subject: containerPath), context: "cp")
            }
            unlink(destination)
            let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard symlink(target, destination) == 0 else {
                throw .system(SystemCallError(call: "symlink", errno: errno, subject: destination), context: "cp")
            }
            return
        }
        try run("/bin/cp", ["cp", "-a", "-T", "--", through, destination], what: containerPath)
    }

    /// A tar stream of `containerPath` (named by its last component) written to `output`: docker's
    /// `GET /containers/{id}/archive` and `cp CONTAINER:PATH -`.
    public func archive(_ reference: String, _ containerPath: String, to output: Int32) throws(EngineError) {
        let record = try engine.lookup(reference)
        try archive(record, containerPath, location: try locate(record, containerPath), to: output)
    }

    private func archive(_ record: ContainerRecord, _ containerPath: String, location: Location, to output: Int32)
        throws(EngineError)
    {
        let entry = try open(location, containerPath: containerPath, record: record, followLink: false)
        // The entry's parent, resolved in the root, is tar's directory, so only the last component is
        // looked up (and not followed). `DIR/.` is the directory's contents: entries named `./…`, as
        // docker's (the client asked for them under the name `.`).
        let contents = Self.namesContents(containerPath) && isDirectory(entry)
        let parentLocation = Location(
            root: location.root, path: contents ? location.path : FileSystem.parent(of: location.path))
        let parent = try open(parentLocation, containerPath: containerPath, record: record, followLink: true)
        let name = contents ? "." : location.path.split(separator: "/").last.map(String.init) ?? "."
        do {
            let devnull = try FileDescriptor.open("/dev/null", O_WRONLY)
            let pid = try ChildProcess.spawn(
                "/bin/tar",
                arguments: [
                    "tar", "--numeric-owner", "-C", "/proc/\(getpid())/fd/\(parent.rawValue)", "-cf", "-", name,
                ],
                environment: ["PATH=/usr/bin:/bin"],
                fileDescriptors: [1: output, 2: output == STDOUT_FILENO ? 2 : devnull.rawValue])
            guard try ChildProcess.wait(pid).succeeded else {
                throw EngineError.other("tar of \(containerPath) failed")
            }
        } catch let error as EngineError { throw error } catch { throw .other("tar of \(containerPath): \(error)") }
    }

    /// What docker's `X-Docker-Container-Path-Stat` says of a path: the entry itself (a symlink is not
    /// followed), nil when there is none.
    public struct PathStat: Sendable {
        public var name: String
        public var size: Int64
        /// The `st_mode` bits (type and permissions).
        public var mode: UInt32
        public var modifiedSeconds: Int
        public var modifiedNanoseconds: Int
        /// A symlink's target, as stored.
        public var linkTarget: String
    }

    public func pathStat(_ reference: String, _ containerPath: String) throws(EngineError) -> PathStat? {
        let record = try engine.lookup(reference)
        let location = try locate(record, containerPath)
        guard let fd = try? open(location, containerPath: containerPath, record: record, followLink: false) else {
            return nil
        }
        var info = Glibc.stat()
        guard fstat(fd.rawValue, &info) == 0 else { return nil }
        var target = ""
        if (info.st_mode & S_IFMT) == S_IFLNK {
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = readlinkat(fd.rawValue, "", &buffer, buffer.count - 1)
            if n > 0 { target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        }
        let name =
            Self.namesContents(containerPath) ? "." : location.path.split(separator: "/").last.map(String.init) ?? "/"
        return PathStat(
            name: name, size: Int64(info.st_size), mode: UInt32(info.st_mode),
            modifiedSeconds: Int(info.st_mtim.tv_sec),
            modifiedNanoseconds: Int(info.st_mtim.tv_nsec), linkTarget: target)
    }

    /// `DIR/.` (or `.`): docker's way of naming a directory's contents rather than the directory.
    static func namesContents(_ containerPath: String) -> Bool {
        containerPath == "." || containerPath.hasSuffix("/.")
    }

    /// Copies `hostPath` into the container at `containerPath`: into it when it is a directory there (or
    /// ends with /), else as that name. Owned by root unless `archive` (-a) keeps the source's owners.
    public func copyIn(_ reference: String, from hostPath: String, to containerPath: String, archive: Bool = false)
        throws(EngineError)
    {
        let record = try engine.lookup(reference)
        if hostPath == "-" { return try copyInArchive(record, from: STDIN_FILENO, to: containerPath) }
        guard FileSystem.exists(hostPath) else {
            throw .invalidArgument(what: "source", reason: "could not find the file \(hostPath) on the host")
        }
        let target = try locate(record, containerPath)
        var directory = target.path
        var name = hostPath.split(separator: "/").last.map(String.init) ?? hostPath
        let isDirectoryThere =
            (try? open(target, containerPath: containerPath, record: record, followLink: true)).map(isDirectory)
            ?? false
        if !(isDirectoryThere || containerPath.hasSuffix("/")) {
            directory = FileSystem.parent(of: target.path)
            name = target.path.split(separator: "/").last.map(String.init) ?? name
            let parentLocation = Location(root: target.root, path: directory)
            guard
                (try? open(
                    parentLocation, containerPath: FileSystem.parent(of: containerPath), record: record,
                    followLink: true)).map(isDirectory) == true
            else {
                throw .invalidArgument(
                    what: "destination",
                    reason: "Could not find the file \(FileSystem.parent(of: containerPath)) in container \(reference)")
            }
        }
        // A tar of the source with its top entry renamed to where it goes, unpacked in the root.
        let inside = directory == "/" ? name : String(directory.dropFirst()) + "/" + name
        let sourceParent = FileSystem.parent(of: hostPath)
        let sourceName = hostPath.split(separator: "/").last.map(String.init) ?? hostPath
        let tarFile = engine.layout.run + "/cp-\(ContainerNames.randomID().prefix(16)).tar"
        defer { unlink(tarFile) }
        var arguments = [
            "tar", "--numeric-owner", "-cf", tarFile, "-C", sourceParent,
            // Names and hard-link targets renamed; symbolic-link targets left as they are (S).
            "--transform", "s|^\(Self.patternEscape(sourceName))|\(Self.replacementEscape(inside))\\1|S",
        ]
        if !archive { arguments += ["--owner=0", "--group=0"] }
        arguments.append(sourceName)
        try run("/bin/tar", arguments, what: hostPath)
        do {
            _ = try LayerFiles.apply(
                tarFile, to: target.root, options: UnpackOptions(privileged: true, whiteouts: .keep))
        } catch {
            throw .other("copying \(hostPath) into \(reference):\(containerPath): \(error)")
        }
    }

    /// `cp - CONTAINER:DIR`: a tar stream (from stdin) unpacked into a directory of the container, as
    /// docker does: the destination must be an existing directory, the archive's owners are kept, and
    /// every entry stays inside that directory (the unpacker's root is the directory itself, reached
    /// through the descriptor its in-root resolution gave).
    func copyInArchive(_ record: ContainerRecord, from input: Int32, to containerPath: String) throws(EngineError) {
        let target = try locate(record, containerPath)
        let directory = try open(target, containerPath: containerPath, record: record, followLink: true)
        guard isDirectory(directory) else {
            throw .invalidArgument(
                what: "destination", reason: "destination \"\(record.name):\(containerPath)\" must be a directory")
        }
        // The unpacker reads a file: the stream is spooled first (docker buffers it in the daemon too).
        let tarFile = engine.layout.run + "/cp-\(ContainerNames.randomID().prefix(16)).tar"
        defer { unlink(tarFile) }
        do throws(SystemCallError) {
            let out = try FileDescriptor.open(tarFile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o600)
            try copyContents(from: input, to: out.rawValue)
        } catch { throw .system(error, context: "reading the archive from standard input") }
        try extract(record, archive: tarFile, into: containerPath, directory: directory)
    }

    /// docker's `PUT /containers/{id}/archive`: the tar file `archive` unpacked into the directory
    /// `containerPath`, every entry kept inside it (see ``copyInArchive``). Without `keepOwners`
    /// (docker's `copyUIDGID`) what is unpacked belongs to root, as with docker.
    public func extractArchive(
        _ reference: String, archive tarFile: String, into containerPath: String, keepOwners: Bool = true,
        noOverwriteDirNonDir: Bool = false
    ) throws(EngineError) {
        let record = try engine.lookup(reference)
        let target = try locate(record, containerPath)
        let directory = try open(target, containerPath: containerPath, record: record, followLink: true)
        guard isDirectory(directory) else {
            throw .invalidArgument(what: "destination", reason: "extraction point is not a directory")
        }
        try extract(
            record, archive: tarFile, into: containerPath, directory: directory, keepOwners: keepOwners,
            noOverwriteDirNonDir: noOverwriteDirNonDir)
    }

    private func extract(
        _ record: ContainerRecord, archive tarFile: String, into containerPath: String, directory: FileDescriptor,
        keepOwners: Bool = true, noOverwriteDirNonDir: Bool = false
    ) throws(EngineError) {
        do {
            var options = UnpackOptions(privileged: true, whiteouts: .keep, owner: keepOwners ? nil : (0, 0))
            options.noOverwriteDirNonDir = noOverwriteDirNonDir
            _ = try LayerFiles.apply(tarFile, to: "/proc/\(getpid())/fd/\(directory.rawValue)", options: options)
        } catch {
            throw .other("copying the archive into \(record.name):\(containerPath): \(error)")
        }
    }

    private func open(_ location: Location, containerPath: String, record: ContainerRecord, followLink: Bool)
        throws(EngineError) -> FileDescriptor
    {
        do {
            let root = try Root(path: location.root)
            return try root.open(location.path, BERTH_O_PATH | O_CLOEXEC | (followLink ? 0 : O_NOFOLLOW))
        } catch {
            throw .invalidArgument(
                what: "path", reason: "Could not find the file \(containerPath) in container \(record.name)")
        }
    }

    private func isSymlink(_ fd: FileDescriptor) -> Bool {
        var info = stat()
        return fstat(fd.rawValue, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }

    private func isDirectory(_ fd: FileDescriptor) -> Bool {
        var info = stat()
        return fstat(fd.rawValue, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private func run(_ program: String, _ arguments: [String], what: String) throws(EngineError) {
        let output: ChildProcess.Output
        do { output = try ChildProcess.run(program, arguments: arguments, environment: ["PATH=/usr/bin:/bin"]) } catch {
            throw .system(error, context: "copying \(what)")
        }
        guard output.status.succeeded else {
            throw .other("copying \(what): \(output.stderrText.trimmingCharacters(in: " \n"))")
        }
    }

    /// For tar's --transform: a literal in the (basic) regular expression, the separator escaped.
    static func patternEscape(_ text: String) -> String {
        var out = ""
        for c in text {
            if "|\\.[]*^$".contains(c) { out.append("\\") }
            out.append(c)
        }
        // Only the entry itself and what is below it: `name` or `name/…`, never `nameX`.
        return out + "\\(/\\|$\\)"
    }

    /// For tar's --transform: a literal replacement (`\`, `&` and the separator escaped).
    static func replacementEscape(_ text: String) -> String {
        var out = ""
        for c in text {
            if "|\\&".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthOS
import FoundationEssentials

/// `docker cp`'s endpoints on `/containers/{id}/archive`: `HEAD` (the path's stat), `GET` (a tar of
/// the path) and `PUT` (a tar unpacked into a directory). The engine's ``ContainerCopy`` resolves every
/// path inside the container's root and unpacks with the image layer's unpacker, so neither `../` names
/// nor symlinks in the archive or the container reach outside it.
extension DockerAPI {
    /// docker's `X-Docker-Container-Path-Stat`: base64 of this JSON; `mode` is Go's `os.FileMode`.
    struct PathStatHeader: Encodable {
        var name: String
        var size: Int64
        var mode: UInt32
        var mtime: String
        var linkTarget: String
    }

    func statPath(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let (_, header) = try pathStatHeader(reference, request)
        response.send(.ok, headers: [("X-Docker-Container-Path-Stat", header)])
    }

    func getArchive(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let (path, header) = try pathStatHeader(reference, request)
        let record = try engine.lookup(reference)
        response.begin(contentType: "application/x-tar", headers: [("X-Docker-Container-Path-Stat", header)])
        let copy = ContainerCopy(engine: engine)
        let id = record.id
        try streamOutput(of: "archive of \(path)", to: response) { fd throws(EngineError) in
            try copy.archive(id, path, to: fd)
        }
        response.finish()
    }

    func putArchive(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        guard let path = request.value("path"), !path.isEmpty else {
            throw DockerAPIError.badRequest("path is required")
        }
        let record = try engine.lookup(reference)
        let copy = ContainerCopy(engine: engine)
        guard let stat = try copy.pathStat(record.id, path) else {
            throw DockerAPIError.notFound("Could not find the file \(path) in container \(record.name)")
        }
        // dockerd extracts into a directory only (the CLI names the parent of what it copies).
        if stat.mode & S_IFMT == S_IFLNK {
            // A link to a directory is followed by the extraction; anything else is refused by it.
        } else if stat.mode & S_IFMT != S_IFDIR {
            throw DockerAPIError.badRequest("extraction point is not a directory")
        }
        if record.configuration.readonlyRootfs
            && !record.configuration.mounts.contains(where: { path.hasPrefix($0.target) })
        {
            throw DockerAPIError(.forbidden, "container rootfs is marked read-only")
        }
        // The connection wrote the body to a file as it came (any size); a body read whole (a
        // request built in-process) is written out the same way.
        let tarFile: String
        if let upload = request.upload {
            tarFile = upload
        } else {
            let spooled = try makeUploadFile()
            tarFile = spooled.path
            try spooled.file.write(request.body)
        }
        defer { unlink(tarFile) }
        try copy.extractArchive(
            record.id, archive: tarFile, into: path, keepOwners: request.flag("copyUIDGID"),
            noOverwriteDirNonDir: request.flag("noOverwriteDirNonDir"))
        response.send(.ok)
    }

    private func pathStatHeader(_ reference: String, _ request: APIRequest) throws -> (String, String) {
        guard let path = request.value("path"), !path.isEmpty else {
            throw DockerAPIError.badRequest("path is required")
        }
        let record = try engine.lookup(reference)
        guard let stat = try ContainerCopy(engine: engine).pathStat(record.id, path) else {
            throw DockerAPIError.notFound("Could not find the file \(path) in container \(record.name)")
        }
        var linkTarget = stat.linkTarget
        // docker reports a relative link's target as the absolute path it names in the container.
        if !linkTarget.isEmpty && !linkTarget.hasPrefix("/") {
            let parent = FileSystem.parent(of: path.hasPrefix("/") ? path : "/" + path)
            linkTarget = FileSystem.clean(parent + "/" + linkTarget)
        }
        let header = PathStatHeader(
            name: stat.name, size: stat.size, mode: Self.goFileMode(stat.mode),
            mtime: Timestamp.format(seconds: stat.modifiedSeconds, nanoseconds: stat.modifiedNanoseconds),
            linkTarget: linkTarget)
        return (path, Data(JSONBody.encode(header)).base64EncodedString())
    }

    /// `st_mode` as Go's `os.FileMode`: the permission bits, and the type and special bits moved up.
    static func goFileMode(_ mode: UInt32) -> UInt32 {
        var result = mode & 0o777
        switch mode & S_IFMT {
        case S_IFDIR: result |= 1 << 31
        case S_IFLNK: result |= 1 << 27
        case S_IFIFO: result |= 1 << 25
        case S_IFSOCK: result |= 1 << 24
        case S_IFBLK: result |= 1 << 26
        case S_IFCHR: result |= 1 << 26 | 1 << 21
        default: break
        }
        if mode & S_ISUID != 0 { result |= 1 << 23 }
        if mode & S_ISGID != 0 { result |= 1 << 22 }
        if mode & S_ISVTX != 0 { result |= 1 << 20 }
        return result
    }

    /// Runs `produce` on a thread of its own with the writing end of a pipe, relaying what it writes to
    /// the client until it closes (a slow client slows the producer; nothing is held whole in memory).
    func streamOutput(
        of what: String, to response: ResponseWriter, _ produce: @escaping @Sendable (Int32) throws(EngineError) -> Void
    ) throws {
        let pipe = try Pipe()
        BlockingThread.start(name: "docker-stream") {
            defer { pipe.writing.close() }
            do { try produce(pipe.writing.rawValue) } catch {
                self.logger.notice("\(what): \(error)")
            }
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var clientThere = true
        while true {
            let n = buffer.withUnsafeMutableBytes { read(pipe.reading.rawValue, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            // A client that left: the rest is read and dropped so the producer ends.
            if clientThere { do { try response.write(Array(buffer[0..<n])) } catch { clientThere = false } }
        }
    }
}

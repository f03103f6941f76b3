#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import CImageSys
import FoundationEssentials

/// What Berth remembers about one named image: the manifest it resolved to and what that references.
public struct ImageRecord: Codable, Sendable, Hashable {
    /// Fully qualified reference, e.g. `127.0.0.1:5000/demo/busybox:latest`.
    public var name: String
    /// Digest of the image manifest (the image ID docker shows is the config digest).
    public var manifestDigest: Digest
    public var manifestMediaType: String
    /// The index / manifest list it was selected from, if any.
    public var indexDigest: Digest?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var diffIDs: [Digest]
    public var platform: Platform
    /// Seconds since 1970 when Berth stored it.
    public var stored: Int

    public var chainIDs: [Digest] { ImageConfig.chainIDs(diffIDs) }
    /// Compressed size of config and layers.
    public var size: Int64 { config.size + layers.reduce(0) { $0 + $1.size } }
    /// Every blob this image keeps alive.
    public var blobs: [Digest] {
        [manifestDigest, config.digest] + layers.map(\.digest) + (indexDigest.map { [$0] } ?? [])
    }
}

/// The content-addressed store under Berth's data root:
///
/// ```
/// <root>/blobs/sha256/<hex>     blobs (manifests, configs, layers), written temp → fsync → rename
/// <root>/ingest/                 downloads in progress (unique names; removed on failure or by gc)
/// <root>/images/<name>.json      one record per name, rewritten atomically
/// <root>/snapshots/<chain hex>   one unpacked read-only directory per layer, keyed by chain ID
/// <root>/containers/<id>/        upper, work and rootfs of a container prepared from an image
/// <root>/lock                    flock: shared while pulling/importing, exclusive for gc and check
/// ```
/// Reference counts are derived from the records (and containers) rather than stored, so they cannot drift.
public final class ContentStore: Sendable {
    public let root: String

    /// The data root: `BERTH_ROOT` if set, else `/var/lib/berth`.
    public static var defaultRoot: String {
        if let env = getenv("BERTH_ROOT"), let s = Optional(String(cString: env)), !s.isEmpty { return s }
        return "/var/lib/berth"
    }

    public init(root: String = ContentStore.defaultRoot) throws(ImageError) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        do {
            for dir in ["blobs/sha256", "ingest", "images", "snapshots", "containers"] {
                try FileSystem.makeDirectories(self.root + "/" + dir, mode: 0o700)
            }
        } catch { throw .system(error) }
    }

    // MARK: Paths

    public func blobPath(_ digest: Digest) -> String { "\(root)/blobs/\(digest.algorithm)/\(digest.hex)" }
    public func snapshotPath(_ chainID: Digest) -> String { "\(root)/snapshots/\(chainID.hex)" }
    public var ingestDirectory: String { "\(root)/ingest" }
    public var containersDirectory: String { "\(root)/containers" }

    /// A unique name under `ingest/` (or `snapshots/` for an unpack in progress).
    public func temporaryPath(_ hint: String, in directory: String? = nil) -> String {
        let dir = directory ?? ingestDirectory
        return "\(dir)/.tmp-\(hint.prefix(16))-\(getpid())-\(UInt64.random(in: 0...UInt64.max) & 0xffffffffffff)"
    }

    // MARK: Blobs

    public func hasBlob(_ digest: Digest) -> Bool { FileSystem.exists(blobPath(digest)) }

    public func blobSize(_ digest: Digest) -> Int64? {
        var info = stat()
        return stat(blobPath(digest), &info) == 0 ? Int64(info.st_size) : nil
    }

    public func readBlob(_ digest: Digest) throws(ImageError) -> [UInt8] {
        do { return try FileSystem.readFile(blobPath(digest)) } catch {
            if error.errno == ENOENT { throw .notFound("blob \(digest)") }
            throw .system(error)
        }
    }

    /// Writes bytes as a blob after checking them against `expected` (when given). Returns the digest.
    @discardableResult
    public func writeBlob(_ bytes: [UInt8], expected: Digest? = nil, what: String = "blob") throws(ImageError) -> Digest
    {
        let digest = Digest.sha256(bytes)
        if let expected, expected != digest { throw .digestMismatch(what: what, expected: expected, actual: digest) }
        if hasBlob(digest) { return digest }
        let temporary = temporaryPath(digest.hex)
        do {
            let fd = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
            try fd.write(bytes)
            _ = try sys("fsync", temporary) { fsync(fd.rawValue) }
            try commitBlob(temporary: temporary, digest: digest)
        } catch {
            unlink(temporary)
            throw .system(error)
        }
        return digest
    }

    /// Moves a verified, fsynced temporary file into place as `digest` (atomic rename; a concurrent
    /// writer of the same content simply wins the race with identical bytes).
    public func commitBlob(temporary: String, digest: Digest) throws(SystemCallError) {
        _ = try sys("rename", blobPath(digest)) { rename(temporary, blobPath(digest)) }
    }

    public func blobs() -> [Digest] {
        ((try? FileSystem.listDirectory("\(root)/blobs/sha256")) ?? []).compactMap { Digest("sha256:" + $0) }
    }

    // MARK: Image records

    private func recordPath(_ name: String) -> String {
        var escaped = ""
        for c in name.unicodeScalars {
            switch c {
            case "/": escaped += "%2F"
            case ":": escaped += "%3A"
            case "@": escaped += "%40"
            case "%": escaped += "%25"
            default: escaped.unicodeScalars.append(c)
            }
        }
        return "\(root)/images/\(escaped).json"
    }

    public func saveImage(_ record: ImageRecord) throws(ImageError) {
        do {
            let bytes = try ImageCoding.encode(record, pretty: true)
            try writeAtomically(recordPath(record.name), bytes)
        } catch let error as SystemCallError { throw .system(error) } catch {
            throw .invalidManifest(record.name, "\(error)")
        }
    }

    public func image(_ name: String) -> ImageRecord? {
        guard let bytes = try? FileSystem.readFile(recordPath(name)) else { return nil }
        return try? ImageCoding.decode(ImageRecord.self, bytes)
    }

    public func images() -> [ImageRecord] {
        ((try? FileSystem.listDirectory("\(root)/images")) ?? []).compactMap { file in
            guard file.hasSuffix(".json"), let bytes = try? FileSystem.readFile("\(root)/images/\(file)") else {
                return nil
            }
            return try? ImageCoding.decode(ImageRecord.self, bytes)
        }.sorted { $0.name < $1.name }
    }

    /// Finds an image by reference, full name, image ID (config digest) or a unique ID prefix.
    public func lookup(_ text: String) -> ImageRecord? {
        if let ref = try? Reference(parsing: text), let r = image(ref.description) { return r }
        if let r = image(text) { return r }
        let all = images()
        let hex = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text
        guard hex.count >= 4 else { return nil }
        let matches = all.filter { $0.config.digest.hex.hasPrefix(hex) || $0.manifestDigest.hex.hasPrefix(hex) }
        return Set(matches.map(\.config.digest)).count == 1 ? matches.first : nil
    }

    public func removeImage(_ name: String) throws(ImageError) {
        if unlink(recordPath(name)) != 0 {
            if errno == ENOENT { throw .notFound("image \(name)") }
            throw .system(SystemCallError(call: "unlink", errno: errno, subject: recordPath(name)))
        }
    }

    // MARK: Reference counts and garbage collection

    /// How many image records (and prepared containers) reference each blob and snapshot.
    public func referenceCounts() -> (blobs: [Digest: Int], snapshots: [Digest: Int]) {
        var blobs: [Digest: Int] = [:]
        var snapshots: [Digest: Int] = [:]
        for record in images() {
            for d in record.blobs { blobs[d, default: 0] += 1 }
            for c in record.chainIDs { snapshots[c, default: 0] += 1 }
        }
        for container in containers() {
            for c in container.chainIDs { snapshots[c, default: 0] += 1 }
        }
        return (blobs, snapshots)
    }

    public struct GCResult: Sendable {
        public var removedBlobs: [Digest] = []
        public var removedSnapshots: [Digest] = []
        public var removedTemporary = 0
        public var reclaimedBytes: Int64 = 0
    }

    /// Removes blobs and snapshots no image or container references, and stale temporary files.
    /// Takes the store lock exclusively, so it never races a pull that has not registered its image yet.
    public func collectGarbage() throws(ImageError) -> GCResult {
        try withLock(exclusive: true) { () throws(ImageError) -> GCResult in
            var result = GCResult()
            let counts = referenceCounts()
            for digest in blobs() where counts.blobs[digest] == nil {
                result.reclaimedBytes += blobSize(digest) ?? 0
                if unlink(blobPath(digest)) == 0 { result.removedBlobs.append(digest) }
            }
            for name in (try? FileSystem.listDirectory("\(root)/snapshots")) ?? [] {
                let path = "\(root)/snapshots/\(name)"
                if name.hasPrefix(".tmp-") {
                    try? FileSystem.removeTree(path); result.removedTemporary += 1; continue
                }
                guard let chain = Digest("sha256:" + name), counts.snapshots[chain] == nil else { continue }
                if (try? FileSystem.removeTree(path)) != nil { result.removedSnapshots.append(chain) }
            }
            for name in (try? FileSystem.listDirectory(ingestDirectory)) ?? [] {
                try? FileSystem.removeTree("\(ingestDirectory)/\(name)")
                result.removedTemporary += 1
            }
            return result
        }
    }

    /// Verifies the store: every blob's content matches its name, every record's blobs and snapshots
    /// exist, nothing is left in ingest. Returns the problems found (empty when consistent).
    public func check(verifyContent: Bool = true) -> [String] {
        var problems: [String] = []
        if verifyContent {
            for digest in blobs() {
                guard let fd = try? FileDescriptor.open(blobPath(digest), O_RDONLY) else {
                    problems.append("blob \(digest): unreadable"); continue
                }
                var hasher = DigestHasher()
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                while true {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                }
                if hasher.finalize() != digest { problems.append("blob \(digest): content does not match its digest") }
            }
        }
        for record in images() {
            for d in record.blobs where !hasBlob(d) { problems.append("image \(record.name): missing blob \(d)") }
            for (layer, c) in zip(record.layers, record.chainIDs) where !FileSystem.isDirectory(snapshotPath(c)) {
                problems.append("image \(record.name): missing snapshot \(c) of layer \(layer.digest)")
            }
            if record.layers.count != record.diffIDs.count {
                problems.append("image \(record.name): layers and diff_ids differ in number")
            }
        }
        for name in (try? FileSystem.listDirectory(ingestDirectory)) ?? [] {
            problems.append("leftover temporary file ingest/\(name)")
        }
        for name in (try? FileSystem.listDirectory("\(root)/snapshots")) ?? [] where name.hasPrefix(".tmp-") {
            problems.append("leftover temporary snapshot snapshots/\(name)")
        }
        return problems
    }

    // MARK: Containers prepared from images

    public struct ContainerRecord: Codable, Sendable {
        public var id: String
        public var image: String
        public var chainIDs: [Digest]
        /// "overlay" or "copy".
        public var snapshotter: String
    }

    public func containers() -> [ContainerRecord] {
        ((try? FileSystem.listDirectory(containersDirectory)) ?? []).compactMap { id in
            guard let bytes = try? FileSystem.readFile("\(containersDirectory)/\(id)/snapshot.json") else { return nil }
            return try? ImageCoding.decode(ContainerRecord.self, bytes)
        }
    }

    // MARK: Locking

    /// Runs `body` holding the store's flock (shared or exclusive), across processes.
    public func withLock<T>(exclusive: Bool, _ body: () throws(ImageError) -> T) throws(ImageError) -> T {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open("\(root)/lock", O_RDWR | O_CREAT, mode: 0o600) } catch {
            throw .system(error)
        }
        while flock(fd.rawValue, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if errno != EINTR { throw .system(SystemCallError(call: "flock", errno: errno, subject: "\(root)/lock")) }
        }
        defer { flock(fd.rawValue, LOCK_UN) }
        return try body()
    }

    /// Takes the lock shared for the lifetime of the returned descriptor (an async pull holds it).
    func sharedLock() async throws(ImageError) -> FileDescriptor {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open("\(root)/lock", O_RDWR | O_CREAT, mode: 0o600) } catch {
            throw .system(error)
        }
        while flock(fd.rawValue, LOCK_SH | LOCK_NB) != 0 {
            if errno != EWOULDBLOCK && errno != EINTR {
                throw .system(SystemCallError(call: "flock", errno: errno, subject: "\(root)/lock"))
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return fd
    }
}

/// temp (unique name) → fsync → rename → fsync of the directory.
func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(SystemCallError) {
    let temporary = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    do {
        let fd = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        try fd.write(bytes)
        _ = try sys("fsync", temporary) { fsync(fd.rawValue) }
        _ = try sys("rename", path) { rename(temporary, path) }
    } catch {
        unlink(temporary)
        throw error
    }
    if let dir = try? FileDescriptor.open(FileSystem.parent(of: path), O_RDONLY | O_DIRECTORY) { fsync(dir.rawValue) }
}

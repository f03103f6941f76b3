#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import NIOCore

/// Progress of a pull, one event at a time (the CLI renders them as bars or lines).
public enum PullEvent: Sendable {
    case resolved(image: String, manifest: Digest, layers: Int)
    case layerExists(Digest)
    case layerStarted(Digest, size: Int64)
    case layerProgress(Digest, received: Int64, total: Int64)
    case layerDone(Digest)
}

public typealias PullProgress = @Sendable (PullEvent) -> Void

/// Writes a downloading layer to a temporary blob file and, on the way, through the pipeline that
/// hashes, decompresses and unpacks it into a temporary snapshot directory.
final class LayerDownload: BlobConsumer {
    let store: ContentStore
    let descriptor: Descriptor
    let blobTemporary: String
    let snapshotTemporary: String?
    let compression: Compression
    let options: UnpackOptions
    let name: String
    var file: BerthOS.FileDescriptor
    var pipeline: LayerPipeline

    init(store: ContentStore, descriptor: Descriptor, unpack: Bool, options: UnpackOptions) throws {
        self.store = store
        self.descriptor = descriptor
        self.options = options
        guard let compression = MediaType.layerCompression(descriptor.mediaType) else {
            throw ImageError.unsupportedMediaType(descriptor.mediaType, what: "layer \(descriptor.digest)")
        }
        self.compression = compression
        name = descriptor.digest.description
        blobTemporary = store.temporaryPath(descriptor.digest.hex)
        file = try BerthOS.FileDescriptor.open(blobTemporary, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        snapshotTemporary = unpack ? store.temporaryPath(descriptor.digest.hex, in: "\(store.root)/snapshots") : nil
        pipeline = LayerPipeline(compression: compression, unpacker: nil)
        pipeline = try makePipeline()
    }

    private func makePipeline() throws -> LayerPipeline {
        guard let snapshotTemporary else { return LayerPipeline(compression: compression, unpacker: nil) }
        try FileSystem.makeDirectories(snapshotTemporary, mode: 0o755)
        let unpacker = LayerUnpacker(root: try Root(path: snapshotTemporary), options: options, layerName: name)
        return LayerPipeline(compression: compression, unpacker: unpacker, threaded: true)
    }

    func consume(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(file.rawValue, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SystemCallError(call: "write", errno: errno, subject: blobTemporary)
                }
                offset += n
            }
            do { try pipeline.feed(raw) } catch let e as ImageError { throw e } catch let e as SystemCallError {
                throw e
            } catch {
                throw ImageError.corruptLayer(name, "\(error)")
            }
        }
    }

    func restart() throws {
        _ = try sys("ftruncate", blobTemporary) { ftruncate(file.rawValue, 0) }
        _ = lseek(file.rawValue, 0, SEEK_SET)
        if let snapshotTemporary { try FileSystem.removeTree(snapshotTemporary) }
        pipeline = try makePipeline()
    }

    /// Verifies digest, size and DiffID, then moves blob and snapshot into place. Returns hard links
    /// that point into lower layers.
    func commit(expectedDiffID: Digest, chainID: Digest) throws -> [(path: String, target: String)] {
        let result: (digest: Digest, size: Int64, diffID: Digest)
        do { result = try pipeline.finish() } catch let e as ImageError { throw e } catch let e as SystemCallError {
            throw e
        } catch {
            throw ImageError.corruptLayer(name, "\(error)")
        }
        guard result.size == descriptor.size else {
            throw ImageError.sizeMismatch(
                what: "layer \(descriptor.digest)", expected: descriptor.size, actual: result.size)
        }
        guard result.digest == descriptor.digest else {
            throw ImageError.digestMismatch(
                what: "layer \(descriptor.digest)", expected: descriptor.digest, actual: result.digest)
        }
        guard result.diffID == expectedDiffID else {
            throw ImageError.digestMismatch(
                what: "uncompressed layer \(descriptor.digest) (diff_id)", expected: expectedDiffID,
                actual: result.diffID)
        }
        _ = try sys("fsync", blobTemporary) { fsync(file.rawValue) }
        file.close()
        try store.commitBlob(temporary: blobTemporary, digest: descriptor.digest)
        let links = pipeline.unpacker?.pendingLinks ?? []
        if let snapshotTemporary {
            try commitSnapshot(store: store, temporary: snapshotTemporary, chainID: chainID)
        }
        return links
    }

    func discard() {
        file.close()
        unlink(blobTemporary)
        if let snapshotTemporary { try? FileSystem.removeTree(snapshotTemporary) }
    }
}

/// Renames an unpacked directory into place as the snapshot of `chainID`; if another pull got there
/// first (same content by construction), ours is dropped.
func commitSnapshot(store: ContentStore, temporary: String, chainID: Digest) throws {
    let target = store.snapshotPath(chainID)
    if rename(temporary, target) != 0 {
        let code = errno
        if code == EEXIST || code == ENOTEMPTY { try FileSystem.removeTree(temporary); return }
        throw SystemCallError(call: "rename", errno: code, subject: target)
    }
}

/// Unpacks a blob already in the store into the snapshot for `chainID` (import, or a snapshot lost to gc).
func unpackLocalBlob(
    store: ContentStore, descriptor: Descriptor, expectedDiffID: Digest?, into root: Root,
    options: UnpackOptions
) throws -> (diffID: Digest, links: [(path: String, target: String)]) {
    let compression: Compression
    if let c = MediaType.layerCompression(descriptor.mediaType) {
        compression = c
    } else {
        throw ImageError.unsupportedMediaType(descriptor.mediaType, what: "layer \(descriptor.digest)")
    }
    let unpacker = LayerUnpacker(root: root, options: options, layerName: descriptor.digest.description)
    let pipeline = LayerPipeline(compression: compression, unpacker: unpacker, threaded: true)
    let fd = try BerthOS.FileDescriptor.open(store.blobPath(descriptor.digest), O_RDONLY)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    while true {
        let n = Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count)
        if n < 0 {
            if errno == EINTR { continue };
            throw SystemCallError(call: "read", errno: errno, subject: store.blobPath(descriptor.digest))
        }
        if n == 0 { break }
        do { try pipeline.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) } catch let e as ImageError {
            throw e
        } catch let e as SystemCallError { throw e } catch {
            throw ImageError.corruptLayer(descriptor.digest.description, "\(error)")
        }
    }
    let result: (digest: Digest, size: Int64, diffID: Digest)
    do { result = try pipeline.finish() } catch let e as ImageError { throw e } catch let e as SystemCallError {
        throw e
    } catch {
        throw ImageError.corruptLayer(descriptor.digest.description, "\(error)")
    }
    if result.digest != descriptor.digest {
        throw ImageError.digestMismatch(
            what: "layer \(descriptor.digest)", expected: descriptor.digest, actual: result.digest)
    }
    if let expectedDiffID, expectedDiffID != result.diffID {
        throw ImageError.digestMismatch(
            what: "uncompressed layer \(descriptor.digest) (diff_id)", expected: expectedDiffID, actual: result.diffID)
    }
    return (result.diffID, unpacker.pendingLinks)
}

/// Copies hard-link targets that live in lower layers into the layer that links to them (a per-layer
/// directory cannot hold a link across layers; overlayfs would copy up anyway).
func resolvePendingLinks(
    store: ContentStore, chainIDs: [Digest], layer index: Int,
    links: [(path: String, target: String)], layerName: String
) throws {
    guard !links.isEmpty else { return }
    let upper = try Root(path: store.snapshotPath(chainIDs[index]))
    for link in links {
        if (try? upper.open(link.path, BERTH_O_PATH | O_NOFOLLOW)) != nil { continue }
        var source: BerthOS.FileDescriptor?
        for lower in stride(from: index - 1, through: 0, by: -1) {
            let root = try Root(path: store.snapshotPath(chainIDs[lower]))
            if let fd = try? root.open(link.target, O_RDONLY | O_NOFOLLOW) { source = fd; break }
        }
        guard let source else {
            throw ImageError.hostileLayer(
                layerName, path: link.path, why: "hard link to \(link.target), which no layer has")
        }
        var info = stat()
        _ = fstat(source.rawValue, &info)
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ImageError.hostileLayer(layerName, path: link.path, why: "hard link to a non-regular file")
        }
        try upper.makeDirectories(FileSystem.parent(of: "/" + link.path))
        let target = try upper.open(link.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        try copyContents(from: source.rawValue, to: target.rawValue)
        _ = fchown(target.rawValue, info.st_uid, info.st_gid)
        _ = fchmod(target.rawValue, info.st_mode & 0o7777)
        var times = [info.st_atim, info.st_mtim]
        _ = futimens(target.rawValue, &times)
    }
}

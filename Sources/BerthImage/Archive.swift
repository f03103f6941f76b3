#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import FoundationEssentials

/// Image archives: OCI image layout (directory or tar), docker-archive (`docker save`), plain rootfs tars.
extension ImageService {
    // MARK: Building images from tars

    /// Creates an image from layer tars (uncompressed, gzip or zstd; detected from their first bytes),
    /// lowest layer first. Uncompressed tars are gzip-compressed on the way into the store.
    /// This is `berth image import` for a rootfs tar (one layer) and how the tests build images.
    public func importLayers(
        _ tars: [String], name: String, config containerConfig: ImageConfig.ContainerConfig? = nil,
        platform: Platform = .host
    ) throws(ImageError) -> ImageRecord {
        let reference = try Reference(parsing: name)
        do {
            return try store.withLock(exclusive: false) { () throws(ImageError) -> ImageRecord in
                var descriptors: [Descriptor] = []
                var diffIDs: [Digest] = []
                for tar in tars {
                    let (descriptor, diffID) = try ingestLayer(tar)
                    descriptors.append(descriptor)
                    diffIDs.append(diffID)
                }
                var config = ImageConfig(
                    platform: platform, diffIDs: diffIDs, config: containerConfig ?? ImageConfig.ContainerConfig(),
                    created: "1970-01-01T00:00:00Z")
                config.history = tars.map {
                    ImageConfig.History(
                        created: "1970-01-01T00:00:00Z",
                        created_by:
                            "berth image import \(FileSystem.parent(of: $0) == "." ? $0 : String($0.split(separator: "/").last ?? ""))",
                        empty_layer: nil, comment: nil)
                }
                return try register(reference: reference, config: config, layers: descriptors)
            }
        } catch {
            throw .pulling(name, error.cause)
        }
    }

    /// Writes config and manifest for `layers` (already blobs), unpacks snapshots, records the name.
    func register(
        reference: Reference, config: ImageConfig, layers: [Descriptor],
        manifestMediaType: String = MediaType.ociManifest
    ) throws(ImageError) -> ImageRecord {
        let configBytes: [UInt8]
        do { configBytes = try ImageCoding.encode(config) } catch {
            throw .invalidManifest(reference.description, "\(error)")
        }
        let configDigest = try store.writeBlob(configBytes)
        let configDescriptor = Descriptor(
            mediaType: manifestMediaType == MediaType.dockerManifest ? MediaType.dockerConfig : MediaType.ociConfig,
            digest: configDigest, size: Int64(configBytes.count))
        let manifest = Manifest(mediaType: manifestMediaType, config: configDescriptor, layers: layers)
        let manifestBytes: [UInt8]
        do { manifestBytes = try ImageCoding.encode(manifest) } catch {
            throw .invalidManifest(reference.description, "\(error)")
        }
        let manifestDigest = try store.writeBlob(manifestBytes)
        try ensureSnapshots(layers: layers, diffIDs: config.rootfs.diff_ids)
        let record = ImageRecord(
            name: reference.description, manifestDigest: manifestDigest, manifestMediaType: manifestMediaType,
            indexDigest: nil, config: configDescriptor, layers: layers, diffIDs: config.rootfs.diff_ids,
            platform: Platform(
                os: config.os ?? "linux", architecture: config.architecture ?? "amd64", variant: config.variant),
            stored: Int(time(nil)))
        try store.saveImage(record)
        return record
    }

    /// Unpacks any missing snapshot from its blob, in order (hard links may point into lower layers).
    nonisolated func ensureSnapshots(layers: [Descriptor], diffIDs: [Digest]) throws(ImageError) {
        let chainIDs = ImageConfig.chainIDs(diffIDs)
        do {
            for (index, layer) in layers.enumerated() where !FileSystem.isDirectory(store.snapshotPath(chainIDs[index]))
            {
                let temporary = store.temporaryPath(chainIDs[index].hex, in: "\(store.root)/snapshots")
                do {
                    try FileSystem.makeDirectories(temporary, mode: 0o755)
                    let result = try unpackLocalBlob(
                        store: store, descriptor: layer, expectedDiffID: diffIDs[index],
                        into: try Root(path: temporary), options: unpackOptions)
                    try commitSnapshot(store: store, temporary: temporary, chainID: chainIDs[index])
                    try resolvePendingLinks(
                        store: store, chainIDs: chainIDs, layer: index, links: result.links,
                        layerName: layer.digest.description)
                } catch {
                    try? FileSystem.removeTree(temporary)
                    throw error
                }
            }
        } catch { throw ImageError.wrap(error) }
    }

    /// Copies a layer file into the store: compressed ones as they are, plain tars gzip-compressed.
    nonisolated func ingestLayer(_ path: String) throws(ImageError) -> (Descriptor, Digest) {
        let temporary = store.temporaryPath("layer")
        do {
            let input = try FileDescriptor.open(path, O_RDONLY)
            let head = try input.read(upTo: 4)
            _ = lseek(input.rawValue, 0, SEEK_SET)
            let compression = Compression.detect(head)
            let output = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
            var blobHasher = DigestHasher()
            var diffHasher = DigestHasher()
            let decompressor = makeDecompressor(compression)
            let compressor = compression == .none ? GzipCompressor() : nil
            func emit(_ bytes: UnsafeRawBufferPointer) throws {
                blobHasher.update(bytes)
                var offset = 0
                while offset < bytes.count {
                    let n = Glibc.write(output.rawValue, bytes.baseAddress! + offset, bytes.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue };
                        throw SystemCallError(call: "write", errno: errno, subject: temporary)
                    }
                    offset += n
                }
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = Glibc.read(input.rawValue, buffer.baseAddress, buffer.count)
                if n < 0 {
                    if errno == EINTR { continue }; throw SystemCallError(call: "read", errno: errno, subject: path)
                }
                if n == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                try decompressor.feed(chunk) { diffHasher.update($0) }
                if let compressor { try compressor.feed(chunk, emit) } else { try emit(chunk) }
            }
            try decompressor.finish()
            if let compressor { try compressor.feed(UnsafeRawBufferPointer(start: nil, count: 0), finish: true, emit) }
            _ = try sys("fsync", temporary) { fsync(output.rawValue) }
            let digest = blobHasher.finalize()
            try store.commitBlob(temporary: temporary, digest: digest)
            let mediaType = compression == .zstd ? MediaType.ociLayerZstd : MediaType.ociLayerGzip
            return (Descriptor(mediaType: mediaType, digest: digest, size: blobHasher.count), diffHasher.finalize())
        } catch {
            unlink(temporary)
            if let e = error as? ImageError { throw e }
            if let e = error as? SystemCallError { throw .system(e) }
            throw .corruptLayer(path, "\(error)")
        }
    }

    // MARK: OCI image layout and docker-archive: export

    /// Writes images as an OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`),
    /// plus docker's `manifest.json` so `docker load` reads it too (what `docker save` writes since 25.0).
    public nonisolated func exportLayout(_ names: [String], to directory: String) throws(ImageError) {
        let records = try names.map { (n: String) throws(ImageError) -> ImageRecord in
            guard let r = store.lookup(n) else { throw .notFound("image \(n)") }
            return r
        }
        do {
            try FileSystem.makeDirectories(directory + "/blobs/sha256")
            try writeAtomically(directory + "/oci-layout", Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
            var manifests: [Descriptor] = []
            var dockerManifest: [DockerArchiveEntry] = []
            for record in records {
                for digest in [record.manifestDigest, record.config.digest] + record.layers.map(\.digest) {
                    let target = "\(directory)/blobs/sha256/\(digest.hex)"
                    if FileSystem.exists(target) { continue }
                    if link(store.blobPath(digest), target) != 0 {
                        let source = try FileDescriptor.open(store.blobPath(digest), O_RDONLY)
                        let output = try FileDescriptor.open(target, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
                        try copyContents(from: source.rawValue, to: output.rawValue)
                    }
                }
                let ref = try Reference(parsing: record.name)
                manifests.append(
                    Descriptor(
                        mediaType: record.manifestMediaType, digest: record.manifestDigest,
                        size: store.blobSize(record.manifestDigest) ?? 0, platform: record.platform,
                        annotations: [
                            "io.containerd.image.name": record.name,
                            "org.opencontainers.image.ref.name": ref.tag ?? "latest",
                        ]))
                dockerManifest.append(
                    DockerArchiveEntry(
                        Config: "blobs/sha256/\(record.config.digest.hex)", RepoTags: [ref.familiar],
                        Layers: record.layers.map { "blobs/sha256/\($0.digest.hex)" }))
            }
            try writeAtomically(directory + "/index.json", try ImageCoding.encode(Index(manifests: manifests)))
            try writeAtomically(directory + "/manifest.json", try ImageCoding.encode(dockerManifest))
        } catch let e as ImageError { throw e } catch let e as SystemCallError { throw .system(e) } catch {
            throw .invalidManifest(names.joined(separator: ","), "\(error)")
        }
    }

    /// `berth save`: the layout above as one tar, streamed to `fd`.
    public nonisolated func save(_ names: [String], to fd: Int32) throws(ImageError) {
        let staging = store.temporaryPath("save")
        defer { try? FileSystem.removeTree(staging) }
        try exportLayout(names, to: staging)
        do {
            let writer = TarWriter { bytes in
                var offset = 0
                while offset < bytes.count {
                    let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
                    if n < 0 {
                        if errno == EINTR { continue };
                        throw SystemCallError(call: "write", errno: errno, subject: "archive")
                    }
                    offset += n
                }
            }
            try writer.addFile("oci-layout", from: staging + "/oci-layout")
            try writer.addFile("index.json", from: staging + "/index.json")
            try writer.addFile("manifest.json", from: staging + "/manifest.json")
            try writer.addDirectory("blobs")
            try writer.addDirectory("blobs/sha256")
            for blob in try FileSystem.listDirectory(staging + "/blobs/sha256") {
                try writer.addFile("blobs/sha256/\(blob)", from: "\(staging)/blobs/sha256/\(blob)")
            }
            try writer.finish()
        } catch let e as SystemCallError { throw .system(e) } catch { throw .transport("archive", cause: "\(error)") }
    }

    // MARK: Import: OCI layout (dir or tar) and docker-archive

    /// `berth load`: reads an OCI layout or docker-archive (a directory, or a tar of one, possibly
    /// compressed) and registers its images. Returns the names loaded.
    public func load(from path: String, name override: String? = nil) throws(ImageError) -> [ImageRecord] {
        if FileSystem.isDirectory(path) { return try loadDirectory(path, name: override) }
        let staging = store.temporaryPath("load")
        defer { try? FileSystem.removeTree(staging) }
        do {
            try FileSystem.makeDirectories(staging, mode: 0o700)
            let root = try Root(path: staging)
            let unpacker = LayerUnpacker(
                root: root, options: UnpackOptions(privileged: false, whiteouts: .keep), layerName: path)
            let input = try FileDescriptor.open(path, O_RDONLY)
            let head = try input.read(upTo: 4)
            _ = lseek(input.rawValue, 0, SEEK_SET)
            let pipeline = LayerPipeline(compression: Compression.detect(head), unpacker: unpacker)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = Glibc.read(input.rawValue, buffer.baseAddress, buffer.count)
                if n < 0 {
                    if errno == EINTR { continue }; throw SystemCallError(call: "read", errno: errno, subject: path)
                }
                if n == 0 { break }
                try pipeline.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
            _ = try pipeline.finish()
        } catch let e as ImageError { throw e } catch let e as SystemCallError { throw .system(e) } catch {
            throw .corruptLayer(path, "\(error)")
        }
        return try loadDirectory(staging, name: override)
    }

    private func loadDirectory(_ dir: String, name override: String?) throws(ImageError) -> [ImageRecord] {
        if FileSystem.exists(dir + "/index.json") { return try loadOCILayout(dir, name: override) }
        if FileSystem.exists(dir + "/manifest.json") { return try loadDockerArchive(dir, name: override) }
        throw .invalidManifest(dir, "neither an OCI image layout (index.json) nor a docker-archive (manifest.json)")
    }

    private func loadOCILayout(_ dir: String, name override: String?) throws(ImageError) -> [ImageRecord] {
        func blob(_ d: Digest) throws(ImageError) -> [UInt8] {
            let bytes: [UInt8]
            do { bytes = try FileSystem.readFile("\(dir)/blobs/\(d.algorithm)/\(d.hex)") } catch {
                throw .notFound("blob \(d) in \(dir)")
            }
            let actual = Digest.sha256(bytes)
            if actual != d { throw .digestMismatch(what: "blob \(d) in \(dir)", expected: d, actual: actual) }
            return bytes
        }
        let index: Index
        do { index = try ImageCoding.decode(Index.self, try FileSystem.readFile(dir + "/index.json")) } catch {
            throw .invalidManifest(dir + "/index.json", "\(error)")
        }
        var loaded: [ImageRecord] = []
        for entry in index.manifests {
            var descriptor = entry
            var manifestBytes = try blob(entry.digest)
            if MediaType.indexes.contains(entry.mediaType) {
                guard
                    case .index(let inner) = try ManifestDocument.parse(
                        manifestBytes, mediaType: entry.mediaType, what: "\(entry.digest)"),
                    let chosen = Platform.select(from: inner, for: .host)
                else {
                    throw .noMatchingPlatform(Platform.host.description, available: [])
                }
                descriptor = chosen
                manifestBytes = try blob(chosen.digest)
            }
            guard
                case .manifest(let manifest) = try ManifestDocument.parse(
                    manifestBytes, mediaType: descriptor.mediaType, what: "\(descriptor.digest)")
            else {
                throw .invalidManifest("\(descriptor.digest)", "not an image manifest")
            }
            let configBytes = try blob(manifest.config.digest)
            let config: ImageConfig
            do { config = try ImageCoding.decode(ImageConfig.self, configBytes) } catch {
                throw .invalidManifest("config \(manifest.config.digest)", "\(error)")
            }
            let refName =
                override ?? entry.annotations?["io.containerd.image.name"]
                ?? entry.annotations?["org.opencontainers.image.ref.name"].map {
                    $0.contains("/") || $0.contains(":") ? $0 : "berth.local/imported:\($0)"
                }
                ?? "berth.local/imported@\(descriptor.digest)"
            let reference = try Reference(parsing: refName)
            try copyBlobs(from: dir, manifest.layers.map(\.digest))
            try store.writeBlob(configBytes, expected: manifest.config.digest)
            try store.writeBlob(manifestBytes, expected: descriptor.digest)
            try ensureSnapshots(layers: manifest.layers, diffIDs: config.rootfs.diff_ids)
            let record = ImageRecord(
                name: reference.description, manifestDigest: descriptor.digest,
                manifestMediaType: manifest.mediaType ?? MediaType.ociManifest, indexDigest: nil,
                config: manifest.config, layers: manifest.layers, diffIDs: config.rootfs.diff_ids,
                platform: Platform(
                    os: config.os ?? "linux", architecture: config.architecture ?? "amd64", variant: config.variant),
                stored: Int(time(nil)))
            try store.saveImage(record)
            loaded.append(record)
        }
        return loaded
    }

    /// Copies layer blobs into the store, verifying each digest on the way.
    private nonisolated func copyBlobs(from dir: String, _ digests: [Digest]) throws(ImageError) {
        for digest in digests where !store.hasBlob(digest) {
            let temporary = store.temporaryPath(digest.hex)
            do {
                let source = try FileDescriptor.open("\(dir)/blobs/\(digest.algorithm)/\(digest.hex)", O_RDONLY)
                let output = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
                var hasher = DigestHasher()
                while true {
                    let chunk = try source.read(upTo: 1 << 20)
                    if chunk.isEmpty { break }
                    hasher.update(chunk)
                    try output.write(chunk)
                }
                _ = fsync(output.rawValue)
                let actual = hasher.finalize()
                if actual != digest {
                    throw ImageError.digestMismatch(what: "blob \(digest)", expected: digest, actual: actual)
                }
                try store.commitBlob(temporary: temporary, digest: digest)
            } catch {
                unlink(temporary)
                throw ImageError.wrap(error)
            }
        }
    }

    /// docker-archive: `manifest.json` = [{Config, RepoTags, Layers}], layers as (possibly compressed) tars.
    private func loadDockerArchive(_ dir: String, name override: String?) throws(ImageError) -> [ImageRecord] {
        let entries: [DockerArchiveEntry]
        do {
            entries = try ImageCoding.decode([DockerArchiveEntry].self, try FileSystem.readFile(dir + "/manifest.json"))
        } catch {
            throw .invalidManifest(dir + "/manifest.json", "\(error)")
        }
        var loaded: [ImageRecord] = []
        for entry in entries {
            let root: Root
            do { root = try Root(path: dir) } catch { throw .system(error) }
            func contained(_ relative: String) throws(ImageError) -> String {
                // Resolve inside the archive: a manifest naming ../../etc/shadow must not read it.
                do { _ = try root.open(relative, O_RDONLY) } catch { throw .notFound("\(relative) in archive") }
                return dir + "/" + FileSystem.clean(relative)
            }
            let configBytes: [UInt8]
            do { configBytes = try root.open(entry.Config, O_RDONLY).readAll() } catch {
                throw .notFound("\(entry.Config) in archive")
            }
            let config: ImageConfig
            do { config = try ImageCoding.decode(ImageConfig.self, configBytes) } catch {
                throw .invalidManifest(entry.Config, "\(error)")
            }
            var layers: [Descriptor] = []
            var diffIDs: [Digest] = []
            for layer in entry.Layers {
                let (descriptor, diffID) = try ingestLayer(try contained(layer))
                layers.append(descriptor)
                diffIDs.append(diffID)
            }
            guard diffIDs == config.rootfs.diff_ids else {
                throw .digestMismatch(
                    what: "layers of \(entry.Config)", expected: config.rootfs.diff_ids.first ?? diffIDs[0],
                    actual: diffIDs.first ?? config.rootfs.diff_ids[0])
            }
            try store.writeBlob(configBytes)
            let names =
                override.map { [$0] }
                ?? (entry.RepoTags?.isEmpty == false
                    ? entry.RepoTags! : ["berth.local/imported@\(Digest.sha256(configBytes))"])
            for name in names {
                let reference = try Reference(parsing: name)
                let configDescriptor = Descriptor(
                    mediaType: MediaType.ociConfig, digest: Digest.sha256(configBytes), size: Int64(configBytes.count))
                let manifest = Manifest(config: configDescriptor, layers: layers)
                let manifestBytes: [UInt8]
                do { manifestBytes = try ImageCoding.encode(manifest) } catch {
                    throw .invalidManifest(name, "\(error)")
                }
                let manifestDigest = try store.writeBlob(manifestBytes)
                try ensureSnapshots(layers: layers, diffIDs: diffIDs)
                let record = ImageRecord(
                    name: reference.description, manifestDigest: manifestDigest,
                    manifestMediaType: MediaType.ociManifest,
                    indexDigest: nil, config: configDescriptor, layers: layers, diffIDs: diffIDs,
                    platform: Platform(
                        os: config.os ?? "linux", architecture: config.architecture ?? "amd64", variant: config.variant),
                    stored: Int(time(nil)))
                try store.saveImage(record)
                loaded.append(record)
            }
        }
        return loaded
    }
}

struct DockerArchiveEntry: Codable {
    var Config: String
    var RepoTags: [String]?
    var Layers: [String]
}

/// OCI image-spec and Docker schema2 media types.
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    public static let manifests: Set<String> = [ociManifest, dockerManifest]
    public static let indexes: Set<String> = [ociIndex, dockerManifestList]
    /// The Accept header for manifest requests: everything Berth can read.
    public static let acceptManifests = [ociIndex, dockerManifestList, ociManifest, dockerManifest].joined(
        separator: ", ")

    /// How a layer blob is compressed, or nil when the media type is not a layer Berth can apply.
    public static func layerCompression(_ mediaType: String) -> Compression? {
        switch mediaType {
        case ociLayer, dockerLayer, "application/vnd.oci.image.layer.nondistributable.v1.tar": return Compression.none
        case ociLayerGzip, dockerLayerGzip, ociLayerNondistributableGzip, dockerForeignLayerGzip: return .gzip
        case ociLayerZstd, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": return .zstd
        default: return nil
        }
    }
}

public enum Compression: String, Sendable, Codable {
    case none, gzip, zstd

    /// Sniffs the magic bytes (used for archives whose layers carry no media type).
    public static func detect(_ head: [UInt8]) -> Compression {
        if head.count >= 2 && head[0] == 0x1f && head[1] == 0x8b { return .gzip }
        if head.count >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd { return .zstd }
        return Compression.none
    }
}

/// An OCI content descriptor.
public struct Descriptor: Codable, Hashable, Sendable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var platform: Platform?
    public var annotations: [String: String]?
    public var urls: [String]?

    public init(
        mediaType: String, digest: Digest, size: Int64, platform: Platform? = nil, annotations: [String: String]? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations
    }
}

/// An OCI image manifest or Docker schema2 manifest (same shape).
public struct Manifest: Codable, Hashable, Sendable {
    public var schemaVersion: Int = 2
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?

    public init(
        mediaType: String? = MediaType.ociManifest, config: Descriptor, layers: [Descriptor],
        annotations: [String: String]? = nil
    ) {
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }
}

/// An OCI image index or Docker manifest list.
public struct Index: Codable, Hashable, Sendable {
    public var schemaVersion: Int = 2
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?

    public init(mediaType: String? = MediaType.ociIndex, manifests: [Descriptor], annotations: [String: String]? = nil)
    {
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }
}

/// OS/architecture/variant, as in image indexes and `--platform linux/arm64/v8`.
public struct Platform: Codable, Hashable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var osVersion: String?
    public var osFeatures: [String]?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// Parses `os/arch[/variant]`, normalising architecture aliases (x86_64 → amd64, aarch64 → arm64).
    public init(parsing text: String) throws(ImageError) {
        let parts = text.lowercased().split(separator: "/").map(String.init)
        guard parts.count >= 2 && parts.count <= 3 else {
            throw ImageError.invalidReference(text, "platform must be os/arch[/variant]")
        }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
        self = normalized
    }

    public var normalized: Platform {
        var p = self
        switch p.architecture {
        case "x86_64", "x86-64": p.architecture = "amd64"
        case "aarch64": p.architecture = "arm64"
        case "armhf": p.architecture = "arm"; p.variant = p.variant ?? "v7"
        case "armel": p.architecture = "arm"; p.variant = p.variant ?? "v6"
        case "i386", "i686": p.architecture = "386"
        default: break
        }
        if p.architecture == "arm64" && p.variant == "v8" { p.variant = nil }
        if p.architecture == "amd64" && p.variant == "v1" { p.variant = nil }
        return p
    }

    /// The platform Berth runs on.
    public static var host: Platform {
        #if arch(x86_64)
        return Platform(os: "linux", architecture: "amd64")
        #elseif arch(arm64)
        return Platform(os: "linux", architecture: "arm64")
        #elseif arch(arm)
        return Platform(os: "linux", architecture: "arm", variant: "v7")
        #else
        return Platform(os: "linux", architecture: "unknown")
        #endif
    }

    /// Whether an index entry for `candidate` can run here (a missing variant matches any).
    public func matches(_ candidate: Platform) -> Bool {
        let a = normalized, b = candidate.normalized
        guard a.os == b.os && a.architecture == b.architecture else { return false }
        return a.variant == nil || b.variant == nil || a.variant == b.variant
    }

    public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }

    /// Picks the manifest for `platform` from an index: exact variant first, then any compatible one.
    public static func select(from index: Index, for platform: Platform) -> Descriptor? {
        let candidates = index.manifests.filter { d in
            guard MediaType.manifests.contains(d.mediaType), let p = d.platform else { return false }
            return platform.matches(p)
        }
        return candidates.first { $0.platform?.normalized.variant == platform.normalized.variant } ?? candidates.first
    }
}

/// The parts of the image configuration Berth reads (the rest is kept verbatim as a blob).
public struct ImageConfig: Codable, Sendable {
    public var architecture: String?
    public var os: String?
    public var variant: String?
    public var created: String?
    public var config: ContainerConfig?
    public var rootfs: RootFS
    public var history: [History]?

    public struct RootFS: Codable, Sendable {
        public var type: String
        public var diff_ids: [Digest]
        public init(diffIDs: [Digest]) { type = "layers"; diff_ids = diffIDs }
    }

    public struct History: Codable, Sendable {
        public var created: String?
        public var created_by: String?
        public var empty_layer: Bool?
        public var comment: String?
    }

    public struct ContainerConfig: Codable, Sendable {
        public var User: String?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var WorkingDir: String?
        public var Labels: [String: String]?
        public var ExposedPorts: [String: EmptyObject]?
        public var Volumes: [String: EmptyObject]?
        public var StopSignal: String?
        public var Healthcheck: HealthConfig?
        public init() {}
    }

    /// The image's HEALTHCHECK (durations in nanoseconds, as docker stores them).
    public struct HealthConfig: Codable, Sendable, Equatable {
        public var Test: [String]?
        public var Interval: Int64?
        public var Timeout: Int64?
        public var StartPeriod: Int64?
        public var StartInterval: Int64?
        public var Retries: Int?
        public init(Test: [String]? = nil) { self.Test = Test }
    }

    public struct EmptyObject: Codable, Sendable, Hashable { public init() {} }

    public init(platform: Platform, diffIDs: [Digest], config: ContainerConfig? = nil, created: String? = nil) {
        self.architecture = platform.architecture
        self.os = platform.os
        self.variant = platform.variant
        self.rootfs = RootFS(diffIDs: diffIDs)
        self.config = config
        self.created = created
    }

    /// Chain IDs of the layers (OCI image spec): ChainID(L0) = DiffID(L0),
    /// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
    public var chainIDs: [Digest] { ImageConfig.chainIDs(rootfs.diff_ids) }

    public static func chainIDs(_ diffIDs: [Digest]) -> [Digest] {
        var result: [Digest] = []
        for d in diffIDs {
            if let last = result.last {
                result.append(Digest.sha256(Array("\(last) \(d)".utf8)))
            } else {
                result.append(d)
            }
        }
        return result
    }
}

/// What a manifest request returned: raw bytes (kept verbatim: the digest is over them) and the parsed form.
public enum ManifestDocument: Sendable {
    case manifest(Manifest)
    case index(Index)

    static func parse(_ bytes: [UInt8], mediaType declared: String?, what: String) throws(ImageError)
        -> ManifestDocument
    {
        struct Probe: Decodable {
            var mediaType: String?; var manifests: [Descriptor]?; var config: Descriptor?; var schemaVersion: Int?
        }
        let probe: Probe
        do { probe = try ImageCoding.decode(Probe.self, bytes) } catch { throw .invalidManifest(what, "\(error)") }
        let type = probe.mediaType ?? declared ?? ""
        if probe.schemaVersion == 1 || type.contains("distribution.manifest.v1") {
            throw .unsupportedMediaType(type.isEmpty ? "docker schema1" : type, what: what)
        }
        if MediaType.indexes.contains(type) || (type.isEmpty || type == "application/json") && probe.manifests != nil {
            do { return .index(try ImageCoding.decode(Index.self, bytes)) } catch {
                throw .invalidManifest(what, "\(error)")
            }
        }
        if MediaType.manifests.contains(type) || (type.isEmpty || type == "application/json") && probe.config != nil {
            do {
                var m = try ImageCoding.decode(Manifest.self, bytes)
                if m.mediaType == nil {
                    m.mediaType = MediaType.manifests.contains(type) ? type : MediaType.ociManifest
                }
                return .manifest(m)
            } catch { throw .invalidManifest(what, "\(error)") }
        }
        throw .unsupportedMediaType(type.isEmpty ? "(none)" : type, what: what)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthEngine
import BerthImage
import BerthJSON
import BerthOS
import FoundationEssentials
import GRPCCore

/// One image as the CRI lists it: an image ID (the config digest) with every name it goes by, split
/// into tags and repository digests, as containerd reports them.
struct CRIImage {
    let id: String
    let records: [ImageRecord]

    var repoTags: [String] {
        records.map(\.name).filter { !$0.contains("@") }.sorted()
    }

    /// `<repository>@<digest pulled>` for each name (the index digest when one was pulled through).
    var repoDigests: [String] {
        Array(
            Set(
                records.compactMap { record -> String? in
                    guard let reference = try? Reference(parsing: record.name) else { return nil }
                    return "\(reference.name)@\(record.indexDigest ?? record.manifestDigest)"
                })
        ).sorted()
    }

    var message: Runtime_V1_Image {
        var image = Runtime_V1_Image()
        image.id = id
        image.repoTags = repoTags
        image.repoDigests = repoDigests
        image.size = UInt64(records.first?.size ?? 0)
        return image
    }

    /// Every image in the store, grouped by ID.
    static func all(_ store: ContentStore) -> [CRIImage] {
        Dictionary(grouping: store.images(), by: { $0.config.digest.description })
            .map { CRIImage(id: $0.key, records: $0.value) }.sorted { $0.id < $1.id }
    }

    /// The image a CRI ImageSpec names (a reference, an ID or a unique ID prefix), nil if absent.
    static func find(_ text: String, in store: ContentStore) -> CRIImage? {
        guard !text.isEmpty, let record = store.lookup(text) else { return nil }
        let id = record.config.digest.description
        return CRIImage(id: id, records: store.images().filter { $0.config.digest.description == id })
    }
}

extension CRIRuntime {
    /// The image's user, from its config (`uid` or a name), for ImageStatus.
    func imageUser(_ image: CRIImage) -> (uid: Int64?, name: String) {
        guard let record = image.records.first,
            let bytes = try? engine.images.store.readBlob(record.config.digest),
            let config = (try? JSONTreeDecoder.decode(ImageConfig.self, from: bytes))?.config?.User, !config.isEmpty
        else { return (nil, "") }
        let user = config.split(separator: ":", maxSplits: 1).first.map(String.init) ?? config
        if let uid = Int64(user) { return (uid, "") }
        return (nil, user)
    }

    /// PullImage: the reference pulled with the kubelet's credentials when it sends some; answers the
    /// image's ID, as containerd does (the kubelet records it as the container's imageID).
    func pullImage(_ text: String, auth: Runtime_V1_AuthConfig?) async throws(RPCError) -> String {
        let reference: Reference
        do { reference = try Reference(parsing: text) } catch {
            throw CRIError.invalid("failed to pull image \"\(text)\": invalid reference: \(error)")
        }
        var service = engine.images
        var owned = false
        if let auth, let credentials = Self.credentials(auth) {
            var options = engine.images.registry.options
            let registry =
                auth.serverAddress.isEmpty ? reference.registry : RegistryClient.loginRegistry(auth.serverAddress)
            options.credentials.entries[registry] = credentials
            do { service = try ImageService(store: engine.images.store, registryOptions: options) } catch {
                throw CRIError.from(error, "failed to pull image \"\(text)\"")
            }
            owned = true
        }
        let record: ImageRecord
        do { record = try await service.pull(reference) } catch {
            if owned { await service.shutdown() }
            throw CRIError.from(error, "failed to pull and unpack image \"\(reference)\"")
        }
        if owned { await service.shutdown() }
        ImageManagement(engine.images).pulled(record)
        return record.config.digest.description
    }

    /// The kubelet's AuthConfig as credentials: username and password, or `auth` (base64 user:pass), or
    /// an identity token (sent as the password with the `<token>` user, as registries expect it).
    static func credentials(_ auth: Runtime_V1_AuthConfig) -> Credentials? {
        if !auth.username.isEmpty { return Credentials(username: auth.username, password: auth.password) }
        if !auth.auth.isEmpty, let decoded = Data(base64Encoded: auth.auth) {
            let text = String(decoding: decoded, as: UTF8.self)
            let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
            if parts.count == 2 { return Credentials(username: parts[0], password: parts[1]) }
        }
        if !auth.identityToken.isEmpty { return Credentials(username: "<token>", password: auth.identityToken) }
        return nil
    }

    /// RemoveImage: every name of the image and its content nothing else uses. Idempotent.
    func removeImage(_ text: String) async throws(RPCError) {
        guard let image = CRIImage.find(text, in: engine.images.store) else { return }
        do { _ = try await ImageManagement(engine.images).remove(image.id, force: true, prune: true) } catch {
            if case .notFound = error { return }
            throw CRIError.from(error, "failed to remove image \"\(text)\"")
        }
    }

    /// ImageFsInfo: the store's filesystem, with the bytes and inodes of its content (images) and of its
    /// containers' writable layers.
    func imageFilesystemUsage() -> (images: Runtime_V1_FilesystemUsage, containers: Runtime_V1_FilesystemUsage) {
        let root = engine.images.store.root
        let now = Nanoseconds.now()
        func usage(_ path: String) -> Runtime_V1_FilesystemUsage {
            var u = Runtime_V1_FilesystemUsage()
            u.timestamp = now
            u.fsID.mountpoint = path
            u.usedBytes.value = UInt64(max(0, DiskUsage.bytes(path)))
            u.inodesUsed.value = UInt64(max(0, DiskUsage.inodes(path)))
            return u
        }
        return (usage(root + "/snapshots"), usage(root + "/containers"))
    }
}

import BerthOS
import BerthImage
import FoundationEssentials

/// `GET /distribution/{name}/json`: what the registry has under a name — its manifest's descriptor and
/// the platforms it serves — asked of the registry itself, with the client's credentials if it sent some.
extension DockerAPI {
    struct DistributionInspect: Encodable {
        struct DescriptorSection: Encodable { var mediaType: String; var digest: String; var size: Int }
        var Descriptor: DescriptorSection
        var Platforms: [Platform]
    }

    func distributionInspect(_ name: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let reference: Reference
        do { reference = try Reference(parsing: name) } catch {
            throw DockerAPIError.badRequest("invalid reference format: \(name)")
        }
        let service = try registryService(request)
        defer { service.release() }
        let registry = service.images.registry
        let (bytes, mediaType, digest) = try BlockingThread.await { try await registry.fetchManifest(reference) }
        var platforms: [Platform] = []
        if let index = try? JSONDecoder().decode(Index.self, from: Data(bytes)), !index.manifests.isEmpty {
            platforms = index.manifests.compactMap(\.platform)
        } else if let manifest = try? JSONDecoder().decode(Manifest.self, from: Data(bytes)) {
            // A single image: its platform is in its config.
            let configBytes = try BlockingThread.await { try await registry.fetchSmallBlob(reference, manifest.config) }
            if let config = try? JSONDecoder().decode(ImageConfig.self, from: Data(configBytes)), let os = config.os,
                let architecture = config.architecture
            {
                platforms = [Platform(os: os, architecture: architecture, variant: config.variant)]
            }
        }
        let type = mediaType ?? "application/vnd.oci.image.manifest.v1+json"
        response.json(
            DistributionInspect(
                Descriptor: .init(mediaType: type, digest: digest.description, size: bytes.count), Platforms: platforms)
        )
    }
}

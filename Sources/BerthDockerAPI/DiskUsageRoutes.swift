import BerthEngine
import BerthImage

/// `GET /system/df`: what `docker system df` (and `-v`) prints, from BerthEngine's ``DiskUsageReport``.
extension DockerAPI {
    /// A container's summary with the space it takes, as dockerd's df lists containers.
    struct ContainerUsageSummary: Encodable {
        var summary: ContainerSummary
        var SizeRw: Int64
        var SizeRootFs: Int64

        func encode(to encoder: any Encoder) throws {
            try summary.encode(to: encoder)
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(SizeRw, forKey: .SizeRw)
            try c.encode(SizeRootFs, forKey: .SizeRootFs)
        }
        enum Keys: String, CodingKey { case SizeRw, SizeRootFs }
    }

    struct VolumeUsageSummary: Encodable {
        struct Usage: Encodable { var Size: Int64; var RefCount: Int }
        var volume: VolumeResource
        var UsageData: Usage

        func encode(to encoder: any Encoder) throws {
            try volume.encode(to: encoder)
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(UsageData, forKey: .UsageData)
        }
        enum Keys: String, CodingKey { case UsageData }
    }

    struct DiskUsageResponse: Encodable {
        var LayersSize: Int64
        var Images: [ImageSummary]
        var Containers: [ContainerUsageSummary]
        var Volumes: [VolumeUsageSummary]
        var BuildCache: [String] = []
    }

    func diskUsage(_ request: APIRequest, _ response: ResponseWriter) throws {
        let usage = engine.diskUsage()
        // A `type` query (API 1.42) asks for some kinds only; without one, all.
        let types = Set(request.query["type"] ?? [])
        func wanted(_ type: String) -> Bool { types.isEmpty || types.contains(type) }
        let imageSizes = Dictionary(usage.images.map { ($0.records[0].config.digest, $0.size) }) { a, _ in a }
        let images: [ImageSummary] =
            !wanted("image")
            ? []
            : usage.images.map { image -> ImageSummary in
                let config = self.config(image.records[0])
                return ImageSummary(
                    Id: image.records[0].config.digest.description,
                    RepoTags: image.records.map { ImageNames.familiar($0.name) }.sorted(),
                    RepoDigests: Self.repoDigests(image.records),
                    Created: Self.created(config, fallback: image.records[0].stored), Size: image.size, SharedSize: 0,
                    Labels: config?.config?.Labels ?? [:], Containers: image.containers)
            }
        let containers: [ContainerUsageSummary] =
            !wanted("container")
            ? []
            : usage.containers.map { c -> ContainerUsageSummary in
                let base = engine.images.store.image(c.record.imageName).flatMap { imageSizes[$0.config.digest] } ?? 0
                return ContainerUsageSummary(summary: summary(c.record), SizeRw: c.size, SizeRootFs: c.size + base)
            }
        let volumes: [VolumeUsageSummary] =
            !wanted("volume")
            ? []
            : usage.volumes.map {
                VolumeUsageSummary(
                    volume: VolumeResource($0.volume), UsageData: .init(Size: $0.size, RefCount: $0.containers))
            }
        response.json(
            DiskUsageResponse(LayersSize: usage.layersSize, Images: images, Containers: containers, Volumes: volumes))
    }
}

import BerthImage
import BerthOS

/// Disk space a directory tree takes (st_blocks, hard links counted once), as `du -s` in bytes; 0 when
/// it cannot be measured.
public enum DiskUsage {
    public static func bytes(_ path: String) -> Int64 {
        let output = try? ChildProcess.run(
            "/usr/bin/du", arguments: ["du", "-s", "-B1", "--", path], environment: ["PATH=/usr/bin:/bin"])
        return output.flatMap { Int64($0.stdoutText.split(separator: "\t").first ?? "") } ?? 0
    }

    /// Inodes a directory tree takes (`du -s --inodes`); 0 when it cannot be measured.
    public static func inodes(_ path: String) -> Int64 {
        let output = try? ChildProcess.run(
            "/usr/bin/du", arguments: ["du", "-s", "--inodes", "--", path], environment: ["PATH=/usr/bin:/bin"])
        return output.flatMap { Int64($0.stdoutText.split(separator: "\t").first ?? "") } ?? 0
    }
}

/// What `system df` reports: each image, container and volume with the space it takes and whether
/// something uses it. Measured once here for the `berth` CLI and the Docker API alike.
public struct DiskUsageReport: Sendable {
    public struct ImageUsage: Sendable {
        public var records: [ImageRecord]
        public var size: Int64
        /// Containers made from it.
        public var containers: Int
    }
    public struct ContainerUsage: Sendable {
        public var record: ContainerRecord
        /// What the container wrote (its upper directory).
        public var size: Int64
    }
    public struct VolumeUsage: Sendable {
        public var volume: VolumeRecord
        public var size: Int64
        /// Containers mounting it.
        public var containers: Int
    }

    /// One entry per image ID, its names together (as docker lists an image once).
    public var images: [ImageUsage]
    public var containers: [ContainerUsage]
    public var volumes: [VolumeUsage]
    /// Every stored blob once, however many images share it (docker's LayersSize).
    public var layersSize: Int64
}

extension Engine {
    public func diskUsage() -> DiskUsageReport {
        let containers = list()
        var byID: [Digest: [ImageRecord]] = [:]
        for record in images.store.images() { byID[record.config.digest, default: []].append(record) }
        let imageUsage = byID.values.map { records in
            let names = Set(records.map(\.name))
            return DiskUsageReport.ImageUsage(
                records: records, size: records[0].size,
                containers: containers.filter { names.contains($0.imageName) }.count)
        }.sorted { $0.records[0].stored > $1.records[0].stored }
        let containerUsage = containers.map {
            DiskUsageReport.ContainerUsage(record: $0, size: DiskUsage.bytes(layout.container($0.id) + "/upper"))
        }
        let mounts = containers.flatMap { $0.configuration.mounts.filter { $0.type == .volume }.map(\.source) }
        let volumeUsage = volumes.list().map { volume in
            DiskUsageReport.VolumeUsage(
                volume: volume, size: DiskUsage.bytes(volume.Mountpoint),
                containers: mounts.filter { $0 == volume.Name }.count)
        }
        let layers = images.store.blobs().reduce(Int64(0)) { $0 + (images.store.blobSize($1) ?? 0) }
        return DiskUsageReport(images: imageUsage, containers: containerUsage, volumes: volumeUsage, layersSize: layers)
    }
}

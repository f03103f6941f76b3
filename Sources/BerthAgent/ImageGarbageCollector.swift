#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthKube
import Foundation

/// The kubelet's image garbage collection: every `imageGCInterval`, when the filesystem holding the
/// runtime's images is fuller than `imageGCHighThresholdPercent`, unused images (no container of any
/// state refers to them) that have been unused for at least `imageMinimumGCAge` are removed through
/// the CRI, least recently used first, until usage falls to `imageGCLowThresholdPercent`. Image sizes
/// are the runtime's; the filesystem's use is statvfs's, as cAdvisor reads it.
extension NodeAgent {
    /// When each image was last seen in use (or first seen at all), by image ID.
    actor ImageUse {
        private var lastUsed: [String: ContinuousClock.Instant] = [:]

        func record(_ images: [Runtime_V1_Image], inUse: Set<String>, now: ContinuousClock.Instant) {
            let present = Set(images.map(\.id))
            lastUsed = lastUsed.filter { present.contains($0.key) }
            for image in images where inUse.contains(image.id) || lastUsed[image.id] == nil {
                lastUsed[image.id] = now
            }
        }

        func lastUse(_ id: String) -> ContinuousClock.Instant? { lastUsed[id] }
    }

    func collectImages() async {
        while !Task.isCancelled {
            do { try await collectImagesOnce() } catch {
                logger.notice("image garbage collection failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.imageGCInterval)
        }
    }

    /// One pass; returns the bytes it freed.
    @discardableResult
    func collectImagesOnce() async throws -> UInt64 {
        let images = try await cri.images.listImages(Runtime_V1_ListImagesRequest()).images
        let containers = try await cri.runtime.listContainers(Runtime_V1_ListContainersRequest()).containers
        // A container names its image by ID, by a digest reference or by a tag: any of them keeps it.
        var inUse = Set(containers.map(\.imageRef))
        inUse.formUnion(containers.map(\.imageID))
        inUse.formUnion(containers.map(\.image.image))
        let used = Set(
            images.filter { image in
                inUse.contains(image.id) || image.repoTags.contains(where: inUse.contains)
                    || image.repoDigests.contains(where: inUse.contains)
            }.map(\.id))
        let now = ContinuousClock.now
        await imageUse.record(images, inUse: used, now: now)

        let filesystems = try await cri.images.imageFsInfo(Runtime_V1_ImageFsInfoRequest()).imageFilesystems
        guard let mountpoint = filesystems.first?.fsID.mountpoint else { return 0 }
        var fs = statvfs()
        guard statvfs(mountpoint, &fs) == 0, fs.f_blocks > 0 else { return 0 }
        let capacity = UInt64(fs.f_blocks) * UInt64(fs.f_frsize)
        let available = UInt64(fs.f_bavail) * UInt64(fs.f_frsize)
        let usage = Int((capacity - min(capacity, available)) * 100 / capacity)
        guard usage >= configuration.imageGCHighThresholdPercent else { return 0 }
        let target = capacity * UInt64(configuration.imageGCLowThresholdPercent) / 100
        let inUseBytes = capacity - min(capacity, available)
        let toFree = inUseBytes > target ? inUseBytes - target : 0
        var candidates: [(image: Runtime_V1_Image, lastUsed: ContinuousClock.Instant)] = []
        for image in images where !used.contains(image.id) && !image.pinned {
            guard let last = await imageUse.lastUse(image.id), now - last >= configuration.imageMinimumGCAge else {
                continue
            }
            candidates.append((image, last))
        }
        var freed: UInt64 = 0
        for (image, _) in candidates.sorted(by: { $0.lastUsed < $1.lastUsed }) where freed < toFree || toFree == 0 {
            var remove = Runtime_V1_RemoveImageRequest()
            remove.image.image = image.id
            do {
                _ = try await cri.images.removeImage(remove)
                freed += image.size
                logger.info("removed unused image", metadata: ["image": "\(image.repoTags.first ?? image.id)"])
            } catch {
                logger.notice("removing unused image \(image.id)", metadata: ["error": "\(NodeAgent.message(error))"])
            }
        }
        if freed < toFree {
            var node = CoreV1.Node()
            node.metadata.name = configuration.nodeName
            node.metadata.uid = configuration.nodeName
            recorder.record(
                node, type: "Warning", reason: "FreeDiskSpaceFailed",
                message:
                    "Failed to garbage collect required amount of images. Attempted to free \(toFree) bytes, but only found \(freed) bytes eligible to free."
            )
        }
        return freed
    }
}

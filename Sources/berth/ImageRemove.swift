import ArgumentParser
import BerthImage

/// `berth rmi IMAGE…`: removes names; unreferenced content goes at once (docker's behaviour) unless --no-prune.
struct ImageRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rmi", abstract: "Remove one or more images.")

    @OptionGroup var options: ImageOptions
    @Flag(name: .customLong("no-prune"), help: "Keep blobs and snapshots no other image uses.")
    var noPrune = false
    @Argument(help: "Images (reference or ID).")
    var images: [String]

    func run() async throws {
        try await withImageService(options) { service in
            for image in images {
                guard let record = service.store.lookup(image) else { throw ImageError.notFound("image \(image)") }
                try await service.remove(image)
                imageEvent(service, "untag", record.name)
                print("Untagged: \(record.name)")
            }
            if !noPrune {
                let result = try service.store.collectGarbage()
                for blob in result.removedBlobs { print("Deleted: \(blob)") }
                if !result.removedBlobs.isEmpty { imageEvent(service, "delete", images.joined(separator: ",")) }
            }
        }
    }
}

/// `berth image rm`.
struct ImageRm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more images.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .customLong("no-prune"), help: "Keep blobs and snapshots no other image uses.") var noPrune = false
    @Argument(help: "Images (reference or ID).") var images: [String]

    func run() async throws {
        var remove = ImageRemove()
        remove.options = options
        remove.noPrune = noPrune
        remove.images = images
        try await remove.run()
    }
}

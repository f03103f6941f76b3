import ArgumentParser
import BerthEngine
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
            let management = ImageManagement(service)
            for image in images {
                for removal in try await management.remove(image, force: false, prune: !noPrune) {
                    switch removal {
                    case .untagged(let name): print("Untagged: \(name)")
                    case .deleted(let id): print("Deleted: \(id)")
                    }
                }
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

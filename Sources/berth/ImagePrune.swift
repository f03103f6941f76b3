import ArgumentParser
import BerthImage

/// `berth image prune`: garbage-collects blobs and snapshots no image or container references.
struct ImagePrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove unreferenced content.")

    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Do not ask (accepted for docker compatibility).")
    var force = false

    func run() async throws {
        let result = try await withImageService(options) { try $0.store.collectGarbage() }
        for blob in result.removedBlobs { print("deleted: \(blob)") }
        for snapshot in result.removedSnapshots { print("deleted snapshot: \(snapshot)") }
        print("Total reclaimed space: \(humanSize(result.reclaimedBytes))")
    }
}

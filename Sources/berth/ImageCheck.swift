import ArgumentParser
import BerthImage

/// `berth image check`: verifies every blob against its digest and every image's blobs and snapshots.
struct ImageCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Verify the image store.")

    @OptionGroup var options: ImageOptions
    @Flag(help: "Skip re-hashing blob contents.") var fast = false

    func run() async throws {
        let problems = try await withImageService(options) { $0.store.check(verifyContent: !fast) }
        if problems.isEmpty {
            print("store consistent")
            return
        }
        for p in problems { print(p) }
        throw ExitCode(1)
    }
}

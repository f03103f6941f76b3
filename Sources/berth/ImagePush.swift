import ArgumentParser
import BerthEngine
import BerthImage

/// `berth push IMAGE [DESTINATION]`.
struct ImagePush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "push", abstract: "Push an image to a registry.")

    @OptionGroup var options: ImageOptions
    @Argument var image: String
    @Argument(help: "Push under another name (default: the image's own).") var destination: String?

    func run() async throws {
        try await withImageService(options) { service in
            let target = try destination.map { try Reference(parsing: $0) }
            try await ImageManagement(service).push(
                image, to: target,
                events: { event in
                    if case .started = event { return }
                    print(event)
                })
        }
    }
}

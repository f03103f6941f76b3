import ArgumentParser
import BerthImage
import FoundationEssentials

/// `berth image inspect IMAGE…`: the stored record and the image configuration, as JSON.
struct ImageInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show details of images.")

    @OptionGroup var options: ImageOptions
    @Argument var images: [String]

    func run() async throws {
        let documents: [String] = try await withImageService(options) { service in
            try images.map { name in
                guard let record = service.store.lookup(name) else { throw ImageError.notFound("image \(name)") }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let recordJSON = String(decoding: try encoder.encode(record), as: UTF8.self)
                let config = String(decoding: try service.store.readBlob(record.config.digest), as: UTF8.self)
                return
                    "{\n  \"Id\": \"\(record.config.digest)\",\n  \"Record\": \(recordJSON.split(separator: "\n").joined(separator: "\n  ")),\n  \"Config\": \(config)\n}"
            }
        }
        print("[" + documents.joined(separator: ",\n") + "]")
    }
}

import ArgumentParser
import BerthImage

/// `berth image import FILE REF`: a root filesystem tar (plain, gzip or zstd) as a one-layer image.
struct ImageImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import a rootfs tarball as an image.")

    @OptionGroup var options: ImageOptions
    @Argument(help: "Tar file(s); several make several layers, lowest first.") var files: [String]
    @Option(name: .shortAndLong, help: "Name for the image.") var tag: String

    func run() async throws {
        let record = try await withImageService(options) { try await $0.importLayers(files, name: tag) }
        print(record.config.digest)
    }
}

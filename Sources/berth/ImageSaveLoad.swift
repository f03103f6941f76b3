import ArgumentParser
import BerthEngine
import BerthImage
#if canImport(Glibc)
import Glibc
#endif

/// `berth save -o FILE IMAGE…`: an OCI layout tar that is also a docker-archive (manifest.json).
/// `-o DIR/` with a trailing slash writes the layout as a directory.
struct ImageSave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save", abstract: "Save images to a tar archive (stdout by default).")

    @OptionGroup var options: ImageOptions
    @Option(name: .shortAndLong, help: "Output file; a path ending in / writes an OCI layout directory.") var output:
        String?
    @Argument var images: [String]

    func run() async throws {
        try await withImageService(options) { service in
            if let output, output.hasSuffix("/") {
                try service.exportLayout(images, to: String(output.dropLast()))
                return
            }
            var fd: Int32 = 1
            if let output {
                fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw ImageError.notFound(output) }
            } else if isatty(1) == 1 {
                throw ValidationError("refusing to write an archive to a terminal; use -o FILE")
            }
            defer { if fd != 1 { close(fd) } }
            try ImageManagement(service).save(images, to: fd)
        }
    }
}

/// `berth load -i FILE`: OCI layout (tar or directory) or docker-archive.
struct ImageLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load", abstract: "Load images from an archive or OCI layout.")

    @OptionGroup var options: ImageOptions
    @Option(name: .shortAndLong, help: "Archive file or OCI layout directory.") var input: String

    func run() async throws {
        let records = try await withImageService(options) { try await ImageManagement($0).load(from: input) }
        for r in records { print("Loaded image: \(r.name)") }
    }
}

/// `berth tag SOURCE TARGET`.
struct ImageTag: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tag", abstract: "Give an image another name.")

    @OptionGroup var options: ImageOptions
    @Argument var source: String
    @Argument var target: String

    func run() async throws {
        try await withImageService(options) { service in
            try await ImageManagement(service).tag(source, target)
        }
    }
}

/// `berth image unpack LAYER DIR`: applies one layer tar to a directory (benchmarks, debugging).
struct ImageUnpack: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpack", abstract: "Apply a layer tar (plain/gzip/zstd) to a directory.",
        shouldDisplay: false)

    @Argument var layer: String
    @Argument var directory: String

    func run() async throws {
        do { try LayerFiles.apply(layer, to: directory) } catch { throw failure(error) }
    }
}

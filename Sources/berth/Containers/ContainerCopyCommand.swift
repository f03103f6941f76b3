import ArgumentParser
import BerthEngine

/// `berth cp [-a] [-L] CONTAINER:SRC DEST|-` and `berth cp [-a] SRC|- CONTAINER:DEST`: files both ways,
/// contained in the container's filesystem (see BerthEngine.ContainerCopy).
struct ContainerCopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp", abstract: "Copy files/folders between a container and the local filesystem.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Archive mode (copy all uid/gid information).") var archive = false
    @Flag(name: [.customShort("L"), .customLong("follow-link")], help: "Always follow symbol link in SRC_PATH.")
    var followLink = false
    @Argument(help: "CONTAINER:SRC_PATH, a local path, or - for a tar stream on stdin.") var source: String
    @Argument(help: "CONTAINER:DEST_PATH, a local path, or - for a tar stream on stdout.") var destination: String

    /// `name:/path` → (name, /path); a local path (with a slash before any colon, or none) → nil.
    static func split(_ text: String) -> (container: String, path: String)? {
        guard let colon = text.firstIndex(of: ":"), !text[..<colon].contains("/"), colon != text.startIndex else {
            return nil
        }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    func run() async throws {
        let from = Self.split(source), to = Self.split(destination)
        switch (from, to) {
        case (let from?, nil):
            try await withEngine(options) { engine in
                try ContainerCopy(engine: engine).copyOut(
                    from.container, from: from.path, to: destination, followLink: followLink)
            }
        case (nil, let to?):
            try await withEngine(options) { engine in
                try ContainerCopy(engine: engine).copyIn(to.container, from: source, to: to.path, archive: archive)
            }
        case (_?, _?):
            throw ValidationError("copying between containers is not supported")
        case (nil, nil):
            throw ValidationError("must specify at least one container source")
        }
    }
}

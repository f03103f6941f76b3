import ArgumentParser
import BerthImage

/// `berth images`: REPOSITORY TAG IMAGE ID CREATED SIZE, as docker prints them.
struct ImageList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "images", abstract: "List images.")

    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Only show image IDs.")
    var quiet = false
    @Flag(help: "Show manifest digests.")
    var digests = false

    func run() async throws {
        let records = try await withImageService(options) { $0.store.images() }
        if quiet {
            var seen = Set<String>()
            for r in records where seen.insert(r.config.digest.shortID).inserted { print(r.config.digest.shortID) }
            return
        }
        var rows = [["REPOSITORY", "TAG"] + (digests ? ["DIGEST"] : []) + ["IMAGE ID", "CREATED", "SIZE"]]
        for r in records {
            let ref = try? Reference(parsing: r.name)
            var repository = ref.map { Reference(registry: $0.registry, repository: $0.repository).familiar } ?? r.name
            if repository.hasSuffix(":latest") && ref?.tag == nil { repository = String(repository.dropLast(7)) }
            rows.append(
                [repository, ref?.tag ?? "<none>"] + (digests ? [r.manifestDigest.description] : [])
                    + [r.config.digest.shortID, humanAge(r.stored), humanSize(r.size)])
        }
        printTable(rows)
    }
}

func printTable(_ rows: [[String]]) {
    guard let first = rows.first else { return }
    var widths = first.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    for row in rows {
        var line = ""
        for (i, cell) in row.enumerated() { line += i == row.count - 1 ? cell : pad(cell, widths[i]) }
        print(line)
    }
}

/// `berth image ls` (docker's spelling under the `image` noun).
struct ImageLs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List images.", aliases: ["list"])
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Only show image IDs.") var quiet = false
    @Flag(help: "Show manifest digests.") var digests = false

    func run() async throws {
        var list = ImageList()
        list.options = options
        list.quiet = quiet
        list.digests = digests
        try await list.run()
    }
}

#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthRuntime
import FoundationEssentials

struct SpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spec", abstract: "Write a default config.json in the bundle.")
    @Option(name: [.customShort("b"), .long]) var bundle = "."
    @Flag(name: .long, help: "A config for a container run without root (user namespace).") var rootless = false

    func run() {
        runOrExit { () throws(RuntimeError) in
            let path = bundle + "/config.json"
            if access(path, F_OK) == 0 { throw .other("File \(path) exists. Remove it first") }
            let spec = rootless ? DefaultSpec.rootless(uid: getuid(), gid: getgid()) : DefaultSpec.make()
            let text = try JSONText.encode(spec, pretty: true)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            guard fd >= 0 else { throw .other("cannot write \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let line = text + "\n"
            _ = line.withCString { write(fd, $0, strlen($0)) }
        }
    }
}

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the runtime-spec features document.")
    func run() {
        runOrExit { () throws(RuntimeError) in print(try JSONText.encode(RuntimeFeatures.document(), pretty: true)) }
    }
}

enum JSONText {
    static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws(RuntimeError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.withoutEscapingSlashes]
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) } catch {
            throw .other("encoding JSON: \(error)")
        }
    }
}

/// Columns padded like Go's tabwriter in runc's `list`.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for row in rows {
            for (i, cell) in row.enumerated() {
                out += i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count + 4)
            }
            out += "\n"
        }
        return out
    }
}

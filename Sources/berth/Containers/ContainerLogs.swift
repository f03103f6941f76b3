import ArgumentParser
import BerthEngine
import BerthOS
#if canImport(Glibc)
import Glibc
#endif

/// `berth logs [-f] [--since] [--until] [--tail N] [-t] CONTAINER`: stdout entries to stdout, stderr to stderr.
struct ContainerLogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Fetch the logs of a container.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Follow log output.") var follow = false
    @Option(help: "Show logs since a timestamp (RFC 3339 or Unix seconds) or a relative time (42m).") var since: String?
    @Option(help: "Show logs before a timestamp or relative time.") var until: String?
    @Option(
        name: [.customShort("n"), .customLong("tail")],
        help: "Number of lines to show from the end of the logs (or all).") var tail = "all"
    @Flag(name: .shortAndLong, help: "Show timestamps.") var timestamps = false
    @Argument(help: "Container.") var container: String

    func run() async throws {
        var readOptions = LogReader.Options()
        readOptions.follow = follow
        readOptions.since = try since.map { try Self.time($0, option: "since") }
        readOptions.until = try until.map { try Self.time($0, option: "until") }
        if tail != "all" {
            guard let n = Int(tail) else { throw ValidationError("invalid value for --tail: \(tail)") }
            if n >= 0 { readOptions.tail = n }
        }
        let stamps = timestamps
        try await withEngine(options) { engine in
            try LogReader(engine: engine).read(container, options: readOptions) { entry in
                var bytes = entry.bytes
                if stamps { bytes = Array((entry.time + " ").utf8) + bytes }
                writeAll(entry.stream == "stderr" ? 2 : 1, bytes)
            }
        }
    }

    /// docker's forms: RFC 3339 (with or without zone), Unix seconds with fractions, or a Go duration ago.
    static func time(_ text: String, option: String) throws -> Double {
        if let t = Timestamp.parse(text) { return Double(t.seconds) + Double(t.nanoseconds) / 1e9 }
        if let t = Timestamp.parse(text + "Z") { return Double(t.seconds) + Double(t.nanoseconds) / 1e9 }
        if let seconds = Double(text) { return seconds }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        if let ago = try? RunOptionParser.parseDuration(text) {
            return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 - Double(ago) / 1e9
        }
        throw ValidationError(
            "invalid value for \"--\(option)\": failed to parse value as time or duration: \"\(text)\"")
    }
}

/// `berth inspect CONTAINER…` (containers; images through `berth image inspect`), docker's JSON.
struct ContainerInspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Return low-level information on containers.")
    @OptionGroup var options: ImageOptions
    @Option(name: .shortAndLong, help: "Format the output using a Go-template subset ({{.State.Status}}, {{json .}}).")
    var format: String?
    @Argument(help: "Containers.") var containers: [String]

    func run() async throws {
        let (values, failures): ([ContainerInspect], [String]) = try await withEngine(options) { engine in
            var values: [ContainerInspect] = []
            var failures: [String] = []
            for name in containers {
                do { values.append(ContainerInspect(try engine.lookup(name), layout: engine.layout)) } catch {
                    failures.append("Error: No such object: \(name)")
                }
            }
            return (values, failures)
        }
        if let format {
            for value in values { print(try renderInspect(format, value)) }
        } else {
            print(ContainerInspect.render(values))
        }
        for f in failures { printError(f) }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

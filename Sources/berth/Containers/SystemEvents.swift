import ArgumentParser
import BerthEngine
import BerthOS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `berth events [--since] [--until] [--filter K=V] [--format json|TEMPLATE]`: docker's event stream,
/// from the engine's event log (past events with --since; followed until --until or ^C).
struct SystemEventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Get real time events from the server.")
    @OptionGroup var options: ImageOptions
    @Option(help: "Show all events created since timestamp.") var since: String?
    @Option(help: "Stream events until this timestamp.") var until: String?
    @Option(name: .shortAndLong, help: "Filter output (type=, event=, container=, image=, network=, volume=, label=).")
    var filter: [String] = []
    @Option(help: "Format output: json or a Go-template subset ({{.Action}} {{.Actor.ID}}).") var format: String?

    func run() async throws {
        var selection = EventLog.Filter()
        for f in filter {
            let parts = f.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("bad format of filter (expected name=value)") }
            guard ["type", "event", "container", "image", "network", "volume", "label"].contains(parts[0]) else {
                throw ValidationError("invalid filter '\(parts[0])'")
            }
            selection.values[parts[0], default: []].append(parts[1])
        }
        let sinceTime = try since.map { try ContainerLogsCommand.time($0, option: "since") }
        let untilTime = try until.map { try ContainerLogsCommand.time($0, option: "until") }
        let template = format
        var failure: (any Error)?
        try await withEngine(options) { engine in
            engine.events.read(
                since: sinceTime, until: untilTime, filter: selection,
                emit: { event in
                    do {
                        switch template {
                        case nil: print(Self.line(event))
                        case "json"?: print(String(decoding: try JSONEncoderLite.encode(event), as: UTF8.self))
                        case let t?: print(try renderInspect(t, event))
                        }
                        fflush(nil)
                    } catch { failure = error }
                }, shouldStop: { failure != nil })
        }
        if let failure { throw failure }
    }

    /// docker's default line: `2026-12-03T12:00:00.123456789Z container start ID (image=…, name=…)`.
    static func line(_ e: EngineEvent) -> String {
        let seconds = e.timeNano / 1_000_000_000, nanos = e.timeNano % 1_000_000_000
        var stamp = Timestamp.format(seconds: seconds, nanoseconds: 0)
        stamp.removeLast()
        var fraction = String(nanos)
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        let attributes = e.Actor.Attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
            separator: ", ")
        return "\(stamp).\(fraction)Z \(e.Type) \(e.Action) \(e.Actor.ID)"
            + (attributes.isEmpty ? "" : " (\(attributes))")
    }
}

enum JSONEncoderLite {
    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}

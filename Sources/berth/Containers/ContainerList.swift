import ArgumentParser
import BerthEngine
import BerthOS
import BerthImage
#if canImport(Glibc)
import Glibc
#endif

/// `berth ps` (and `berth container ls`).
struct ContainerListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List containers.")
    @OptionGroup var list: ContainerListOptions
    func run() async throws { try await list.execute() }
}

/// docker ps's columns, `-a`, `-q`, `--filter`, `--format json|{{.Field}}`, `--no-trunc`, `-l`, `-n`.
struct ContainerListOptions: ParsableArguments {
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Show all containers (default shows just running).") var all = false
    @Flag(name: .shortAndLong, help: "Only display container IDs.") var quiet = false
    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.") var noTrunc = false
    @Flag(name: .shortAndLong, help: "Show the latest created container.") var latest = false
    @Option(name: .customShort("n"), help: "Show n last created containers.") var last: Int?
    @Option(name: .shortAndLong, help: "Filter output (name=, id=, status=, label=, exited=, ancestor=).") var filter:
        [String] = []
    @Option(help: "Format output: table, json, or a Go-template subset ({{.ID}} {{.Names}} …).") var format: String?

    func execute() async throws {
        var records: [ContainerRecord] = try await withEngine(options) { $0.list() }
        if !all && last == nil && !latest { records = records.filter { $0.state.running } }
        for f in filter {
            let parts = f.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("bad format of filter (expected name=value)") }
            let (key, value) = (parts[0], parts[1])
            switch key {
            case "name": records = records.filter { $0.name.contains(value) }
            case "id": records = records.filter { $0.id.hasPrefix(value) }
            case "status": records = records.filter { $0.state.status.rawValue == value }
            case "exited": records = records.filter { $0.state.status == .exited && String($0.state.exitCode) == value }
            case "ancestor":
                records = records.filter {
                    $0.imageReference == value || $0.imageName == value || $0.imageID.contains(value)
                }
            case "label":
                let kv = value.split(separator: "=", maxSplits: 1).map(String.init)
                records = records.filter { r in
                    guard let v = r.configuration.labels[kv[0]] ?? r.imageConfig?.Labels?[kv[0]] else { return false }
                    return kv.count == 1 || v == kv[1]
                }
            default: throw ValidationError("invalid filter '\(key)'")
            }
        }
        if latest { records = Array(records.prefix(1)) }
        if let last { records = Array(records.prefix(last)) }
        if quiet {
            for r in records { print(noTrunc ? r.id : r.shortID) }
            return
        }
        var rows = records.map { row($0) }
        for index in rows.indices { rows[index]["CreatedAgo"] = rows[index]["RunningFor"]! + " ago" }
        try printRows(
            rows, format: format,
            columns: [
                "CONTAINER ID": "ID", "IMAGE": "Image", "COMMAND": "Command", "CREATED": "CreatedAgo",
                "STATUS": "Status", "PORTS": "Ports", "NAMES": "Names",
            ])
    }

    func row(_ r: ContainerRecord) -> [String: String] {
        var command = ([r.path] + r.args).joined(separator: " ")
        if !noTrunc && command.count > 20 { command = String(command.prefix(19)) + "…" }
        let created = Timestamp.parse(r.created)?.seconds ?? 0
        let ports =
            r.state.running
            ? r.publishedPorts.map {
                "\($0.hostIP.isEmpty ? "0.0.0.0" : $0.hostIP):\($0.hostPort)->\($0.containerPort)/\($0.proto)"
            }.joined(separator: ", ") : ""
        var image = r.imageReference
        if let ref = try? Reference(parsing: r.imageReference), image.count > 0 {
            image =
                ref.familiar.hasSuffix(":latest") && !r.imageReference.hasSuffix(":latest")
                ? String(ref.familiar.dropLast(7)) : ref.familiar
        }
        return [
            "ID": noTrunc ? r.id : r.shortID, "Image": image, "Command": "\"\(command)\"",
            "CreatedAt": r.created, "RunningFor": humanDuration(max(0, Int(Glibc.time(nil)) - created)),
            "Status": r.statusText, "State": r.state.status.rawValue, "Ports": ports, "Names": r.name,
            "Labels": r.configuration.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
                separator: ","),
            "Mounts": "", "Networks": r.networks.map(\.network).joined(separator: ","), "Size": "", "LocalVolumes": "0",
        ]
    }
}

/// A listing as docker prints one: a table of `columns` (header → field), one JSON object a row, or a
/// Go-template line a row.
func printRows(_ rows: [[String: String]], format: String?, columns: KeyValuePairs<String, String>) throws {
    switch format {
    case nil, "table":
        printTable([columns.map(\.key)] + rows.map { row in columns.map { row[$0.value] ?? "" } })
    case "json":
        for r in rows { print(jsonObject(r)) }
    case let template?:
        for r in rows { print(try renderTemplate(template, r)) }
    }
}

/// `{"Command":"…","ID":"…",…}` for `--format json` (docker's keys, sorted).
func jsonObject(_ fields: [String: String]) -> String {
    func escape(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            default:
                if scalar.value < 0x20 {
                    out += String(format4(scalar.value))
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
    func format4(_ v: UInt32) -> String {
        let hex = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
    return "{"
        + fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\(escape($0.value))\"" }.joined(separator: ",") + "}"
}

/// The Go-template subset docker users type for listings: `{{.Field}}`, `{{json .}}`, literal text,
/// `\t`, and a `table` prefix (the columns are ours).
func renderTemplate(_ template: String, _ fields: [String: String]) throws -> String {
    try expandTemplate(template.hasPrefix("table ") ? String(template.dropFirst(6)) : template) { action, _ in
        if action == "." { return jsonObject(fields) }
        guard action.hasPrefix("."), let value = fields[String(action.dropFirst())] else {
            throw ValidationError("template: can't evaluate field \(action)")
        }
        return value
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

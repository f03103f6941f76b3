import ArgumentParser
import BerthEngine
import BerthOS
#if canImport(Glibc)
import Glibc
#endif

/// `berth stats [--no-stream] [-a] [CONTAINER…]`: docker's columns, refreshed every second.
struct ContainerStatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Display a live stream of container(s) resource usage statistics.")
    @OptionGroup var options: ImageOptions
    @Flag(name: .shortAndLong, help: "Show all containers (default shows just running).") var all = false
    @Flag(name: .customLong("no-stream"), help: "Disable streaming stats and only pull the first result.")
    var noStream = false
    @Flag(name: .customLong("no-trunc"), help: "Do not truncate output.") var noTrunc = false
    @Option(help: "Format output: table, json, or {{.Field}} templates.") var format: String?
    @Argument(help: "Containers (default: all running).") var containers: [String] = []

    func run() async throws {
        try await withEngine(options) { engine in
            var previous: [String: StatsSample] = [:]
            var first = true
            while true {
                let records =
                    containers.isEmpty
                    ? engine.list().filter { all || $0.state.running } : try containers.map { try engine.lookup($0) }
                var now: [String: StatsSample] = [:]
                for r in records { now[r.id] = (try? engine.stats(r.id)) ?? StatsSample() }
                if first {
                    // docker's CPU % needs two readings: take the second a second later.
                    previous = now
                    first = false
                    try await Task.sleep(for: .seconds(1))
                    continue
                }
                var rows: [[String: String]] = []
                for r in records {
                    let s = now[r.id] ?? StatsSample()
                    let memoryPercent = s.memoryLimit > 0 ? Double(s.memoryUsage) / Double(s.memoryLimit) * 100 : 0
                    rows.append([
                        "ID": noTrunc ? r.id : r.shortID, "Container": noTrunc ? r.id : r.shortID, "Name": r.name,
                        "CPUPerc": String(format2(s.cpuPercent(since: previous[r.id]))) + "%",
                        "MemUsage": "\(binarySize(s.memoryUsage)) / \(binarySize(s.memoryLimit))",
                        "MemPerc": format2(memoryPercent) + "%",
                        "NetIO": "\(humanSize(Int64(s.networkReceived))) / \(humanSize(Int64(s.networkSent)))",
                        "BlockIO": "\(humanSize(Int64(s.blockRead))) / \(humanSize(Int64(s.blockWritten)))",
                        "PIDs": String(s.pids),
                    ])
                }
                if !noStream && isatty(1) == 1 { print("\u{1b}[2J\u{1b}[H", terminator: "") }
                try printRows(
                    rows, format: format,
                    columns: [
                        "CONTAINER ID": "ID", "NAME": "Name", "CPU %": "CPUPerc", "MEM USAGE / LIMIT": "MemUsage",
                        "MEM %": "MemPerc", "NET I/O": "NetIO", "BLOCK I/O": "BlockIO", "PIDS": "PIDs",
                    ])
                if noStream { return }
                previous = now
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// 1.5MiB style sizes (docker stats prints memory in binary units).
func binarySize(_ bytes: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes)B" : format2(value) + units[unit]
}

/// `berth top CONTAINER [ps OPTIONS]`: the host's ps, restricted to the container's processes.
struct ContainerTopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top", abstract: "Display the running processes of a container.")
    @OptionGroup var options: ImageOptions
    @Argument(help: "Container.") var container: String
    @Argument(parsing: .captureForPassthrough, help: "ps options (default -ef).") var psOptions: [String] = []

    func run() async throws {
        let pids = Set(try await withEngine(options) { engine in try engine.processes(container) })
        let arguments = psOptions.isEmpty ? ["-ef"] : psOptions
        let output = try ChildProcess.run("/bin/ps", arguments: ["ps"] + arguments, environment: ["PATH=/usr/bin:/bin"])
        guard output.status.succeeded else { throw ValidationError("ps: \(output.stderrText)") }
        let lines = output.stdoutText.split(separator: "\n")
        guard let header = lines.first, let pidColumn = header.split(separator: " ").firstIndex(of: "PID") else {
            throw ValidationError("Couldn't find PID field in ps output")
        }
        print(header)
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ")
            if fields.count > pidColumn, let pid = Int32(fields[pidColumn]), pids.contains(pid) { print(line) }
        }
    }
}

/// `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: the published ports, docker's `80/tcp -> 0.0.0.0:8080`.
struct ContainerPortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port", abstract: "List port mappings or a specific mapping for the container.")
    @OptionGroup var options: ImageOptions
    @Argument(help: "Container.") var container: String
    @Argument(help: "Private port, e.g. 80 or 80/tcp.") var port: String?

    func run() async throws {
        let record = try await withEngine(options) { engine in try engine.lookup(container) }
        var ports = record.state.running ? record.publishedPorts : []
        if let port {
            let parts = port.split(separator: "/")
            guard let number = UInt16(parts[0]) else { throw ValidationError("invalid port: \(port)") }
            let proto = parts.count > 1 ? String(parts[1]) : "tcp"
            ports = ports.filter { $0.containerPort == number && $0.proto == proto }
            if ports.isEmpty {
                printError("Error: No public port '\(number)/\(proto)' published for \(container)")
                throw ExitCode(1)
            }
            for p in ports { print("\(p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP):\(p.hostPort)") }
            return
        }
        for p in ports {
            print("\(p.containerPort)/\(p.proto) -> \(p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP):\(p.hostPort)")
        }
    }
}

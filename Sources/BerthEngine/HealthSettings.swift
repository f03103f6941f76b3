import BerthImage
import BerthOCI
import BerthOS

/// The container's healthcheck (its own, else the image's), with docker's defaults, for the monitor.
enum HealthSettings {
    static func statusFile(_ layout: EngineLayout, _ id: String) -> String { layout.container(id) + "/health.json" }

    /// `--health-*` arguments for the monitor, and the check's process.json written beside the bundle.
    static func monitorArguments(_ record: ContainerRecord, spec: Spec, layout: EngineLayout) throws(EngineError)
        -> [String]
    {
        let own = record.configuration.healthcheck
        let image = record.imageConfig?.Healthcheck
        let test = own?.test ?? image?.Test ?? []
        guard let kind = test.first, kind != "NONE", let process = spec.process else { return [] }
        let args: [String]
        switch kind {
        case "CMD": args = Array(test.dropFirst())
        case "CMD-SHELL": args = ["/bin/sh", "-c", test.dropFirst().joined(separator: " ")]
        default:
            throw .invalidArgument(
                what: "healthcheck", reason: "unknown healthcheck type '\(kind)' (must be CMD, CMD-SHELL or NONE)")
        }
        guard !args.isEmpty else { return [] }
        var check = process
        check.args = args
        check.terminal = false
        check.consoleSize = nil
        let file = layout.container(record.id) + "/health-process.json"
        try RecordFile.write(check, file, durable: false)
        func milliseconds(_ own: Int64?, _ image: Int64?, default value: Int) -> String {
            let ns = (own.flatMap { $0 > 0 ? $0 : nil }) ?? (image.flatMap { $0 > 0 ? $0 : nil })
            return String(ns.map { Int($0 / 1_000_000) } ?? value)
        }
        let retries = (own?.retries).flatMap { $0 > 0 ? $0 : nil } ?? image?.Retries.flatMap { $0 > 0 ? $0 : nil } ?? 3
        try? FileSystem.removeTree(statusFile(layout, record.id))
        return [
            "--health-process", file, "--health-file", statusFile(layout, record.id),
            "--events-file", EventLog(layout: layout).path, "--name", record.name, "--image", record.imageReference,
            "--health-interval-ms", milliseconds(own?.interval, image?.Interval, default: 30_000),
            "--health-timeout-ms", milliseconds(own?.timeout, image?.Timeout, default: 30_000),
            "--health-start-period-ms", milliseconds(own?.startPeriod, image?.StartPeriod, default: 0),
            "--health-start-interval-ms", milliseconds(own?.startInterval, image?.StartInterval, default: 5_000),
            "--health-retries", String(retries),
        ]
    }
}

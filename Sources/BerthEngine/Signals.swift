#if canImport(Glibc)
import Glibc
#endif

/// The signal `stop` sends.
enum EngineSignals {
    /// The container's stop signal: its own, the image's, else SIGTERM (names and numbers as docker's).
    static func stopSignal(_ record: ContainerRecord) throws(EngineError) -> Int32 {
        try RunOptionParser.parseSignal(
            record.configuration.stopSignal ?? record.imageConfig?.StopSignal ?? "SIGTERM", option: "stop signal")
    }
}

/// `--log-driver` and `--log-opt` as docker reads them for json-file.
struct LogOptions {
    var driver: String
    var maximumSize = 0
    var maximumFiles = 1

    init(_ configuration: ContainerConfiguration) throws(EngineError) {
        switch configuration.logDriver {
        case "json-file", "", "local", "k8s-file": driver = "json-file"
        case "none": driver = "none"
        case "cri": driver = "cri"
        default:
            throw .invalidArgument(
                what: "log driver", reason: "logger: no log driver named '\(configuration.logDriver)' is registered")
        }
        for (key, value) in configuration.logOptions {
            switch key {
            case "max-size":
                guard let bytes = LogOptions.size(value), bytes > 0 else {
                    throw .invalidArgument(what: "log-opt max-size", reason: "invalid size: '\(value)'")
                }
                maximumSize = bytes
            case "max-file":
                guard let n = Int(value), n >= 1 else {
                    throw .invalidArgument(what: "log-opt max-file", reason: "max-file cannot be less than 1")
                }
                maximumFiles = n
            case "compress", "labels", "env", "tag", "mode", "max-buffer-size": continue
            default:
                throw .invalidArgument(what: "log-opt", reason: "unknown log opt '\(key)' for \(driver) log driver")
            }
        }
        if maximumFiles > 1 && maximumSize == 0 {
            throw .invalidArgument(what: "log-opt max-file", reason: "max-file can only be used with max-size")
        }
    }

    /// `10m`, `1g`, `512k`, bytes: docker's go-units FromHumanSize (decimal units).
    static func size(_ text: String) -> Int? {
        var digits = text.lowercased()
        var multiplier = 1
        if digits.hasSuffix("b") { digits.removeLast() }
        switch digits.last {
        case "k": multiplier = 1000
        case "m": multiplier = 1000 * 1000
        case "g": multiplier = 1000 * 1000 * 1000
        default: break
        }
        if multiplier > 1 { digits.removeLast() }
        guard let value = Double(digits), value >= 0 else { return nil }
        return Int(value * Double(multiplier))
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// runc's --log/--log-format: errors and warnings as `time=… level=… msg=…` lines or JSON objects,
/// written to the log file when one is given, else to stderr. containerd's shim reads the JSON form
/// to report why a runtime call failed.
public enum RuntimeLog {
    public enum Format: String, Sendable { case text, json }

    nonisolated(unsafe) public static var path: String?
    nonisolated(unsafe) public static var format: Format = .text
    nonisolated(unsafe) public static var debug = false

    public static func error(_ message: String) { write(level: "error", message) }
    public static func warning(_ message: String) { write(level: "warning", message) }
    public static func debugMessage(_ message: @autoclosure () -> String) {
        if debug { write(level: "debug", message()) }
    }

    static func write(level: String, _ message: String) {
        let time = Timestamp.now(fixedNanoseconds: true)
        let line: String
        switch format {
        case .json:
            line = "{\"level\":\"\(level)\",\"msg\":\(quote(message)),\"time\":\"\(time)\"}\n"
        case .text:
            line = "time=\"\(time)\" level=\(level) msg=\(quote(message))\n"
        }
        var fd: Int32 = 2
        if let path {
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            if fd < 0 { fd = 2 }
        }
        _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
        if fd != 2 {
            close(fd)
            // runc prints the error on stderr too, so a person at a terminal sees it.
            if level == "error" { _ = line.withCString { Glibc.write(2, $0, strlen($0)) } }
        }
    }

    /// A JSON string literal (also valid as a logfmt quoted value).
    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

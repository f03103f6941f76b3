#if canImport(Glibc)
import Glibc
#endif

extension RunOptionParser {
    /// `--expose 80`, `--expose 8000-8010/udp` → `80/tcp`, `8000/udp` … `8010/udp` (the keys of docker's
    /// ExposedPorts).
    public static func parseExpose(_ text: String) throws(EngineError) -> [String] {
        let pieces = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let proto = pieces.count > 1 && !pieces[1].isEmpty ? pieces[1].lowercased() : "tcp"
        guard ["tcp", "udp", "sctp"].contains(proto) else {
            throw .invalidArgument(what: "--expose", reason: "invalid proto: \(pieces[1])")
        }
        guard let range = portRange(pieces[0]) else {
            throw .invalidArgument(what: "--expose", reason: "invalid range format for --expose: \(text)")
        }
        return range.map { "\($0)/\(proto)" }
    }

    /// `--add-host name:ip` or `name=ip` (docker's ValidateExtraHost): the IP may be IPv6, in brackets or
    /// not, or `host-gateway`. Returns docker's stored form `name:ip`.
    public static func parseAddHost(_ text: String) throws(EngineError) -> String {
        let separator = text.firstIndex(of: "=") ?? text.firstIndex(of: ":")
        guard let separator, separator != text.startIndex, !text[..<separator].contains(":") else {
            throw .invalidArgument(what: "--add-host", reason: "bad format for add-host: \"\(text)\"")
        }
        let name = text[..<separator]
        var address = String(text[text.index(after: separator)...])
        if address != "host-gateway" {
            if address.count > 2 && address.hasPrefix("[") && address.hasSuffix("]") {
                address = String(address.dropFirst().dropLast())
            }
            guard isIPAddress(address) else {
                throw .invalidArgument(what: "--add-host", reason: "invalid IP address in add-host: \"\(address)\"")
            }
        }
        return "\(name):\(address)"
    }

    /// `80` or `8000-8010` (start ≤ end); nil when malformed.
    static func portRange(_ text: String) -> ClosedRange<UInt16>? {
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count <= 2, let start = UInt16(bounds[0]) else { return nil }
        guard bounds.count == 2 else { return start...start }
        guard let end = UInt16(bounds[1]), start <= end else { return nil }
        return start...end
    }

    /// An IPv4 or IPv6 address in text form.
    static func isIPAddress(_ text: String) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, text, &buffer) == 1 || inet_pton(AF_INET6, text, &buffer) == 1
    }
}

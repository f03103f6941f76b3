#if canImport(Glibc)
import Glibc
#endif

extension RunOptionParser {
    /// `-p`/`--publish` (go-connections ParsePortSpec): `[ip:][hostPort:]containerPort[/proto]`, where
    /// ports may be ranges of equal length (`8000-8001:80-81`), ip may be IPv6 in brackets
    /// (`[::1]:8080:80`), `ip::80` picks a free host port, and proto is tcp (default), udp or sctp.
    /// One binding per container port. A host range for a single container port (docker: "any free port
    /// in the range") is refused: a binding here holds one host port.
    public static func parsePublish(_ text: String) throws(EngineError) -> [ContainerConfiguration.PortBinding] {
        func fail(_ reason: String) -> EngineError { .invalidArgument(what: "--publish", reason: reason) }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var ip = "", hostPort = "", containerPart = parts[parts.count - 1]
        switch parts.count {
        case 1: break
        case 2: hostPort = parts[0]
        default:
            ip = parts[..<(parts.count - 2)].joined(separator: ":")
            hostPort = parts[parts.count - 2]
        }
        var proto = "tcp"
        if let slash = containerPart.firstIndex(of: "/") {
            let suffix = containerPart[containerPart.index(after: slash)...]
            if !suffix.isEmpty { proto = String(suffix.split(separator: "/", omittingEmptySubsequences: false)[0]) }
            containerPart = String(containerPart[..<slash])
        }
        if ip.hasPrefix("[") {
            guard ip.hasSuffix("]") else { throw fail("invalid IP address \(ip)") }
            ip = String(ip.dropFirst().dropLast())
        }
        if !ip.isEmpty && !isIPAddress(ip) { throw fail("invalid IP address: \(ip)") }
        guard !containerPart.isEmpty else { throw fail("no port specified: \(text)<empty>") }
        guard let container = portRange(containerPart) else { throw fail("invalid containerPort: \(containerPart)") }
        var host: ClosedRange<UInt16>?
        if !hostPort.isEmpty {
            guard let range = portRange(hostPort) else { throw fail("invalid hostPort: \(hostPort)") }
            host = range
        }
        if let host, host.count != container.count {
            guard container.count == 1 else {
                throw fail("invalid ranges specified for container and host Ports: \(containerPart) and \(hostPort)")
            }
            throw fail("a host port range for one container port (\(hostPort)) is not supported; name one host port")
        }
        let lowered = proto.lowercased()
        guard ["tcp", "udp", "sctp"].contains(lowered) else { throw fail("invalid proto: \(proto)") }
        return container.enumerated().map { offset, port in
            let hostNumber = host.map { $0.lowerBound + UInt16(offset) } ?? 0
            return ContainerConfiguration.PortBinding(containerPort: port, proto: lowered, hostIP: ip, hostPort: hostNumber)
        }
    }

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
            if address.count > 2 && address.hasPrefix("[") && address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
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

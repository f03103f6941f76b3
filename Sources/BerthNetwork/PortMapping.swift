/// One published port (docker's `-p`): traffic to `hostIP:hostPort` on the host goes to
/// `containerPort` in the container. The CNI `portmap` plugin makes the DNAT rules from the
/// `portMappings` capability entries this produces.
public struct PortMapping: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Empty means every host address (docker's `0.0.0.0`).
    public var hostIP: String
    /// 0 means "pick a free port" (resolved by ``PortAllocator`` before the container starts).
    public var hostPort: UInt16
    /// The end of a host port range to pick one from (`8000-8010:80`); equal to `hostPort` otherwise.
    public var hostPortEnd: UInt16
    public var containerPort: UInt16
    /// `tcp`, `udp` or `sctp`.
    public var proto: String

    public init(
        hostIP: String = "", hostPort: UInt16 = 0, hostPortEnd: UInt16? = nil, containerPort: UInt16,
        proto: String = "tcp"
    ) {
        self.hostIP = hostIP
        self.hostPort = hostPort
        self.hostPortEnd = hostPortEnd ?? hostPort
        self.containerPort = containerPort
        self.proto = proto
    }

    /// docker's notation, e.g. `127.0.0.1:8080:80/udp`.
    public var description: String {
        let ip = hostIP.contains(":") ? "[\(hostIP)]" : hostIP
        let host = hostPort == 0 ? "" : (hostPortEnd != hostPort ? "\(hostPort)-\(hostPortEnd)" : "\(hostPort)")
        return (ip.isEmpty ? "" : ip + ":") + (host.isEmpty && ip.isEmpty ? "" : host + ":")
            + "\(containerPort)/\(proto)"
    }

    /// The entry of the CNI `portMappings` capability (the `portmap` plugin's `runtimeConfig`).
    public var capabilityEntry: JSON {
        var object: [String: JSON] = [
            "hostPort": .int(Int64(hostPort)),
            "containerPort": .int(Int64(containerPort)),
            "protocol": .string(proto),
        ]
        if !hostIP.isEmpty { object["hostIP"] = .string(hostIP) }
        return .object(object)
    }

    // MARK: Parsing docker's syntax

    static let protocols: Set<String> = ["tcp", "udp", "sctp"]

    /// Parses one `-p` value: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `8080:80/udp`,
    /// `8000-8001:80-81`, `[::1]:8080:80`. A range gives one mapping per port; a host range with a
    /// single container port gives one mapping whose host port is picked from the range.
    public static func parse(_ spec: String) throws(NetworkError) -> [PortMapping] {
        func invalid(_ reason: String) -> NetworkError { .invalidPort(spec: spec, reason: reason) }
        var rest = Substring(spec)
        var proto = "tcp"
        if let slash = rest.lastIndex(of: "/") {
            proto = String(rest[rest.index(after: slash)...]).lowercased()
            rest = rest[..<slash]
            guard protocols.contains(proto) else { throw invalid("invalid proto: \(proto)") }
        }
        // An IPv6 host address comes in brackets; otherwise colons separate the parts.
        var hostIP = ""
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("missing ] after the IPv6 address") }
            hostIP = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            guard rest.hasPrefix(":") else { throw invalid("expected : after [\(hostIP)]") }
            rest = rest.dropFirst()
            guard isIPv6Address(hostIP) else { throw invalid("invalid IP address: \(hostIP)") }
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var hostPart = ""
        let containerPart: String
        switch (parts.count, hostIP.isEmpty) {
        case (1, true): containerPart = parts[0]
        case (2, _): hostPart = parts[0]; containerPart = parts[1]
        case (3, true):
            hostIP = parts[0]
            hostPart = parts[1]
            containerPart = parts[2]
            guard IPv4Address(hostIP) != nil else {
                throw invalid(
                    isIPv6Address(hostIP)
                        ? "IPv6 host addresses go in brackets: [\(hostIP)]" : "invalid IP address: \(hostIP)")
            }
        case (1, false): throw invalid("no container port after the host address")
        default: throw invalid("too many colons (an IPv6 address goes in brackets)")
        }
        guard !containerPart.isEmpty else { throw invalid("no container port specified") }
        let container = try range(containerPart, what: "containerPort", allowZero: false, spec: spec)
        if hostPart.isEmpty {
            // `80` or `127.0.0.1::80`: every container port gets a free host port of its own.
            return container.map { PortMapping(hostIP: hostIP, hostPort: 0, containerPort: $0, proto: proto) }
        }
        let host = try range(hostPart, what: "hostPort", allowZero: true, spec: spec)
        if container.count == 1 && host.count > 1 {
            return [
                PortMapping(
                    hostIP: hostIP, hostPort: host.lowerBound, hostPortEnd: host.upperBound,
                    containerPort: container.lowerBound, proto: proto)
            ]
        }
        guard host.count == container.count else {
            throw invalid("invalid ranges specified for container and host ports: \(containerPart) and \(hostPart)")
        }
        if host.lowerBound == 0 && host.count > 1 { throw invalid("invalid hostPort: \(hostPart)") }
        return zip(host, container).map { PortMapping(hostIP: hostIP, hostPort: $0, containerPort: $1, proto: proto) }
    }

    /// `-P`: every exposed port (`80`, `80/tcp`, `53/udp`, `8000-8001/tcp`) on a free host port.
    public static func publishAll(exposedPorts: [String]) throws(NetworkError) -> [PortMapping] {
        var result: [PortMapping] = []
        for exposed in exposedPorts {
            var text = Substring(exposed)
            var proto = "tcp"
            if let slash = text.lastIndex(of: "/") {
                proto = text[text.index(after: slash)...].lowercased()
                text = text[..<slash]
            }
            guard protocols.contains(proto) else {
                throw .invalidPort(spec: exposed, reason: "invalid proto: \(proto)")
            }
            for port in try range(String(text), what: "containerPort", allowZero: false, spec: exposed) {
                let mapping = PortMapping(hostPort: 0, containerPort: port, proto: proto)
                if !result.contains(mapping) { result.append(mapping) }
            }
        }
        return result
    }

    /// `80` or `80-81` as a closed range of ports.
    static func range(_ text: String, what: String, allowZero: Bool, spec: String) throws(NetworkError) -> ClosedRange<
        UInt16
    > {
        let bounds = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        func port(_ part: Substring) throws(NetworkError) -> UInt16 {
            guard !part.isEmpty, part.count <= 5, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = UInt16(part),
                value > 0 || allowZero
            else {
                throw .invalidPort(spec: spec, reason: "invalid \(what): \(text)")
            }
            return value
        }
        let low = try port(bounds[0])
        let high = bounds.count == 2 ? try port(bounds[1]) : low
        guard low <= high else { throw .invalidPort(spec: spec, reason: "invalid \(what) range: \(text)") }
        if bounds.count == 2 && low == 0 { throw .invalidPort(spec: spec, reason: "invalid \(what): \(text)") }
        return low...high
    }
}

/// The container's /etc/hosts as docker writes it: the loopback and IPv6 well-known names, the
/// `--add-host` entries, then the container's own addresses under its hostname.
public enum HostsFile {
    /// One line: an address and its names.
    public struct Entry: Equatable, Sendable {
        public var address: String
        public var names: [String]
        public init(address: String, names: [String]) {
            self.address = address
            self.names = names
        }
    }

    /// docker's fixed head of the file.
    public static let defaultEntries: [Entry] = [
        Entry(address: "127.0.0.1", names: ["localhost"]),
        Entry(address: "::1", names: ["localhost", "ip6-localhost", "ip6-loopback"]),
        Entry(address: "fe00::0", names: ["ip6-localnet"]),
        Entry(address: "ff00::0", names: ["ip6-mcastprefix"]),
        Entry(address: "ff02::1", names: ["ip6-allnodes"]),
        Entry(address: "ff02::2", names: ["ip6-allrouters"]),
    ]

    /// The file. `addresses` are the container's IPs (one per network); `extraHosts` are `--add-host`
    /// values (`name:ip`, `name=ip`, `name:[v6]`, `name:host-gateway`); `hostGateway` is what
    /// `host-gateway` stands for (the default bridge's gateway address, as docker's).
    public static func build(
        hostname: String, domainname: String? = nil, addresses: [String], extraHosts: [String] = [],
        hostGateway: String? = nil
    ) throws(NetworkError) -> String {
        var entries = defaultEntries
        for spec in extraHosts { entries.append(try parseExtraHost(spec, hostGateway: hostGateway)) }
        let names: [String]
        if let domainname, !domainname.isEmpty {
            names = ["\(hostname).\(domainname)", hostname]
        } else {
            names = [hostname]
        }
        for address in addresses where !address.isEmpty { entries.append(Entry(address: address, names: names)) }
        return entries.map { "\($0.address)\t\($0.names.joined(separator: " "))" }.joined(separator: "\n") + "\n"
    }

    /// One `--add-host` value.
    public static func parseExtraHost(_ spec: String, hostGateway: String?) throws(NetworkError) -> Entry {
        func invalid(_ reason: String) -> NetworkError {
            .invalidOption(option: "--add-host", value: spec, reason: reason)
        }
        // `name=ip` (docker 25+) or `name:ip`: the first separator splits, an IPv6 address keeps its colons.
        guard let separator = spec.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
            throw invalid("expected name:ip")
        }
        let name = String(spec[..<separator])
        var address = String(spec[spec.index(after: separator)...])
        guard !name.isEmpty, !name.contains(where: { $0 == " " || $0 == "\t" }) else {
            throw invalid("invalid host name")
        }
        if address.hasPrefix("[") && address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        if address == "host-gateway" {
            guard let hostGateway else { throw invalid("unable to derive the IP value for host-gateway") }
            address = hostGateway
        }
        guard IPv4Address(address) != nil || isIPv6Address(address) else {
            throw invalid("invalid IP address \"\(address)\"")
        }
        return Entry(address: address, names: [name])
    }
}

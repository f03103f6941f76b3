import BerthOS

/// The container's /etc/resolv.conf, made as docker makes it for a container with its own network
/// namespace: the host's file with nameservers that only work on the host's loopback (127.0.0.0/8,
/// and IPv6 ones, since Berth's networks are IPv4) removed, `--dns`, `--dns-search`, `--dns-option`
/// replacing their kind of line, and Google's public servers only when no nameserver is left.
public enum ResolvConf {
    public static let fallbackNameservers = ["8.8.8.8", "8.8.4.4"]

    /// Reads the host's file (an unreadable one counts as empty). When it names only systemd-resolved's
    /// stub (127.0.0.53), the real upstream list in `systemdResolvedPath` is used instead, as docker does.
    public static func forContainer(
        hostResolvConf: String = "/etc/resolv.conf", dns: [String] = [], search: [String] = [],
        options: [String] = [],
        systemdResolvedPath: String = "/run/systemd/resolve/resolv.conf"
    ) -> String {
        var host = (try? FileSystem.readString(hostResolvConf)) ?? ""
        let servers = parse(host).nameservers
        if !servers.isEmpty, servers.allSatisfy({ $0 == "127.0.0.53" }),
            let upstream = try? FileSystem.readString(systemdResolvedPath)
        {
            host = upstream
        }
        return build(hostContents: host, dns: dns, search: search, options: options)
    }

    /// The parts of a resolv.conf that matter here, plus every other line kept verbatim.
    public struct Contents: Equatable, Sendable {
        public var nameservers: [String] = []
        public var search: [String] = []
        public var options: [String] = []
        public var otherLines: [String] = []
    }

    public static func parse(_ text: String) -> Contents {
        var contents = Contents()
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingWhitespaceSubstring
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            switch fields[0] {
            case "nameserver" where fields.count >= 2: contents.nameservers.append(fields[1])
            // The last search/domain line wins (resolv.conf(5)).
            case "search", "domain": contents.search = Array(fields.dropFirst())
            case "options": contents.options += fields.dropFirst()
            default: contents.otherLines.append(String(line))
            }
        }
        return contents
    }

    /// Pure part of ``forContainer(hostResolvConf:dns:search:options:systemdResolvedPath:)``.
    public static func build(hostContents: String, dns: [String] = [], search: [String] = [], options: [String] = [])
        -> String
    {
        let host = parse(hostContents)
        var nameservers = dns
        if nameservers.isEmpty {
            nameservers = host.nameservers.filter { server in
                if server.contains(":") { return false }
                return !(IPv4Address(server).map { $0.value >> 24 == 127 } ?? false)
            }
            if nameservers.isEmpty { nameservers = fallbackNameservers }
        }
        // `--dns-search .` means no search domains at all.
        let searchDomains = search.isEmpty ? host.search : search.filter { $0 != "." }
        let optionList = options.isEmpty ? host.options : options
        var lines = host.otherLines
        lines += nameservers.map { "nameserver \($0)" }
        if !searchDomains.isEmpty { lines.append("search " + searchDomains.joined(separator: " ")) }
        if !optionList.isEmpty { lines.append("options " + optionList.joined(separator: " ")) }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension ResolvConf {
    /// The resolv.conf of a container served by the embedded resolver (user-defined networks), as docker
    /// writes it: only `nameserver 127.0.0.11`; the search domains and options as for any container
    /// (`--dns-search`, `--dns-option`, else the host's), and `ndots:0` unless an ndots option is given,
    /// so that a bare container name is asked as it is before any search domain is tried.
    public static func forEmbeddedResolver(hostContents: String, search: [String] = [], options: [String] = [])
        -> String
    {
        let host = parse(hostContents)
        let searchDomains = search.isEmpty ? host.search : search.filter { $0 != "." }
        var optionList = options.isEmpty ? host.options : options
        if !optionList.contains(where: { $0.hasPrefix("ndots:") }) { optionList.append("ndots:0") }
        var lines = host.otherLines
        lines.append("nameserver \(EmbeddedResolver.address)")
        if !searchDomains.isEmpty { lines.append("search " + searchDomains.joined(separator: " ")) }
        lines.append("options " + optionList.joined(separator: " "))
        return lines.joined(separator: "\n") + "\n"
    }

    /// Where the embedded resolver forwards what it does not own: `--dns`, else the host's nameservers
    /// as they are, loopback ones included (the resolver forwards from the host's namespace, as docker's
    /// does), else Google's. IPv4 only: the forwarder speaks IPv4.
    public static func embeddedResolverUpstreams(hostContents: String, dns: [String] = []) -> [String] {
        let servers = (dns.isEmpty ? parse(hostContents).nameservers : dns).filter { IPv4Address($0) != nil }
        return servers.isEmpty ? fallbackNameservers : servers
    }
}

extension Substring {
    var trimmingWhitespaceSubstring: Substring {
        var slice = self
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return slice
    }
}

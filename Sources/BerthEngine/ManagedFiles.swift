import BerthOS

/// The files docker writes for each container and bind-mounts over the image's: /etc/hosts,
/// /etc/hostname and /etc/resolv.conf.
enum ManagedFiles {
    /// Writes them into `directory` and returns destination → host path.
    static func write(_ record: ContainerRecord, attachments: [ContainerRecord.NetworkAttachment], directory: String,
                      hostNetwork: Bool) throws(EngineError) -> [String: String] {
        let configuration = record.configuration
        var hosts: String
        if hostNetwork, let host = try? FileSystem.readString("/etc/hosts") {
            hosts = host.hasSuffix("\n") || host.isEmpty ? host : host + "\n"
        } else {
            hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        }
        for entry in configuration.extraHosts {
            guard let colon = entry.firstIndex(of: ":") else {
                throw .invalidArgument(what: "add-host", reason: "invalid argument \"\(entry)\": bad format for add-host")
            }
            let name = entry[..<colon], address = entry[entry.index(after: colon)...]
            let resolved = address == "host-gateway" ? (attachments.first?.gateway ?? "127.0.0.1") : String(address)
            hosts += "\(resolved)\t\(name)\n"
        }
        if !hostNetwork {
            for attachment in attachments {
                let ip = attachment.address.split(separator: "/").first.map(String.init) ?? attachment.address
                hosts += "\(ip)\t\(record.hostname)\n"
            }
        }
        var resolv = ""
        let host = (try? FileSystem.readString("/etc/resolv.conf")) ?? ""
        var nameservers: [String] = []
        var search: [String] = []
        var options: [String] = []
        for line in host.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let key = words.first else { continue }
            switch key {
            case "nameserver" where words.count > 1:
                // A loopback resolver on the host is not reachable from another network namespace.
                if hostNetwork || !(words[1].hasPrefix("127.") || words[1] == "::1") { nameservers.append(words[1]) }
            case "search", "domain": search = Array(words.dropFirst())
            case "options": options += words.dropFirst()
            default: continue
            }
        }
        if !configuration.dns.isEmpty { nameservers = configuration.dns }
        if !configuration.dnsSearch.isEmpty { search = configuration.dnsSearch }
        if !configuration.dnsOptions.isEmpty { options = configuration.dnsOptions }
        if nameservers.isEmpty && !hostNetwork { nameservers = ["8.8.8.8", "8.8.4.4"] }
        if !search.isEmpty && search != ["."] { resolv += "search \(search.joined(separator: " "))\n" }
        for server in nameservers { resolv += "nameserver \(server)\n" }
        if !options.isEmpty { resolv += "options \(options.joined(separator: " "))\n" }
        let files = ["/etc/hosts": ("hosts", hosts), "/etc/hostname": ("hostname", record.hostname + "\n"),
                     "/etc/resolv.conf": ("resolv.conf", resolv)]
        var result: [String: String] = [:]
        for (destination, (name, contents)) in files {
            let path = "\(directory)/\(name)"
            do { try FileSystem.writeAtomically(path, Array(contents.utf8), mode: 0o644, durable: false) } catch {
                throw .system(error, context: "writing \(path)")
            }
            result[destination] = path
        }
        return result
    }
}

import BerthNetwork
import BerthOS

/// The files docker writes for each container and bind-mounts over the image's: /etc/hosts,
/// /etc/hostname and /etc/resolv.conf (their contents made by BerthNetwork's HostsFile and ResolvConf).
enum ManagedFiles {
    /// Writes them into `directory` and returns destination → host path.
    /// With `embeddedResolver` (user-defined networks: the host's resolv.conf, for its search domains and
    /// options) resolv.conf names only 127.0.0.11.
    static func write(
        _ record: ContainerRecord, attachments: [ContainerRecord.NetworkAttachment], directory: String,
        hostNetwork: Bool, hostGateway: String?, embeddedResolver hostResolvConf: String? = nil
    ) throws(EngineError) -> [String: String] {
        let configuration = record.configuration
        var hosts: String
        var resolv: String
        do {
            if hostNetwork {
                // The host's own files, as docker gives a --network host container.
                hosts = (try? FileSystem.readString("/etc/hosts")) ?? ""
                if !hosts.isEmpty && !hosts.hasSuffix("\n") { hosts += "\n" }
                for spec in configuration.extraHosts {
                    let entry = try HostsFile.parseExtraHost(spec, hostGateway: hostGateway ?? "127.0.0.1")
                    hosts += "\(entry.address)\t\(entry.names.joined(separator: " "))\n"
                }
                let host = (try? FileSystem.readString("/etc/resolv.conf")) ?? ""
                resolv =
                    configuration.dns.isEmpty && configuration.dnsSearch.isEmpty && configuration.dnsOptions.isEmpty
                    ? host
                    : ResolvConf.build(
                        hostContents: host, dns: configuration.dns, search: configuration.dnsSearch,
                        options: configuration.dnsOptions)
            } else {
                let addresses = attachments.map {
                    $0.address.split(separator: "/").first.map(String.init) ?? $0.address
                }
                hosts = try HostsFile.build(
                    hostname: record.hostname, domainname: configuration.domainname, addresses: addresses,
                    extraHosts: configuration.extraHosts, hostGateway: hostGateway)
                if let hostResolvConf {
                    resolv = ResolvConf.forEmbeddedResolver(
                        hostContents: hostResolvConf, search: configuration.dnsSearch,
                        options: configuration.dnsOptions)
                } else {
                    resolv = ResolvConf.forContainer(
                        dns: configuration.dns, search: configuration.dnsSearch, options: configuration.dnsOptions)
                }
            }
        } catch {
            throw .invalidArgument(what: "network options", reason: "\(error)")
        }
        let files = [
            "/etc/hosts": ("hosts", hosts), "/etc/hostname": ("hostname", record.hostname + "\n"),
            "/etc/resolv.conf": ("resolv.conf", resolv),
        ]
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

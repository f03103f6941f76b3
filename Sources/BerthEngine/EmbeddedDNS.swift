import BerthNetwork
import BerthOS

/// Docker's embedded DNS server (127.0.0.11) for containers on user-defined networks. The server runs
/// in the container's monitor (berth-monitor's DNSServer); the engine decides who gets it, writes the
/// resolv.conf that points at it (ManagedFiles), and hands the monitor what it needs.
enum EmbeddedDNS {
    /// Whether docker would give this container the resolver: it has a network namespace of its own
    /// attached by CNI, and at least one of its networks is user-defined (the default `bridge` keeps the
    /// host's nameservers and /etc/hosts-only names, as in docker).
    ///
    /// Except a container that exposes (image or `--expose`) or publishes port 53: a DNS server (dnsmasq,
    /// pihole) binding `0.0.0.0:53` would find the resolver's 127.0.0.11:53 taken (TCP always, UDP
    /// without SO_REUSEADDR). docker avoids the clash with a DNAT to random ports in the container's
    /// namespace; here such a container keeps the host's nameservers instead, so its server can bind.
    static func applies(to record: ContainerRecord, namespacePath: String?, layout: EngineLayout) -> Bool {
        guard let namespacePath, namespacePath == layout.networkNamespace(record.id) else { return false }
        return record.networks.contains { !Network.predefinedNames.contains($0.network) } && !claimsPort53(record)
    }

    /// Whether the container exposes or publishes port 53, TCP or UDP.
    static func claimsPort53(_ record: ContainerRecord) -> Bool {
        if record.exposedPorts.contains(where: { $0.split(separator: "/").first == "53" }) { return true }
        return record.configuration.portBindings.contains { $0.containerPort == 53 }
    }

    /// The host's resolv.conf, read once per start (docker reads it at the start too): the resolver's
    /// upstreams and the container's search domains and options come from it.
    static func hostResolvConf() -> String {
        (try? FileSystem.readString("/etc/resolv.conf")) ?? ""
    }

    /// The monitor's `--dns-*` arguments: the pinned namespace, where the records are, and the upstream
    /// servers (`--dns`, else the nameservers of the host's resolv.conf).
    static func monitorArguments(
        _ record: ContainerRecord, namespacePath: String, layout: EngineLayout, hostResolvConf: String
    ) -> [String] {
        var arguments = ["--dns-netns", namespacePath, "--dns-containers", layout.containers]
        for server in ResolvConf.embeddedResolverUpstreams(hostContents: hostResolvConf, dns: record.configuration.dns)
        {
            arguments += ["--dns-upstream", server]
        }
        return arguments
    }
}

import BerthCRIProtocol
import BerthKube

/// The pod's sandbox (kuberuntime_sandbox.go generatePodSandboxConfig) and its DNS (network/dns).
extension PodConfigs {
    /// generatePodSandboxConfig: metadata, the kubelet's labels, the pod's annotations, DNS, the hostname
    /// (none with the host's network), the log directory, every container port, and the Linux config
    /// (cgroup parent, namespaces, sysctls, identity, the pod's resources).
    ///
    /// `hostResolvConf` is the text of the node's resolv.conf (the kubelet's --resolv-conf file).
    static func sandboxConfig(
        _ pod: CoreV1.Pod, attempt: UInt32, configuration: AgentConfiguration, hostResolvConf: String
    ) -> Runtime_V1_PodSandboxConfig {
        var config = Runtime_V1_PodSandboxConfig()
        var metadata = Runtime_V1_PodSandboxMetadata()
        metadata.name = pod.metadata.name ?? ""
        metadata.uid = pod.metadata.uid ?? ""
        metadata.namespace = pod.metadata.namespace ?? ""
        metadata.attempt = attempt
        config.metadata = metadata
        config.labels = podLabels(pod)
        config.annotations = pod.metadata.annotations
        config.dnsConfig = dnsConfig(pod, configuration: configuration, hostResolvConf: hostResolvConf)
        if pod.spec.hostNetwork != true {
            config.hostname = hostname(pod, clusterDomain: configuration.clusterDomain)
        }
        config.logDirectory = podLogDirectory(pod, root: configuration.podLogDirectory)
        config.portMappings = pod.spec.containers.flatMap(portMappings)
        config.linux = sandboxLinuxConfig(pod, configuration: configuration)
        return config
    }

    /// BuildPodLogsDirectory: `<root>/<namespace>_<name>_<uid>`.
    static func podLogDirectory(_ pod: CoreV1.Pod, root: String) -> String {
        var base = root
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        let leaf = "\(pod.metadata.namespace ?? "")_\(pod.metadata.name ?? "")_\(pod.metadata.uid ?? "")"
        return base == "/" ? "/" + leaf : base + "/" + leaf
    }

    /// GeneratePodHostNameAndDomain and GetNodenameForKernel: spec.hostname, else the pod's name, cut to 63
    /// characters without a trailing `-` or `.`; with setHostnameAsFQDN and a subdomain, the FQDN
    /// `<hostname>.<subdomain>.<namespace>.svc.<domain>` (the kubelet refuses the sandbox when that
    /// passes 64 characters; this keeps the short name then).
    static func hostname(_ pod: CoreV1.Pod, clusterDomain: String) -> String {
        var hostname = pod.metadata.name ?? ""
        if let requested = pod.spec.hostname, !requested.isEmpty { hostname = requested }
        if hostname.utf8.count > 63 {
            var cut = String(decoding: hostname.utf8.prefix(63), as: UTF8.self)
            while cut.hasSuffix("-") || cut.hasSuffix(".") { cut.removeLast() }
            if !cut.isEmpty { hostname = cut }
        }
        if pod.spec.setHostnameAsFQDN == true, let subdomain = pod.spec.subdomain, !subdomain.isEmpty {
            let fqdn = "\(hostname).\(subdomain).\(pod.metadata.namespace ?? "").svc.\(clusterDomain)"
            if fqdn.utf8.count <= 64 { return fqdn }
        }
        return hostname
    }

    /// kubecontainer.MakePortMappings: every port of the container (the runtime publishes those with a
    /// host port), the first of any that repeat a name — or, unnamed, the same family, protocol, host IP
    /// and ports.
    static func portMappings(_ container: CoreV1.Container) -> [Runtime_V1_PortMapping] {
        var seen = Set<String>()
        var mappings: [Runtime_V1_PortMapping] = []
        for port in container.ports {
            let hostIP = port.hostIP ?? ""
            let hostPort = port.hostPort ?? 0
            let protocolName = port.protocol?.rawValue ?? ""
            var name = port.name ?? ""
            if name.isEmpty {
                let family = hostIP.isEmpty ? "any" : (hostIP.contains(":") ? "v6" : "v4")
                name = "\(family)-\(protocolName)-\(hostIP):\(port.containerPort):\(hostPort)"
            }
            guard seen.insert(name).inserted else { continue }
            var mapping = Runtime_V1_PortMapping()
            switch port.protocol {
            case .udp: mapping.protocol = .udp
            case .sctp: mapping.protocol = .sctp
            default: mapping.protocol = .tcp
            }
            mapping.containerPort = port.containerPort
            mapping.hostPort = hostPort
            mapping.hostIp = hostIP
            mappings.append(mapping)
        }
        return mappings
    }

    /// generatePodSandboxLinuxConfig and applySandboxResources. The sandbox's own seccomp profile is
    /// always RuntimeDefault (the kubelet forces it, issue #84623); containers get the pod's.
    static func sandboxLinuxConfig(
        _ pod: CoreV1.Pod, configuration: AgentConfiguration
    ) -> Runtime_V1_LinuxPodSandboxConfig {
        var linux = Runtime_V1_LinuxPodSandboxConfig()
        linux.cgroupParent = cgroupParent(pod, root: configuration.cgroupRoot)
        var security = Runtime_V1_LinuxSandboxSecurityContext()
        security.privileged = hasPrivilegedContainer(pod)
        var seccomp = Runtime_V1_SecurityProfile()
        seccomp.profileType = .runtimeDefault
        security.seccomp = seccomp
        security.namespaceOptions = namespaceOptions(pod)
        var sysctls: [String: String] = [:]
        if let context = pod.spec.securityContext {
            for sysctl in context.sysctls { sysctls[sysctl.name] = sysctl.value }
            if let user = context.runAsUser { security.runAsUser.value = user }
            if let group = context.runAsGroup { security.runAsGroup.value = group }
            if let fsGroup = context.fsGroup { security.supplementalGroups.append(fsGroup) }
            security.supplementalGroups += context.supplementalGroups
            if let policy = supplementalGroupsPolicy(context) { security.supplementalGroupsPolicy = policy }
            if let options = context.seLinuxOptions { security.selinuxOptions = seLinuxOption(options) }
        }
        linux.sysctls = sysctls
        linux.securityContext = security
        linux.resources = sandboxResources(pod)
        linux.overhead = overheadResources(pod)
        return linux
    }

    static func supplementalGroupsPolicy(
        _ context: CoreV1.PodSecurityContext
    ) -> Runtime_V1_SupplementalGroupsPolicy? {
        switch context.supplementalGroupsPolicy?.rawValue {
        case "Merge": return .merge
        case "Strict": return .strict
        default: return nil
        }
    }

    static func seLinuxOption(_ options: CoreV1.SELinuxOptions) -> Runtime_V1_SELinuxOption {
        var option = Runtime_V1_SELinuxOption()
        option.user = options.user ?? ""
        option.role = options.role ?? ""
        option.type = options.type ?? ""
        option.level = options.level ?? ""
        return option
    }
}

// MARK: - DNS

extension PodConfigs {
    /// The default options of a ClusterFirst pod, and glibc's limits the kubelet keeps to.
    static let clusterDNSOptions = ["ndots:5"]
    static let maxDNSNameservers = 3
    static let maxDNSSearchPaths = 32
    static let maxDNSSearchListChars = 2048
    static let maxDNSSearchDomainLength = 253

    /// dns.Configurer.GetPodDNS. ClusterFirst (the default): the cluster's servers, the
    /// `<namespace>.svc.<domain>`, `svc.<domain>` and `<domain>` searches before the host's, and
    /// `ndots:5`; without cluster DNS, or for ClusterFirst on the host's network, Default: the host's
    /// resolv.conf. ClusterFirstWithHostNet is ClusterFirst on any network; None starts empty. The pod's
    /// dnsConfig is then merged in, and the result cut to 3 servers and 32 searches (2048 characters).
    static func dnsConfig(
        _ pod: CoreV1.Pod, configuration: AgentConfiguration, hostResolvConf: String
    ) -> Runtime_V1_DNSConfig {
        let host = parseResolvConf(hostResolvConf)
        var config = Runtime_V1_DNSConfig()
        config.servers = host.servers
        config.searches = host.searches
        config.options = host.options

        let policy = pod.spec.dnsPolicy?.rawValue ?? "ClusterFirst"
        let cluster: Bool
        switch policy {
        case "None", "Default": cluster = false
        case "ClusterFirst": cluster = pod.spec.hostNetwork != true
        default: cluster = true  // ClusterFirstWithHostNet; the kubelet takes an invalid policy as ClusterFirst.
        }
        if policy == "None" {
            config = Runtime_V1_DNSConfig()
        } else if cluster && !configuration.clusterDNS.isEmpty {
            config.servers = configuration.clusterDNS
            config.searches = clusterSearches(host.searches, pod: pod, clusterDomain: configuration.clusterDomain)
            config.options = clusterDNSOptions
        }

        if let podDNS = pod.spec.dnsConfig {
            config.servers = omitDuplicates(config.servers + podDNS.nameservers)
            config.searches = omitDuplicates(config.searches + podDNS.searches)
            config.options = mergeDNSOptions(config.options, podDNS.options)
        }
        if config.servers.count > maxDNSNameservers { config.servers = Array(config.servers.prefix(maxDNSNameservers)) }
        config.searches = searchesWithinLimits(config.searches)
        return config
    }

    /// generateSearchesForDNSClusterFirst.
    static func clusterSearches(_ hostSearches: [String], pod: CoreV1.Pod, clusterDomain: String) -> [String] {
        guard !clusterDomain.isEmpty else { return hostSearches }
        let namespace = pod.metadata.namespace ?? ""
        return omitDuplicates(
            ["\(namespace).svc.\(clusterDomain)", "svc.\(clusterDomain)", clusterDomain] + hostSearches)
    }

    /// parseResolvConf: `nameserver` lines accumulate; the last `search` line wins (trailing dots
    /// dropped, `.` itself skipped); `options` accumulate, a later option replacing one of the same name.
    static func parseResolvConf(_ text: String) -> (servers: [String], searches: [String], options: [String]) {
        var servers: [String] = []
        var searches: [String] = []
        var options: [String] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard let keyword = fields.first, !keyword.hasPrefix("#") else { continue }
            switch keyword {
            case "nameserver":
                if fields.count >= 2 { servers.append(fields[1]) }
            case "search":
                searches = fields.dropFirst().compactMap { domain in
                    guard domain != "." else { return nil }
                    return domain.hasSuffix(".") ? String(domain.dropLast()) : domain
                }
            case "options":
                options = appendOptions(options, Array(fields.dropFirst()))
            default: break
            }
        }
        return (servers, searches, options)
    }

    /// appendOptions: by name (before any `:`), a later option replacing an earlier one in its place.
    static func appendOptions(_ options: [String], _ added: [String]) -> [String] {
        var result = options
        for option in added {
            let name = option.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if let index = result.firstIndex(where: {
                ($0.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "") == name
            }) {
                result[index] = option
            } else {
                result.append(option)
            }
        }
        return result
    }

    /// mergeDNSOptions: the pod's options override those of the same name (`name` or `name:value`).
    static func mergeDNSOptions(_ existing: [String], _ podOptions: [CoreV1.PodDNSConfigOption]) -> [String] {
        var names: [String] = []
        var values: [String: String] = [:]
        func set(_ name: String, _ value: String) {
            if values[name] == nil { names.append(name) }
            values[name] = value
        }
        for option in existing {
            if let colon = option.firstIndex(of: ":") {
                set(String(option[..<colon]), String(option[option.index(after: colon)...]))
            } else {
                set(option, "")
            }
        }
        for option in podOptions { set(option.name ?? "", option.value ?? "") }
        return names.map { name in
            let value = values[name] ?? ""
            return value.isEmpty ? name : "\(name):\(value)"
        }
    }

    /// formDNSSearchFitsLimits: at most 32 domains, none longer than 253 characters, the line at most
    /// 2048 characters (domains dropped from the end).
    static func searchesWithinLimits(_ searches: [String]) -> [String] {
        var result = Array(searches.prefix(maxDNSSearchPaths)).filter { $0.utf8.count <= maxDNSSearchDomainLength }
        var length = result.joined(separator: " ").utf8.count
        while length > maxDNSSearchListChars, let last = result.popLast() {
            length -= last.utf8.count + 1
        }
        return result
    }

    static func omitDuplicates(_ strings: [String]) -> [String] {
        var seen = Set<String>()
        return strings.filter { seen.insert($0).inserted }
    }
}

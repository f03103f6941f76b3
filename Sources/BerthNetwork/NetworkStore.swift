#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// Network definitions, as `docker network create/ls/inspect/rm` manage them, and the CNI configuration
/// list of each. Layout under `root` (e.g. /var/lib/berth/networks):
///
///     definitions/<id>.json   one per network (bridge, none and host included)
///     ipam/<id>/              host-local's leases for that network
///     .lock                   flock: one writer at a time across processes
///
/// Networks also come from CNI configuration directories (default /etc/cni/net.d): each valid
/// `.conflist`/`.conf`/`.json` file there is a network named by its `name`, shown with its first
/// plugin's type as the driver. Berth's own definitions win a name clash.
public struct NetworkStore: Sendable {
    public var root: String
    public var configDirectories: [String]
    public var pool: SubnetPool
    /// The default `bridge` network's subnet (not docker's 172.17.0.0/16 nor podman's 10.88.0.0/16).
    public var defaultSubnet: IPv4Subnet
    public var defaultBridge: String
    /// The host's routes, consulted by automatic subnet choice (a seam for tests).
    public var hostRoutes: @Sendable () -> [IPv4Subnet]

    public init(
        root: String, configDirectories: [String] = ["/etc/cni/net.d"], pool: SubnetPool = .default,
        defaultSubnet: IPv4Subnet = IPv4Subnet("10.89.0.0/16")!, defaultBridge: String = "berth0",
        hostRoutes: @escaping @Sendable () -> [IPv4Subnet] = { HostRoutes.current() }
    ) {
        self.root = root
        self.configDirectories = configDirectories
        self.pool = pool
        self.defaultSubnet = defaultSubnet
        self.defaultBridge = defaultBridge
        self.hostRoutes = hostRoutes
    }

    var definitionsDirectory: String { "\(root)/definitions" }
    var lockPath: String { "\(root)/.lock" }

    /// host-local's data directory for a network (it keeps its leases in `<dir>/<network name>/`).
    public func ipamDirectory(for network: Network) -> String { "\(root)/ipam/\(network.id)" }
    /// Markers saying a network's iptables rules are in place this boot (NetworkRules).
    var rulesDirectory: String { "\(root)/rules" }

    // MARK: Reading

    /// Every network: the predefined ones, Berth's, then those of the configuration directories, by name.
    public func list() throws(NetworkError) -> [Network] {
        try ensurePredefined()
        let own = try definitions()
        let ownNames = Set(own.map(\.name))
        let foreign = configDirectoryNetworks().filter { !ownNames.contains($0.network.name) }.map(\.network)
        return (own + foreign).sorted { $0.name < $1.name }
    }

    /// docker's lookup order: a full ID, then an exact name, then a unique ID prefix.
    public func inspect(_ nameOrID: String) throws(NetworkError) -> Network {
        let all = try list()
        if let match = all.first(where: { $0.id == nameOrID }) ?? all.first(where: { $0.name == nameOrID }) {
            return match
        }
        let prefixed = nameOrID.isEmpty ? [] : all.filter { $0.id.hasPrefix(nameOrID) }
        if prefixed.count == 1 { return prefixed[0] }
        throw .noSuchNetwork(nameOrID)
    }

    /// The CNI configuration list a network is attached with.
    public func configList(for network: Network) throws(NetworkError) -> NetworkConfigList {
        guard network.isAttachable else {
            throw .notAttachable(network: network.name, reason: "the \(network.name) network has no CNI configuration")
        }
        if let file = network.configFile { return try NetworkConfigList.load(path: file) }
        return BridgeNetworkConfig.configList(for: network, ipamDirectory: ipamDirectory(for: network))
    }

    // MARK: Writing

    /// `docker network create`: a bridge network with the given or an automatic subnet. `bridge` names
    /// the host's bridge (default `br-<12 hex of the id>`); `mtu` and `clusterCIDR` make a node's pod
    /// network (see ``Network``).
    public func create(
        name: String, subnet: String? = nil, gateway: String? = nil, internal: Bool = false,
        labels: [String: String] = [:], bridge: String? = nil, mtu: Int? = nil, clusterCIDR: String? = nil
    ) throws(NetworkError) -> Network {
        guard Network.isValidName(name) else { throw .invalidNetworkName(name) }
        try ensurePredefined()
        return try FileLock.withLock(lockPath) { () throws(NetworkError) -> Network in
            let existing = try definitions() + configDirectoryNetworks().map(\.network)
            if existing.contains(where: { $0.name == name }) || Network.predefinedNames.contains(name) {
                throw .networkExists(name)
            }
            let chosen = try chooseSubnet(subnet: subnet, gateway: gateway, existing: existing)
            let id = Identifiers.random()
            let network = Network(
                name: name, id: id, driver: "bridge", subnet: chosen.subnet.description,
                gateway: chosen.gateway.description, bridge: bridge ?? "br-" + id.prefix(12), internal: `internal`,
                labels: labels, created: Identifiers.timestamp(), mtu: mtu, clusterCIDR: clusterCIDR)
            try save(network)
            return network
        }
    }

    /// `docker network rm`: the definition, the bridge device if it exists, and the IPAM leases. Whether
    /// containers still use it is the engine's to check.
    @discardableResult
    public func remove(_ nameOrID: String) throws(NetworkError) -> Network {
        let network = try inspect(nameOrID)
        if Network.predefinedNames.contains(network.name) || network.configFile != nil {
            throw .predefinedNetwork(network.name)
        }
        try FileLock.withLock(lockPath) { () throws(NetworkError) in
            NetworkRules.remove(network, markerDirectory: rulesDirectory)
            if let bridge = network.bridge { try Self.deleteLink(bridge) }
            do throws(SystemCallError) {
                try FileSystem.removeTree(ipamDirectory(for: network))
                if unlink("\(definitionsDirectory)/\(network.id).json") != 0 && errno != ENOENT {
                    throw SystemCallError(
                        call: "unlink", errno: errno, subject: "\(definitionsDirectory)/\(network.id).json")
                }
            } catch {
                throw .system(error)
            }
        }
        return network
    }

    // MARK: Subnets

    /// Validates a given subnet/gateway (docker's option names in errors), or takes the first free subnet
    /// of the pool, skipping other networks' subnets and the host's routes.
    func chooseSubnet(subnet: String?, gateway: String?, existing: [Network]) throws(NetworkError) -> (
        subnet: IPv4Subnet, gateway: IPv4Address
    ) {
        let taken = existing.compactMap { network in
            network.subnet.flatMap { IPv4Subnet($0, strict: false) }.map { (network, $0) }
        }
        guard let subnetText = subnet else {
            if let gateway {
                throw .invalidOption(option: "--gateway", value: gateway, reason: "a gateway needs a --subnet")
            }
            guard let free = pool.allocate(avoiding: taken.map(\.1) + hostRoutes()) else {
                throw .subnetPoolExhausted(pool: pool.description)
            }
            return (free, free.address(1))
        }
        let parsed = try Self.parseSubnet(subnetText)
        if let (network, other) = taken.first(where: { $0.1.overlaps(parsed) }) {
            throw .subnetOverlap(subnet: parsed.description, network: network.name, networkSubnet: other.description)
        }
        guard let gatewayText = gateway else { return (parsed, parsed.address(1)) }
        guard let address = IPv4Address(gatewayText) else {
            throw .invalidOption(option: "--gateway", value: gatewayText, reason: "not an IPv4 address")
        }
        guard parsed.contains(address) else {
            throw .invalidOption(option: "--gateway", value: gatewayText, reason: "not inside subnet \(parsed)")
        }
        guard address != parsed.first, address != parsed.last else {
            throw .invalidOption(
                option: "--gateway", value: gatewayText, reason: "the network or broadcast address of \(parsed)")
        }
        return (parsed, address)
    }

    static func parseSubnet(_ text: String) throws(NetworkError) -> IPv4Subnet {
        if text.contains(":") {
            throw .invalidOption(option: "--subnet", value: text, reason: "IPv6 subnets are not supported")
        }
        guard let loose = IPv4Subnet(text, strict: false) else {
            throw .invalidOption(
                option: "--subnet", value: text, reason: "not an IPv4 subnet in CIDR notation (e.g. 10.90.1.0/24)")
        }
        guard IPv4Subnet(text, strict: true) != nil else {
            throw .invalidOption(option: "--subnet", value: text, reason: "host bits are set (did you mean \(loose)?)")
        }
        guard loose.prefixLength <= 30, loose.prefixLength >= 8 else {
            throw .invalidOption(option: "--subnet", value: text, reason: "the prefix length must be between 8 and 30")
        }
        return loose
    }

    // MARK: Storage

    func definitions() throws(NetworkError) -> [Network] {
        guard FileSystem.isDirectory(definitionsDirectory) else { return [] }
        let names: [String]
        do { names = try FileSystem.listDirectory(definitionsDirectory) } catch { throw .system(error) }
        var result: [Network] = []
        for name in names where name.hasSuffix(".json") {
            let path = "\(definitionsDirectory)/\(name)"
            do {
                result.append(try JSONCoding.decode(Network.self, from: try FileSystem.readFile(path)))
            } catch {
                throw .invalidConfiguration(source: path, reason: "\(error)")
            }
        }
        return result
    }

    func save(_ network: Network) throws(NetworkError) {
        do {
            try FileSystem.makeDirectories(definitionsDirectory, mode: 0o700)
            try FileSystem.writeAtomically(
                "\(definitionsDirectory)/\(network.id).json", try JSONCoding.encode(network, pretty: true))
        } catch let error as SystemCallError {
            throw .system(error)
        } catch {
            throw .invalidConfiguration(source: network.name, reason: "cannot encode: \(error)")
        }
    }

    /// `bridge`, `none` and `host` exist from the first use on, each with an ID of its own (random and
    /// then stable, as docker's).
    func ensurePredefined() throws(NetworkError) {
        let present = Set(try definitions().map(\.name))
        if Network.predefinedNames.isSubset(of: present) { return }
        try FileLock.withLock(lockPath) { () throws(NetworkError) in
            let present = Set(try definitions().map(\.name))
            let now = Identifiers.timestamp()
            if !present.contains("bridge") {
                try save(
                    Network(
                        name: "bridge", id: Identifiers.random(), driver: "bridge", subnet: defaultSubnet.description,
                        gateway: defaultSubnet.address(1).description, bridge: defaultBridge, created: now))
            }
            if !present.contains("none") {
                try save(Network(name: "none", id: Identifiers.random(), driver: "null", created: now))
            }
            if !present.contains("host") {
                try save(Network(name: "host", id: Identifiers.random(), driver: "host", created: now))
            }
        }
    }

    /// Networks of the configuration directories; unreadable or invalid files are skipped (as libcni's
    /// loader does), the first file of a name wins.
    func configDirectoryNetworks() -> [(network: Network, list: NetworkConfigList)] {
        var result: [(Network, NetworkConfigList)] = []
        var seen = Set<String>()
        for directory in configDirectories {
            guard let names = try? FileSystem.listDirectory(directory) else { continue }
            for file in names where file.hasSuffix(".conflist") || file.hasSuffix(".conf") || file.hasSuffix(".json") {
                let path = "\(directory)/\(file)"
                guard let list = try? NetworkConfigList.load(path: path), !seen.contains(list.name) else { continue }
                seen.insert(list.name)
                let summary = BridgeNetworkConfig.summary(of: list)
                var created = ""
                var info = stat()
                if stat(path, &info) == 0 { created = Identifiers.timestamp(seconds: info.st_mtim.tv_sec) }
                result.append(
                    (
                        Network(
                            name: list.name, id: Identifiers.stable(path + "\u{0}" + list.name), driver: summary.driver,
                            subnet: summary.subnet, gateway: summary.gateway, bridge: summary.bridge,
                            created: created, configFile: path), list
                    ))
            }
        }
        return result
    }

    /// Deletes a bridge left from before (another data root, a previous pod CIDR) that has an address
    /// other than `gateway` and nothing attached, so a network about to use its name can put its own
    /// gateway there; one with ports still attached is left, and the caller's CNI ADD says why.
    public static func removeStaleBridge(_ name: String, gateway: String) throws(NetworkError) {
        let addresses = IPRoute2.ip(["-o", "-4", "addr", "show", "dev", name])
        guard addresses.ok else { return }
        let others = addresses.lines.filter { !$0.contains(" inet \(gateway)/") }
        let ports = IPRoute2.ip(["-o", "link", "show", "master", name])
        guard !others.isEmpty, ports.ok, ports.output.isEmpty else { return }
        try deleteLink(name)
    }

    /// Deletes a network device if it exists (`ip link delete`); a missing one is not an error.
    static func deleteLink(_ name: String) throws(NetworkError) {
        guard FileSystem.exists("/sys/class/net/\(name)") else { return }
        let deleted = IPRoute2.ip(["link", "delete", name])
        if !deleted.ok && FileSystem.exists("/sys/class/net/\(name)") {
            throw .invalidConfiguration(source: "ip link delete \(name)", reason: deleted.error.trimmingWhitespace)
        }
    }
}

/// The CNI configuration list of one of Berth's bridge networks, what docker's bridge driver does
/// expressed as standard plugins:
///
/// - `bridge`: the host bridge (gateway address on it, `isGateway`), a veth per container, hairpin mode so
///   a container reaches its own published ports. Declares the `ips` capability so `--ip` reaches
///   host-local. Outbound NAT and forwarding are the network's own rules (NetworkRules), installed once,
///   not the plugin's `ipMasq` and the firewall plugin per container.
/// - `host-local` IPAM on the network's subnet, with its leases in a directory of ours (not the shared
///   /var/lib/cni/networks), so removing the network removes exactly its leases.
/// - `portmap` with the `portMappings` capability and `snat`, so published ports answer on 127.0.0.1 and
///   on the host's addresses, as docker's do.
/// - `tuning`: the `mac` capability (`--mac-address`).
public enum BridgeNetworkConfig {
    public static func configList(for network: Network, ipamDirectory: String) -> NetworkConfigList {
        var range: [String: JSON] = [:]
        if let subnet = network.subnet { range["subnet"] = .string(subnet) }
        if let gateway = network.gateway { range["gateway"] = .string(gateway) }
        var ipam: [String: JSON] = [
            "type": "host-local",
            "ranges": .array([.array([.object(range)])]),
            "dataDir": .string(ipamDirectory),
        ]
        if !network.internal { ipam["routes"] = [["dst": "0.0.0.0/0"]] }
        var bridge: [String: JSON] = [
            "type": "bridge",
            "bridge": .string(network.bridge ?? "berth0"),
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "capabilities": ["ips": true],
            "ipam": .object(ipam),
        ]
        if let mtu = network.mtu { bridge["mtu"] = .number(String(mtu)) }
        var plugins: [NetworkConfigList.PluginConfig] = [.init(json: bridge)]
        // An internal network publishes nothing: docker refuses -p there silently by not mapping.
        if !network.internal {
            plugins.append(.init(json: ["type": "portmap", "capabilities": ["portMappings": true], "snat": true]))
        }
        plugins.append(.init(json: ["type": "tuning", "capabilities": ["mac": true]]))
        return NetworkConfigList(cniVersion: "1.0.0", name: network.name, plugins: plugins)
    }

    /// What `docker network inspect` shows of a foreign configuration: the first plugin's type as the
    /// driver, and the first subnet and gateway host-local (or static) IPAM names.
    static func summary(of list: NetworkConfigList) -> (
        driver: String, subnet: String?, gateway: String?, bridge: String?
    ) {
        var subnet: String?
        var gateway: String?
        var bridge: String?
        for plugin in list.plugins {
            if bridge == nil { bridge = plugin.json["bridge"]?.string }
            guard let ipam = plugin.json["ipam"] else { continue }
            if let first = ipam["ranges"].array?.first?.array?.first {
                subnet = subnet ?? first["subnet"].string
                gateway = gateway ?? first["gateway"].string
            }
            subnet = subnet ?? ipam["subnet"].string
            gateway = gateway ?? ipam["gateway"].string
        }
        return (list.plugins.first?.type ?? "", subnet, gateway, bridge)
    }
}

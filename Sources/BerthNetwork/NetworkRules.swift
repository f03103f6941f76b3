#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// The iptables rules of one of Berth's bridge networks, installed once for the network (as docker's
/// bridge driver does) rather than per container by the bridge plugin's `ipMasq` and the firewall
/// plugin, which cost about twenty iptables runs on every container's start and as many at its end:
///
/// - nat POSTROUTING: traffic from the subnet leaving through another interface is masqueraded
///   (not for an internal network, which has no way out);
/// - filter FORWARD: what comes from the bridge, and replies going to it, are accepted even where
///   FORWARD's policy drops (an internal network only accepts traffic between its own containers).
///
/// Each rule carries the comment `berth-network-<bridge>`; a marker file with the boot ID says they are
/// in place, so a container's start checks a file, not the firewall. The comment names the bridge, not
/// the network's ID: every data root has its own default network, all on the one `berth0`, and rules
/// tagged by ID were added again by each root (hundreds of copies after a few test runs).
enum NetworkRules {
    static func comment(_ network: Network) -> String {
        "berth-network-\(network.bridge ?? String(network.id.prefix(12)))"
    }

    static func rules(_ network: Network) -> [(table: String, chain: String, spec: [String])] {
        guard let bridge = network.bridge, let subnet = network.subnet else { return [] }
        let tag = ["-m", "comment", "--comment", comment(network)]
        if network.internal {
            return [("filter", "FORWARD", ["-i", bridge, "-o", bridge, "-j", "ACCEPT"] + tag)]
        }
        let fromBridge: [(table: String, chain: String, spec: [String])] = [
            ("filter", "FORWARD", ["-i", bridge, "-j", "ACCEPT"] + tag),
            (
                "filter", "FORWARD",
                ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"] + tag
            ),
        ]
        guard let cluster = network.clusterCIDR else {
            return [("nat", "POSTROUTING", ["-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"] + tag)] + fromBridge
        }
        // A node's pod network (flannel's rules): pods reach other nodes' pods with their own address
        // and anything else masqueraded; traffic to the cluster's pods is forwarded whichever side
        // starts it (another node's pod, a NodePort's DNAT), even where FORWARD's policy drops.
        // Pods have the link's MTU while a tunnel to some nodes has less: the MSS of connections
        // forwarded to or from the cluster's pods is clamped to the route's MTU (a no-op on the link).
        let clamp = ["-p", "tcp", "--tcp-flags", "SYN,RST", "SYN", "-j", "TCPMSS", "--clamp-mss-to-pmtu"]
        return [
            ("nat", "POSTROUTING", ["-s", subnet, "!", "-d", cluster, "!", "-o", bridge, "-j", "MASQUERADE"] + tag),
            ("filter", "FORWARD", ["-d", cluster, "-j", "ACCEPT"] + tag),
            ("filter", "FORWARD", ["-s", cluster, "-j", "ACCEPT"] + tag),
            ("mangle", "FORWARD", ["-d", cluster] + clamp + tag),
            ("mangle", "FORWARD", ["-s", cluster] + clamp + tag),
        ] + fromBridge
    }

    static func bootID() -> String {
        ((try? FileSystem.readString("/proc/sys/kernel/random/boot_id")) ?? "").filter { $0 != "\n" }
    }

    /// Puts the network's rules in place unless this boot already has them.
    static func ensure(_ network: Network, markerDirectory: String) throws(NetworkError) {
        guard network.configFile == nil, network.driver == "bridge" else { return }
        let marker = "\(markerDirectory)/\(network.id)"
        // The boot and the rules: a Berth with other rules for the network adds the ones missing.
        let rules = rules(network)
        let stamp = ([bootID()] + rules.map { "\($0.table) \($0.chain) \($0.spec.joined(separator: " "))" })
            .joined(separator: "\n")
        if let text = try? FileSystem.readString(marker), text == stamp { return }
        for rule in rules {
            // -C first: a rule already there (another engine, a lost marker) is not added twice.
            if (try? iptables(["-t", rule.table, "-C", rule.chain] + rule.spec)) == true { continue }
            let position = rule.chain == "FORWARD" ? ["-I", rule.chain, "1"] : ["-A", rule.chain]
            guard (try? iptables(["-t", rule.table] + position + rule.spec)) == true else {
                throw .invalidConfiguration(
                    source: network.name,
                    reason: "iptables could not add \(rule.spec.joined(separator: " ")) to \(rule.table)/\(rule.chain)")
            }
        }
        do {
            try FileSystem.makeDirectories(markerDirectory, mode: 0o700)
            try FileSystem.writeAtomically(marker, Array(stamp.utf8), mode: 0o600, durable: false)
        } catch { throw .system(error) }
    }

    /// Removes the network's rules (every copy) and its marker.
    static func remove(_ network: Network, markerDirectory: String) {
        for rule in rules(network) {
            while (try? iptables(["-t", rule.table, "-D", rule.chain] + rule.spec)) == true {}
        }
        unlink("\(markerDirectory)/\(network.id)")
    }

    /// Runs iptables (-w: wait for the xtables lock); true when it exits 0.
    static func iptables(_ arguments: [String]) throws(SystemCallError) -> Bool {
        let program = ChildProcess.lookup("iptables", path: "/usr/sbin:/sbin:/usr/bin:/bin") ?? "/usr/sbin/iptables"
        return try ChildProcess.run(
            program, arguments: ["iptables", "-w"] + arguments, environment: ["PATH=/usr/sbin:/sbin:/usr/bin:/bin"]
        ).status.succeeded
    }
}

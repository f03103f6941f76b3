import BerthOS

/// br_netfilter, which Services and NetworkPolicies need between pods on one bridge: without it a
/// packet from one pod to another on the same node is bridged past the IP hooks, so a reply from a
/// Service's endpoint on the client's own node is never translated back, and no policy sees it. The
/// kubelet's hosts have it by kubeadm's preflight; k3s's agent loads it, as this does.
public enum BridgeNetfilter {
    static let setting = "/proc/sys/net/bridge/bridge-nf-call-iptables"

    /// Loads the module if it is not (modprobe), turns bridged IPv4 traffic through the IP hooks on;
    /// returns what is still wrong, nil when all is well.
    public static func ensure() -> String? {
        if !FileSystem.exists(setting),
            let modprobe = ChildProcess.lookup("modprobe", path: "/usr/sbin:/sbin:/usr/bin:/bin")
        {
            _ = try? ChildProcess.run(modprobe, arguments: ["modprobe", "br_netfilter"], environment: [])
        }
        guard FileSystem.exists(setting) else {
            return
                "br_netfilter is not loaded (modprobe br_netfilter): traffic between pods on one node bypasses Service translation and NetworkPolicies"
        }
        let value = (try? FileSystem.readString(setting))?.first
        if value != "1" {
            do {
                try FileSystem.writeFile(setting, "1\n")
            } catch {
                return "net.bridge.bridge-nf-call-iptables could not be set to 1: \(error)"
            }
        }
        return nil
    }
}

import BerthOS

/// UDP has no connection to end: conntrack keeps sending a flow's packets to the endpoint it was
/// DNATed to, even after that endpoint is gone, until the flow idles out. As kube-proxy does, the proxy
/// deletes those flows once its rules no longer lead there (conntrack(8), best effort: a machine without
/// it only waits for the flows to expire).
struct ConntrackCleanup: Sendable {
    let path: String?

    init() { path = ChildProcess.lookup("conntrack", path: "/usr/sbin:/sbin:/usr/bin:/bin") }

    /// The conntrack deletions that take traffic away from what `before` routed and `after` no longer
    /// does: a UDP port's endpoints that went, and a UDP port that went from no endpoints to some (its
    /// clients' flows were rejected and are cached as such).
    static func deletions(before: [ProxiedServicePort], after: [ProxiedServicePort]) -> [[String]] {
        let old = Dictionary(before.map { ($0.qualifiedName, $0) }, uniquingKeysWith: { first, _ in first })
        var result: [[String]] = []
        for port in after where port.transport == .udp {
            guard let clusterIP = port.clusterIP else { continue }
            let destinations = [clusterIP] + port.externalAddresses
            // New, or without endpoints until now: flows its clients sent meanwhile were never NATed and
            // conntrack would keep them so (a Service made again on the same address, too).
            let previous = old[port.qualifiedName]
            if previous?.endpoints.isEmpty ?? true {
                if port.endpoints.isEmpty { continue }
                for address in destinations {
                    result.append(["-p", "udp", "--orig-dst", address, "--orig-port-dst", String(port.port)])
                }
                if let nodePort = port.nodePort {
                    result.append(["-p", "udp", "--orig-port-dst", String(nodePort)])
                }
                continue
            }
            // An endpoint is its address and port: one that moved port is gone too.
            let kept = Set(port.endpoints.map { "\($0.ip):\($0.port)" })
            let goneEndpoints = previous!.endpoints.filter { !kept.contains("\($0.ip):\($0.port)") }
            for gone in Set(goneEndpoints.map(\.ip)).sorted() {
                for address in destinations {
                    result.append([
                        "-p", "udp", "--orig-dst", address, "--orig-port-dst", String(port.port), "--dst-nat", gone,
                    ])
                }
                if let nodePort = port.nodePort {
                    result.append(["-p", "udp", "--orig-port-dst", String(nodePort), "--dst-nat", gone])
                }
            }
        }
        // A UDP port removed altogether: its flows go with it.
        let now = Set(after.map(\.qualifiedName))
        for port in before where port.transport == .udp && !now.contains(port.qualifiedName) {
            guard let clusterIP = port.clusterIP else { continue }
            for endpoint in Set(port.endpoints.map(\.ip)).sorted() {
                for address in [clusterIP] + port.externalAddresses {
                    result.append([
                        "-p", "udp", "--orig-dst", address, "--orig-port-dst", String(port.port), "--dst-nat",
                        endpoint,
                    ])
                }
                if let nodePort = port.nodePort {
                    result.append(["-p", "udp", "--orig-port-dst", String(nodePort), "--dst-nat", endpoint])
                }
            }
        }
        return result
    }

    func delete(_ filters: [[String]]) {
        guard let path else { return }
        for filter in filters {
            // Exit 1 with "0 flow entries have been deleted" is the common, harmless case.
            _ = try? ChildProcess.run(
                path, arguments: ["conntrack", "-D"] + filter, environment: ["PATH=/usr/sbin:/sbin:/usr/bin:/bin"],
                timeout: 10)
        }
    }
}

import ArgumentParser
import BerthClusterDNS
import BerthDNS
import BerthKube
import BerthOS
import BerthServiceProxy
import Foundation
import Logging

/// Services for the network benchmarks: `count` ClusterIP Services (every tenth a NodePort one), each
/// with `endpoints` ready endpoints.
enum SyntheticServices {
    static func make(count: Int, endpoints: Int) -> ([CoreV1.Service], [DiscoveryV1.EndpointSlice]) {
        var services: [CoreV1.Service] = []
        var slices: [DiscoveryV1.EndpointSlice] = []
        for i in 0..<count {
            var service = CoreV1.Service()
            service.metadata.name = "svc-\(i)"
            service.metadata.namespace = "default"
            service.spec.clusterIP = "10.100.\(i / 250).\(i % 250 + 1)"
            service.spec.type = i % 10 == 0 ? .nodePort : .clusterIP
            service.spec.ports = [
                CoreV1.ServicePort(name: "http", port: 80, nodePort: i % 10 == 0 ? Int32(30000 + i / 10) : nil)
            ]
            services.append(service)
            var slice = DiscoveryV1.EndpointSlice()
            slice.metadata.name = "svc-\(i)-x"
            slice.metadata.namespace = "default"
            slice.metadata.labels = [ProxiedServices.serviceNameLabel: "svc-\(i)"]
            slice.addressType = "IPv4"
            slice.ports = [DiscoveryV1.EndpointPort(name: "http", protocol: .tcp, port: 8080)]
            slice.endpoints = (0..<endpoints).map { e in
                var endpoint = DiscoveryV1.Endpoint()
                let n = i * endpoints + e
                endpoint.addresses = ["10.\(244 + n / 65000).\(n / 250 % 260 % 256).\(n % 250 + 1)"]
                endpoint.nodeName = "node-\(e % 3)"
                endpoint.conditions.ready = true
                return endpoint
            }
            slices.append(slice)
        }
        return (services, slices)
    }
}

/// `berth bench proxy`: the service proxy's rule sync at scale, applied for real by nft in a network
/// namespace of its own (the host's firewall is not touched).
struct ProxyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Time the service proxy's nftables sync: N Services × M endpoints, then one endpoint change.")

    @Option(help: "Services.") var services = 1000
    @Option(help: "Endpoints per Service.") var endpoints = 10
    @Flag(help: "Print only the JSON line.") var json = false

    func run() throws {
        guard let nft = NFTables(), let ip = ChildProcess.lookup("ip", path: "/usr/sbin:/sbin:/usr/bin:/bin") else {
            throw ValidationError("needs nft(8) and ip(8)")
        }
        var settings = ServiceProxyRules.Settings()
        settings.nodeIPs = ["192.0.2.10"]
        settings.clusterCIDR = "10.244.0.0/14"
        var (serviceList, slices) = SyntheticServices.make(count: services, endpoints: endpoints)
        let clock = ContinuousClock()
        var ruleset = NFTablesRuleset(table: "", comment: "")
        let generation = clock.measure {
            ruleset = ServiceProxyRules.ruleset(
                ProxiedServices.build(services: serviceList, slices: slices, nodeName: "node-0"), settings: settings)
        }
        let namespace = "berth-bench-proxy-\(getpid())"
        _ = try ChildProcess.run(ip, arguments: ["ip", "netns", "add", namespace], environment: [])
        defer { _ = try? ChildProcess.run(ip, arguments: ["ip", "netns", "delete", namespace], environment: []) }
        let inside = NFTables(command: [ip, "netns", "exec", namespace] + nft.command)
        let full = ruleset.transaction(from: nil)
        let fullTime = try clock.measure { try inside.apply(full) }
        // One endpoint of one Service moves: what a rolling update does many times over.
        slices[services / 2].endpoints[0].addresses = ["10.250.0.1"]
        var changed = ruleset
        let partialGeneration = clock.measure {
            changed = ServiceProxyRules.ruleset(
                ProxiedServices.build(services: serviceList, slices: slices, nodeName: "node-0"), settings: settings)
        }
        let partial = changed.transaction(from: ruleset)
        let partialTime = try clock.measure { try inside.apply(partial) }
        serviceList.removeAll()
        func ms(_ d: Duration) -> Double {
            Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1000
        }
        let fullLines = full.split(separator: "\n").count
        let partialLines = partial.split(separator: "\n").count
        let line =
            "{\"services\":\(services),\"endpoints\":\(endpoints),\"chains\":\(ruleset.chains.count),"
            + "\"generate_ms\":\(String(format: "%.1f", ms(generation))),\"full_sync_ms\":\(String(format: "%.1f", ms(fullTime))),"
            + "\"full_lines\":\(fullLines),\"one_change_generate_ms\":\(String(format: "%.1f", ms(partialGeneration))),"
            + "\"one_change_sync_ms\":\(String(format: "%.1f", ms(partialTime))),\"one_change_lines\":\(partialLines)}"
        if !json {
            print("service proxy: \(services) Services × \(endpoints) endpoints (\(ruleset.chains.count) chains)")
            print(
                String(
                    format: "  rules made in %.1f ms; full sync (%d nft lines) %.1f ms", ms(generation), fullLines,
                    ms(fullTime)))
            print(
                String(
                    format: "  one endpoint changed: rules %.1f ms, sync (%d nft lines) %.1f ms", ms(partialGeneration),
                    partialLines, ms(partialTime)))
        }
        print(line)
    }
}

/// `berth bench dns`: the cluster DNS server's queries per second on its one event-loop thread, and
/// its latency, under a bounded load of cluster names (and 10 % names that are not there).
struct DNSBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns", abstract: "Queries per second and latency of the cluster DNS on one thread.")

    @Option(help: "Services in the zone.") var services = 1000
    @Option(help: "Seconds of load.") var seconds = 5.0
    @Option(help: "Client threads.") var clients = 2
    @Option(help: "Queries in flight per client.") var window = 32
    @Flag(help: "Print only the JSON line.") var json = false
    @Option(
        help: "Only serve, for this many seconds, printing `ready PORT` (for a load from another process: dnsperf).")
    var serveSeconds: Double?

    func run() async throws {
        let (serviceList, slices) = SyntheticServices.make(count: services, endpoints: 3)
        var settings = ClusterDNSServer.Configuration(address: "127.0.0.1")
        settings.port = 0
        var logger = Logger(label: "berth.bench.dns")
        logger.logLevel = .warning
        let server = ClusterDNSServer(
            configuration: settings,
            zone: ClusterZone(domain: "cluster.local", services: serviceList, slices: slices), logger: logger)
        let port = try await server.start()
        defer { Task { await server.stop() } }
        if let serveSeconds {
            print("ready \(port)")
            fflush(nil)
            try await Task.sleep(for: .milliseconds(Int(serveSeconds * 1000)))
            return
        }
        let names = (0..<services).map { "svc-\($0).default.svc.cluster.local" }
        let results = await withTaskGroup(of: DNSLoad.Result.self) { group in
            for client in 0..<clients {
                group.addTask {
                    await BlockingThread.run(name: "berth-dnsload") {
                        DNSLoad.run(port: port, names: names, seconds: seconds, window: window, seed: client)
                    }
                }
            }
            var all: [DNSLoad.Result] = []
            for await result in group { all.append(result) }
            return all
        }
        let answered = results.reduce(0) { $0 + $1.latencies.count }
        let lost = results.reduce(0) { $0 + $1.lost }
        let wrong = results.reduce(0) { $0 + $1.wrong }
        if wrong > 0 { throw ValidationError("\(wrong) answers had the wrong response code: the figures mean nothing") }
        let latencies = results.flatMap(\.latencies).sorted()
        func percentile(_ p: Double) -> Double {
            latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1000
        }
        let qps = Double(answered) / seconds
        let line = String(
            format: "{\"qps\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"lost\":%d,\"clients\":%d,\"window\":%d}", qps,
            percentile(0.5), percentile(0.99), lost, clients, window)
        if !json {
            print(
                String(
                    format: "cluster DNS: %.0f queries/s on one thread, p50 %.3f ms, p99 %.3f ms (%d lost)", qps,
                    percentile(0.5), percentile(0.99), lost))
        }
        print(line)
    }
}

/// A closed-loop UDP load: `window` queries in flight on one socket, each answer timed from its send.
enum DNSLoad {
    struct Result: Sendable {
        var latencies: [Double] = []
        var lost = 0
        /// Answers whose code was not what the name calls for (NOERROR for a Service, NXDOMAIN for a
        /// missing one): a bench that counted FORMERRs as answers once measured nothing.
        var wrong = 0
    }

    static func run(port: Int, names: [String], seconds: Double, window: Int, seed: Int) -> Result {
        var result = Result()
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // Packets made before the clock starts: the load measures the server, not the client.
        let packets = (0..<names.count * 10 / 9).map { i -> [UInt8] in
            DNSMessage.query(
                id: 0, name: i < names.count ? names[i] : "missing-\(i).default.svc.cluster.local", type: 1)
        }
        var sent: [UInt16: (start: Double, missing: Bool)] = [:]
        var next = seed * 7919
        var id: UInt16 = 0
        func send() {
            id &+= 1
            let index = next % packets.count
            var packet = packets[index]
            next += 1
            DNSMessage.setID(&packet, id)
            sent[id] = (Timestamp.monotonic(), index >= names.count)
            _ = packet.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        }
        let end = Timestamp.monotonic() + seconds
        for _ in 0..<window { send() }
        var buffer = [UInt8](repeating: 0, count: 1500)
        while Timestamp.monotonic() < end {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count < 12 {
                // Timed out: whatever is in flight is lost; start the window again.
                result.lost += sent.count
                sent.removeAll()
                for _ in 0..<window { send() }
                continue
            }
            let answered = UInt16(buffer[0]) << 8 | UInt16(buffer[1])
            if let query = sent.removeValue(forKey: answered) {
                result.latencies.append(Timestamp.monotonic() - query.start)
                if buffer[3] & 0x0F != (query.missing ? 3 : 0) { result.wrong += 1 }
            }
            send()
        }
        return result
    }
}

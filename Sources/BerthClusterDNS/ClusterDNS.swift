import BerthControl
import BerthDNS
import BerthKube
import BerthOS
import Logging

/// The cluster DNS as a node runs it (NodeLocal DNSCache's layout, without CoreDNS behind it): the
/// kube-dns Service's address is put on a dummy interface of the node's own, so what pods send to it is
/// delivered to this node's server — no hop to another node, no NAT, nothing to route — and the server
/// answers from the Services and EndpointSlices the agent watches.
public actor ClusterDNS {
    public struct Configuration: Sendable {
        /// The kube-dns Service address (the agent's --cluster-dns).
        public var address: String
        public var domain = "cluster.local"
        /// The node's resolvers (its /etc/resolv.conf's, without the cluster address).
        public var upstreams: [String] = []
        /// The dummy interface that holds `address`; nil: the address is already the node's (tests).
        public var interface: String? = "berth-dns"
        public var port = 53

        public init(address: String) { self.address = address }
    }

    let configuration: Configuration
    let services: Informer<CoreV1.Service>
    let slices: Informer<DiscoveryV1.EndpointSlice>
    let logger: Logger
    let report: @Sendable (String) -> Void
    private(set) var server: ClusterDNSServer?

    public init(
        configuration: Configuration, services: Informer<CoreV1.Service>, slices: Informer<DiscoveryV1.EndpointSlice>,
        logger: Logger, report: @escaping @Sendable (String) -> Void
    ) {
        self.configuration = configuration
        self.services = services
        self.slices = slices
        self.logger = logger
        self.report = report
    }

    /// Serves until cancelled; the zone is rebuilt (at most every 50 ms) whenever a Service or an
    /// EndpointSlice changes.
    public func run() async {
        if let interface = configuration.interface {
            do {
                try DummyInterface.ensure(interface, address: configuration.address)
            } catch {
                report("the cluster DNS address \(configuration.address) could not be set up: \(error)")
                logger.error("cluster DNS is off", metadata: ["error": "\(error)"])
                return
            }
        }
        var settings = ClusterDNSServer.Configuration(address: configuration.address)
        settings.port = configuration.port
        settings.upstreams = configuration.upstreams
        let server = ClusterDNSServer(
            configuration: settings, zone: ClusterZone(domain: configuration.domain), logger: logger)
        do {
            try await server.start()
        } catch {
            report("the cluster DNS could not listen on \(configuration.address):\(configuration.port): \(error)")
            logger.error("cluster DNS is off", metadata: ["error": "\(error)"])
            await server.stop()
            return
        }
        self.server = server
        let (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        services.onChange { _ in changed.yield() }
        slices.onChange { _ in changed.yield() }
        await services.waitForSync()
        await slices.waitForSync()
        changed.yield()
        let domain = configuration.domain
        await withTaskCancellationHandler {
            for await _ in changes {
                server.update(ClusterZone(domain: domain, services: services.list(), slices: slices.list()))
                try? await Task.sleep(for: .milliseconds(50))
            }
        } onCancel: {
            changed.finish()
        }
        await server.stop()
    }
}

/// A dummy interface holding one address (`ip link add … type dummy`, or the loopback interface where
/// the kernel has no dummy driver): how a node answers on a Service address itself.
enum DummyInterface {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func ensure(_ name: String, address: String) throws {
        let ip = ChildProcess.lookup("ip", path: "/usr/sbin:/sbin:/usr/bin:/bin") ?? "/usr/sbin/ip"
        func run(_ arguments: [String], allowFailure: Bool = false) throws {
            let output = try ChildProcess.run(ip, arguments: ["ip"] + arguments, environment: [])
            if !allowFailure, output.status != .exited(0) {
                throw Failure(
                    description:
                        "ip \(arguments.joined(separator: " ")): \(String(decoding: output.stderr, as: UTF8.self))")
            }
        }
        if !FileSystem.exists("/sys/class/net/\(name)") {
            do {
                try run(["link", "add", name, "type", "dummy"])
            } catch {
                // A kernel without the dummy driver: the loopback interface holds it instead (an address
                // on lo is as local, from every interface).
                try run(["addr", "replace", address + "/32", "dev", "lo"])
                return
            }
        }
        try run(["addr", "replace", address + "/32", "dev", name])
        try run(["link", "set", name, "up"])
    }
}

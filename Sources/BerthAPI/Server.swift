import BerthStore
import BerthHTTPUpgrade
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// How `berth server` is configured.
public struct ServerConfig: Sendable {
    public enum Datastore: String, Sendable { case sqlite, etcd }
    public var dataDir: String
    public var host = "127.0.0.1"
    public var port = 6443
    public var datastore: Datastore = .sqlite
    public var etcdEndpoints: [String] = []
    public var serviceCIDR = "10.96.0.0/12"
    /// The pods' range nodes get their pod CIDRs from (told to nodes that join); nil: none.
    public var clusterCIDR: String?
    /// The kube-dns Service's cluster IP (nil: no kube-dns Service). Nodes answer it themselves (no
    /// selector, no endpoints: every agent holds the address), as k3s's CoreDNS Service is there.
    public var clusterDNS: String? = "10.96.0.10"
    public var nodePortRange: ClosedRange<Int> = 30000...32767
    public var tlsSANs: [String] = []
    /// Largest accepted request body (kube-apiserver: 3 MiB).
    public var maxBodyBytes = 3 * 1024 * 1024
    /// How often a watch that asked for bookmarks gets one.
    public var bookmarkInterval: Duration = .seconds(5)
    /// Revisions kept before automatic compaction.
    public var compactionRetain: Int64 = 10_000
    public var compactionInterval: Duration = .seconds(60)
    /// Take part in leader election for the run-once components (scheduler, controllers) of part 2.
    public var leaderElect = true
    /// This server's identity in leader election (default: hostname_port).
    public var identity: String?
    public var leaseDuration: Duration = .seconds(3)
    /// How long SIGTERM waits for a graceful shutdown before cancelling what is left.
    public var shutdownGracePeriod: Duration = .seconds(10)
    /// How long what is left may take to end once cancelled before service-lifecycle ends the process.
    /// Test harnesses, which stop servers by cancelling them and run hundreds in one process, allow more:
    /// a connection's handler slow to notice cancellation there fails a test, not the whole run.
    public var cancellationLimit: Duration = .seconds(5)
    /// A namespace controller (BerthControl) empties deleted namespaces: DELETE only marks a Namespace
    /// Terminating and the controller removes its contents, then finalizes it (upstream behaviour).
    /// Off, the API deletes the namespace at once and its contents in the background.
    public var namespaceController = false
    /// A garbage collector (BerthControl) serves this cluster: a Foreground or Orphan delete adds its
    /// finalizer and leaves the owner, marked, for it to finish; Background owners go at once and it
    /// deletes their dependents after. Off, nothing would remove those finalizers, so such deletes remove
    /// the owner at once and dependents are left as they are (kube-apiserver without its controller
    /// manager, minus finalizers that never go).
    public var garbageCollector = false
    /// tolerationSeconds of the not-ready/unreachable NoExecute tolerations every new Pod gets
    /// (upstream's DefaultTolerationSeconds admission uses 300 s; Berth replaces pods of a dead node fast).
    public var defaultTolerationSeconds: Int64 = 5
    /// The `local-path` StorageClass, made at start as k3s's local-storage: the default class, its
    /// volumes made by the control plane's local-path provisioner on the node a pod is scheduled to.
    public var localStorage = true
    /// The concurrency priority levels share (kube-apiserver's max-requests-inflight plus
    /// max-mutating-requests-inflight: 400 + 200).
    public var maxRequestsInFlight = 600
    public init(dataDir: String) { self.dataDir = dataDir }
}

/// The API server: a stateless HTTPS front end over a `KVStore`.
public final class APIServer: Sendable {
    public let config: ServerConfig
    public let store: any KVStore
    public let pki: PKI
    let tokens: TokenFile
    public let adminToken: String
    let logger: Logger
    let allocator: ServiceAllocator
    let metrics = Metrics()
    /// Requests being answered (streams included), for the log line that names what outlives cancellation.
    let inFlight = InFlightRequests()
    /// The watches open per resource, for the work estimate of the writes that reach them.
    let watchCounts = WatchCounts()
    /// Summaries of nodes run in this process without a kubelet port (hollow nodes), for metrics.k8s.io.
    let nodeSummaries = NodeSummarySources()
    /// The RBAC objects every request is authorized against.
    let rbac = RBACPolicyCache()
    /// The admission webhooks and policies every write goes through, and the clients that call webhooks.
    let admission = AdmissionConfigurationCache()
    let webhookClients = WebhookClients()
    /// API priority and fairness: the seats and queues of the priority levels.
    let flowControl: FlowController
    /// Node agents, for pods' logs, exec and attach.
    let nodeAgents: NodeAgentConnections
    /// What a machine presents to join as a node (`<data-dir>/token`), and where it is.
    public let joinToken: JoinToken
    public let joinTokenPath: String
    /// Refused joins and node identities' refused requests (`<data-dir>/audit.log`).
    let audit: AuditLog
    let startTime = Date()
    /// The custom resources served, as the stored CustomResourceDefinitions define them.
    let customResources = CustomResourceRegistry()

    public init(config: ServerConfig, logger: Logger = Logger(label: "berth.apiserver")) throws {
        self.config = config
        self.logger = logger
        flowControl = FlowController(serverConcurrency: config.maxRequestsInFlight)
        try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
        switch config.datastore {
        case .sqlite: store = try SQLiteStore(path: config.dataDir + "/state.db")
        case .etcd: store = EtcdStore(endpoints: config.etcdEndpoints)
        }
        // The address it listens on, when one, is a name clients use (kube-apiserver's advertise address).
        let listening = config.host == "0.0.0.0" || config.host.isEmpty ? [] : [config.host]
        pki = try PKI.loadOrCreate(dataDir: config.dataDir, sans: config.tlsSANs + listening)
        nodeAgents = try NodeAgentConnections(pki: pki)
        (tokens, adminToken) = try TokenFile.loadOrCreate(dataDir: config.dataDir)
        (joinToken, joinTokenPath) = try JoinToken.loadOrCreate(dataDir: config.dataDir, caPEM: pki.caPEM)
        audit = AuditLog(path: config.dataDir + "/audit.log", logger: logger)
        allocator = try ServiceAllocator(cidr: config.serviceCIDR, nodePorts: config.nodePortRange)
        let host = ProcessInfo.processInfo.hostName
        elector =
            config.leaderElect
            // hostname_UUID, as kube-controller-manager: two servers on one host (a second one started by
            // mistake on the same port and data dir) must never share an identity and both "hold" the Lease.
            ? LeaderElector(
                store: store, identity: config.identity ?? "\(host)_\(UUID().uuidString.lowercased())",
                leaseDuration: config.leaseDuration, logger: logger)
            : nil
    }
    /// Leader election for the run-once components; nil with `leaderElect = false`.
    public let elector: LeaderElector?

    /// The server URL clients use.
    public var url: String { "https://\(config.host == "0.0.0.0" ? "127.0.0.1" : config.host):\(config.port)" }

    /// Writes `admin.kubeconfig` into the data dir and returns its path.
    @discardableResult
    public func writeKubeconfig() throws -> String {
        let path = config.dataDir + "/admin.kubeconfig"
        try writeNewFile(path, Data(pki.kubeconfig(server: url).utf8), permissions: 0o600)
        return path
    }

    /// Creates the namespaces and objects every cluster has.
    public func bootstrap() async throws {
        let h = Handler(server: self)
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            _ = try? await h.createObject(
                Registry.find(group: "", version: "v1", plural: "namespaces")!, namespace: nil,
                obj: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(ns)]], dryRun: false)
        }
        let svc = Registry.find(group: "", version: "v1", plural: "services")!
        _ = try? await h.createObject(
            svc, namespace: "default",
            obj: [
                "apiVersion": "v1", "kind": "Service",
                "metadata": [
                    "name": "kubernetes", "namespace": "default",
                    "labels": ["component": "apiserver", "provider": "kubernetes"],
                ],
                "spec": [
                    "clusterIP": .string(allocator.firstIP),
                    "ports": [
                        ["name": "https", "port": 443, "protocol": "TCP", "targetPort": .int(Int64(config.port))]
                    ],
                ],
            ], dryRun: false)
        // On a restart the Service is there: creating it again would fail allocating its address
        // (already in use, by itself) before the store could say it exists.
        if let clusterDNS = config.clusterDNS,
            (try? await store.get(svc.key(namespace: "kube-system", name: "kube-dns"))) == nil
        {
            do {
                _ = try await h.createObject(
                    svc, namespace: "kube-system", obj: Self.kubeDNSService(clusterDNS), dryRun: false)
            } catch let error as APIError where error.code == 409 {
            } catch {
                logger.error(
                    "the kube-dns Service could not be made",
                    metadata: ["clusterIP": "\(clusterDNS)", "error": "\(error)"])
            }
        }
        for priorityClass in PriorityClassStrategy.system {
            _ = try? await h.createObject(Registry.priorityClasses, namespace: nil, obj: priorityClass, dryRun: false)
        }
        if config.localStorage {
            // Made when missing: an administrator's changes to it stay (k3s writes it over on every
            // start); `--disable-local-storage` keeps a deleted one away.
            _ = try? await h.createObject(
                Registry.storageClasses, namespace: nil, obj: StorageClassStrategy.localPath, dryRun: false)
        }
        do { try await h.ensureFlowControlBootstrap() } catch {
            logger.error("the flow control bootstrap configuration could not be made", metadata: ["error": "\(error)"])
        }
        do { try await h.reconcileBootstrapPolicy() } catch {
            logger.error("the bootstrap RBAC policy could not be reconciled", metadata: ["error": "\(error)"])
        }
    }

    /// kube-system/kube-dns as clusters name it (CoreDNS's Service, `kubectl cluster-info` lists it).
    static func kubeDNSService(_ clusterIP: String) -> JSON {
        [
            "apiVersion": "v1", "kind": "Service",
            "metadata": [
                "name": "kube-dns", "namespace": "kube-system",
                "labels": [
                    "k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS",
                ],
            ],
            "spec": [
                "clusterIP": .string(clusterIP),
                "ports": [
                    ["name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53],
                    ["name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53],
                ],
            ],
        ]
    }

    func tlsConfiguration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(pki.serverCertPEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(pki.serverKeyPEM.utf8), format: .pem)))
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(pki.caPEM.utf8), format: .pem)])
        tls.certificateVerification = .optionalVerification
        tls.applicationProtocols = ["http/1.1"]
        // Closing a connection waits this long for the client's close_notify: less than the 5 s service-lifecycle
        // allows a stopping server, so an unresponsive client cannot hold the stop past it.
        tls.shutdownTimeout = .seconds(2)
        return tls
    }

    /// Runs until SIGTERM/SIGINT (or the task is cancelled). `onReady` is called with the bound port once
    /// the listener is bound and the store bootstrapped. `services` run beside the HTTPS front end in the
    /// same service group (the control plane, hollow nodes).
    ///
    /// Order matters: the listener is bound first, and only then does anything write to the store, take
    /// the leader Lease or start a loop; a failed bind ends `run` with `ServerStartError.listen`.
    public func run(services extra: [any Service] = [], onReady: @escaping @Sendable (Int) async -> Void = { _ in })
        async throws
    {
        let handler = Handler(server: self)
        let gate = ListenGate()
        let app = Application(
            responder: CallbackResponder { (req: Request, ctx: APIContext) in await handler.respond(req, ctx) },
            // Plain HTTP/1.1, plus the upgrades kubectl asks for on pods/exec, attach and portforward:
            // WebSocket, or SPDY/3.1 (its fallback).
            server: try .tls(
                HTTPServerBuilder { responder in
                    UpgradeSniffingChannel(
                        http: HTTP1WebSocketUpgradeChannel(
                            responder: responder, configuration: .init(ws: .init(maxFrameSize: 1 << 20))
                        ) { head, channel, _ in
                            await handler.podStreamUpgrade(head, channel: channel)
                        },
                        takeover: { request, connection, channel, _ in
                            await handler.podSPDYUpgrade(request, connection: connection, channel: channel)
                        })
                }, tlsConfiguration: try tlsConfiguration()),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: nil),
            onServerRunning: { channel in gate.open(port: channel.localAddress?.port ?? 0) },
            logger: logger)
        let compactor = Compactor(
            store: store, retain: config.compactionRetain, interval: config.compactionInterval, logger: logger)
        let definitions = CustomResourceDefinitionController(
            store: store, registry: customResources, logger: logger)
        let flowSchemas = FlowSchemaStatusController(store: store, logger: logger)
        let policies = ValidatingAdmissionPolicyStatusController(
            store: store, registry: customResources, logger: logger)
        var services: [any Service] = [compactor, definitions, flowSchemas, policies]
        if let elector { services.append(elector) }
        services += extra
        let rest = services
        // The loops below and the listener, by name while they run: what outlives cancellation is logged.
        let running = RunningServices()
        let inFlight = self.inFlight
        let after = AfterListening(gate: gate) { [self] port in
            try await bootstrap()
            await onReady(port)
            // Child tasks inherit this service's graceful-shutdown context, so each behaves as in the group.
            try await withThrowingTaskGroup(of: Void.self) { g in
                for (i, service) in rest.enumerated() {
                    let name = "\(i):\(type(of: service))"
                    running.started(name)
                    g.addTask {
                        defer { running.ended(name) }
                        try await service.run()
                    }
                }
                try await withTaskCancellationHandler {
                    try await g.waitForAll()
                } onCancel: {
                    // service-lifecycle ends the process when cancellation takes over the limit (5 s): name
                    // the loops (and the listener) still running after 3, so a slow one can be found.
                    let log = logger
                    Task {
                        try? await Task.sleep(for: .seconds(3))
                        let left = running.names
                        if !left.isEmpty {
                            log.error(
                                "still running 3 s after cancellation: \(left.sorted())",
                                metadata: ["requests": "\(inFlight.descriptions)"])
                        }
                    }
                }
            }
        }
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(
                    service: ListenerService(
                        app: app, address: "\(config.host):\(config.port)", gate: gate, running: running)),
                .init(service: after),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // SIGTERM ends the process within the grace period even if some loop ignores graceful shutdown
        // (escalated to cancellation) or cancellation (service-lifecycle then stops the process).
        configuration.maximumGracefulShutdownDuration = config.shutdownGracePeriod
        configuration.maximumCancellationDuration = config.cancellationLimit
        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch {
            await nodeAgents.shutdown()
            await webhookClients.shutdown()
            await store.close()
            throw error
        }
        await nodeAgents.shutdown()
        await webhookClients.shutdown()
        await store.close()
    }
}

/// Per-request context: carries the channel so the handler can read the client certificate.
public struct APIContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
    public var maxUploadSize: Int { 3 * 1024 * 1024 }
}

/// Periodic compaction keeping the last `retain` revisions (etcd's and kine's default behaviour).
struct Compactor: Service {
    let store: any KVStore
    let retain: Int64
    let interval: Duration
    let logger: Logger
    func run() async throws {
        while !Task.isCancelled {
            do { try await gracefulShutdownAwareSleep(for: interval) } catch { return }
            if Task.isShuttingDownGracefully { return }
            do {
                let rev = try await store.currentRevision()
                if rev - retain > (try await store.compactedRevision()) {
                    try await store.compact(revision: rev - retain)
                }
            } catch {
                logger.warning("compaction failed", metadata: ["error": "\(error)"])
            }
        }
    }
}

func gracefulShutdownAwareSleep(for d: Duration) async throws {
    try await cancelWhenGracefulShutdown { try await Task.sleep(for: d) }
}

/// Request counters and latency sums for /metrics (Prometheus text format).
final class Metrics: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: Int] = [:]
    private var latencySum: [String: Double] = [:]
    private var watches = 0
    func record(verb: String, resource: String, code: Int, seconds: Double) {
        lock.lock(); defer { lock.unlock() }
        let k = "verb=\"\(verb)\",resource=\"\(resource)\",code=\"\(code)\""
        requests[k, default: 0] += 1
        latencySum["verb=\"\(verb)\",resource=\"\(resource)\"", default: 0] += seconds
    }
    func watchDelta(_ d: Int) { lock.lock(); watches += d; lock.unlock() }
    func text() -> String {
        lock.lock(); defer { lock.unlock() }
        var s =
            "# HELP apiserver_request_total Counter of apiserver requests broken out by verb, resource and HTTP response code.\n# TYPE apiserver_request_total counter\n"
        for (k, v) in requests.sorted(by: { $0.key < $1.key }) { s += "apiserver_request_total{\(k)} \(v)\n" }
        s +=
            "# HELP apiserver_request_duration_seconds_sum Total seconds spent serving requests.\n# TYPE apiserver_request_duration_seconds_sum counter\n"
        for (k, v) in latencySum.sorted(by: { $0.key < $1.key }) {
            s += "apiserver_request_duration_seconds_sum{\(k)} \(v)\n"
        }
        s +=
            "# HELP apiserver_registered_watchers Number of currently open watches.\n# TYPE apiserver_registered_watchers gauge\napiserver_registered_watchers \(watches)\n"
        var ru = rusage(); getrusage(RUSAGE_SELF.rawValue, &ru)
        s +=
            "# HELP process_max_resident_memory_bytes Peak resident set size.\n# TYPE process_max_resident_memory_bytes gauge\nprocess_max_resident_memory_bytes \(ru.ru_maxrss * 1024)\n"
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let f = statm.split(separator: " ")
            if f.count > 1, let pages = Int(f[1]) {
                s +=
                    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes \(pages * 4096)\n"
            }
        }
        return s
    }
}

/// ClusterIP and NodePort allocation. Allocations are derived from the stored Services, so they survive
/// restarts and are shared by every server on the same store; one lock serializes allocation in-process.
actor ServiceAllocator {
    let base: UInt32
    let size: UInt32
    let nodePorts: ClosedRange<Int>
    nonisolated let firstIP: String
    init(cidr: String, nodePorts: ClosedRange<Int>) throws {
        let parts = cidr.split(separator: "/")
        guard parts.count == 2, let bits = UInt32(parts[1]), bits >= 8, bits <= 30, let ip = ipv4Bytes(String(parts[0]))
        else {
            throw APIError.badRequest("invalid service CIDR \(cidr)")
        }
        let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
        base = (UInt32(ip[0]) << 24 | UInt32(ip[1]) << 16 | UInt32(ip[2]) << 8 | UInt32(ip[3])) & mask
        size = ~mask &+ 1
        self.nodePorts = nodePorts
        firstIP = Self.format(base + 1)
    }
    static func format(_ v: UInt32) -> String { "\(v >> 24).\((v >> 16) & 255).\((v >> 8) & 255).\(v & 255)" }
    func contains(_ ip: String) -> Bool {
        guard let b = ipv4Bytes(ip) else { return false }
        let v = UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
        return v > base && v < base + size - 1
    }
    /// Runs `body` with the used IPs/ports, holding the allocator (one allocation at a time).
    func allocate(used: Set<String>, usedPorts: Set<Int64>, wantIP: Bool, wantPorts: Int) throws -> (String?, [Int64]) {
        var ip: String?
        if wantIP {
            // Start from a hash-free rotating offset; skip the network, first (kubernetes) and broadcast addresses.
            for off in 2..<(size - 1) where !used.contains(Self.format(base + off)) {
                ip = Self.format(base + off); break
            }
            if ip == nil {
                throw APIError(
                    code: 500, reason: "InternalError",
                    message: "Internal error occurred: failed to allocate a serviceIP: range is full")
            }
        }
        var ports: [Int64] = []
        var taken = usedPorts
        for _ in 0..<wantPorts {
            guard let p = nodePorts.lazy.map(Int64.init).first(where: { !taken.contains($0) }) else {
                throw APIError(
                    code: 500, reason: "InternalError",
                    message: "Internal error occurred: failed to allocate a nodePort: range is full")
            }
            taken.insert(p); ports.append(p)
        }
        return (ip, ports)
    }
}

/// The server's own loops still running, for the log line that names those outliving cancellation.
final class RunningServices: @unchecked Sendable {
    private let lock = NSLock()
    private var running: Set<String> = []
    func started(_ name: String) { lock.withLock { _ = running.insert(name) } }
    func ended(_ name: String) { lock.withLock { _ = running.remove(name) } }
    var names: Set<String> { lock.withLock { running } }
}

/// The requests (and the streams they became) not yet ended, each as `METHOD path?query`, oldest first.
final class InFlightRequests: @unchecked Sendable {
    private let lock = NSLock()
    private var next: UInt64 = 0
    private var requests: [UInt64: String] = [:]

    /// Notes `description` until the returned token is passed to `ended`.
    func started(_ description: String) -> UInt64 {
        lock.withLock {
            next += 1
            requests[next] = description
            return next
        }
    }
    func ended(_ token: UInt64) { lock.withLock { _ = requests.removeValue(forKey: token) } }
    var descriptions: [String] { lock.withLock { requests.sorted { $0.key < $1.key }.map(\.value) } }
}

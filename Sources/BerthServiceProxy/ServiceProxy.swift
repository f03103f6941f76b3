import BerthControl
import BerthKube
import BerthOS
import Logging

/// What kube-proxy is, in nftables mode, inside the node agent: it watches Services and EndpointSlices
/// and keeps one nftables table (``ServiceProxyRules``) routing every Service's addresses to its ready
/// endpoints. Changes are coalesced (a burst of endpoint updates is one sync) and each sync is one
/// atomic nft transaction holding only what changed. A failed sync is reported, retried, and the next
/// one rebuilds the whole table; the rules stay when the agent stops, so a restarting agent drops no
/// Service traffic (it rebuilds the table, in one transaction, when it starts again).
public actor ServiceProxy {
    public struct Configuration: Sendable {
        public var nodeName: String
        public var rules = ServiceProxyRules.Settings()
        /// The least time between two syncs (kube-proxy's --min-sync-period, 1 s by default there): a
        /// burst of changes within it is one transaction.
        public var minSyncPeriod: Duration = .milliseconds(100)
        /// Cluster IPs this node answers itself (the cluster DNS address): their Services get no rules.
        public var locallyServedAddresses: Set<String> = []
        /// How often the proxy checks its table is still there (kube-proxy's --sync-period, 30 s).
        public var syncPeriod: Duration = .seconds(30)

        public init(nodeName: String) { self.nodeName = nodeName }
    }

    let configuration: Configuration
    let services: Informer<CoreV1.Service>
    let slices: Informer<DiscoveryV1.EndpointSlice>
    let nft: NFTables?
    let conntrack = ConntrackCleanup()
    let logger: Logger
    /// Told about every failed sync (the agent makes it an event on its Node).
    let report: @Sendable (String) -> Void
    /// The ports the kernel's rules route now (for the UDP flows to clear when an endpoint goes).
    private var appliedPorts: [ProxiedServicePort] = []

    /// `services` and `slices`: informers the caller runs (the agent shares them with its cluster DNS).
    public init(
        configuration: Configuration, services: Informer<CoreV1.Service>, slices: Informer<DiscoveryV1.EndpointSlice>,
        nft: NFTables? = NFTables(), logger: Logger, report: @escaping @Sendable (String) -> Void
    ) {
        self.configuration = configuration
        self.services = services
        self.slices = slices
        self.nft = nft
        self.logger = logger
        self.report = report
    }

    /// Watches and syncs until cancelled.
    public func run() async {
        guard let nft else {
            report("nft(8) was not found: Services are not routed on this node (install nftables)")
            logger.error("the service proxy needs nft(8); Services are not routed on this node")
            return
        }
        let keeper = TableKeeper(
            nft: nft, canaryChain: "services", owner: "the service proxy's",
            minSyncPeriod: configuration.minSyncPeriod, syncPeriod: configuration.syncPeriod, logger: logger,
            report: report)
        services.onChange { _ in keeper.poke() }
        slices.onChange { _ in keeper.poke() }
        let (services, slices, configuration) = (self.services, self.slices, self.configuration)
        await keeper.run(
            ready: {
                await services.waitForSync()
                await slices.waitForSync()
            },
            plan: {
                let local = configuration.locallyServedAddresses
                let ports = ProxiedServices.build(
                    services: services.list().filter { !local.contains($0.spec.clusterIP ?? "") },
                    slices: slices.list(), nodeName: configuration.nodeName)
                return TableKeeper.Plan(ruleset: ServiceProxyRules.ruleset(ports, settings: configuration.rules)) {
                    await self.applied(ports)
                }
            })
    }

    /// After a sync: the UDP flows to endpoints that went are cleared.
    private func applied(_ ports: [ProxiedServicePort]) {
        let cleanup = ConntrackCleanup.deletions(before: appliedPorts, after: ports)
        appliedPorts = ports
        if !cleanup.isEmpty {
            let conntrack = self.conntrack
            BlockingThread.start(name: "berth-conntrack") { conntrack.delete(cleanup) }
        }
    }
}

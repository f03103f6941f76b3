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
    /// What the kernel has, as the last successful sync left it; nil: rebuild the table.
    private var applied: NFTablesRuleset?
    private var appliedPorts: [ProxiedServicePort] = []
    private var lastFailure: String?
    private let changes: AsyncStream<Void>
    private let changed: AsyncStream<Void>.Continuation
    /// Syncs done (for tests and metrics).
    public private(set) var syncCount = 0

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
        (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Watches and syncs until cancelled.
    public func run() async {
        guard let nft else {
            report("nft(8) was not found: Services are not routed on this node (install nftables)")
            logger.error("the service proxy needs nft(8); Services are not routed on this node")
            return
        }
        let changed = self.changed
        services.onChange { _ in changed.yield() }
        slices.onChange { _ in changed.yield() }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // The periodic check: a table someone deleted (or flushed) is made again.
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.configuration.syncPeriod)
                    if !nft.hasChain(table: self.configuration.rules.table, chain: "services") {
                        await self.forgetApplied()
                    }
                    changed.yield()
                }
            }
            group.addTask {
                await self.services.waitForSync()
                await self.slices.waitForSync()
                changed.yield()
                for await _ in self.changes {
                    // Waits out the rest of the burst, then syncs what it left.
                    try? await Task.sleep(for: self.configuration.minSyncPeriod)
                    await self.sync(nft)
                }
            }
            await group.waitForAll()
        }
    }

    private func forgetApplied() { applied = nil }

    /// One sync: the rules for what the informers hold now, applied as one transaction.
    func sync(_ nft: NFTables) async {
        let local = configuration.locallyServedAddresses
        let ports = ProxiedServices.build(
            services: services.list().filter { !local.contains($0.spec.clusterIP ?? "") }, slices: slices.list(),
            nodeName: configuration.nodeName)
        let wanted = ServiceProxyRules.ruleset(ports, settings: configuration.rules)
        if wanted == applied { return }
        let transaction = wanted.transaction(from: applied)
        let started = ContinuousClock.now
        do {
            try await BlockingThread.run(name: "berth-nft") { () throws(NFTables.Failure) in try nft.apply(transaction)
            }
        } catch {
            // Rebuilt whole next time (what the kernel holds is no longer known), after a second.
            applied = nil
            let message = "syncing the service proxy's nftables rules failed: \(error)"
            if message != lastFailure { report(message) }
            lastFailure = message
            logger.error("service proxy sync failed", metadata: ["error": "\(error)"])
            Task {
                try? await Task.sleep(for: .seconds(1))
                self.changed.yield()
            }
            return
        }
        lastFailure = nil
        let cleanup = ConntrackCleanup.deletions(before: appliedPorts, after: ports)
        applied = wanted
        appliedPorts = ports
        syncCount += 1
        if !cleanup.isEmpty {
            let conntrack = self.conntrack
            BlockingThread.start(name: "berth-conntrack") { conntrack.delete(cleanup) }
        }
        logger.debug(
            "service proxy synced",
            metadata: ["ports": "\(ports.count)", "elapsed": "\(ContinuousClock.now - started)"])
    }
}

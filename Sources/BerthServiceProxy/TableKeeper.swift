import BerthOS
import Logging

/// Keeps one nftables table in line with what its owner wants (the service proxy's Services, the
/// policy enforcer's NetworkPolicies): changes are coalesced (a burst is one sync, at most every
/// `minSyncPeriod`), each sync is one transaction holding only what changed since the last that
/// succeeded, a failure is reported once, retried after a second and followed by a whole rebuild (what
/// the kernel holds is then not known), and every `syncPeriod` the table is checked to be still there.
actor TableKeeper {
    /// What a sync wants: the table's content, and what to do once the kernel has it.
    struct Plan: Sendable {
        var ruleset: NFTablesRuleset
        var applied: @Sendable () async -> Void = {}
    }

    let nft: NFTables
    /// A chain the table always has: gone means someone removed the table.
    let canaryChain: String
    /// For messages: "the service proxy's", "the network policies'".
    let owner: String
    let minSyncPeriod: Duration
    let syncPeriod: Duration
    let logger: Logger
    let report: @Sendable (String) -> Void
    private var applied: NFTablesRuleset?
    private var lastFailure: String?
    private let changes: AsyncStream<Void>
    private let changed: AsyncStream<Void>.Continuation
    private(set) var syncCount = 0

    init(
        nft: NFTables, canaryChain: String, owner: String, minSyncPeriod: Duration, syncPeriod: Duration,
        logger: Logger, report: @escaping @Sendable (String) -> Void
    ) {
        self.nft = nft
        self.canaryChain = canaryChain
        self.owner = owner
        self.minSyncPeriod = minSyncPeriod
        self.syncPeriod = syncPeriod
        self.logger = logger
        self.report = report
        (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a sync (from any thread: an informer's handler).
    nonisolated func poke() { changed.yield() }

    /// Syncs until cancelled: first once `ready` returns (the informers have listed), then on every poke.
    func run(ready: @escaping @Sendable () async -> Void, plan: @escaping @Sendable () -> Plan) async {
        let changed = self.changed
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.syncPeriod)
                    await self.checkCanary()
                    changed.yield()
                }
            }
            group.addTask {
                await ready()
                changed.yield()
                for await _ in self.changes {
                    // Waits out the rest of the burst, then syncs what it left.
                    try? await Task.sleep(for: self.minSyncPeriod)
                    await self.sync(plan())
                }
            }
            await group.waitForAll()
        }
    }

    private func checkCanary() async {
        guard let table = applied?.table else { return }
        let nft = self.nft
        let canary = canaryChain
        let present = await BlockingThread.run(name: "berth-nft") { nft.hasChain(table: table, chain: canary) }
        if !present { applied = nil }
    }

    func sync(_ plan: Plan) async {
        if plan.ruleset == applied { return }
        let transaction = plan.ruleset.transaction(from: applied)
        let nft = self.nft
        let started = ContinuousClock.now
        do {
            try await BlockingThread.run(name: "berth-nft") { () throws(NFTables.Failure) in
                try nft.apply(transaction)
            }
        } catch {
            applied = nil
            let message = "syncing \(owner) nftables rules failed: \(error)"
            if message != lastFailure { report(message) }
            lastFailure = message
            logger.error("nftables sync failed", metadata: ["table": "\(plan.ruleset.table)", "error": "\(error)"])
            let changed = self.changed
            Task {
                try? await Task.sleep(for: .seconds(1))
                changed.yield()
            }
            return
        }
        lastFailure = nil
        applied = plan.ruleset
        syncCount += 1
        await plan.applied()
        logger.debug(
            "nftables synced",
            metadata: [
                "table": "\(plan.ruleset.table)", "chains": "\(plan.ruleset.chains.count)",
                "elapsed": "\(ContinuousClock.now - started)",
            ])
    }
}

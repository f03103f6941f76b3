import BerthControl
import BerthKube
import Logging

/// Enforces NetworkPolicies on the pods of this node (what a CNI plugin's policy agent does): watches
/// the policies, every pod (peers may run anywhere) and the namespaces (their labels pick peers), and
/// keeps the `berth-policy` table (``NetworkPolicyRules``) in line with them. The pods and namespaces
/// are only watched once a policy exists: until then nothing is isolated, and a node need not hold a
/// second copy of every pod for nothing.
public actor NetworkPolicyEnforcer {
    let nodeName: String
    let policies: Informer<NetworkingV1.NetworkPolicy>
    let pods: Informer<CoreV1.Pod>
    let namespaces: Informer<CoreV1.Namespace>
    let nft: NFTables?
    let logger: Logger
    let report: @Sendable (String) -> Void

    /// `policies` is the caller's to run; `pods` and `namespaces` the enforcer runs once it needs them.
    public init(
        nodeName: String, policies: Informer<NetworkingV1.NetworkPolicy>, pods: Informer<CoreV1.Pod>,
        namespaces: Informer<CoreV1.Namespace>, nft: NFTables? = NFTables(), logger: Logger,
        report: @escaping @Sendable (String) -> Void
    ) {
        self.nodeName = nodeName
        self.policies = policies
        self.pods = pods
        self.namespaces = namespaces
        self.nft = nft
        self.logger = logger
        self.report = report
    }

    public func run() async {
        guard let nft else {
            report("nft(8) was not found: NetworkPolicies are not enforced on this node (install nftables)")
            return
        }
        let keeper = TableKeeper(
            nft: nft, canaryChain: "forward", owner: "the network policies'", minSyncPeriod: .milliseconds(100),
            syncPeriod: .seconds(30), logger: logger, report: report)
        let (firstPolicy, policyArrived) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        policies.onChange { _ in
            keeper.poke()
            policyArrived.yield()
        }
        // Only what selectors and addresses read: a pod's status heartbeat does not resync.
        pods.onChange { event in
            switch event {
            case .updated(let old, let new)
            where old.metadata.labels == new.metadata.labels && old.status.podIP == new.status.podIP
                && old.status.phase == new.status.phase && old.spec.nodeName == new.spec.nodeName:
                return
            default: keeper.poke()
            }
        }
        namespaces.onChange { _ in keeper.poke() }
        let (policies, pods, namespaces, nodeName) = (self.policies, self.pods, self.namespaces, self.nodeName)
        await policies.waitForSync()
        if policies.list().isEmpty {
            // Nothing is isolated: a table a previous run left is emptied, and the pods and namespaces
            // wait for the first policy.
            await keeper.sync(
                TableKeeper.Plan(
                    ruleset: NetworkPolicyRules.ruleset(policies: [], pods: [], namespaces: [], nodeName: nodeName)))
            for await _ in firstPolicy where !policies.list().isEmpty { break }
            if Task.isCancelled { return }
        }
        policyArrived.finish()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await pods.run() }
            group.addTask { await namespaces.run() }
            group.addTask {
                await keeper.run(
                    ready: {
                        await pods.waitForSync()
                        await namespaces.waitForSync()
                    },
                    plan: {
                        TableKeeper.Plan(
                            ruleset: NetworkPolicyRules.ruleset(
                                policies: policies.list(), pods: pods.list(), namespaces: namespaces.list(),
                                nodeName: nodeName))
                    })
            }
            await group.waitForAll()
        }
    }
}

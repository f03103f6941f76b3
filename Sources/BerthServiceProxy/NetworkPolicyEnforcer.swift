import BerthControl
import BerthKube
import Logging

/// Enforces NetworkPolicies on the pods of this node (what a CNI plugin's policy agent does): watches
/// the policies, every pod (peers may run anywhere) and the namespaces (their labels pick peers), and
/// keeps the `berth-policy` table (``NetworkPolicyRules``) in line with them.
public actor NetworkPolicyEnforcer {
    let nodeName: String
    let policies: Informer<NetworkingV1.NetworkPolicy>
    let pods: Informer<CoreV1.Pod>
    let namespaces: Informer<CoreV1.Namespace>
    let nft: NFTables?
    let logger: Logger
    let report: @Sendable (String) -> Void

    /// The informers are the caller's to run.
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
        policies.onChange { _ in keeper.poke() }
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
        await keeper.run(
            ready: {
                await policies.waitForSync()
                await pods.waitForSync()
                await namespaces.waitForSync()
            },
            plan: {
                TableKeeper.Plan(
                    ruleset: NetworkPolicyRules.ruleset(
                        policies: policies.list(), pods: pods.list(), namespaces: namespaces.list(), nodeName: nodeName)
                )
            })
    }
}

import BerthKube
import Logging
import Synchronization
import Foundation
import Testing

@testable import BerthServiceProxy

/// How the proxy's table is kept: failures reported once in nft's words and retried; no second
/// transaction for what the kernel already has.
struct TableKeeperTests {
    final class Reports: Sendable {
        let messages = Mutex<[String]>([])
    }

    @Test func aFailedSyncIsReportedOnceInNftsWordsAndTheNextRebuildsTheTable() async {
        let reports = Reports()
        // An nft that refuses everything, as a kernel without nf_tables would.
        let failing = NFTables(command: [
            "/bin/sh", "-c",
            "cat > /dev/null; echo 'Error: Could not process rule: Operation not supported' >&2; exit 1", "nft",
        ])
        let keeper = TableKeeper(
            nft: failing, canaryChain: "services", owner: "the service proxy's", minSyncPeriod: .zero,
            syncPeriod: .seconds(30), logger: Logger(label: "test")
        ) { message in reports.messages.withLock { $0.append(message) } }
        let ruleset = ServiceProxyRules.ruleset([], settings: ServiceProxyRules.Settings())
        await keeper.sync(TableKeeper.Plan(ruleset: ruleset))
        await keeper.sync(TableKeeper.Plan(ruleset: ruleset))
        let messages = reports.messages.withLock { $0 }
        #expect(messages.count == 1)
        #expect(messages.first?.contains("syncing the service proxy's nftables rules failed") == true)
        #expect(messages.first?.contains("Operation not supported") == true)
        #expect(await keeper.syncCount == 0)

        // Once nft works, the table is made whole, and the same rules again cost no transaction.
        let log = "/tmp/berth-tablekeeper-\(UInt32.random(in: 0...UInt32.max))"
        let working = TableKeeper(
            nft: NFTables(command: ["/bin/sh", "-c", "cat >> \(log)", "nft"]), canaryChain: "services",
            owner: "the service proxy's", minSyncPeriod: .zero, syncPeriod: .seconds(30),
            logger: Logger(label: "test")
        ) { _ in }
        await working.sync(TableKeeper.Plan(ruleset: ruleset))
        await working.sync(TableKeeper.Plan(ruleset: ruleset))
        #expect(await working.syncCount == 1)
        let sent = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(sent.hasPrefix("add table ip berth-proxy\ndelete table ip berth-proxy\n"))
        unlink(log)
    }
}

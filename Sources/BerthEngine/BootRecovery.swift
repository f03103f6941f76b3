#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// What the engine does the first time it runs after the machine booted: dockerd's restore, without a
/// daemon. Containers that were running when the machine went down have no monitor, no runtime state,
/// no network namespace and no rootfs mount any more, but their records still say running, and their
/// IP leases, port reservations and CNI results (all under the data root) are still held. Each is
/// recorded as exited (255, as docker), its network resources are released, and the ones whose
/// restart policy asks for it are started again:
///
/// - `always`: even if a user had stopped it (docker: "restarted when the daemon restarts");
/// - `unless-stopped`: unless a user had stopped it;
/// - `on-failure[:N]`: if its last exit was a failure, retries are left and no user stopped it.
///
/// A boot is told apart by the kernel's boot ID, recorded under the data root once the pass is done.
/// Any engine command (the CLI's first `berth ps` after a reboot, a monitor's cleanup, the daemon)
/// runs the pass; the systemd unit in `packaging/` runs one at boot so nothing waits for a user.
extension Engine {
    static let bootIDSource = "/proc/sys/kernel/random/boot_id"

    var bootMarker: String { layout.root + "/boot-id" }

    static func currentBootID() -> String {
        ((try? FileSystem.readString(bootIDSource)) ?? "").filter { $0 != "\n" }
    }

    /// Runs the pass once per boot; errors are recorded on the container they concern, never thrown
    /// (the command that triggered the pass goes on).
    func recoverAfterBoot() {
        let boot = Self.currentBootID()
        guard !boot.isEmpty, (try? FileSystem.readString(bootMarker)) != boot else { return }
        let toStart: [String] =
            (try? locked { () throws(EngineError) -> [String] in
                // Checked again under the lock: another process may have done the pass meanwhile.
                guard (try? FileSystem.readString(bootMarker)) != boot else { return [] }
                var restart: [String] = []
                for id in (try? FileSystem.listSubdirectories(layout.containers)) ?? [] {
                    guard var record = RecordFile.read(ContainerRecord.self, layout.record(id)) else { continue }
                    if [.running, .paused, .restarting].contains(record.state.status) {
                        // Its writers hold its own lock (a start by another process, meanwhile).
                        let lock = try? ContainerLock(layout, id)
                        defer { lock?.release() }
                        record = RecordFile.read(ContainerRecord.self, layout.record(id)) ?? record
                        guard
                            !ProcessStat.isAlive(pid: record.state.monitorPid, startTime: record.state.monitorStartTime)
                        else { continue }
                        networking.tearDown(&record)
                        record.state.status = .exited
                        record.state.exitCode = 255
                        record.state.pid = 0
                        record.state.finishedAt = Timestamp.now()
                        record.state.error = "the machine restarted while the container ran"
                        try? save(record)
                        events.container("die", record, ["exitCode": "255"])
                    }
                    if Self.restartsAfterBoot(record) { restart.append(id) }
                }
                try? FileSystem.writeAtomically(bootMarker, Array(boot.utf8), mode: 0o644, durable: true)
                return restart
            }) ?? []
        for id in toStart {
            _ = try? locked(container: id) { id throws(EngineError) in
                _ = try startLocked(id, attach: false, resetRestarts: false)
            }
        }
    }

    /// dockerd's restore: a container that has run before and whose policy restarts it on a daemon start.
    static func restartsAfterBoot(_ record: ContainerRecord) -> Bool {
        guard record.state.status == .exited, !record.state.startedAt.isEmpty else { return false }
        let policy = record.configuration.restartPolicy
        switch policy.name {
        case "always": return true
        case "unless-stopped": return !record.state.stoppedByUser
        case "on-failure":
            return !record.state.stoppedByUser && record.state.exitCode != 0
                && (policy.maximumRetryCount == 0 || record.restartCount < policy.maximumRetryCount)
        default: return false
        }
    }
}

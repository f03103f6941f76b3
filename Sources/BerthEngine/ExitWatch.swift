#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// Waiting for a running container's exit from a long-lived process (the Docker API's `wait`), where
/// the waiter must learn the exit status even when the monitor's exit command removes the container
/// (`--rm`) before the waiter looks again, and must be able to give up when its client goes away.
extension Engine {
    /// How one watch ended.
    public enum ExitWatchResult: Sendable, Equatable {
        /// The run ended with this status (128 + signal for a killed init, as docker reports it).
        case exited(Int32)
        /// `cancel` became readable first.
        case cancelled
    }

    /// Blocks until the run `record` describes has ended and its monitor (and the exit command it
    /// execs: cleanup, or removal for `--rm`) is gone. The status comes from the monitor's exit file,
    /// read as soon as it appears (inotify on the container's directory), so it is known even when the
    /// directory is removed right after; else from the record. `cancel` (a descriptor, or -1) ends the
    /// wait early when it becomes readable.
    public func awaitExit(of record: ContainerRecord, cancel: Int32 = -1) -> ExitWatchResult {
        let directory = layout.container(record.id)
        let inotify = inotify_init1(Int32(IN_CLOEXEC) | Int32(IN_NONBLOCK))
        defer { if inotify >= 0 { close(inotify) } }
        if inotify >= 0 { _ = inotify_add_watch(inotify, directory, UInt32(IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE)) }
        var status = exitStatus(record)
        let monitor = record.state.monitorPid
        let pidfd = monitor > 0 ? berth_pidfd_open(monitor, 0) : -1
        defer { if pidfd >= 0 { close(pidfd) } }
        // Checked through the pidfd: a pid reused since the record was read is not the monitor.
        var monitorAlive: Bool {
            monitor > 0 && ProcessStat.isAlive(pid: monitor, startTime: record.state.monitorStartTime)
        }
        var scratch = [UInt8](repeating: 0, count: 4096)
        while pidfd >= 0 && monitorAlive {
            var fds = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
            if inotify >= 0 { fds.append(pollfd(fd: inotify, events: Int16(POLLIN), revents: 0)) }
            if cancel >= 0 { fds.append(pollfd(fd: cancel, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if inotify >= 0 && fds[1].revents != 0 {
                while scratch.withUnsafeMutableBytes({ read(inotify, $0.baseAddress, $0.count) }) > 0 {}
                status = exitStatus(record) ?? status
            }
            if cancel >= 0 && fds[fds.count - 1].revents != 0 { return .cancelled }
            if fds[0].revents != 0 { break }
        }
        if let known = exitStatus(record) ?? status { return .exited(known) }
        if let stored = RecordFile.read(ContainerRecord.self, layout.record(record.id)) {
            return .exited(observed(stored).state.exitCode)
        }
        // The monitor vanished without an exit file and the container is gone: docker's "unknown".
        return .exited(255)
    }

    /// The monitor's exit file for this run of the container, if it has written it.
    private func exitStatus(_ record: ContainerRecord) -> Int32? {
        guard let exit = RecordFile.read(ExitRecord.self, layout.exitFile(record.id)), exit.pid == record.state.pid
        else { return nil }
        return exit.exitCode
    }
}

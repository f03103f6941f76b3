#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Synchronization

/// What the daemon's own requests changed, for the threads that wait on containers: a wait for the
/// next exit of a container not started yet, an attachment made before the start. Each subscriber has
/// a pipe that becomes readable on every change, so it can poll it beside its other descriptors.
/// (Changes made by other processes — the `berth` CLI — are seen by the waiters' periodic re-reads.)
final class StateHub: Sendable {
    private struct State {
        var subscribers: [ObjectIdentifier: Int32] = [:]
        /// The last exit status the daemon saw for a container (an attachment's exit frame), kept for a
        /// wait whose container `--rm` removes before the waiter reads its record.
        var exits: [String: Int32] = [:]
        /// Attachments made before their container started, by container ID.
        var pending: [String: [Attachment]] = [:]
    }
    private let state = Mutex(State())

    /// A subscription: `descriptor` is readable after a change; `drain()` before looking again.
    final class Subscription: @unchecked Sendable {
        private let pipe: Pipe?
        let reading: Int32
        let writing: Int32
        weak var hub: StateHub?

        init(hub: StateHub) {
            pipe = try? Pipe()
            reading = pipe?.reading.rawValue ?? -1
            writing = pipe?.writing.rawValue ?? -1
            // Neither end may block: the notifier writes under the hub's lock, the waiter drains.
            if reading >= 0 { _ = fcntl(reading, F_SETFL, O_NONBLOCK) }
            if writing >= 0 { _ = fcntl(writing, F_SETFL, O_NONBLOCK) }
            self.hub = hub
        }

        var descriptor: Int32 { reading }

        func drain() {
            var scratch = [UInt8](repeating: 0, count: 64)
            while reading >= 0 && scratch.withUnsafeMutableBytes({ read(reading, $0.baseAddress, $0.count) }) > 0 {}
        }

        deinit {
            hub?.unsubscribe(ObjectIdentifier(self))
        }
    }

    func subscribe() -> Subscription {
        let subscription = Subscription(hub: self)
        state.withLock { $0.subscribers[ObjectIdentifier(subscription)] = subscription.writing }
        return subscription
    }

    fileprivate func unsubscribe(_ id: ObjectIdentifier) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
    }

    /// Something changed: every subscriber looks again.
    func notify() {
        state.withLock { s in
            var byte: UInt8 = 1
            // Non-blocking: a subscriber that has not drained yet has a wake-up pending anyway.
            for fd in s.subscribers.values where fd >= 0 { _ = write(fd, &byte, 1) }
        }
    }

    func recordExit(_ id: String, status: Int32) {
        state.withLock { s in
            s.exits[id] = status
            // Bounded: only the latest matter, for waits in flight.
            if s.exits.count > 1024 { s.exits.removeAll() }
        }
        notify()
    }

    func lastExit(_ id: String) -> Int32? { state.withLock { $0.exits[id] } }

    func addPending(_ attachment: Attachment, for id: String) {
        state.withLock { $0.pending[id, default: []].append(attachment) }
    }

    func removePending(_ attachment: Attachment, for id: String) {
        state.withLock { s in
            s.pending[id]?.removeAll { $0 === attachment }
            if s.pending[id]?.isEmpty == true { s.pending[id] = nil }
        }
    }

    /// Hands the attachments waiting for `id` to the caller (who is about to start it).
    func takePending(_ id: String) -> [Attachment] {
        state.withLock { $0.pending.removeValue(forKey: id) ?? [] }
    }
}

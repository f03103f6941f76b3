import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Why `berth server` could not start serving.
public enum ServerStartError: Error, CustomStringConvertible {
    /// The listening socket could not be bound (the port is taken, the address is not this host's, …).
    case listen(address: String, cause: any Error)

    public var description: String {
        switch self {
        case .listen(let address, let cause):
            let text = "\(cause)"
            let reason = text.contains("Address already in use") ? "address already in use" : text
            return "cannot listen on \(address): \(reason)"
        }
    }
}

/// Opens once, when the HTTPS listener is bound, or fails once, when binding failed. Everything that
/// writes to the store or runs a loop waits on it: a second server started on a taken port must exit
/// with the bind error before it takes the leader Lease or starts a controller (issue 14.2: it once
/// became leader, then hung in its informers' first sync while the group shut down around it).
final class ListenGate: Sendable {
    enum State { case waiting([CheckedContinuation<Int?, Never>]), open(Int), failed }
    private let state = Mutex<State>(.waiting([]))

    /// The bound port.
    func open(port: Int) { settle(.open(port)) }
    func fail() { settle(.failed) }
    /// Whether the listener was bound (the gate opened).
    var isOpen: Bool { state.withLock { if case .open = $0 { true } else { false } } }

    private func settle(_ final: State) {
        let waiters = state.withLock { s -> [CheckedContinuation<Int?, Never>] in
            guard case .waiting(let w) = s else { return [] }
            s = final
            return w
        }
        let port: Int? = if case .open(let p) = final { p } else { nil }
        for w in waiters { w.resume(returning: port) }
    }

    /// The bound port, or nil when binding failed. Graceful shutdown or cancellation while waiting
    /// fails the gate, so nothing waits on a listener that will never come.
    func wait() async -> Int? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Int?, Never>) in
                let settled = state.withLock { s -> Int?? in
                    switch s {
                    case .waiting(let w): s = .waiting(w + [c]); return .none
                    case .open(let p): return .some(p)
                    case .failed: return .some(nil)
                    }
                }
                if let settled { c.resume(returning: settled) }
            }
        } onCancel: {
            fail()
        }
    }
}

/// The HTTPS front end as a service: a bind failure becomes `ServerStartError.listen` naming the address
/// and fails the gate.
struct ListenerService: Service {
    let app: any Service
    let address: String
    let gate: ListenGate
    /// Where the server notes that the listener (its connections' handlers included) is still running,
    /// for the log that names what outlives cancellation.
    var running: RunningServices? = nil

    func run() async throws {
        running?.started("listener")
        defer { running?.ended("listener") }
        do {
            try await app.run()
        } catch {
            let wasOpen = gate.isOpen
            gate.fail()
            throw wasOpen ? error : ServerStartError.listen(address: address, cause: error)
        }
        gate.fail()
    }
}

/// Runs `body` (the store bootstrap, the leader election, the control plane …) only once the listener is
/// bound; ends at once when binding failed or the group shuts down first.
struct AfterListening: Service {
    let gate: ListenGate
    let body: @Sendable (_ port: Int) async throws -> Void

    func run() async throws {
        let port = await cancelWhenGracefulShutdown { await gate.wait() }
        guard let port, !Task.isCancelled, !Task.isShuttingDownGracefully else { return }
        try await body(port)
    }
}
